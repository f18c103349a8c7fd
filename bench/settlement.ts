import { loadavg } from "node:os";
import { performance } from "node:perf_hooks";
import type { Address, Hex } from "viem";
import { NO_CAP, type ServerBindingFact } from "../src/payout/admission.js";
import type { PoolFeeFact, ProviderChangeFact } from "../src/payout/facts.js";
import { type PaidPayout, type SettlementFactsDelta, SettlementProjection } from "../src/payout/projection.js";
import { type DecryptedBatch, type LedgerState, ledgerState, type PoolSecret } from "../src/payout/settlement.js";
import type { Payout } from "../src/payout/tag.js";
import { fixedSchedule } from "../src/revenue/schedule.js";
import type { ProviderId } from "../src/revenue/types.js";
import { freePool, freeQuotaThenPerCall, perCall } from "../src/usage/pricing.js";
import { providerIdOf } from "../src/usage/registry.js";
import { prng } from "./prng.js";
import { median, round, writeResults } from "./report.js";

export type SettlementBenchOptions = {
  /** Batches of the full history; a tenth of it is measured too. */
  batches: number;
  /** Of them, the batches after the last paid cycle's boundary: what planning the next cycle settles (the same in both). */
  tailBatches: number;
  providers: number;
  cycles: number;
  linesPerBatch?: number;
  runs?: number;
  log: (line: string) => void;
};

type Sized = {
  batches: number;
  lines: number;
  cycles: number;
  /** Batches after the last boundary: what the next cycle settles. */
  tailBatches: number;
  /** Folding the facts of one cycle into the projection (read, then settled at its boundary). */
  foldCycleMs: number;
  /** Planning the next cycle: the projection's `ledgerState` on top of its checkpoint. */
  projectionMs: number;
  /** The same answer from genesis (`ledgerState` over every fact): the baseline. */
  fromScratchMs: number;
  /** Building the projection from the whole history in one piece (a restart). */
  rebuildMs: number;
};

const SECRET = 0x5eedn;
const poolSecret: PoolSecret = () => SECRET;
const ACCOUNT = "0x00000000000000000000000000000000000000aa" as Address;
const SERVERS = Array.from({ length: 8 }, (_, i) => `0x${(0xb0 + i).toString(16).padStart(40, "0")}` as Address);
const BLOCKS_PER_CYCLE = 100n;

/**
 * A synthetic decrypted history: `providers` providers (a third per call, a third tiered with a
 * free quota, a third in the free pool), each bound to every server (some with caps), batches of
 * `linesPerBatch` lines spread evenly over `cycles` cycles (and `tailBatches` of them over the
 * blocks after the last) and six months of monthly periods, a
 * pool payment every few blocks, and every cycle paid exactly what it owed (as the agent pays).
 */
function history(args: { batches: number; tailBatches: number; providers: number; cycles: number; linesPerBatch: number }) {
  const below = prng(7);
  const ids = Array.from({ length: args.providers }, (_, i) => providerIdOf(`settle${i}`) as ProviderId);
  const providerChanges: ProviderChangeFact[] = ids.map((providerId, i) => ({
    providerId,
    namespace: `settle${i}`,
    payoutAccount: ACCOUNT,
    active: true,
    pricing:
      i % 3 === 0
        ? perCall(BigInt(1 + below(500)))
        : i % 3 === 1
          ? freeQuotaThenPerCall(below(2000), BigInt(1 + below(200)))
          : freePool(1 + below(5)),
    blockNumber: 1n,
    logIndex: i,
  }));
  const serverBindings: ServerBindingFact[] = SERVERS.flatMap((server, s) =>
    ids.map((providerId, i) => ({
      server,
      providerId,
      bound: true,
      maxCallsPerBatch: (i + s) % 10 === 0 ? 200n : NO_CAP,
      maxCallsPerPeriod: (i + s) % 10 === 1 ? 5_000n : NO_CAP,
      blockNumber: 2n,
      logIndex: s * ids.length + i,
    })),
  );
  const lastBlock = BigInt(args.cycles + 1) * BLOCKS_PER_CYCLE;
  const start = Date.UTC(2026, 0, 1);
  const span = 182 * 86_400_000;
  const batches: DecryptedBatch[] = [];
  const poolFees: PoolFeeFact[] = [];
  const lastBoundary = lastBlock - BLOCKS_PER_CYCLE;
  const settled = args.batches - args.tailBatches;
  for (let n = 0; n < args.batches; n++) {
    // Evenly over the paid cycles' blocks, then the tail evenly over the blocks after the last boundary.
    const blockNumber =
      n < settled
        ? 3n + (BigInt(n) * (lastBoundary - 3n)) / BigInt(settled)
        : lastBoundary + 1n + (BigInt(n - settled) * (BLOCKS_PER_CYCLE - 1n)) / BigInt(args.tailBatches);
    const periodStart = BigInt(start + Math.floor((span * n) / args.batches));
    const lines = Array.from({ length: args.linesPerBatch }, () => {
      const billableCalls = BigInt(below(100));
      return {
        providerId: ids[below(ids.length)]!,
        calls: billableCalls,
        billableCalls,
        amountMicro: billableCalls * 10n,
        revenueMicro: billableCalls * 11n,
      };
    });
    batches.push({
      server: SERVERS[below(SERVERS.length)]!,
      batchId: `0x${n.toString(16).padStart(64, "0")}` as Hex,
      periodStart,
      encryptedLines: `0x${"3".padStart(64, "0")}` as Hex,
      blockNumber,
      logIndex: n,
      lines,
    });
  }
  for (let block = 3n; block <= lastBlock; block += 7n) {
    poolFees.push({
      amount: BigInt(1 + below(1_000_000)),
      timestamp: BigInt(start / 1000) + block * 180n,
      blockNumber: block,
      logIndex: 1_000_000,
    });
  }
  return { ids, providerChanges, serverBindings, batches, poolFees, lastBlock };
}

