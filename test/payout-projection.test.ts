import { deserialize, serialize } from "node:v8";
import type { Address, Hex } from "viem";
import { describe, expect, it } from "vitest";
import { mulBase } from "../src/eerc/curve.js";
import { type LineAlertReason, NO_CAP, type ServerBindingFact } from "../src/payout/admission.js";
import { StaleProjectionError } from "../src/payout/errors.js";
import type { PoolFeeFact, ProviderChangeFact } from "../src/payout/facts.js";
import { type AuditorChangeFact, type SettlementFactsDelta, SettlementProjection } from "../src/payout/projection.js";
import {
  boundariesOf,
  cycleEarnings,
  type DecryptedBatch,
  type LedgerState,
  ledgerState,
  operatorPoolSecret,
  type PoolSecret,
} from "../src/payout/settlement.js";
import type { Payout } from "../src/payout/tag.js";
import { type SettlementRecord, settlementSchedule } from "../src/revenue/schedule.js";
import type { ProviderId } from "../src/revenue/types.js";
import type { PeriodUnit } from "../src/usage/period.js";
import { freePool, freeQuotaThenPerCall, type Pricing, perCall, tiered } from "../src/usage/pricing.js";
import { providerIdOf } from "../src/usage/registry.js";

// The settlement projection against the settlement from genesis, over random histories: every
// pricing model and pricing changes, settlement records changing the fee and the period unit,
// server bindings with caps, ignored lines, pool payments and the levy, auditor changes, and
// payouts made as the agent makes them (interrupted cycles included). Each history is fed to the
// projection in random pieces, with random blocks held back as pending, and every answer must
// equal `ledgerState` over the same facts.

const OPERATOR_SK = 123456789n;
const AUDITORS = [mulBase(987654321n), mulBase(55555n)];
const SERVERS = ["0x00000000000000000000000000000000000000a1", "0x00000000000000000000000000000000000000a2"] as Address[];
const ACCOUNT = "0x00000000000000000000000000000000000000aa" as Address;
const START_MS = Date.UTC(2026, 0, 1);
const HOUR_MS = 3_600_000;
const DAY_S = 86_400n;

/** The operator's pool secrets (`operatorPoolSecret`), each auditor's Diffie-Hellman point computed once. */
const secrets = new Map<(typeof AUDITORS)[number], bigint>();
const poolSecretOf =
  (auditors: readonly AuditorChangeFact[]): PoolSecret =>
  (boundary) => {
    const auditor = auditors.filter((a) => a.blockNumber <= boundary.throughBlock).at(-1)!;
    let secret = secrets.get(auditor.publicKey);
    if (secret === undefined) secrets.set(auditor.publicKey, (secret = operatorPoolSecret(OPERATOR_SK, auditors)(boundary)));
    return secret;
  };

/** mulberry32: every history below comes from a fixed seed. */
function prng(seed: number) {
  let a = seed >>> 0;
  const u32 = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
  const int = (n: number) => u32() % n;
  const chance = (p: number) => u32() / 2 ** 32 < p;
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]!;
  return { int, chance, pick };
}
type Rng = ReturnType<typeof prng>;

type History = {
  lastBlock: bigint;
  settlementRecords: SettlementRecord[];
  providerChanges: ProviderChangeFact[];
  serverBindings: ServerBindingFact[];
  auditorChanges: AuditorChangeFact[];
  batches: DecryptedBatch[];
  poolFees: PoolFeeFact[];
  payouts: Payout[];
  amounts: Map<Hex, bigint>;
};

function randomPricing(r: Rng): Pricing {
  switch (r.int(4)) {
    case 0:
      return perCall(BigInt(1 + r.int(50)));
    case 1:
      return freeQuotaThenPerCall(r.int(40), BigInt(1 + r.int(30)));
    case 2:
      return tiered([
        { upToCalls: BigInt(5 + r.int(20)), priceMicro: BigInt(1 + r.int(40)) },
        { upToCalls: BigInt(30 + r.int(60)), priceMicro: BigInt(r.int(10)) },
      ]);
    default:
      return freePool(1 + r.int(5));
  }
}

