import { existsSync, readFileSync } from "node:fs";
import { loadavg } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import type { PreparedTransfer } from "../src/eerc/client.js";
import { IndexerClient } from "../src/indexer-client/client.js";
import { callRecords, commitRecords } from "../src/local/marketplace.js";
import { localWorld } from "../src/local/world.js";
import { perCall } from "../src/usage/pricing.js";
import { providerIdOf } from "../src/usage/registry.js";
import { median, RESULTS_DIR, round, writeResults } from "./report.js";

export type PayoutBenchOptions = {
  /** Providers owed in each cycle: one transfer each. */
  providers: number;
  /** Transfer proofs timed back to back for the proving rate (the providers' count when absent). */
  proofs?: number;
  /** Pipeline depths tried after the naive cycle; the best is reported as pipelined. */
  depths?: readonly number[];
  log: (line: string) => void;
};

export type PayoutCycleRun = {
  depth: number;
  transfers: number;
  payMs: number;
  planMs: number;
  payoutsPerMinute: number;
  recoveries: number;
  proveMedianMs: number;
  loadAverage1mAtStart: number;
};

export type PayoutBenchResult = {
  providers: number;
  blockTimeS: number;
  rawProving: { proofs: number; medianMs: number; seconds: number; transfersPerMinute: number; loadAverage1mAtStart: number };
  naive: PayoutCycleRun;
  pipelinedRuns: PayoutCycleRun[];
  pipelined: PayoutCycleRun;
  /** Pipelined payouts/min over the raw proving rate. */
  ratioToProving: number;
  speedupOverNaive: number;
  target: { ratioToProving: number; met: boolean };
  runSeconds: number;
};

const BLOCK_TIME_S = 2;
const PRICE_MICRO = 1000n;
const CALLS_PER_PROVIDER = 3;
const FEE_BPS = 1000;
/** What each provider is owed per cycle: the calls at the price, less the platform fee. */
const OWED_PER_CYCLE = (BigInt(CALLS_PER_PROVIDER) * PRICE_MICRO * BigInt(10_000 - FEE_BPS)) / 10_000n;
const TARGET_RATIO = 0.8;

const now = () => performance.now();
const perMinute = (count: number, ms: number) => round(count / (ms / 60_000), 1);
// Other processes on the machine skew every figure here: the load is recorded with each phase.
const load = () => round(loadavg()[0]!, 2);

/**
 * Payout throughput, written as `throughput` into `bench/results/payouts.json`. On anvil with 2 s
 * blocks, with the indexer running, one payer (the operator) pays `providers` per-call providers
 * one private transfer each per cycle. Same-run baseline: transfer proofs chained from the
 * predicted balance back to back, with nothing sent, the ceiling for one payer. Then one cycle
 * with the naive loop (depth 1: prove, send, wait for the receipt) and one per pipeline depth,
 * each after a new usage batch so every provider is owed again. Payouts/min counts the paying
 * phase of a cycle (`ms.pay`), not the indexer reads that plan it.
 */
