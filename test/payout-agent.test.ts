import { createTestClient, custom } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { afterAll, beforeAll, describe, expect } from "vitest";
import { ANVIL_KEYS } from "../src/chain/local.js";
import { setSettlement } from "../src/deployment/settlement.js";
import type { EercClient } from "../src/eerc/client.js";
import { deriveKeyFromWallet } from "../src/eerc/keys.js";
import { decryptPCT } from "../src/eerc/pct.js";
import { IndexerClient } from "../src/indexer-client/client.js";
import { callRecords, commitRecords, eercAccount, fundPayer, newFundedAccount, payPoolFee } from "../src/local/marketplace.js";
import { WebhookSender } from "../src/notify/webhooks.js";
import {
  PayerSpendsUnindexedError,
  PayerUnderfundedError,
  SettlementMismatchError,
  UnattributedPayerTransferError,
} from "../src/payout/errors.js";
import { readSettlementFacts } from "../src/payout/facts.js";
import { reconcile } from "../src/payout/reconcile.js";
import { poolReserve, poolSecret } from "../src/payout/settlement.js";
import { operatorAmounts } from "../src/payout/tag.js";
import { nextPeriodStart } from "../src/usage/period.js";
import { providerIdOf } from "../src/usage/registry.js";
import { type PayoutWorld, payoutWorld, transfersPerCycleAndProvider } from "./payout-fixtures.js";
import { story } from "./story.js";
import { startWebhookReceiver, type WebhookReceiver } from "./webhook-receiver.js";

// The payout agent against anvil, the indexer and real proofs. Expected amounts are worked out by
// hand from the pricing (10% platform fee) so the engine is not checked against itself. The free
// pool's reserve is the one number that cannot be: it is derived from the operator's and the
// auditor's keys (`poolReserve`), and the splits are worked out by hand around it.

let w: PayoutWorld;
let sequence = 0;
/** Receives the agent's and the API's webhooks, signed with this secret. */
let receiver: WebhookReceiver;
const WEBHOOK_SECRET = `whsec_${Buffer.from("the payout agent test's webhook secret").toString("base64")}`;
/** The second payer account, from the step that adds it on. */
let secondPayer: EercClient;
const now = Date.now();

async function commit(calls: Record<string, number | [number, number]>) {
  const records = Object.entries(calls).flatMap(([ns, n]) => {
    const [count, billable] = Array.isArray(n) ? n : [n, n];
    const price = ns === "weather" ? 1000n : ns === "tinyapi" ? 1n : 0n;
    return callRecords(ns, count, { at: now, billable, priceMicro: price });
  });
  return commitRecords(w.chain, w.manifest, w.server, w.operator.address, ++sequence, records);
}

/** A cycle's pool reserve, as the operator and the auditor derive it. */
async function reserveOf(cycle: number, poolAfterFee: bigint): Promise<bigint> {
  const secret = poolSecret(w.operator.exportPrivateKey(), await w.operator.auditorPublicKey());
  return poolReserve(secret, cycle, poolAfterFee);
}

/** Largest remainder between wiki and maps, by hand: floors first, the spare micro to the larger remainder (ties: the lower provider id). */
function wikiMaps(pool: bigint, wiki: bigint, maps: bigint): { wiki: bigint; maps: bigint } {
  const total = wiki + maps;
  const out = { wiki: (pool * wiki) / total, maps: (pool * maps) / total };
  if (out.wiki + out.maps === pool) return out;
  const [rw, rm] = [(pool * wiki) % total, (pool * maps) % total];
  if (rw > rm || (rw === rm && providerIdOf("wiki") < providerIdOf("maps"))) out.wiki += 1n;
  else out.maps += 1n;
  return out;
}

/** What each cycle carried out of the pool, for the next. */
const carried: bigint[] = [0n];
/** The free providers' balances so far. */
const free = { wiki: 0n, maps: 0n };

async function balances(): Promise<Record<string, bigint>> {
  const out: Record<string, bigint> = {};
  for (const [ns, { client }] of w.payoutAccounts) out[ns] = await client.balance(w.tokenId);
  return out;
}

beforeAll(async () => {
  receiver = await startWebhookReceiver(WEBHOOK_SECRET);
  w = await payoutWorld({ fundMicro: 5_000_000n, indexerEnv: { WEBHOOK_URLS: receiver.url, WEBHOOK_SECRET } });
});