/** The settlement from genesis over the facts through `block`. */
function fromScratch(h: History, block: bigint, through: bigint): LedgerState {
  const upTo = <T extends { blockNumber: bigint }>(xs: readonly T[]) => xs.filter((x) => x.blockNumber <= block);
  return ledgerState({
    batches: upTo(h.batches),
    serverBindings: upTo(h.serverBindings),
    providerChanges: upTo(h.providerChanges),
    poolFees: upTo(h.poolFees),
    payouts: upTo(h.payouts),
    amountOf: (p) => h.amounts.get(p.txHash)!,
    schedule: settlementSchedule(upTo(h.settlementRecords)),
    poolSecret: poolSecretOf(upTo(h.auditorChanges)),
    through,
  });
}

/**
 * A random history of `seed`, with payouts as the agent makes them: now and then it settles
 * through a recent block (finishing an interrupted cycle first), and pays what is owed in the next
 * block, sometimes only part of it (the rest is paid by its next run).
 */
function randomHistory(seed: number): History {
  const r = prng(seed);
  const lastBlock = 60 + r.int(60);
  const hoursPerBlock = 3 + r.int(30);
  const timeMs = (block: number) => START_MS + block * hoursPerBlock * HOUR_MS;
  const logIndexes = new Map<number, number>();
  const at = (block: number) => {
    const logIndex = logIndexes.get(block) ?? 0;
    logIndexes.set(block, logIndex + 1);
    return { blockNumber: BigInt(block), logIndex };
  };
  const h: History = {
    lastBlock: BigInt(lastBlock),
    settlementRecords: [],
    providerChanges: [],
    serverBindings: [],
    auditorChanges: [{ publicKey: AUDITORS[0]!, blockNumber: 0n }],
    batches: [],
    poolFees: [],
    payouts: [],
    amounts: new Map(),
  };
  const units: PeriodUnit[] = ["month", "day"];
  const fees = [0, 250, 1000, 3000];
  h.settlementRecords.push({ ...at(0), feeBps: r.pick(fees), periodUnit: r.pick(units), effectiveFrom: 0n });
  let effectiveFrom = BigInt(START_MS / 1000);
  for (let n = r.int(3); n > 0; n--) {
    const block = 2 + r.int(lastBlock - 2);
    const dayS = BigInt(Math.floor(timeMs(block) / 1000)) / DAY_S;
    effectiveFrom = effectiveFrom > dayS * DAY_S ? effectiveFrom + DAY_S : (dayS + BigInt(r.int(20))) * DAY_S;
    h.settlementRecords.push({ ...at(block), feeBps: r.pick(fees), periodUnit: r.pick(units), effectiveFrom });
  }
  h.settlementRecords.sort((a, b) => (a.blockNumber < b.blockNumber ? -1 : a.blockNumber > b.blockNumber ? 1 : a.logIndex - b.logIndex));
  // Records take effect in the order they were made: keep only those that start after the one before.
  h.settlementRecords = h.settlementRecords.filter((x, i, all) => i === 0 || x.effectiveFrom > all[i - 1]!.effectiveFrom);
  if (r.chance(0.5)) h.auditorChanges.push({ publicKey: AUDITORS[1]!, blockNumber: BigInt(1 + r.int(lastBlock)) });
  h.auditorChanges.sort((a, b) => (a.blockNumber < b.blockNumber ? -1 : 1));

  const providers = Array.from({ length: 3 + r.int(4) }, (_, i) => providerIdOf(`projection${seed}x${i}`) as ProviderId);
  for (const providerId of providers) {
    const change = (block: number, active: boolean, pricing: Pricing) =>
      h.providerChanges.push({ providerId, namespace: providerId, payoutAccount: ACCOUNT, active, pricing, ...at(block) });
    let active = r.chance(0.9);
    let pricing = randomPricing(r);
    change(1, active, pricing);
    for (let n = r.int(4); n > 0; n--) {
      if (r.chance(0.5)) pricing = randomPricing(r);
      else active = !active;
      change(2 + r.int(lastBlock - 2), active, pricing);
    }
    for (const server of SERVERS) {
      const bind = (block: number) => {
        const bound = r.chance(0.85);
        h.serverBindings.push({
          server,
          providerId,
          bound,
          maxCallsPerBatch: !bound ? 0n : r.chance(0.3) ? BigInt(3 + r.int(20)) : NO_CAP,
          maxCallsPerPeriod: !bound ? 0n : r.chance(0.3) ? BigInt(10 + r.int(80)) : NO_CAP,
          ...at(block),
        });
      };
      if (r.chance(0.9)) bind(1);
      if (r.chance(0.3)) bind(2 + r.int(lastBlock - 2));
    }
  }
  h.providerChanges.sort((a, b) => (a.blockNumber < b.blockNumber ? -1 : a.blockNumber > b.blockNumber ? 1 : a.logIndex - b.logIndex));

  let batchNo = 0;
  let txNo = 0;
  let agentFrom = 4;
  for (let block = 2; block <= lastBlock; block++) {
    for (let n = r.chance(0.7) ? 1 + r.int(2) : 0; n > 0; n--) {
      const chosen = [...new Set(Array.from({ length: 1 + r.int(3) }, () => r.pick(providers)))].sort();
      h.batches.push({
        server: r.pick(SERVERS),
        batchId: `0x${(++batchNo).toString(16).padStart(64, "0")}`,
        // The server's clock: its period start may lag its commit by a few blocks.
        periodStart: BigInt(timeMs(block - r.int(3))),
        // Only the format version (the first word) is read: 3 (copies checked), now and then 2 (ignored).
        encryptedLines: `0x${(r.chance(0.04) ? "2" : "3").padStart(64, "0")}`,
        ...at(block),
        lines: chosen.map((providerId) => {
          const billableCalls = BigInt(r.int(30));
          const amountMicro = billableCalls * BigInt(r.int(20));
          const revenueMicro = r.chance(0.5) ? amountMicro + BigInt(r.int(200)) : r.chance(0.2) ? amountMicro / 2n : 0n;
          return {
            providerId,
            calls: billableCalls + BigInt(r.int(3)),
            billableCalls,
            amountMicro,
            revenueMicro,
            ...(r.chance(0.04) && { copyMismatch: true as const }),
          };
        }),
      });
    }
    if (r.chance(0.3))
      h.poolFees.push({ amount: BigInt(1 + r.int(5000)), timestamp: BigInt(Math.floor(timeMs(block) / 1000)), ...at(block) });

    // The agent: settles through a recent block and pays in the next one.
    if (block >= agentFrom && block < lastBlock && r.chance(0.12)) {
      const state = fromScratch(h, BigInt(block), BigInt(block - r.int(3)));
      const plan = state.unfinished ?? state.next;
      if (!plan) continue;
      const due = [...plan.due];
      // Zero-amount transfers to some providers owed nothing, as `everyProvider` makes them.
      const padded = r.chance(0.3);
      for (const id of providers) {
        if (padded && !plan.due.has(id) && r.chance(0.3)) due.push([id, 0n]);
      }
      const paying = r.chance(0.25) ? due.slice(0, Math.floor(due.length / 2)) : due;
      for (const [providerId, amount] of paying) {
        const txHash = `0x${(++txNo).toString(16).padStart(64, "0")}` as Hex;
        h.amounts.set(txHash, amount);
        h.payouts.push({
          txHash,
          from: ACCOUNT,
          to: ACCOUNT,
          receiverPCT: null,
          senderVTT: null,
          auditorPCT: [],
          ...at(block + 1),
          cycle: plan.cycle,
          throughBlock: plan.throughBlock,
          providerId,
        });
      }
      agentFrom = block + 2;
    }
  }
  return h;
}