type History = ReturnType<typeof history> & { payouts: (Payout & PaidPayout)[] };

function delta(h: History, after: bigint, through: bigint): SettlementFactsDelta {
  const inBlocks = <T extends { blockNumber: bigint }>(xs: readonly T[]) =>
    xs.filter((x) => x.blockNumber > after && x.blockNumber <= through);
  return {
    throughBlock: through,
    settlementRecords: after < 0n ? [{ feeBps: 1000, periodUnit: "month", effectiveFrom: 0n, blockNumber: 0n, logIndex: 0 }] : [],
    providerChanges: inBlocks(h.providerChanges),
    serverBindings: inBlocks(h.serverBindings),
    auditorChanges: [],
    batches: inBlocks(h.batches),
    poolFees: inBlocks(h.poolFees),
    payouts: inBlocks(h.payouts),
  };
}

/** Pays every cycle what it owes, one payout per provider owed, in the block after its boundary (the projection plans them). */
function payEveryCycle(h: History, cycles: number): void {
  const projection = new SettlementProjection({ poolSecret: () => poolSecret });
  let applied = -1n;
  let tx = 0;
  for (let cycle = 1; cycle <= cycles; cycle++) {
    const boundary = BigInt(cycle) * BLOCKS_PER_CYCLE;
    projection.apply(delta(h, applied, boundary));
    applied = boundary;
    const due = projection.ledgerState(boundary).next!.due;
    let logIndex = 0;
    for (const [providerId, amountMicro] of due) {
      h.payouts.push({
        txHash: `0x${(++tx).toString(16).padStart(64, "0")}` as Hex,
        from: ACCOUNT,
        to: ACCOUNT,
        receiverPCT: null,
        senderVTT: null,
        auditorPCT: [],
        blockNumber: boundary + 1n,
        logIndex: logIndex++,
        cycle,
        throughBlock: boundary,
        providerId,
        amountMicro,
      });
    }
  }
}

const fromScratch = (h: History, amounts: ReadonlyMap<Hex, bigint>): LedgerState =>
  ledgerState({
    batches: h.batches,
    serverBindings: h.serverBindings,
    providerChanges: h.providerChanges,
    poolFees: h.poolFees,
    payouts: h.payouts,
    amountOf: (p) => amounts.get(p.txHash)!,
    schedule: fixedSchedule({ feeBps: 1000, periodUnit: "month" }),
    poolSecret,
    through: h.lastBlock,
  });