export async function benchPayouts({
  providers,
  proofs = providers,
  depths = [3, 4],
  log,
}: PayoutBenchOptions): Promise<PayoutBenchResult> {
  const started = now();
  const cycles = 1 + depths.length;
  const fundMicro = OWED_PER_CYCLE * BigInt(providers * cycles) + 1_000_000n;
  const pricing = perCall(PRICE_MICRO);
  // Setup mines each transaction at once; every measurement runs on 2 s blocks.
  const world = await localWorld({
    providers: Array.from({ length: providers }, (_, i) => ({ namespace: `bench${i}`, pricing })),
    fundMicro,
    blockTime: BLOCK_TIME_S,
    indexer: true,
    settlement: { feeBps: FEE_BPS, periodUnit: "month" },
  });
  try {
    const { chain, manifest, server, operator, tokenId } = world;
    const indexer = world.indexer!;
    const payees = [...world.payoutAccounts].map(([namespace, p]) => ({ namespace, ...p }));
    log(`payouts: deployed, ${providers} providers with registered payout accounts, payer funded (${round((now() - started) / 1000)} s)`);
    // The baseline is timed with the indexer idle at the head, as it is between cycles.
    await new IndexerClient(indexer.url).waitForBlock(await chain.publicClient.getBlockNumber());
    log(`payouts: chain on ${BLOCK_TIME_S} s blocks, indexer at the head`);

    // Raw proving rate: one uncounted proof loads the transfer circuit.
    let from = (await operator.prepareTransfer({ to: payees[0]!.account.address, amount: 1n, tokenId })).nextBalance;
    const proveMs: number[] = [];
    const proveLoad = load();
    const tProve = now();
    for (let i = 0; i < proofs; i++) {
      const t = now();
      const prepared: PreparedTransfer = await operator.prepareTransfer({
        to: payees[i % providers]!.account.address,
        amount: 1n,
        tokenId,
        from,
      });
      proveMs.push(now() - t);
      from = prepared.nextBalance;
    }
    const proveSeconds = (now() - tProve) / 1000;
    const rawProving = {
      proofs,
      medianMs: round(median(proveMs)),
      seconds: round(proveSeconds, 2),
      transfersPerMinute: perMinute(proofs, proveSeconds * 1000),
      loadAverage1mAtStart: proveLoad,
    };
    log(
      `payouts: raw proving ${proofs} transfers back to back in ${rawProving.seconds} s = ${rawProving.transfersPerMinute}/min (median ${rawProving.medianMs} ms)`,
    );

    const agentFor = (depth: number) => world.agent({ depth, waitMs: 120_000 });
    let sequence = 0;
    const runCycle = async (depth: number): Promise<PayoutCycleRun> => {
      const at = Date.now();
      const records = payees.flatMap((p) => callRecords(p.namespace, CALLS_PER_PROVIDER, { at, priceMicro: PRICE_MICRO }));
      await commitRecords(chain, manifest, server, operator.address, ++sequence, records);
      const loadAverage1mAtStart = load();
      const result = await agentFor(depth).runCycle();
      if (result.status !== "paid") throw new Error(`depth ${depth}: expected a paid cycle, got ${result.status}`);
      const paidTo = new Set(result.transfers.map((t) => t.providerId));
      if (
        result.transfers.length !== providers ||
        paidTo.size !== providers ||
        payees.some((p) => !paidTo.has(providerIdOf(p.namespace)))
      ) {
        throw new Error(
          `depth ${depth}: ${result.transfers.length} transfers to ${paidTo.size} providers, expected one to each of ${providers}`,
        );
      }
      const wrong = result.transfers.find((t) => t.amount !== OWED_PER_CYCLE);
      if (wrong) throw new Error(`depth ${depth}: ${wrong.providerId} paid ${wrong.amount}, expected ${OWED_PER_CYCLE}`);
      // What the providers can decrypt, not only what the agent reports.
      const expected = OWED_PER_CYCLE * BigInt(sequence);
      for (const p of payees) {
        const balance = await p.client.balance(tokenId);
        if (balance !== expected)
          throw new Error(`depth ${depth}: ${p.namespace} holds ${balance}, expected ${expected} after ${sequence} cycle(s)`);
      }
      const run: PayoutCycleRun = {
        depth,
        transfers: result.transfers.length,
        payMs: Math.round(result.ms.pay),
        planMs: Math.round(result.ms.plan),
        payoutsPerMinute: perMinute(result.transfers.length, result.ms.pay),
        recoveries: result.recoveries,
        proveMedianMs: round(median(result.transfers.map((t) => t.proveMs))),
        loadAverage1mAtStart,
      };
      log(
        `payouts: depth ${depth}: ${run.transfers} transfers paid in ${round(run.payMs / 1000, 1)} s = ${run.payoutsPerMinute}/min ` +
          `(planning ${run.planMs} ms, prove median ${run.proveMedianMs} ms, ${run.recoveries} recoveries), every balance checked`,
      );
      return run;
    };
    const naive = await runCycle(1);
    const pipelinedRuns: PayoutCycleRun[] = [];
    for (const depth of depths) pipelinedRuns.push(await runCycle(depth));
    const pipelined = pipelinedRuns.reduce((a, b) => (b.payoutsPerMinute > a.payoutsPerMinute ? b : a));
    const payerLeft = await operator.balance(tokenId);
    if (payerLeft !== fundMicro - OWED_PER_CYCLE * BigInt(providers * cycles))
      throw new Error(`payer holds ${payerLeft}, expected ${fundMicro - OWED_PER_CYCLE * BigInt(providers * cycles)}`);

    const ratioToProving = round(pipelined.payoutsPerMinute / rawProving.transfersPerMinute, 2);
    const result: PayoutBenchResult = {
      providers,
      blockTimeS: BLOCK_TIME_S,
      rawProving,
      naive,
      pipelinedRuns,
      pipelined,
      ratioToProving,
      speedupOverNaive: round(pipelined.payoutsPerMinute / naive.payoutsPerMinute, 2),
      target: { ratioToProving: TARGET_RATIO, met: ratioToProving >= TARGET_RATIO },
      runSeconds: round((now() - started) / 1000),
    };
    const rows: [string, string, string][] = [
      ["raw proving", `${rawProving.transfersPerMinute}`, "1.00"],
      ...[naive, ...pipelinedRuns].map((r): [string, string, string] => [
        r.depth === 1 ? "naive (depth 1)" : `pipelined (depth ${r.depth})`,
        `${r.payoutsPerMinute}`,
        round(r.payoutsPerMinute / rawProving.transfersPerMinute, 2).toFixed(2),
      ]),
    ];
    log(`  ${"".padEnd(22)} ${"per min".padStart(8)}  ${"× proving".padStart(9)}`);
    for (const [name, rate, ratio] of rows) log(`  ${name.padEnd(22)} ${rate.padStart(8)}  ${ratio.padStart(9)}`);
    log(
      `payouts: target pipelined ≥ ${TARGET_RATIO} × raw proving rate: ${result.target.met ? "PASS" : "MISS"} (${ratioToProving.toFixed(2)}, depth ${pipelined.depth}); ` +
        `${result.speedupOverNaive}× the naive loop; ${result.runSeconds} s in all`,
    );
    const file = join(RESULTS_DIR, "payouts.json");
    const previous = existsSync(file) ? (JSON.parse(readFileSync(file, "utf8")) as Record<string, unknown>) : {};
    const { machine: _machine, measuredAt: _measuredAt, ...kept } = previous;
    log(`payouts: results in ${writeResults("payouts.json", { ...kept, throughput: result })}`);
    return result;
  } finally {
    await world.close();
  }
}