/** The facts of the blocks (after, through], as a reader hands them to the projection. */
function delta(h: History, after: bigint, through: bigint): SettlementFactsDelta {
  const inBlocks = <T extends { blockNumber: bigint }>(xs: readonly T[]) =>
    xs.filter((x) => x.blockNumber > after && x.blockNumber <= through);
  return {
    throughBlock: through,
    settlementRecords: inBlocks(h.settlementRecords),
    providerChanges: inBlocks(h.providerChanges),
    serverBindings: inBlocks(h.serverBindings),
    auditorChanges: inBlocks(h.auditorChanges),
    batches: inBlocks(h.batches),
    poolFees: inBlocks(h.poolFees),
    payouts: inBlocks(h.payouts).map((p) => ({ ...p, amountMicro: h.amounts.get(p.txHash)! })),
  };
}

const newProjection = () => new SettlementProjection({ poolSecret: poolSecretOf, keepCycles: Number.MAX_SAFE_INTEGER });

/** The projection as another process restores it from a checkpoint: exported, serialized, read back. */
const restored = (p: SettlementProjection) =>
  SettlementProjection.restore(deserialize(serialize(p.export())), { poolSecret: poolSecretOf, keepCycles: Number.MAX_SAFE_INTEGER });

/** The answer of `f`, or the class and message of what it threw. */
function outcome<T>(f: () => T): T | { threw: string } {
  try {
    return f();
  } catch (e) {
    return { threw: `${(e as Error).name}: ${(e as Error).message}` };
  }
}

