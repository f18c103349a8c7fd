import { existsSync, readFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { join } from "node:path";
import { IndexerClient } from "../src/indexer-client/client.js";
import { creditAttacker } from "../src/local/attacker.js";
import { callRecords, commitRecords } from "../src/local/marketplace.js";
import { localWorld } from "../src/local/world.js";
import type { CycleResult } from "../src/payout/agent.js";
import { perCall } from "../src/usage/pricing.js";
import { median, RESULTS_DIR, round, writeResults } from "./report.js";

export type GriefingBenchOptions = {
  /** Providers owed in each cycle: one transfer each. */
  providers: number;
  /** Pipeline depth of the agent (its default is 3). */
  depth?: number;
  log: (line: string) => void;
};

type CycleRun = {
  transfers: number;
  payMs: number;
  payoutsPerMin: number;
  recoveries: number;
  reverted: number;
  deferred: number;
  proveMedianMs: number;
  loadAverage1mAtStart: number;
};

const BLOCK_TIME_S = 2;
const PRICE_MICRO = 1000n;
const CALLS = 2;
/** What each provider is owed per cycle: the calls at the price, less the 10% fee. */
const OWED = (BigInt(CALLS) * PRICE_MICRO * 9000n) / 10_000n;

const perMinute = (count: number, ms: number) => round(count / (ms / 60_000), 1);

/**
 * Idle and attacked cycles alternate as A B B A, so that a load that rises or falls steadily over
 * the run (the machine is shared) weighs on both sides alike.
 */
const ORDER = [false, true, true, false] as const;

/**
 * Payout griefing by credits, written as `griefing` into `bench/results/security.json` (the other
 * keys are kept). On anvil with 2 s blocks and the indexer, the operator pays `providers` per-call
 * providers one private transfer each per cycle at pipeline depth `depth`, in four cycles: idle
 * (the same-run baseline), attacked, attacked, idle. Under attack, after every payout transfer is
 * broadcast, an attacker broadcasts a zero-value private transfer to the payer with a higher
 * priority fee, so it is mined ahead of the transfer (its credits are proved before the cycle, so
 * the attack keeps pace and its proving does not compete with the payer's). Payouts/min counts the
 * paying phase of the cycles (`ms.pay`), summed per side; every cycle must pay every provider
 * exactly what it is owed. Proof times are recorded per cycle: on a shared machine they show how
 * much of a difference is load rather than the attack.
 */
export async function benchGriefing({ providers, depth = 3, log }: GriefingBenchOptions) {
  const started = performance.now();
  const namespaces = Array.from({ length: providers }, (_, i) => `grief${i}`);
  const world = await localWorld({
    providers: namespaces.map((namespace) => ({ namespace, pricing: perCall(PRICE_MICRO) })),
    fundMicro: OWED * BigInt(providers * ORDER.length) + 1_000_000n,
    blockTime: BLOCK_TIME_S,
    indexer: true,
    settlement: { feeBps: 1000, periodUnit: "month" },
  });
  try {
    const { chain, manifest, server, operator, tokenId } = world;
    const attacker = await creditAttacker({ chain, manifest, prover: world.prover, target: operator.address, tokenId });
    await new IndexerClient(world.indexer!.url).waitForBlock(await chain.publicClient.getBlockNumber());
    log(
      `griefing: ${providers} providers, payer funded, attacker registered and funded (${round((performance.now() - started) / 1000)} s)`,
    );

    let sequence = 0;
    const cycle = async (attacked: boolean): Promise<CycleRun> => {
      const at = Date.now();
      await commitRecords(
        chain,
        manifest,
        server,
        operator.address,
        ++sequence,
        namespaces.flatMap((ns) => callRecords(ns, CALLS, { at, priceMicro: PRICE_MICRO })),
      );
      const loadAverage1mAtStart = round(loadavg()[0]!, 2);
      const result: CycleResult = await world
        .agent({ depth, waitMs: 120_000, ...(attacked && { onSent: async () => void (await attacker.credit()) }) })
        .runCycle();
      if (result.status !== "paid") throw new Error(`expected a paid cycle, got ${result.status}`);
      if (result.transfers.length !== providers || new Set(result.transfers.map((t) => t.providerId)).size !== providers)
        throw new Error(`${result.transfers.length} transfers, expected one to each of ${providers} providers`);
      for (const [ns, p] of world.payoutAccounts) {
        const balance = await p.client.balance(tokenId);
        if (balance !== OWED * BigInt(sequence)) throw new Error(`${ns} holds ${balance}, expected ${OWED * BigInt(sequence)}`);
      }
      return {
        transfers: result.transfers.length,
        payMs: Math.round(result.ms.pay),
        payoutsPerMin: perMinute(result.transfers.length, result.ms.pay),
        recoveries: result.recoveries,
        reverted: result.reverted,
        deferred: result.deferred.length,
        proveMedianMs: round(median(result.transfers.map((t) => t.proveMs))),
        loadAverage1mAtStart,
      };
    };
    const idle: CycleRun[] = [];
    const attacked: CycleRun[] = [];
    let credits = 0;
    for (const underAttack of ORDER) {
      if (!underAttack) {
        const run = await cycle(false);
        idle.push(run);
        log(
          `griefing: idle: ${run.transfers} payouts in ${round(run.payMs / 1000)} s = ${run.payoutsPerMin}/min (prove median ${run.proveMedianMs} ms)`,
        );
        continue;
      }
      // The attacker's credits are proved before the cycle (one per transfer broadcast, reverted
      // ones and their re-proofs included), so its proving does not share the payer's cores.
      await attacker.prepare(providers + 2 * depth);
      const before = attacker.sent;
      const run = await cycle(true);
      credits += attacker.sent - before;
      attacked.push(run);
      log(
        `griefing: under attack (${attacker.sent - before} credits, one ahead of every transfer): ${run.transfers} payouts in ` +
          `${round(run.payMs / 1000)} s = ${run.payoutsPerMin}/min (prove median ${run.proveMedianMs} ms); ` +
          `${run.reverted} reverted, ${run.recoveries} recovery(ies)`,
      );
    }
    const rate = (runs: CycleRun[]) =>
      perMinute(
        runs.reduce((s, r) => s + r.transfers, 0),
        runs.reduce((s, r) => s + r.payMs, 0),
      );
    /** Pay time per transfer over the cycle's median proof time: a payout's cost in proofs, whatever the load. */
    const proofsPerPayout = (runs: CycleRun[]) =>
      round(runs.reduce((s, r) => s + r.payMs / r.transfers / r.proveMedianMs, 0) / runs.length, 2);
    const idlePayoutsPerMin = rate(idle);
    const attackedPayoutsPerMin = rate(attacked);
    const griefing = {
      ratioToIdle: round(attackedPayoutsPerMin / idlePayoutsPerMin, 2),
      idlePayoutsPerMin,
      attackedPayoutsPerMin,
      idleProofTimesPerPayout: proofsPerPayout(idle),
      attackedProofTimesPerPayout: proofsPerPayout(attacked),
      providers,
      depth,
      blockTimeS: BLOCK_TIME_S,
      order: ORDER.map((a) => (a ? "attacked" : "idle")),
      attack: "a zero-value private transfer to the payer, mined ahead of every payout transfer (higher priority fee)",
      credits,
      recoveries: attacked.reduce((s, r) => s + r.recoveries, 0),
      reverted: attacked.reduce((s, r) => s + r.reverted, 0),
      idle,
      attacked,
      runSeconds: round((performance.now() - started) / 1000),
    };
    log(
      `griefing: ${attackedPayoutsPerMin}/min attacked, ${idlePayoutsPerMin}/min idle (${griefing.ratioToIdle}×); pay time per payout ` +
        `${griefing.attackedProofTimesPerPayout}× a proof attacked, ${griefing.idleProofTimesPerPayout}× idle; every provider paid once every cycle`,
    );
    const file = join(RESULTS_DIR, "security.json");
    const previous = existsSync(file) ? (JSON.parse(readFileSync(file, "utf8")) as Record<string, unknown>) : {};
    const { machine: _machine, measuredAt: _measuredAt, griefing: _griefing, cores: _cores, node: _node, ...kept } = previous;
    log(`griefing: results in ${writeResults("security.json", { ...kept, griefing, cores: cpus().length, node: process.version })}`);
    return griefing;
  } finally {
    await world.close();
  }
}
