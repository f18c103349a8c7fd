import { byChainPosition, type ChainPosition } from "../chain/position.js";
import type { Point } from "../eerc/curve.js";
import { type SettlementRecord, type SettlementSchedule, settlementSchedule } from "../revenue/schedule.js";
import type { ProviderId } from "../revenue/types.js";
import { LayeredMap } from "../util/layered-map.js";
import { getOrCreate } from "../util/map.js";
import { admitLines, type BindingIndex, bindingKey, type DecryptedBatch, type LineAlert, type ServerBindingFact } from "./admission.js";
import { CycleBoundaryConflictError, StaleProjectionError } from "./errors.js";
import type { PoolFeeFact, ProviderChangeFact } from "./facts.js";
import {
  boundariesFrom,
  type CycleBoundary,
  type CycleEarnings,
  type CyclePayments,
  commitSettlementState,
  type Due,
  dueOf,
  emptySettlementState,
  type LedgerState,
  type PeriodUsage,
  type PoolSecret,
  registrationsOf,
  type SettlementRules,
  type SettlementState,
  settleCycle,
} from "./settlement.js";
import type { Payout } from "./tag.js";

/** An auditor key the eERC set (the pool reserves depend on the one in force at a boundary). */
export type AuditorChangeFact = { publicKey: Point; blockNumber: bigint };

/** A payout with its amount, as the reader opened it. */
export type PaidPayout = Pick<Payout, "cycle" | "throughBlock" | "providerId" | "blockNumber" | "logIndex"> & { amountMicro: bigint };

/**
 * Facts read from the chain after the ones a projection holds: every fact in the blocks
 * (previous `throughBlock`, `throughBlock`] and none later. Batches carry the lines the reader
 * decrypted.
 */
export type SettlementFactsDelta = {
  throughBlock: bigint;
  settlementRecords?: readonly SettlementRecord[];
  providerChanges?: readonly ProviderChangeFact[];
  serverBindings?: readonly ServerBindingFact[];
  auditorChanges?: readonly AuditorChangeFact[];
  batches?: readonly DecryptedBatch[];
  poolFees?: readonly PoolFeeFact[];
  payouts?: readonly PaidPayout[];
};

/** What a recorded cycle paid in all. */
export type CycleTotal = { cycle: number; throughBlock: bigint; transfers: number; totalMicro: bigint };

/**
 * Everything a projection holds, as plain data (Maps, Sets, arrays, bigints): what a checkpoint
 * stores (`checkpoint.ts`) and `SettlementProjection.restore` takes back. It shares the
 * projection's objects, so it is to be serialized before more facts are applied.
 */
export type ProjectionData = {
  applied: bigint;
  records: SettlementRecord[];
  changes: ProviderChangeFact[];
  /** Every binding applied, in chain order per (server, provider) pair. */
  bindings: ServerBindingFact[];
  auditors: AuditorChangeFact[];
  tail: { batches: DecryptedBatch[]; poolFees: PoolFeeFact[] };
  payments: CyclePayments;
  paid: Map<ProviderId, bigint>;
  totals: Map<number, { transfers: number; totalMicro: bigint }>;
  recorded: Map<number, Set<bigint>>;
  state: Omit<SettlementState, "used" | "periodFees" | "usage" | "commercial" | "poolShares"> & {
    used: Map<string, bigint>;
    periodFees: Map<number, bigint>;
    usage: Map<string, PeriodUsage>;
    commercial: Map<ProviderId, bigint>;
    poolShares: Map<ProviderId, bigint>;
  };
  folded: CycleEarnings[];
  foldedCount: number;
  alerts: LineAlert[];
};

const inChainOrder = <T extends ChainPosition>(items: readonly T[] | undefined): T[] => [...(items ?? [])].sort(byChainPosition);

