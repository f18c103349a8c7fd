import { type Address, erc20Abi } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { afterAll, beforeAll, describe, expect } from "vitest";
import { ANVIL_KEYS, LOCAL_ROLES } from "../src/chain/local.js";
import { deriveKeyFromWallet } from "../src/eerc/keys.js";
import { IndexerClient } from "../src/indexer-client/client.js";
import { callRecords, commitRecords, payPoolFee } from "../src/local/marketplace.js";
import { readSettlementFacts } from "../src/payout/facts.js";
import { reconcile } from "../src/payout/reconcile.js";
import { poolReserve, poolSecret } from "../src/payout/settlement.js";
import { type PayoutWorld, payoutWorld, spawnAgent } from "./payout-fixtures.js";
import { story } from "./story.js";

// The payers funded from the revenue pool: users pay fees into the pool (anvil's account #7), the
// agent moves them into the payer's encrypted balance before the cycle, the cycle pays, and the
// auditor's money flow accounts for every micro-USDC. The operator starts with no encrypted
// balance at all, so every payout here is paid from what the pool received.

let w: PayoutWorld;
let sequence = 0;
const now = Date.now();
/** USDC's eERC token id: the converter assigns it at the first deposit, which here is the agent's funding. */
let tokenId = 0n;

const usdcOf = (address: Address) =>
  w.chain.publicClient.readContract({ address: w.manifest.contracts.token, abi: erc20Abi, functionName: "balanceOf", args: [address] });

async function indexedHead(): Promise<void> {
  await new IndexerClient(w.indexer.url).waitForBlock(await w.chain.publicClient.getBlockNumber({ cacheTime: 0 }));
}

/** The operator's deposits as the indexer serves them (public amounts). */
async function deposits(): Promise<bigint[]> {
  await indexedHead();
  const facts = await readSettlementFacts(new IndexerClient(w.indexer.url), [w.operator.address]);
  return facts.deposits.map((d) => d.creditedMicro);
}

async function audit() {
  await indexedHead();
  return reconcile({
    indexer: new IndexerClient(w.indexer.url),
    auditorSk: await deriveKeyFromWallet(privateKeyToAccount(ANVIL_KEYS[LOCAL_ROLES.auditor])),
    operatorPk: w.operator.publicKey,
    payers: [w.operator.address],
  });
}

async function reserveOf(cycle: number, poolAfterFee: bigint): Promise<bigint> {
  return poolReserve(poolSecret(w.operator.exportPrivateKey(), await w.operator.auditorPublicKey()), cycle, poolAfterFee);
}

const startAgent = (env: Record<string, string> = {}) => spawnAgent(w, ["--once"], { PLATFORM_FEE_BPS: "1000", ...env });

beforeAll(async () => {
  w = await payoutWorld({ fundMicro: 0n });
});

afterAll(async () => {
  await w?.close();
});

