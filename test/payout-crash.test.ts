import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { callRecords, commitRecords } from "../src/local/marketplace.js";
import { FAULT_STEPS } from "../src/payout/pipeline.js";
import { type PayoutWorld, payoutWorld, spawnAgent, transfersPerCycleAndProvider } from "./payout-fixtures.js";

// The agent is a real process, killed with SIGKILL at each step of a cycle's second transfer and
// started again: every provider ends up paid exactly what it earned, never twice.

let w: PayoutWorld;
let sequence = 0;
let rounds = 0;

const startAgent = (env: Record<string, string> = {}) => spawnAgent(w, ["--once"], { PLATFORM_FEE_BPS: "1000", ...env });

const rpc = (method: string, params: unknown[] = []) => w.chain.publicClient.request({ method: method as never, params: params as never });

async function paidState() {
  const perCycleProvider = await transfersPerCycleAndProvider(w);
  const balances: Record<string, bigint> = {};
  for (const ns of ["weather", "news", "tinyapi"]) balances[ns] = await w.payoutAccounts.get(ns)!.client.balance(w.tokenId);
  return { transfersPerCycleAndProvider: [...perCycleProvider.values()], balances };
}

/** One round of usage: weather 900, news 225 (one call past its 5 free), tinyapi 1 micro-USDC net. */
async function commitRound() {
  const now = Date.now();
  const records = [
    ...callRecords("weather", 1, { at: now, priceMicro: 1000n }),
    ...callRecords("news", rounds === 0 ? 6 : 1, { at: now }),
    ...callRecords("tinyapi", 1, { at: now, priceMicro: 1n }),
  ];
  rounds += 1;
  await commitRecords(w.chain, w.manifest, w.server, w.operator.address, ++sequence, records);
}

beforeAll(async () => {
  w = await payoutWorld({ fundMicro: 1_000_000n });
});

afterAll(async () => {
  await rpc("evm_setAutomine", [true]).catch(() => {});
  await w?.close();
});

describe("payout agent crash safety (SIGKILL and restart)", () => {
  for (const step of FAULT_STEPS) {
    it(`killed at ${step} of the second transfer, then restarted: paid exactly once`, async () => {
      await commitRound();
      if (step === "after_send") await rpc("evm_setAutomine", [false]);
      try {
        await crashAndRestart(step);
      } finally {
        await rpc("evm_setAutomine", [true]);
      }
      const state = await paidState();
      expect(state.balances).toEqual({ weather: 900n * BigInt(rounds), news: 225n * BigInt(rounds), tinyapi: BigInt(rounds) });
      expect(state.transfersPerCycleAndProvider.every((n) => n === 1)).toBe(true);

      // And a third run finds nothing owed, reading on from the ledger checkpoint the run before it saved.
      const idle = await startAgent().done;
      expect(idle.code, idle.output).toBe(0);
      expect(idle.output).toMatch(/nothing owed/);
      // Its start did not prove the transfer key again: the run before it recorded that check.
      expect(idle.output).toMatch(
        /proving key transfer: verified on 0x[0-9a-fA-F]{40} at .* \(recorded in .*; same files, same verifier code\)/,
      );
      expect(idle.output).toMatch(/payout ledger: read on from the checkpoint at block \d+ \(.*; cycle \d+ settled/);
    });
  }

  it("a changed ledger checkpoint is not used: the agent reads from genesis, finds nothing owed and saves a new one", async () => {
    const file = join(w.dir, "payout-checkpoint.bin");
    const bytes = readFileSync(file);
    bytes[bytes.length - 1]! ^= 1;
    writeFileSync(file, bytes);
    const run = await startAgent().done;
    expect(run.code, run.output).toBe(0);
    expect(run.output).toContain("is not used, reading from genesis: it was not sealed with this operator key, or it was changed");
    expect(run.output).toMatch(/nothing owed/);
    const next = await startAgent().done;
    expect(next.output).toMatch(/payout ledger: read on from the checkpoint at block \d+/);
    expect(next.output).toMatch(/nothing owed/);
  });

  it("refuses to start with a fee or a pricing period the ProviderRegistry does not record, naming the recorded value", async () => {
    const fee = await startAgent({ PLATFORM_FEE_BPS: "250" }).done;
    // A bad setting exits 2.
    expect(fee.code, fee.output).toBe(2);
    expect(fee.output).toContain("PLATFORM_FEE_BPS is 250 but the ProviderRegistry records 1000");
    const period = await startAgent({ PRICING_PERIOD: "day" }).done;
    expect(period.code, period.output).toBe(2);
    expect(period.output).toContain("PRICING_PERIOD is day but the ProviderRegistry records month");
  });
});

async function crashAndRestart(step: (typeof FAULT_STEPS)[number]) {
  const crashed = await startAgent({ PAYOUT_FAULT: `${step}@2` }).done;
  expect(crashed.signal, crashed.output).toBe("SIGKILL");

  const restart = startAgent();
  if (step === "after_send") {
    // The killed agent's transfer is still in the mempool: the new one must wait for it, not pay again.
    const latest = await w.chain.publicClient.getTransactionCount({ address: w.operator.address, blockTag: "latest" });
    const pending = await w.chain.publicClient.getTransactionCount({ address: w.operator.address, blockTag: "pending" });
    expect(pending).toBeGreaterThan(latest);
    const deadline = Date.now() + 60_000;
    while (!/pending transaction/.test(restart.output()) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    await rpc("evm_mine");
    await rpc("evm_setAutomine", [true]);
    expect(restart.output()).toMatch(new RegExp(`waiting for ${pending - latest} pending transaction`));
  }
  const finished = await restart.done;
  expect(finished.code, finished.output).toBe(0);
  // Either it finishes the interrupted cycle, or (when every transfer was already mined) finds nothing owed.
  expect(finished.output).toMatch(/\(resumed\)|nothing owed/);
}