/** How many of `items` (in chain order) are at or below `block`. */
function countThrough(items: readonly ChainPosition[], block: bigint): number {
  let lo = 0;
  let hi = items.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (items[mid]!.blockNumber <= block) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function addPayment(payments: CyclePayments, paid: Map<ProviderId, bigint>, p: PaidPayout): void {
  const cycle = getOrCreate(payments, p.cycle, () => new Map());
  const entry = cycle.get(p.providerId) ?? { amountMicro: 0n, transfers: 0 };
  cycle.set(p.providerId, { amountMicro: entry.amountMicro + p.amountMicro, transfers: entry.transfers + 1 });
  paid.set(p.providerId, (paid.get(p.providerId) ?? 0n) + p.amountMicro);
}

/**
 * The settlement kept up to date as facts arrive, instead of recomputed from genesis: earned,
 * paid and pending per provider and cycle at a cost in the facts since the last cycle settled.
 *
 * Facts are applied in chain order, in deltas complete through a block (`apply`). Each recorded
 * cycle (the boundary its payout tags carry) whose boundary is applied is folded into a
 * checkpoint: the small `SettlementState` that `settleCycle` carries from cycle to cycle, and
 * the usage it settled is dropped. The usage after the last folded boundary stays as a tail,
 * since the next boundary is not known until a payout records it. `ledgerState` answers as
 * `ledgerState` (settlement.ts) does over every fact applied, by settling only the tail on top
 * of the checkpoint; `pending` facts (blocks not final yet) are taken for one answer and not kept.
 *
 * It is a projection: the rules are `settleCycle`'s, the facts the chain's, and a projection
 * dropped and rebuilt from the chain answers the same. When facts cannot be applied on top of
 * what it folded (older than the facts it holds, or a cycle recorded below the cycles it
 * settled), it throws StaleProjectionError: rebuild it.
 */
export class SettlementProjection {
  private applied = -1n;
  private records: SettlementRecord[] = [];
  private schedule: SettlementSchedule = [];
  private changes: ProviderChangeFact[] = [];
  private registrations = new Map<ProviderId, ProviderChangeFact[]>();
  private bindings = new Map<string, ServerBindingFact[]>();
  private auditors: AuditorChangeFact[] = [];
  /** Usage after the checkpoint, in chain order. */
  private tail: { batches: DecryptedBatch[]; poolFees: PoolFeeFact[] } = { batches: [], poolFees: [] };
  private payments: CyclePayments = new Map();
  private paid = new Map<ProviderId, bigint>();
  private totals = new Map<number, { transfers: number; totalMicro: bigint }>();
  /** The boundaries each cycle's payouts recorded. */
  private recorded = new Map<number, Set<bigint>>();
  /** The checkpoint: the state after the folded cycles, the last of them, and the lines they ignored or capped. */
  private state: SettlementState = emptySettlementState();
  private folded: CycleEarnings[] = [];
  private foldedCount = 0;
  private alerts: LineAlert[] = [];

  constructor(
    private readonly options: {
      /** The pool secret over the auditor changes known (`operatorPoolSecret` with the operator's key). */
      poolSecret: (auditorChanges: readonly AuditorChangeFact[]) => PoolSecret;
      /** How many folded cycles' earnings to keep (`foldedCycles`); 1 by default. */
      keepCycles?: number;
    },
  ) {}

  /** What the projection holds, to be stored and restored (`restore`) in another process. */
  export(): ProjectionData {
    const { used, periodFees, usage, commercial, poolShares, ...totals } = this.state;
    return {
      applied: this.applied,
      records: this.records,
      changes: this.changes,
      bindings: [...this.bindings.values()].flat(),
      auditors: this.auditors,
      tail: this.tail,
      payments: this.payments,
      paid: this.paid,
      totals: this.totals,
      recorded: this.recorded,
      state: {
        ...totals,
        used: used.toMap(),
        periodFees: periodFees.toMap(),
        usage: usage.toMap(),
        commercial: commercial.toMap(),
        poolShares: poolShares.toMap(),
      },
      folded: this.folded,
      foldedCount: this.foldedCount,
      alerts: this.alerts,
    };
  }

  /** The projection `data` was exported from (`export`), answering as it did. */
  static restore(data: ProjectionData, options: ConstructorParameters<typeof SettlementProjection>[0]): SettlementProjection {
    const p = new SettlementProjection(options);
    p.applied = data.applied;
    p.records = data.records;
    p.schedule = settlementSchedule(data.records);
    p.changes = data.changes;
    for (const c of data.changes) getOrCreate(p.registrations, c.providerId, () => []).push(c);
    for (const b of data.bindings) getOrCreate(p.bindings, bindingKey(b), () => []).push(b);
    p.auditors = data.auditors;
    p.tail = data.tail;
    p.payments = data.payments;
    p.paid = data.paid;
    p.totals = data.totals;
    p.recorded = data.recorded;
    const { used, periodFees, usage, commercial, poolShares, ...totals } = data.state;
    p.state = {
      ...totals,
      used: LayeredMap.from(used),
      periodFees: LayeredMap.from(periodFees),
      usage: LayeredMap.from(usage),
      commercial: LayeredMap.from(commercial),
      poolShares: LayeredMap.from(poolShares),
    };
    p.folded = data.folded;
    p.foldedCount = data.foldedCount;
    p.alerts = data.alerts;
    return p;
  }

  /** How many folded cycles the projection holds: a new fold is a new cycle settled. */
  get foldedCycleCount(): number {
    return this.foldedCount;
  }

  /** The block every fact applied is complete through (-1 before the first delta). */
  get appliedBlock(): bigint {
    return this.applied;
  }

  /** The last cycle folded into the checkpoint, null before the first. */
  get checkpoint(): CycleBoundary | null {
    return this.state.cycle === 0 ? null : { cycle: this.state.cycle, throughBlock: this.state.throughBlock };
  }

  /** The earnings of the last folded cycles (`keepCycles` of them), in cycle order. */
  get foldedCycles(): readonly CycleEarnings[] {
    return this.folded;
  }

  /** How many batches are held after the checkpoint: the usage the next answer settles. */
  get tailBatches(): number {
    return this.tail.batches.length;
  }

  get settlementRecords(): readonly SettlementRecord[] {
    return this.records;
  }

  get providerChanges(): readonly ProviderChangeFact[] {
    return this.changes;
  }

  get auditorChanges(): readonly AuditorChangeFact[] {
    return this.auditors;
  }

  /** Adds the facts of the blocks after `appliedBlock` through `delta.throughBlock`, and folds every cycle it can. */
  apply(delta: SettlementFactsDelta): void {
    if (delta.throughBlock < this.applied)
      throw new StaleProjectionError(`facts through block ${delta.throughBlock} are older than the ones applied (block ${this.applied})`);
    this.checkNew(delta);
    const records = inChainOrder(delta.settlementRecords);
    if (records.length > 0) {
      this.records = [...this.records, ...records];
      this.schedule = settlementSchedule(this.records);
    }
    for (const c of inChainOrder(delta.providerChanges)) {
      this.changes.push(c);
      getOrCreate(this.registrations, c.providerId, () => []).push(c);
    }
    for (const b of inChainOrder(delta.serverBindings)) getOrCreate(this.bindings, bindingKey(b), () => []).push(b);
    this.auditors.push(
      ...[...(delta.auditorChanges ?? [])].sort((a, b) => (a.blockNumber < b.blockNumber ? -1 : a.blockNumber > b.blockNumber ? 1 : 0)),
    );
    // Appended one by one: a restart applies the whole history at once, too many for a spread.
    for (const b of inChainOrder(delta.batches)) this.tail.batches.push(b);
    for (const f of inChainOrder(delta.poolFees)) this.tail.poolFees.push(f);
    for (const p of inChainOrder(delta.payouts)) {
      addPayment(this.payments, this.paid, p);
      const t = this.totals.get(p.cycle) ?? { transfers: 0, totalMicro: 0n };
      this.totals.set(p.cycle, { transfers: t.transfers + 1, totalMicro: t.totalMicro + p.amountMicro });
      const seen = this.recorded.get(p.cycle);
      if (seen) seen.add(p.throughBlock);
      else this.recorded.set(p.cycle, new Set([p.throughBlock]));
    }
    this.applied = delta.throughBlock;
    this.fold();
  }

  /** Every fact of `delta` is after the facts applied and at or below its `throughBlock`. */
  private checkNew(delta: SettlementFactsDelta): void {
    const lists: readonly (readonly { blockNumber: bigint }[] | undefined)[] = [
      delta.settlementRecords,
      delta.providerChanges,
      delta.serverBindings,
      delta.auditorChanges,
      delta.batches,
      delta.poolFees,
      delta.payouts,
    ];
    for (const list of lists) {
      for (const f of list ?? []) {
        if (f.blockNumber <= this.applied || f.blockNumber > delta.throughBlock)
          throw new StaleProjectionError(
            `a fact of block ${f.blockNumber} is outside the blocks (${this.applied}, ${delta.throughBlock}] being applied`,
          );
      }
    }
  }

  private rules(pending?: SettlementFactsDelta): SettlementRules {
    const records = inChainOrder(pending?.settlementRecords);
    const changes = inChainOrder(pending?.providerChanges);
    const auditors = pending?.auditorChanges ?? [];
    let registrations: ReadonlyMap<ProviderId, readonly ProviderChangeFact[]> = this.registrations;
    if (changes.length > 0) {
      const more = registrationsOf(changes);
      const merged = new Map<ProviderId, readonly ProviderChangeFact[]>(this.registrations);
      for (const [id, list] of more) merged.set(id, [...(this.registrations.get(id) ?? []), ...list]);
      registrations = merged;
    }
    return {
      schedule: records.length > 0 ? settlementSchedule([...this.records, ...records]) : this.schedule,
      serverBindings: this.bindingsWith(pending?.serverBindings),
      registrations,
      poolSecret: this.options.poolSecret(auditors.length > 0 ? [...this.auditors, ...auditors] : this.auditors),
    };
  }

  /** The binding index with `more` bindings (after the ones applied), without changing it. */
  private bindingsWith(more: readonly ServerBindingFact[] | undefined): BindingIndex {
    if (!more?.length) return this.bindings;
    const index = new Map<string, readonly ServerBindingFact[]>(this.bindings);
    for (const b of inChainOrder(more)) index.set(bindingKey(b), [...(index.get(bindingKey(b)) ?? []), b]);
    return index;
  }

  /** The recorded boundaries; throws StaleProjectionError when the folded cycles are no longer the first of them. */
  private boundaries(recorded: ReadonlyMap<number, ReadonlySet<bigint>>): CycleBoundary[] {
    const out = boundariesFrom(recorded);
    const done = this.checkpoint;
    if (done) {
      const settled = out.filter((b) => b.cycle <= done.cycle);
      if (settled.length !== this.foldedCount || settled.at(-1)?.cycle !== done.cycle || settled.at(-1)?.throughBlock !== done.throughBlock)
        throw new StaleProjectionError(`a cycle was recorded below cycle ${done.cycle}, which the projection has settled`);
    }
    return out;
  }

  /** The recorded cycles not folded yet, in order. */
  private unfolded(recorded: readonly CycleBoundary[]): CycleBoundary[] {
    return recorded.filter((b) => b.cycle > this.state.cycle);
  }

  /** Folds into the checkpoint every recorded cycle whose boundary is applied. */
  private fold(): void {
    // Before the first settlement record is known, no line can be settled (it applies from genesis).
    if (this.schedule.length === 0) return;
    let recorded: CycleBoundary[];
    try {
      recorded = this.boundaries(this.recorded);
    } catch (e) {
      // Conflicting boundaries: `ledgerState` throws them, as the settlement from genesis does.
      if (e instanceof CycleBoundaryConflictError) return;
      throw e;
    }
    const rules = this.rules();
    for (const boundary of this.unfolded(recorded)) {
      if (boundary.throughBlock > this.applied) break;
      const batches = countThrough(this.tail.batches, boundary.throughBlock);
      const poolFees = countThrough(this.tail.poolFees, boundary.throughBlock);
      const step = settleCycle(
        this.state,
        boundary,
        { batches: this.tail.batches.slice(0, batches), poolFees: this.tail.poolFees.slice(0, poolFees) },
        rules,
      );
      this.state = commitSettlementState(step.state);
      this.foldedCount += 1;
      this.tail = { batches: this.tail.batches.slice(batches), poolFees: this.tail.poolFees.slice(poolFees) };
      this.folded = [...this.folded, step.earnings].slice(-(this.options.keepCycles ?? 1));
      for (const a of step.alerts) this.alerts.push(a);
    }
  }

  /**
   * Where the payout ledger stands, as `ledgerState` (settlement.ts) answers over every fact
   * applied and `pending`: facts of the blocks after `appliedBlock` through `pending.throughBlock`,
   * taken for this answer only (the blocks that are not final yet).
   */
  ledgerState(through: bigint, pending?: SettlementFactsDelta): LedgerState {
    if (pending) {
      if (pending.throughBlock < this.applied)
        throw new StaleProjectionError(`pending facts through block ${pending.throughBlock} are older than the ones applied`);
      this.checkNew(pending);
    }
    const rules = this.rules(pending);
    let { payments, paid } = this;
    let recordedSeen: ReadonlyMap<number, ReadonlySet<bigint>> = this.recorded;
    if (pending?.payouts?.length) {
      payments = new Map(this.payments);
      paid = new Map(this.paid);
      const seen = new Map(this.recorded);
      for (const p of inChainOrder(pending.payouts)) {
        const cycle = payments.get(p.cycle);
        if (cycle && cycle === this.payments.get(p.cycle)) payments.set(p.cycle, new Map(cycle));
        addPayment(payments, paid, p);
        seen.set(p.cycle, new Set([...(seen.get(p.cycle) ?? []), p.throughBlock]));
      }
      recordedSeen = seen;
    }
    const recorded = this.boundaries(recordedSeen);
    const last = recorded.at(-1) ?? null;

    let batches = this.tail.batches;
    let poolFees = this.tail.poolFees;
    if (pending?.batches?.length) batches = [...batches, ...inChainOrder(pending.batches)];
    if (pending?.poolFees?.length) poolFees = [...poolFees, ...inChainOrder(pending.poolFees)];

    // The recorded cycles not folded yet (their boundary not applied, or one only pending facts record).
    let state = this.state;
    let lastEarnings = this.folded.at(-1) ?? null;
    const alerts: LineAlert[] = [];
    for (const boundary of this.unfolded(recorded)) {
      const nb = countThrough(batches, boundary.throughBlock);
      const nf = countThrough(poolFees, boundary.throughBlock);
      const step = settleCycle(state, boundary, { batches: batches.slice(0, nb), poolFees: poolFees.slice(0, nf) }, rules);
      state = step.state;
      lastEarnings = step.earnings;
      for (const a of step.alerts) alerts.push(a);
      batches = batches.slice(nb);
      poolFees = poolFees.slice(nf);
    }
    const finished = lastEarnings ? dueOf(lastEarnings, paid) : null;
    const unfinished = finished && finished.due.size > 0 ? finished : null;
    let next: Due | null = null;
    if (!last || through > last.throughBlock) {
      const boundary = { cycle: (last?.cycle ?? 0) + 1, throughBlock: through };
      const step = settleCycle(
        state,
        boundary,
        {
          batches: batches.slice(0, countThrough(batches, through)),
          poolFees: poolFees.slice(0, countThrough(poolFees, through)),
        },
        rules,
      );
      next = dueOf(step.earnings, paid);
      for (const a of step.alerts) alerts.push(a);
    }
    return { payments, paid, unfinished, next, last, alerts: this.alertsThrough(through, last, alerts, rules, pending) };
  }

  /**
   * The lines of the batches through `through` that settlement ignored or capped: the folded ones,
   * and the tail's, which the cycles just settled found when they reach `through`.
   */
  private alertsThrough(
    through: bigint,
    last: CycleBoundary | null,
    settled: LineAlert[],
    rules: SettlementRules,
    pending: SettlementFactsDelta | undefined,
  ): LineAlert[] {
    const folded = this.alerts.filter((a) => a.blockNumber <= through);
    if (!last || through >= last.throughBlock) return [...folded, ...settled];
    const tail = [...this.tail.batches, ...inChainOrder(pending?.batches)].filter((b) => b.blockNumber <= through);
    return [...folded, ...admitLines(tail, rules.serverBindings, rules.schedule, this.state.used.layer()).alerts];
  }

  /** What each recorded cycle paid in all, in cycle order, with `pending` payouts. */
  cycleTotals(pending?: SettlementFactsDelta): CycleTotal[] {
    const totals = new Map(this.totals);
    const seen = new Map(this.recorded);
    for (const p of pending?.payouts ?? []) {
      const t = totals.get(p.cycle) ?? { transfers: 0, totalMicro: 0n };
      totals.set(p.cycle, { transfers: t.transfers + 1, totalMicro: t.totalMicro + p.amountMicro });
      seen.set(p.cycle, new Set([...(seen.get(p.cycle) ?? []), p.throughBlock]));
    }
    return boundariesFrom(seen).map(({ cycle, throughBlock }) => ({ cycle, throughBlock, ...totals.get(cycle)! }));
  }
}