describe("payers funded from the revenue pool", () => {
  const step = story();
  let reserve1 = 0n;
  const pool = () => w.manifest.revenuePool!;

  step("with PAYOUT_FUND_FROM_POOL=0 the pool is left alone, and a cycle the payer cannot cover is refused whole", async () => {
    await commitRecords(w.chain, w.manifest, w.server, w.operator.address, ++sequence, [
      ...callRecords("weather", 3, { at: now, priceMicro: 1000n }),
      ...callRecords("wiki", 4, { at: now }),
    ]);
    await payPoolFee(w.chain, w.manifest, w.user, 1_000_000n);
    const nonce = await w.chain.publicClient.getTransactionCount({ address: w.operator.address });
    const run = await startAgent({ PAYOUT_FUND_FROM_POOL: "0" }).done;
    expect(run.code, run.output).not.toBe(0);
    expect(run.output).toContain("PAYER_UNDERFUNDED");
    expect(await usdcOf(pool())).toBe(1_000_000n);
    expect(await w.chain.publicClient.getTransactionCount({ address: w.operator.address })).toBe(nonce);
    expect(await deposits()).toEqual([]);
  });

  step("before the cycle the agent deposits the pool's USDC into the payer's encrypted balance, and the cycle pays from it", async () => {
    const logs: string[] = [];
    const result = await w.agent({ funding: w.poolFunding, log: (l) => logs.push(l) }).runCycle();
    if (result.status !== "paid") throw new Error(`expected a paid cycle, got ${result.status}`);
    expect(result.cycle).toBe(1);
    tokenId = await w.operator.tokenId(w.manifest.contracts.token);
    expect(tokenId).toBeGreaterThan(0n);
    // The pool moved whole: the transfer to the operator, then its deposit.
    expect(await usdcOf(pool())).toBe(0n);
    expect(await usdcOf(w.operator.address)).toBe(0n);
    expect(await deposits()).toEqual([1_000_000n]);
    // weather 3 × 1000 − 10% = 2700; wiki alone in the pool: 1,000,000 − 10% = 900,000 less the reserve.
    reserve1 = await reserveOf(1, 900_000n);
    expect(await w.payoutAccounts.get("weather")!.client.balance(tokenId)).toBe(2700n);
    expect(await w.payoutAccounts.get("wiki")!.client.balance(tokenId)).toBe(900_000n - reserve1);
    // What is left with the payer: the deposit less the payouts.
    expect(await w.operator.balance(tokenId)).toBe(1_000_000n - 2700n - (900_000n - reserve1));
    // The funding is logged with counts and hashes, never an amount.
    expect(logs.filter((l) => l.startsWith("funded the payers"))).toEqual([
      expect.stringMatching(
        /^funded the payers from the revenue pool: 1 pool transfer\(s\), 1 deposit\(s\) \((0x[0-9a-f]{64}), (0x[0-9a-f]{64})\) transfers=1 deposits=1 txHashes=\["\1","\2"\] ms=\d+$/,
      ),
    ]);
  });

  step("the auditor's money flow: fees in + usage billed = paid + platform fee + carried, to the micro-USDC", async () => {
    const report = await audit();
    expect(report.ok).toBe(true);
    const cycle1 = {
      feesMicro: 1_000_000n,
      // Usage metered without x402: its calls brought nothing in and pay no levy.
      callRevenueMicro: 0n,
      // The per-call usage the operator billed its users: 3 × 1000.
      usageMicro: 3000n,
      levyMicro: 0n,
      depositedMicro: 1_000_000n,
      paidMicro: 2700n + 900_000n - reserve1,
      // 10% of the pool and of the usage.
      platformFeeMicro: 100_000n + 300n,
      carriedInMicro: 0n,
      carriedOutMicro: reserve1,
      deferredInMicro: 0n,
      deferredOutMicro: 0n,
      unsettledMicro: 0n,
      differenceMicro: 0n,
      ok: true,
    };
    expect(report.cycles.map((c) => c.moneyFlow)).toEqual([cycle1]);
    expect(report.moneyFlow).toEqual(cycle1);
  });

  step("killed between the pool's transfer and the payer's deposit, then restarted: the USDC is deposited exactly once", async () => {
    await commitRecords(w.chain, w.manifest, w.server, w.operator.address, ++sequence, callRecords("wiki", 2, { at: now }));
    await payPoolFee(w.chain, w.manifest, w.user, 500_000n);
    const crashed = await startAgent({ PAYOUT_FAULT: "after_pool_transfer@1" }).done;
    expect(crashed.signal, crashed.output).toBe("SIGKILL");
    // The pool sent its USDC to the payer, which had not deposited it yet.
    expect(await usdcOf(pool())).toBe(0n);
    expect(await usdcOf(w.operator.address)).toBe(500_000n);
    expect(await deposits()).toEqual([1_000_000n]);

    const restarted = await startAgent().done;
    expect(restarted.code, restarted.output).toBe(0);
    expect(restarted.output).toMatch(/0 pool transfer\(s\), 1 deposit\(s\)/);
    expect(await usdcOf(w.operator.address)).toBe(0n);
    expect(await deposits()).toEqual([1_000_000n, 500_000n]);

    // Cycle 2: 500,000 − 10% = 450,000 plus cycle 1's reserve, less cycle 2's own, to wiki alone.
    const reserve2 = await reserveOf(2, 450_000n);
    expect(await w.payoutAccounts.get("wiki")!.client.balance(tokenId)).toBe(900_000n - reserve1 + 450_000n + reserve1 - reserve2);

    // A third run finds nothing to move and nothing owed.
    const idle = await startAgent().done;
    expect(idle.code, idle.output).toBe(0);
    expect(idle.output).toMatch(/nothing owed/);
    expect(idle.output).not.toMatch(/funded the payers/);
    expect(await deposits()).toEqual([1_000_000n, 500_000n]);

    const report = await audit();
    expect(report.ok).toBe(true);
    expect(report.cycles[1]!.moneyFlow).toMatchObject({
      feesMicro: 500_000n,
      usageMicro: 0n,
      depositedMicro: 500_000n,
      paidMicro: 450_000n + reserve1 - reserve2,
      platformFeeMicro: 50_000n,
      carriedInMicro: reserve1,
      carriedOutMicro: reserve2,
      ok: true,
    });
    expect(report.moneyFlow).toMatchObject({
      feesMicro: 1_500_000n,
      usageMicro: 3000n,
      depositedMicro: 1_500_000n,
      paidMicro: 2700n + 1_350_000n - reserve2,
      platformFeeMicro: 150_300n,
      carriedOutMicro: reserve2,
      unsettledMicro: 0n,
      differenceMicro: 0n,
      ok: true,
    });
  });

  step("a fee paid after the last cycle shows as unsettled, still in the pool, and the money flow still balances", async () => {
    await payPoolFee(w.chain, w.manifest, w.user, 7n);
    const report = await audit();
    expect(report.ok).toBe(true);
    expect(report.moneyFlow).toMatchObject({ feesMicro: 1_500_007n, unsettledMicro: 7n, differenceMicro: 0n, ok: true });
    expect(await usdcOf(pool())).toBe(7n);
  });
});