const SEEDS = 30;

describe("settlement projection", () => {
  it("equals the settlement from genesis over random histories fed in random pieces, with pending blocks", () => {
    const seen = { restored: 0, cycles: 0, unfinished: 0, pendingAnswers: 0, answers: 0, maxTail: 0, reasons: new Set<LineAlertReason>() };
    for (let seed = 1; seed <= SEEDS; seed++) {
      const h = randomHistory(seed);
      const r = prng(seed * 7919);
      let projection = newProjection();
      let applied = -1n;
      while (applied < h.lastBlock) {
        const to = applied + 1n + BigInt(r.int(12)) < h.lastBlock ? applied + 1n + BigInt(r.int(12)) : h.lastBlock;
        projection.apply(delta(h, applied, to));
        applied = to;
        // A process restarted from its checkpoint goes on with what the checkpoint held.
        if (r.chance(0.3)) {
          projection = restored(projection);
          seen.restored += 1;
        }
        const pendingTo = r.chance(0.5) && to < h.lastBlock ? to + 1n + BigInt(r.int(5)) : to;
        const last = pendingTo < h.lastBlock ? pendingTo : h.lastBlock;
        const pending = last > to ? delta(h, to, last) : undefined;
        for (let q = 0; q < 3; q++) {
          const through = last - BigInt(r.int(10)) > 0n ? last - BigInt(r.int(10)) : 0n;
          const expected = outcome(() => fromScratch(h, last, through));
          const actual = outcome(() => projection.ledgerState(through, pending));
          expect(actual, `seed ${seed}, applied ${to}, pending through ${last}, settling through ${through}`).toEqual(expected);
          seen.answers += 1;
          if (pending) seen.pendingAnswers += 1;
          if ("unfinished" in expected && expected.unfinished) seen.unfinished += 1;
          if ("alerts" in expected) for (const a of expected.alerts) seen.reasons.add(a.reason);
        }
        // The folded cycles are the settlement's cycles, and what stays unfolded is the usage after the last one.
        const upTo = <T extends { blockNumber: bigint }>(xs: readonly T[]) => xs.filter((x) => x.blockNumber <= to);
        const cycles = cycleEarnings({
          batches: upTo(h.batches),
          serverBindings: upTo(h.serverBindings),
          providerChanges: upTo(h.providerChanges),
          poolFees: upTo(h.poolFees),
          boundaries: boundariesOf(upTo(h.payouts)),
          schedule: settlementSchedule(upTo(h.settlementRecords)),
          poolSecret: poolSecretOf(upTo(h.auditorChanges)),
        });
        expect(projection.foldedCycles).toEqual(cycles);
        const after = projection.checkpoint?.throughBlock ?? -1n;
        expect(projection.tailBatches).toBe(upTo(h.batches).filter((b) => b.blockNumber > after).length);
        seen.maxTail = Math.max(seen.maxTail, projection.tailBatches);
      }
      seen.cycles += projection.foldedCycles.length;
    }
    // The histories reach what the property is about.
    expect(seen.cycles).toBeGreaterThan(3 * SEEDS);
    expect(seen.unfinished).toBeGreaterThan(20);
    expect(seen.pendingAnswers).toBeGreaterThan(SEEDS);
    expect(seen.restored).toBeGreaterThan(SEEDS);
    expect([...seen.reasons].sort()).toEqual(["capped", "copy-mismatch", "unbound", "unchecked-format"]);
  });

  it("dropped and rebuilt from the chain in one piece, it gives the same numbers", () => {
    for (let seed = 1; seed <= 10; seed++) {
      const h = randomHistory(seed);
      const kept = newProjection();
      for (let block = 0n; block <= h.lastBlock; block++) kept.apply(delta(h, block - 1n, block));
      const rebuilt = newProjection();
      rebuilt.apply(delta(h, -1n, h.lastBlock));
      expect(rebuilt.checkpoint).toEqual(kept.checkpoint);
      expect(rebuilt.foldedCycles).toEqual(kept.foldedCycles);
      for (const through of [h.lastBlock, h.lastBlock - 3n, kept.checkpoint?.throughBlock ?? 0n]) {
        expect(rebuilt.ledgerState(through)).toEqual(kept.ledgerState(through));
        expect(rebuilt.ledgerState(through)).toEqual(fromScratch(h, h.lastBlock, through));
      }
      expect(rebuilt.cycleTotals()).toEqual(kept.cycleTotals());
    }
  });

  it("refuses facts older than the ones it holds, and a cycle recorded below the ones it settled", () => {
    const h = randomHistory(3);
    // Cycles 1, 3, 4, …: a cycle 2 recorded later is below the cycles settled.
    h.payouts = h.payouts.map((p) => (p.cycle >= 2 ? { ...p, cycle: p.cycle + 1 } : p));
    const projection = newProjection();
    projection.apply(delta(h, -1n, h.lastBlock));
    expect(projection.checkpoint!.cycle).toBeGreaterThan(2);
    expect(() => projection.apply(delta(h, -1n, h.lastBlock - 1n))).toThrow(StaleProjectionError);
    const providerId = h.providerChanges[0]!.providerId;
    const [first] = boundariesOf(h.payouts);
    const late = (cycle: number, throughBlock: bigint): SettlementFactsDelta => ({
      throughBlock: h.lastBlock + 1n,
      payouts: [{ cycle, throughBlock, providerId, blockNumber: h.lastBlock + 1n, logIndex: 0, amountMicro: 0n }],
    });
    expect(() => projection.ledgerState(h.lastBlock + 1n, late(2, first!.throughBlock))).toThrow(StaleProjectionError);
    // A payout of a settled cycle under another boundary is the settlement's own conflict.
    expect(() => projection.ledgerState(h.lastBlock + 1n, late(first!.cycle, first!.throughBlock + 1n))).toThrow(/different blocks/);
    expect(() => projection.apply(late(2, first!.throughBlock))).toThrow(StaleProjectionError);
  });
});