afterAll(async () => {
  await w?.close();
  await receiver?.close();
});

const webhooks = () => new WebhookSender({ urls: [receiver.url], secret: WEBHOOK_SECRET, backoffMs: 50 });

describe("payout agent", () => {
  const step = story();

  step("pays every provider what it earned in one transfer each, free pool split from the fees the pool received", async () => {
    await commit({ weather: [8, 7], news: 8, tinyapi: 1, wiki: 10, maps: 10 });
    await payPoolFee(w.chain, w.manifest, w.user, 1_000_000n);
    const result = await w.agent().runCycle();
    expect(result.status).toBe("paid");
    if (result.status !== "paid") return;
    expect(result.cycle).toBe(1);
    expect(result.transfers).toHaveLength(5);
    expect(result.poolMicro).toBe(1_000_000n);
    // weather 7 × 1000 − 10%; news 3 calls past the 5 free × 250 − 10%; tinyapi 1 micro (fee rounds to 0);
    // pool 1,000,000 − 10% = 900,000, less the cycle's reserve, split 10 : 30.
    const reserve = await reserveOf(1, 900_000n);
    carried.push(reserve);
    Object.assign(free, wikiMaps(900_000n - reserve, 10n, 30n));
    expect(await balances()).toEqual({ weather: 6300n, news: 675n, tinyapi: 1n, ...free });
  });

  step("a second run with nothing new pays nothing", async () => {
    const result = await w.agent().runCycle();
    expect(result.status).toBe("nothing_owed");
    expect([...(await transfersPerCycleAndProvider(w)).values()].every((n) => n === 1)).toBe(true);
  });

  step("the next cycle pays only the difference: tiers keep counting within the period, the pool splits by largest remainder", async () => {
    await commit({ weather: 2, news: 4, wiki: 1, maps: 1 });
    await payPoolFee(w.chain, w.manifest, w.user, 7n);
    const result = await w.agent().runCycle();
    if (result.status !== "paid") throw new Error(`expected a paid cycle, got ${result.status}`);
    expect(result.cycle).toBe(2);
    // weather 9 calls: 8100 earned, 6300 paid. news 12 calls: 7 × 250 − 10% = 1575, 675 paid.
    // Pool 7 (fee rounds to 0) plus cycle 1's reserve, less cycle 2's own, by weights 1 : 3.
    const reserve = await reserveOf(2, 7n);
    const pool = wikiMaps(7n + carried[1]! - reserve, 1n, 3n);
    carried.push(reserve);
    free.wiki += pool.wiki;
    free.maps += pool.maps;
    expect(await balances()).toEqual({ weather: 8100n, news: 1575n, tinyapi: 1n, ...free });
    const counts = await transfersPerCycleAndProvider(w);
    // Every provider got a transfer, tinyapi (no usage this cycle) one of 0: nobody can tell who had usage.
    expect([...counts.keys()].filter((k) => k.startsWith("2:"))).toHaveLength(5);
    expect([...counts.values()].every((n) => n === 1)).toBe(true);
  });

  step(
    "the payout tags on chain say what was paid: the operator reads each amount, the auditor too, and both match what the provider received",
    async () => {
      await new IndexerClient(w.indexer.url).waitForBlock(await w.chain.publicClient.getBlockNumber({ cacheTime: 0 }));
      const facts = await readSettlementFacts(new IndexerClient(w.indexer.url), [w.operator.address]);
      expect(facts.unattributed).toEqual([]);
      const { amounts, unreadable } = operatorAmounts(w.operator.exportPrivateKey(), facts);
      expect(unreadable).toEqual([]);
      const auditor = await eercAccount(w.chain, w.manifest, w.prover, privateKeyToAccount(ANVIL_KEYS[9]));
      const paid = new Map<string, bigint>();
      for (const p of facts.payouts) {
        expect(decryptPCT(p.auditorPCT, auditor.exportPrivateKey())).toBe(amounts.get(p.txHash));
        paid.set(p.to, (paid.get(p.to) ?? 0n) + amounts.get(p.txHash)!);
      }
      for (const [, { account, client }] of w.payoutAccounts) expect(paid.get(account.address)).toBe(await client.balance(w.tokenId));
    },
  );

  step("recovers when a credit lands on the payer in the middle of a chain of proofs", async () => {
    await commit({ weather: 3, news: 1, tinyapi: 2 });
    const stranger = await newFundedAccount(w.chain);
    const strangerClient = await eercAccount(w.chain, w.manifest, w.prover, stranger);
    await fundPayer(w.chain, w.manifest, strangerClient, stranger, 10n);
    const credit = await strangerClient.prepareTransfer({ to: w.operator.address, amount: 1n, tokenId: w.tokenId });
    let credited = false;
    const payerBefore = await w.operator.balance(w.tokenId);
    const result = await w
      .agent({
        depth: 3,
        onSent: async (t) => {
          if (t.seq !== 1 || credited) return;
          credited = true;
          await strangerClient.sendTransfer(credit);
        },
      })
      .runCycle();
    if (result.status !== "paid") throw new Error(`expected a paid cycle, got ${result.status}`);
    expect(result.cycle).toBe(3);
    expect(credited).toBe(true);
    expect(result.recoveries).toBeGreaterThanOrEqual(1);
    // weather, news and tinyapi, and zero-amount transfers to wiki and maps.
    expect(result.transfers).toHaveLength(5);
    expect(
      result.transfers
        .filter((t) => t.amount === 0n)
        .map((t) => t.providerId)
        .sort(),
    ).toEqual([providerIdOf("maps"), providerIdOf("wiki")].sort());
    // weather 12 calls: 10,800; news 13 calls: 8 × 250 − 10% = 1800; tinyapi 3.
    expect(await balances()).toEqual({ weather: 10_800n, news: 1800n, tinyapi: 3n, ...free });
    // No free-pool usage in this cycle: its whole pool (nothing new, plus cycle 2's reserve) is carried.
    carried.push(carried[2]!);
    expect(await w.operator.balance(w.tokenId)).toBe(payerBefore + 1n - (2700n + 225n + 2n));
    expect([...(await transfersPerCycleAndProvider(w)).values()].every((n) => n === 1)).toBe(true);
  });

  step("spreads a cycle over several payer accounts", async () => {
    const second = await newFundedAccount(w.chain);
    const secondClient = await eercAccount(w.chain, w.manifest, w.prover, second);
    await fundPayer(w.chain, w.manifest, secondClient, second, 1_000_000n);
    secondPayer = secondClient;
    await commit({ weather: 1, news: 1, tinyapi: 1, wiki: 1 });
    await payPoolFee(w.chain, w.manifest, w.user, 100n);
    const result = await w.agent({ payers: [w.operator, secondClient], pastPayers: [] }).runCycle();
    if (result.status !== "paid") throw new Error(`expected a paid cycle, got ${result.status}`);
    // A new cycle, not the rest of cycle 3, with this step's fee in its pool.
    expect({ cycle: result.cycle, pool: result.poolMicro }).toEqual({ cycle: 4, pool: 100n });
    expect(new Set(result.transfers.map((t) => t.payer))).toEqual(new Set([w.operator.address, secondClient.address]));
    // wiki alone in the pool: 100 − 10 = 90, plus what cycle 3 carried, less cycle 4's reserve.
    const reserve = await reserveOf(4, 90n);
    free.wiki += 90n + carried[3]! - reserve;
    expect(await balances()).toEqual({ weather: 11_700n, news: 2025n, tinyapi: 4n, ...free });
    // Both payers' payouts count as paid from now on.
    const again = await w.agent({ payers: [w.operator, secondClient] }).runCycle();
    expect(again.status).toBe("nothing_owed");
  });

  step("reports a paid cycle, and the API each committed batch, by signed webhooks: counts, blocks and hashes, no amount", async () => {
    const committed = await commit({ tinyapi: 1 });
    const sender = webhooks();
    const result = await w.agent({ payers: [w.operator, secondPayer], everyProvider: false, notify: sender }).runCycle();
    if (result.status !== "paid") throw new Error(`expected a paid cycle, got ${result.status}`);
    expect(result.cycle).toBe(5);
    await sender.settled();
    const paid = await receiver.waitFor("cycle.paid", (e) => e.data.cycle === 5);
    expect(paid.id).toBe("cycle.paid:5");
    expect(paid.data).toEqual({
      cycle: 5,
      throughBlock: result.throughBlock.toString(),
      resumed: false,
      transfers: result.transfers.length,
      recoveries: 0,
      seconds: expect.any(Number),
    });
    const batch = await receiver.waitFor("batch.committed", (e) => e.data.batchId === committed.batchId);
    expect(batch.id).toBe(`batch.committed:${w.server.address.toLowerCase()}:${committed.batchId}`);
    expect(batch.data).toMatchObject({ server: w.server.address.toLowerCase(), blockNumber: committed.blockNumber.toString() });
    expect(Object.keys(batch.data).sort()).toEqual(["batchId", "blockNumber", "lines", "periodEnd", "periodStart", "server", "txHash"]);
    // Every delivery so far carries a valid signature.
    expect(receiver.verified()).toHaveLength(receiver.deliveries.length);
  });

  step("reports a cycle the payers cannot cover: cycle.failed and payer.underfunded, and nothing is sent", async () => {
    // 6000 × 1000 − 10% = 5,400,000 owed to weather: more than either payer ever held (5,000,000 and 1,000,000).
    await commit({ weather: 6000 });
    const nonceBefore = await w.chain.publicClient.getTransactionCount({ address: w.operator.address });
    const sender = webhooks();
    const run = w.agent({ payers: [w.operator, secondPayer], everyProvider: false, notify: sender }).runCycle();
    await expect(run).rejects.toBeInstanceOf(PayerUnderfundedError);
    await sender.settled();
    const failed = await receiver.waitFor("cycle.failed", (e) => e.data.cycle === 6);
    expect(failed.data).toEqual({ cycle: 6, code: "PAYER_UNDERFUNDED", message: new PayerUnderfundedError(0n, 0n).message });
    const underfunded = await receiver.waitFor("payer.underfunded", (e) => e.data.cycle === 6);
    expect(underfunded.data).toEqual({ cycle: 6, payers: 2, transfers: 1 });
    for (const d of receiver.deliveries) expect(d.body).not.toContain("5400000");
    expect(await w.chain.publicClient.getTransactionCount({ address: w.operator.address })).toBe(nonceBefore);
  });

  step(
    "a fee change recorded on chain applies from the next pricing period, in what the agent pays and what the auditor accepts",
    async () => {
      // Cover what the last step could not pay: 5,400,000 to weather at this month's 10%.
      await fundPayer(w.chain, w.manifest, w.operator, w.owner, 6_000_000n);
      const before = await balances();
      const registry = w.manifest.contracts.providerRegistry;
      const set = await setSettlement({
        publicClient: w.chain.publicClient,
        wallet: w.chain.walletFor(w.owner),
        registry,
        feeBps: 500,
        periodUnit: "month",
      });
      // By default from the next period under the unit in force: the first of next month (UTC).
      expect(set.effectiveFrom).toBe(nextPeriodStart((await w.chain.publicClient.getBlock()).timestamp, "month"));
      expect(set.startsAt).toBe(set.effectiveFrom);
      // This month's usage, committed after the change, still pays 10%: 2 × 1000 − 10% = 1800.
      await commit({ weather: 2 });
      // Into next month, the chain and the server's clock: 4 × 1000 − 5% = 3800, and a pool payment at 5%.
      const nextMonth = set.effectiveFrom + 3_600n;
      const testClient = createTestClient({ mode: "anvil", chain: w.chain.chain, transport: custom(w.chain.publicClient) });
      await testClient.setNextBlockTimestamp({ timestamp: nextMonth });
      await testClient.mine({ blocks: 1 });
      const records = callRecords("weather", 4, { at: Number(nextMonth) * 1000, priceMicro: 1000n });
      await commitRecords(w.chain, w.manifest, w.server, w.operator.address, ++sequence, records);
      await payPoolFee(w.chain, w.manifest, w.user, 1000n);

      const result = await w.agent({ payers: [w.operator, secondPayer] }).runCycle();
      if (result.status !== "paid") throw new Error(`expected a paid cycle, got ${result.status}`);
      expect({ cycle: result.cycle, pool: result.poolMicro }).toEqual({ cycle: 6, pool: 1000n });
      expect((await balances()).weather - before.weather).toBe(5_400_000n + 1800n + 3800n);

      // The auditor recomputes the same from the chain with no setting of its own; the pool's fee is next month's 5%.
      const audit = {
        indexer: new IndexerClient(w.indexer.url),
        auditorSk: await deriveKeyFromWallet(privateKeyToAccount(ANVIL_KEYS[9])),
        operatorPk: w.operator.publicKey,
      };
      // The indexer serves the history as recorded: the deployment's first record and this change.
      const recorded = await audit.indexer.all("settlementChanges", "feeBps periodUnit effectiveFrom", "blockNumber");
      expect(recorded).toEqual([
        { feeBps: 1000, periodUnit: "month", effectiveFrom: "0" },
        { feeBps: 500, periodUnit: "month", effectiveFrom: set.effectiveFrom.toString() },
      ]);
      const report = await reconcile(audit);
      expect(report.ok).toBe(true);
      expect(report.cycles.find((c) => c.cycle === 6)).toMatchObject({ poolMicro: 1000n, poolFeeMicro: 50n, ok: true });
      expect((await reconcile({ ...audit, asserted: { feeBps: 500, periodUnit: "month" } })).ok).toBe(true);
      // A value the auditor asserts that the chain does not record is refused by name, not settled under.
      const refused = reconcile({ ...audit, asserted: { feeBps: 1000 } });
      await expect(refused).rejects.toBeInstanceOf(SettlementMismatchError);
      await expect(refused).rejects.toThrow(/--fee-bps 1000 but the recorded fee is 500 bps .*drop the flag/);
    },
  );

  step(
    "never pays twice: facts that lack the payers' latest payouts, under an indexed head past them, stop the agent before it proves anything",
    async () => {
      await commit({ weather: 2 });
      const payers = [w.operator, secondPayer];
      const indexed = await readSettlementFacts(
        new IndexerClient(w.indexer.url),
        payers.map((p) => p.address),
      );
      const lastPaid = indexed.payouts.at(-1)!.blockNumber;
      // As Ponder answers while it indexes undone blocks again (or right after a crash recovery), its
      // /status already past them: the payers' transfers from the last paid block on are not there.
      class Lagging extends IndexerClient {
        override query<T>(query: string, variables?: Record<string, unknown>): Promise<T> {
          return super.query<T>(
            query.replaceAll("privateTransfers(where: { ", `privateTransfers(where: { blockNumber_lt: "${lastPaid}", `),
            variables,
          );
        }
      }
      const nonces = () => Promise.all(payers.map((p) => w.chain.publicClient.getTransactionCount({ address: p.address })));
      const before = await nonces();
      const logs: string[] = [];
      const run = w.agent({ payers, indexer: new Lagging(w.indexer.url), log: (l) => logs.push(l) }).runCycle();
      await expect(run).rejects.toBeInstanceOf(PayerSpendsUnindexedError);
      await expect(run).rejects.toThrow(/the indexed facts show \d+: the indexer does not hold every payout/);
      expect(logs.some((l) => l.startsWith("ALERT"))).toBe(true);
      expect(await nonces()).toEqual(before);
    },
  );

  step("never pays twice: a payer transfer the ledger cannot account for stops the agent before it proves anything", async () => {
    await commit({ weather: 2 });
    // The payer sends an ordinary transfer (fresh random PCT nonces, no payout tag) to a provider.
    const stray = await w.operator.transfer({ to: w.payoutAccounts.get("weather")!.account.address, amount: 5n, tokenId: w.tokenId });
    await new IndexerClient(w.indexer.url).waitForBlock(stray.blockNumber);
    const nonceBefore = await w.chain.publicClient.getTransactionCount({ address: w.operator.address });
    const logs: string[] = [];
    const run = w.agent({ log: (l) => logs.push(l) }).runCycle();
    await expect(run).rejects.toBeInstanceOf(UnattributedPayerTransferError);
    await expect(run).rejects.toThrow(stray.transactionHash);
    expect(logs.some((l) => l.startsWith("ALERT") && l.includes(stray.transactionHash))).toBe(true);
    expect(await w.chain.publicClient.getTransactionCount({ address: w.operator.address })).toBe(nonceBefore);
  });
});