function measure(args: Required<Omit<SettlementBenchOptions, "log">>, log: (line: string) => void): Sized {
  const gc = (globalThis as { gc?: () => void }).gc;
  const time = <T>(f: () => T): [number, T] => {
    gc?.();
    const t0 = performance.now();
    const out = f();
    return [performance.now() - t0, out];
  };
  const h: History = { ...history({ ...args, linesPerBatch: args.linesPerBatch }), payouts: [] };
  payEveryCycle(h, args.cycles);
  const lastBoundary = BigInt(args.cycles) * BLOCKS_PER_CYCLE;

  // The projection the agent keeps: facts applied cycle by cycle, each cycle folded once paid.
  const projection = new SettlementProjection({ poolSecret: () => poolSecret });
  const foldMs: number[] = [];
  let applied = -1n;
  for (let cycle = 1; cycle <= args.cycles; cycle++) {
    const through = BigInt(cycle) * BLOCKS_PER_CYCLE + 1n;
    const piece = delta(h, applied, through);
    foldMs.push(time(() => projection.apply(piece))[0]);
    applied = through;
  }
  projection.apply(delta(h, applied, h.lastBlock));
  if (projection.checkpoint?.throughBlock !== lastBoundary || projection.tailBatches !== args.tailBatches)
    throw new Error("the projection did not fold every paid cycle");

  const amounts = new Map(h.payouts.map((p) => [p.txHash, p.amountMicro]));
  const projectionMs: number[] = [];
  const scratchMs: number[] = [];
  const [, expected] = time(() => fromScratch(h, amounts));
  for (let r = 0; r < args.runs; r++) {
    const [ms, state] = time(() => projection.ledgerState(h.lastBlock));
    projectionMs.push(ms);
    if (r === 0) {
      const same = JSON.stringify(state, (_, v) => (typeof v === "bigint" ? v.toString() : v instanceof Map ? [...v] : v));
      const want = JSON.stringify(expected, (_, v) => (typeof v === "bigint" ? v.toString() : v instanceof Map ? [...v] : v));
      if (same !== want) throw new Error("the projection and the settlement from genesis disagree");
    }
    scratchMs.push(time(() => fromScratch(h, amounts))[0]);
  }
  const [rebuildMs] = time(() => {
    const rebuilt = new SettlementProjection({ poolSecret: () => poolSecret });
    rebuilt.apply(delta(h, -1n, h.lastBlock));
    return rebuilt.ledgerState(h.lastBlock);
  });
  const sized: Sized = {
    batches: args.batches,
    lines: args.batches * args.linesPerBatch,
    cycles: args.cycles,
    tailBatches: projection.tailBatches,
    foldCycleMs: round(median(foldMs)),
    projectionMs: round(median(projectionMs), 2),
    fromScratchMs: round(median(scratchMs)),
    rebuildMs: round(rebuildMs),
  };
  log(
    `settlement: ${sized.batches} batches (${sized.lines} lines), ${args.providers} providers, ${sized.cycles} cycles paid, ` +
      `${sized.tailBatches} batches since the last boundary: next cycle planned in ${sized.projectionMs} ms with the projection, ` +
      `${sized.fromScratchMs} ms from genesis (${round(sized.fromScratchMs / sized.projectionMs)}x); ` +
      `folding a cycle ${sized.foldCycleMs} ms, rebuilding from the whole history ${sized.rebuildMs} ms`,
  );
  return sized;
}

/**
 * Planning the next payout cycle from a synthetic decrypted history, with the settlement
 * projection (checkpoint at the last paid cycle, the tail settled on top) against the same-run
 * baseline of `ledgerState` from genesis, on the full history and on a tenth of it. The two
 * answers are checked equal first. In memory: no chain, no indexer, no decryption.
 */
export async function benchSettlement(options: SettlementBenchOptions): Promise<{ tenth: Sized; full: Sized }> {
  const args = { linesPerBatch: 5, runs: 3, ...options };
  const { log, ...rest } = args;
  if (args.tailBatches < 1 || args.batches / 10 <= args.tailBatches)
    throw new RangeError("the tail must hold at least one batch and less than a tenth of the history");
  // The machine may be shared: its load is part of the figures.
  const loadBefore = loadavg()[0]!;
  const tenth = measure({ ...rest, batches: Math.round(args.batches / 10) }, log);
  const full = measure(rest, log);
  const file = writeResults("settlement.json", {
    providers: args.providers,
    cycles: args.cycles,
    linesPerBatch: args.linesPerBatch,
    runs: args.runs,
    loadAverage: { before: round(loadBefore), after: round(loadavg()[0]!) },
    tenth,
    full,
  });
  log(`settlement: results in ${file}`);
  return { tenth, full };
}
