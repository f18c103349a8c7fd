import type { Address, Hex } from "viem";
import { atOrBefore, byChainPosition, type ChainPosition } from "../chain/position.js";
import { mulPoint, type Point } from "../eerc/curve.js";
import { deriveShareOf } from "../eerc/derive.js";
import { allocatePool } from "../revenue/allocate.js";
import { owed } from "../revenue/earnings.js";
import { feeMicro, priceLines } from "../revenue/price.js";
import { type SettlementSchedule, type SettlementTerm, settlementSchedule, termAt } from "../revenue/schedule.js";
import type { ProviderId, RevenueLine } from "../revenue/types.js";
import type { UsageLine } from "../usage/lines.js";
import { periodOf } from "../usage/period.js";
import { type Pricing, PricingModel } from "../usage/pricing.js";
import { LayeredMap } from "../util/layered-map.js";
import { getOrCreate } from "../util/map.js";
import { admitLines, type BindingIndex, type DecryptedBatch, indexBindings, type LineAlert, type ServerBindingFact } from "./admission.js";
import { CycleBoundaryConflictError } from "./errors.js";
import type { PoolFeeFact, ProviderChangeFact, SettlementFacts } from "./facts.js";
import type { Payout } from "./tag.js";

/**
 * How usage becomes earnings, cycle by cycle. A cycle settles everything on chain up to its
 * `throughBlock`, with the fee and the pricing period the ProviderRegistry records over time (the
 * schedule's rules are in `src/revenue/schedule.ts`: a change applies from the next period):
 * - per-call and tiered usage is priced per pricing period (the UTC month or day of the batch's
 *   period start, under the record in force then), cumulatively: tiers walk the period's billable
 *   calls so far, and the platform fee on a (period, provider) amount is the fee of its period;
 * - the free-API pool of a cycle is what the revenue pool received in the cycle's blocks
 *   (previous boundary, throughBlock], plus the levy of the lines committed in those blocks (what
 *   their paid calls brought in beyond their price: the platform's per-call surcharge, `levyOf`),
 *   less the platform fee (each payment under the record in force at its block's timestamp, the
 *   fee taken on the sum of the payments under one record; the levy under its line's period's
 *   record), plus what the previous cycle carried. A reserve, uniform in [0, the cycle's own pool after fee] and derived from a secret
 *   only the operator and the auditor hold (`poolSecret`), is withheld and carried to the next
 *   cycle; the rest is split by largest remainder over the free-pool usage committed in the
 *   cycle's blocks (billable calls × pool weight). A cycle without free-pool usage carries all
 *   of it. The fee payments are public, so without the reserve a free provider would know what
 *   the others shared, and with one other free provider, its exact share and usage; with it,
 *   what was split is unknown outside the operator and the auditor. Nothing is lost: what a
 *   cycle carries is in the next cycle's pool;
 * - the pricing of a (provider, period) is the registration in force at the provider's first
 *   line of that period, so a pricing change applies from the next period and earnings through a
 *   block never shrink as later blocks are settled.
 * Only the lines `admitLines` (`admission.ts`) counts are settled: a line is ignored when its
 * server was not bound to its provider at the batch's commit, or when the reader's copy disagrees
 * with the line's public commitment, and is cut to the caps of its server's binding.
 * Earnings through a cycle's boundary are therefore final once the boundary is final, and anyone
 * with the chain, the boundaries (in the payout tags) and a key that reads the lines (operator
 * or auditor) computes the same numbers.
 */
/**
 * The secret behind a cycle's pool reserve: the x-coordinate of the Diffie-Hellman point of the
 * operator's eERC key and the key of the auditor in force at the cycle's boundary, which each of
 * the two computes from its own private key and the other's public key, and nobody else can.
 */
export type PoolSecret = (cycle: CycleBoundary) => bigint;

export const poolSecret = (sk: bigint, counterpartPk: Point): bigint => mulPoint(counterpartPk, sk)[0];

/** The operator's pool secrets: with the auditor key in force at each cycle's boundary. */
export function operatorPoolSecret(operatorSk: bigint, auditorChanges: readonly { publicKey: Point; blockNumber: bigint }[]): PoolSecret {
  return ({ cycle, throughBlock }) => {
    const auditor = auditorChanges.filter((a) => a.blockNumber <= throughBlock).at(-1);
    if (!auditor) throw new Error(`cycle ${cycle}: no auditor was set by block ${throughBlock}`);
    return poolSecret(operatorSk, auditor.publicKey);
  };
}

/**
 * What a cycle withholds from its pool: a fraction of it, uniform in [0, 1) and fixed per cycle
 * number, so a cycle's reserve does not change with the block it settles through (the pending
 * amounts served before the cycle runs would otherwise show many draws of it).
 */
export function poolReserve(secret: bigint, cycle: number, poolAfterFee: bigint): bigint {
  return deriveShareOf(secret, `pool-reserve|${cycle}`, poolAfterFee);
}

export type { DecryptedBatch, LineAlert, ServerBindingFact } from "./admission.js";

/**
 * What a line's paid calls brought in beyond the price they were billed at: the per-call
 * surcharge the agents paid on top of the providers' prices, which funds the free-API pool. 0 for
 * calls not paid through x402 (revenue 0), and never negative: a server that charged less than
 * its price has no levy, and its provider is still owed the price.
 */
export const levyOf = (line: Pick<UsageLine, "amountMicro" | "revenueMicro">): bigint =>
  line.revenueMicro > line.amountMicro ? line.revenueMicro - line.amountMicro : 0n;

export type CycleBoundary = { cycle: number; throughBlock: bigint };

export type CycleEarnings = {
  cycle: number;
  /** The previous boundary (exclusive); -1 for the first cycle. */
  afterBlock: bigint;
  throughBlock: bigint;
  /** What the revenue pool received in the cycle's blocks. */
  poolMicro: bigint;
  /** The levy (`levyOf`) of the lines committed in the cycle's blocks: part of the pool. */
  levyMicro: bigint;
  /** The platform fee on the pool and the levy. */
  poolFeeMicro: bigint;
  /** What the paid calls of the lines committed in the cycle's blocks brought in (Σ revenueMicro). */
  callRevenueMicro: bigint;
  /** Carried in from the previous cycle. */
  carriedInMicro: bigint;
  /** Split over the cycle's free-pool usage: poolMicro + levyMicro − poolFeeMicro + carriedInMicro − carriedOutMicro. */
  splitMicro: bigint;
  /** Carried to the next cycle: the reserve, or the whole pool when nobody had free-pool usage. */
  carriedOutMicro: bigint;
  /** Cumulative net earnings through `throughBlock`, by provider id ascending. */
  earnedThrough: Map<ProviderId, bigint>;
  /** This cycle's pool split, per free provider (part of `earnedThrough`). */
  poolShares: Map<ProviderId, bigint>;
  /** Billable calls committed in the cycle's blocks, per provider. */
  billableCalls: Map<ProviderId, bigint>;
  /** Per-call and tiered revenue this cycle settles (gross: earned through its boundary less earned through the previous one). */
  usageMicro: bigint;
  /** The platform fee on `usageMicro`. */
  usageFeeMicro: bigint;
};

/** The cycle boundaries the payout tags record, ascending; the payouts of one cycle must agree. */
export function boundariesOf(payouts: readonly Payout[]): CycleBoundary[] {
  const seen = new Map<number, Set<bigint>>();
  for (const p of payouts) {
    const s = seen.get(p.cycle) ?? new Set<bigint>();
    s.add(p.throughBlock);
    seen.set(p.cycle, s);
  }
  return boundariesFrom(seen);
}

/** The boundaries of `boundariesOf`, from the boundaries the payouts of each cycle recorded. */
export function boundariesFrom(seen: ReadonlyMap<number, ReadonlySet<bigint>>): CycleBoundary[] {
  const out: CycleBoundary[] = [];
  for (const cycle of [...seen.keys()].sort((a, b) => a - b)) {
    const blocks = [...seen.get(cycle)!];
    if (blocks.length !== 1) throw new CycleBoundaryConflictError(cycle, blocks);
    out.push({ cycle, throughBlock: blocks[0]! });
  }
  for (let i = 1; i < out.length; i++) {
    if (out[i]!.throughBlock < out[i - 1]!.throughBlock)
      throw new CycleBoundaryConflictError(out[i]!.cycle, [out[i - 1]!.throughBlock, out[i]!.throughBlock]);
  }
  return out;
}

/** The registration in force at a position: the provider's latest change at or before it, undefined before registration. */
function registrationAt(changes: readonly ProviderChangeFact[], at: ChainPosition): ProviderChangeFact | undefined {
  let found: ProviderChangeFact | undefined;
  for (const c of changes) {
    if (!atOrBefore(c, at)) break;
    found = c;
  }
  return found;
}

/**
 * What settles usage besides the usage itself: the schedule, the server bindings, the providers'
 * registrations and the pool secret. These facts are few (per record, binding and provider
 * change, not per call) and are read whole; the usage and the pool payments are read cycle by cycle.
 */
export type SettlementRules = {
  schedule: SettlementSchedule;
  /** The UsageLedger's server bindings, in any order or indexed (`admitLines`). */
  serverBindings: readonly ServerBindingFact[] | BindingIndex;
  /** Each provider's registration changes, in chain order (`registrationsOf`). */
  registrations: ReadonlyMap<ProviderId, readonly ProviderChangeFact[]>;
  poolSecret: PoolSecret;
};

/** Provider changes grouped by provider, each list in chain order. */
export function registrationsOf(changes: readonly ProviderChangeFact[]): Map<ProviderId, ProviderChangeFact[]> {
  const out = new Map<ProviderId, ProviderChangeFact[]>();
  for (const c of [...changes].sort(byChainPosition)) getOrCreate(out, c.providerId, () => []).push(c);
  return out;
}

/**
 * One provider's usage in one pricing period, through the last boundary settled: the pricing of
 * the registration in force at its first line (null: it earns nothing), and for per-call and
 * tiered pricing the billable calls counted and what `priceLines` makes of them.
 */
export type PeriodUsage = { pricing: Pricing | null; calls: bigint; grossMicro: bigint; feeMicro: bigint; netMicro: bigint };

/**
 * Everything settling the next cycle needs of the cycles before it, whatever their length: per
 * (server, provider, period) the calls admitted against the caps, per period its fee, per
 * (provider, period) its pricing and priced calls, per provider its net per-call and tiered
 * earnings and its pool shares, and the last boundary with what it carried. `settleCycle` moves
 * it one cycle on; from `emptySettlementState()`, folding every cycle's facts gives the settlement
 * from genesis.
 */
export type SettlementState = {
  /** The last cycle settled (0 before the first). */
  cycle: number;
  /** Its boundary (-1 before the first cycle). */
  throughBlock: bigint;
  /** What it carried to the next cycle. */
  carriedOutMicro: bigint;
  /** Per-call and tiered revenue through the boundary, gross, and its platform fee. */
  usageGrossMicro: bigint;
  usageFeeMicro: bigint;
  /** `admitLines`'s calls counted per `server:provider:period`. */
  used: LayeredMap<string, bigint>;
  /** The fee (bps) of each pricing period: that of the record in force at its first batch. */
  periodFees: LayeredMap<number, bigint>;
  /** Per `provider:period`. */
  usage: LayeredMap<string, PeriodUsage>;
  /** Net per-call and tiered earnings through the boundary, per provider with such usage (0 included). */
  commercial: LayeredMap<ProviderId, bigint>;
  /** Pool shares through the boundary, per provider that had free-pool usage in a split cycle (0 included). */
  poolShares: LayeredMap<ProviderId, bigint>;
};

export function emptySettlementState(): SettlementState {
  return {
    cycle: 0,
    throughBlock: -1n,
    carriedOutMicro: 0n,
    usageGrossMicro: 0n,
    usageFeeMicro: 0n,
    used: new LayeredMap(),
    periodFees: new LayeredMap(),
    usage: new LayeredMap(),
    commercial: new LayeredMap(),
    poolShares: new LayeredMap(),
  };
}

/** A state whose maps are new layers over `s`'s: what is written to it leaves `s` as it was. */
function layerOver(s: SettlementState): SettlementState {
  return {
    ...s,
    used: s.used.layer(),
    periodFees: s.periodFees.layer(),
    usage: s.usage.layer(),
    commercial: s.commercial.layer(),
    poolShares: s.poolShares.layer(),
  };
}

/** Writes a state's top layers into the layers below (the state `settleCycle` was given), and returns it so. */
export function commitSettlementState(s: SettlementState): SettlementState {
  return {
    ...s,
    used: s.used.commit(),
    periodFees: s.periodFees.commit(),
    usage: s.usage.commit(),
    commercial: s.commercial.commit(),
    poolShares: s.poolShares.commit(),
  };
}

/**
 * Settles one cycle on top of the cycles before it (`state`): `facts` are the batches (with the
 * lines the reader decrypted) and the pool payments of the cycle's blocks (state.throughBlock,
 * boundary.throughBlock]. Returns the cycle's earnings, the lines `admitLines` ignored or capped,
 * and the state after the cycle as a layer over `state`, which is left as it was
 * (`commitSettlementState` makes the new state the only one). Its cost grows with the cycle's
 * facts and the number of providers, not with the cycles before it.
 */
export function settleCycle(
  state: SettlementState,
  boundary: CycleBoundary,
  facts: { batches: readonly DecryptedBatch[]; poolFees: readonly PoolFeeFact[] },
  rules: SettlementRules,
): { earnings: CycleEarnings; alerts: LineAlert[]; state: SettlementState } {
  const { cycle, throughBlock } = boundary;
  const afterBlock = state.throughBlock;
  if (throughBlock < afterBlock) throw new CycleBoundaryConflictError(cycle, [afterBlock, throughBlock]);
  const next = layerOver(state);
  const { batches, alerts } = admitLines(facts.batches, rules.serverBindings, rules.schedule, next.used);

  const weights = new Map<ProviderId, bigint>();
  const billableCalls = new Map<ProviderId, bigint>();
  const levyByFee = new Map<bigint, bigint>();
  let callRevenueMicro = 0n;
  /** The per-call and tiered (provider, period)s the cycle's lines add calls to, with the calls they add. */
  const added = new Map<string, { providerId: ProviderId; period: number; feeBps: bigint; calls: bigint }>();
  for (const batch of batches) {
    const inForce = termAt(rules.schedule, batch.periodStart / 1000n, batch);
    const period = periodOf(Number(batch.periodStart), inForce.periodUnit);
    let feeBps = next.periodFees.get(period);
    if (feeBps === undefined) {
      feeBps = BigInt(inForce.feeBps);
      next.periodFees.set(period, feeBps);
    }
    for (const line of batch.lines) {
      const providerId = line.providerId.toLowerCase() as ProviderId;
      const key = `${providerId}:${period}`;
      let usage = next.usage.get(key);
      if (usage === undefined) {
        const reg = registrationAt(rules.registrations.get(providerId) ?? [], batch);
        usage = { pricing: reg?.active ? reg.pricing : null, calls: 0n, grossMicro: 0n, feeMicro: 0n, netMicro: 0n };
        next.usage.set(key, usage);
      }
      billableCalls.set(providerId, (billableCalls.get(providerId) ?? 0n) + line.billableCalls);
      levyByFee.set(feeBps, (levyByFee.get(feeBps) ?? 0n) + levyOf(line));
      callRevenueMicro += line.revenueMicro;
      if (usage.pricing?.model === PricingModel.FreePool) {
        weights.set(providerId, (weights.get(providerId) ?? 0n) + line.billableCalls * BigInt(usage.pricing.poolWeight));
        continue;
      }
      const a = getOrCreate(added, key, () => ({ providerId, period, feeBps, calls: 0n }));
      a.calls += line.billableCalls;
    }
  }

  let poolMicro = 0n;
  const poolByTerm = new Map<SettlementTerm, bigint>();
  for (const f of facts.poolFees) {
    if (f.blockNumber <= afterBlock || f.blockNumber > throughBlock) continue;
    const term = termAt(rules.schedule, f.timestamp, f);
    poolMicro += f.amount;
    poolByTerm.set(term, (poolByTerm.get(term) ?? 0n) + f.amount);
  }
  let poolFeeMicro = 0n;
  for (const [term, amount] of poolByTerm) poolFeeMicro += feeMicro(amount, BigInt(term.feeBps));
  let levyMicro = 0n;
  for (const [feeBps, amount] of levyByFee) {
    levyMicro += amount;
    poolFeeMicro += feeMicro(amount, feeBps);
  }
  const carriedInMicro = state.carriedOutMicro;
  const afterFee = poolMicro + levyMicro - poolFeeMicro;
  const positive = [...weights.values()].some((w) => w > 0n);
  const carriedOutMicro = positive ? poolReserve(rules.poolSecret(boundary), cycle, afterFee) : afterFee + carriedInMicro;
  const splitMicro = afterFee + carriedInMicro - carriedOutMicro;
  const cyclePoolShares = positive ? allocatePool(splitMicro, weights) : new Map<ProviderId, bigint>();
  for (const [id, share] of cyclePoolShares) next.poolShares.set(id, (next.poolShares.get(id) ?? 0n) + share);

  // A (provider, period) is priced on all its calls so far (tiers are cumulative per period), and
  // the cycle earns the difference. Each period has one fee, so pricing fee by fee prices each once.
  const byFee = new Map<bigint, RevenueLine[]>();
  for (const [key, a] of added) {
    const calls = next.usage.get(key)!.calls + a.calls;
    getOrCreate(byFee, a.feeBps, () => []).push({ period: a.period, providerId: a.providerId, billableCalls: calls });
  }
  let usageMicro = 0n;
  let usageFeeMicro = 0n;
  for (const [feeBps, lines] of byFee) {
    const revenue = priceLines({ lines, pricing: (id, period) => next.usage.get(`${id}:${period}`)?.pricing ?? null, feeBps });
    for (const [period, priced] of revenue.byPeriod) {
      for (const [id, p] of priced.providers) {
        const key = `${id}:${period}`;
        const before = next.usage.get(key)!;
        next.usage.set(key, {
          pricing: before.pricing,
          calls: p.billableCalls,
          grossMicro: p.grossMicro,
          feeMicro: p.feeMicro,
          netMicro: p.netMicro,
        });
        next.commercial.set(id, (next.commercial.get(id) ?? 0n) + p.netMicro - before.netMicro);
        usageMicro += p.grossMicro - before.grossMicro;
        usageFeeMicro += p.feeMicro - before.feeMicro;
      }
    }
  }

  const earnedThrough = new Map<ProviderId, bigint>();
  for (const id of [...next.commercial.keys(), ...next.poolShares.keys()].sort()) {
    if (!earnedThrough.has(id)) earnedThrough.set(id, (next.commercial.get(id) ?? 0n) + (next.poolShares.get(id) ?? 0n));
  }
  next.cycle = cycle;
  next.throughBlock = throughBlock;
  next.carriedOutMicro = carriedOutMicro;
  next.usageGrossMicro = state.usageGrossMicro + usageMicro;
  next.usageFeeMicro = state.usageFeeMicro + usageFeeMicro;
  return {
    earnings: {
      cycle,
      afterBlock,
      throughBlock,
      poolMicro,
      levyMicro,
      poolFeeMicro,
      callRevenueMicro,
      carriedInMicro,
      splitMicro,
      carriedOutMicro,
      earnedThrough,
      poolShares: cyclePoolShares,
      billableCalls,
      usageMicro,
      usageFeeMicro,
    },
    alerts,
    state: next,
  };
}

/** The facts of each cycle in turn: `items` in chain order, cut at each boundary. */
function* cutAt<T extends ChainPosition>(items: readonly T[], boundaries: readonly CycleBoundary[]): Generator<T[]> {
  const sorted = [...items].sort(byChainPosition);
  let i = 0;
  for (const { throughBlock } of boundaries) {
    const from = i;
    while (i < sorted.length && sorted[i]!.blockNumber <= throughBlock) i++;
    yield sorted.slice(from, i);
  }
}

/** The rules of a set of facts, for the settlement from genesis. */
function rulesOf(args: {
  serverBindings: readonly ServerBindingFact[];
  providerChanges: readonly ProviderChangeFact[];
  schedule: SettlementSchedule;
  poolSecret: PoolSecret;
}): SettlementRules {
  return {
    schedule: args.schedule,
    serverBindings: indexBindings(args.serverBindings),
    registrations: registrationsOf(args.providerChanges),
    poolSecret: args.poolSecret,
  };
}

/**
 * Earnings of each cycle, in boundary order (boundaries never going back): `settleCycle` folded
 * over the cycles from genesis.
 */
export function cycleEarnings(args: {
  batches: readonly DecryptedBatch[];
  /** The UsageLedger's server bindings, in any order: which lines count (`admitLines`). */
  serverBindings: readonly ServerBindingFact[];
  providerChanges: readonly ProviderChangeFact[];
  poolFees: readonly PoolFeeFact[];
  boundaries: readonly CycleBoundary[];
  schedule: SettlementSchedule;
  poolSecret: PoolSecret;
}): CycleEarnings[] {
  return foldCycles(emptySettlementState(), args.boundaries, args, rulesOf(args)).earnings;
}

/** `settleCycle` over `boundaries` in turn, from `state`, each cycle committed. */
function foldCycles(
  state: SettlementState,
  boundaries: readonly CycleBoundary[],
  facts: { batches: readonly DecryptedBatch[]; poolFees: readonly PoolFeeFact[] },
  rules: SettlementRules,
): { state: SettlementState; earnings: CycleEarnings[]; alerts: LineAlert[] } {
  const batches = cutAt(facts.batches, boundaries);
  const poolFees = cutAt(facts.poolFees, boundaries);
  const earnings: CycleEarnings[] = [];
  const alerts: LineAlert[] = [];
  for (const boundary of boundaries) {
    const step = settleCycle(state, boundary, { batches: batches.next().value!, poolFees: poolFees.next().value! }, rules);
    state = commitSettlementState(step.state);
    earnings.push(step.earnings);
    for (const a of step.alerts) alerts.push(a);
  }
  return { state, earnings, alerts };
}

/** What each cycle paid each provider, with the transfers that did it. */
export type CyclePayments = Map<number, Map<ProviderId, { amountMicro: bigint; transfers: number }>>;

export function paymentsByCycle(payouts: readonly Payout[], amountOf: (p: Payout) => bigint): CyclePayments {
  const out: CyclePayments = new Map();
  for (const p of payouts) {
    const cycle = out.get(p.cycle) ?? new Map();
    const entry = cycle.get(p.providerId) ?? { amountMicro: 0n, transfers: 0 };
    entry.amountMicro += amountOf(p);
    entry.transfers += 1;
    cycle.set(p.providerId, entry);
    out.set(p.cycle, cycle);
  }
  return out;
}

/** Total paid per provider over every cycle. */
export function paidTotals(payments: CyclePayments): Map<ProviderId, bigint> {
  const out = new Map<ProviderId, bigint>();
  for (const cycle of payments.values()) for (const [id, p] of cycle) out.set(id, (out.get(id) ?? 0n) + p.amountMicro);
  return out;
}

/**
 * What a provider's row of a cycle shows the auditor:
 * - `ok`: paid what it was owed, in one transfer (or at most one zero-amount transfer when owed
 *   nothing);
 * - `deferred`: owed something and paid nothing while its payout account's pending queue was full
 *   (held at least the eERC's cap of pending amount PCTs) when the cycle's last payout transfer
 *   was mined: no credit could reach it, so what it is owed is carried to a later cycle;
 * - `short`: paid less than owed otherwise, including nothing while its queue was not full, or
 *   while the cap is not known;
 * - `overpaid`: paid more than owed;
 * - `split`: paid what it was owed in more than one transfer (or in none, when the amount is 0 but
 *   a transfer was due).
 * Only `ok` and `deferred` reconcile.
 */
export type PayoutStatus = "ok" | "deferred" | "short" | "overpaid" | "split";

/**
 * A receiver's pending queue as the indexed state shows it right after a cycle's last payout
 * transfer (`txHash`, at `blockNumber`/`logIndex`): `pendingPCTs` amount PCTs pending on
 * `account`'s balance of `tokenId`.
 */
export type QueueReading = ChainPosition & { account: Address; tokenId: bigint; pendingPCTs: bigint; txHash: Hex };

/** The rule: a row's status from what it was owed and paid and, for a provider paid nothing, its queue against the cap (null: none known). */
export function payoutStatus(
  row: { owedMicro: bigint; paidMicro: bigint; transfers: number },
  queue: Pick<QueueReading, "pendingPCTs"> | null,
  pendingCap: bigint | null,
): PayoutStatus {
  // Nothing owed: no transfer, or one zero-amount transfer (the agent pads every cycle with them).
  if (row.paidMicro === row.owedMicro) return (row.owedMicro > 0n ? row.transfers === 1 : row.transfers <= 1) ? "ok" : "split";
  if (row.paidMicro > row.owedMicro) return "overpaid";
  if (row.transfers === 0 && queue !== null && pendingCap !== null && queue.pendingPCTs >= pendingCap) return "deferred";
  return "short";
}

export type ReconciliationRow = {
  cycle: number;
  providerId: ProviderId;
  /** Earned through the cycle's boundary minus everything paid in earlier cycles. */
  owedMicro: bigint;
  paidMicro: bigint;
  transfers: number;
  status: PayoutStatus;
  /** `status` is `ok` or `deferred`. */
  ok: boolean;
  /** Part of `owedMicro` the provider's row of the previous cycle deferred (carried in with it). */
  deferredInMicro: bigint;
  /** For a deferred row, the later cycle that paid it what it was owed; null while none has. */
  settledInCycle: number | null;
  /** For a provider owed something and paid nothing: its pending queue at the cycle's last payout transfer (null: not read). */
  queue: QueueReading | null;
};

/** The key of a (cycle, provider) queue reading. */
export const queueKey = (cycle: number, providerId: ProviderId): string => `${cycle}:${providerId}`;

/** What tells a deferral from a short payout: the eERC's pending cap (null: none known) and the queues read for the unpaid rows (`queueKey`). */
export type DeferralEvidence = { pendingCap: bigint | null; queues: ReadonlyMap<string, QueueReading> };

/** A row owed something and paid nothing, whose queue tells whether it was deferred. */
export const isUnpaid = (r: Pick<ReconciliationRow, "owedMicro" | "paidMicro" | "transfers">): boolean =>
  r.owedMicro > 0n && r.paidMicro === 0n && r.transfers === 0;

/**
 * Per cycle and provider: paid against owed, and the status that says whether they agree
 * (`payoutStatus`). What a deferred row was owed is carried into the provider's row of the next
 * cycle (`deferredInMicro`), whose owed amount already includes it (owed is cumulative).
 */
export function reconcileCycles(
  earnings: readonly CycleEarnings[],
  payments: CyclePayments,
  evidence: DeferralEvidence = { pendingCap: null, queues: new Map() },
): ReconciliationRow[] {
  const paidBefore = new Map<ProviderId, bigint>();
  let deferredBefore = new Map<ProviderId, bigint>();
  const rows: ReconciliationRow[] = [];
  for (const c of earnings) {
    const paid = payments.get(c.cycle) ?? new Map();
    const deferred = new Map<ProviderId, bigint>();
    const ids = [...new Set([...c.earnedThrough.keys(), ...paid.keys()])].sort();
    for (const id of ids) {
      const owedMicro = (c.earnedThrough.get(id) ?? 0n) - (paidBefore.get(id) ?? 0n);
      const p = paid.get(id) ?? { amountMicro: 0n, transfers: 0 };
      if (owedMicro === 0n && p.transfers === 0) continue;
      const base = { owedMicro, paidMicro: p.amountMicro, transfers: p.transfers };
      const queue = isUnpaid(base) ? (evidence.queues.get(queueKey(c.cycle, id)) ?? null) : null;
      const status = payoutStatus(base, queue, evidence.pendingCap);
      if (status === "deferred") deferred.set(id, owedMicro);
      rows.push({
        cycle: c.cycle,
        providerId: id,
        ...base,
        status,
        ok: status === "ok" || status === "deferred",
        deferredInMicro: deferredBefore.get(id) ?? 0n,
        settledInCycle: null,
        queue,
      });
    }
    for (const [id, p] of paid) paidBefore.set(id, (paidBefore.get(id) ?? 0n) + p.amountMicro);
    deferredBefore = deferred;
  }
  // A deferral is settled by the provider's next row that is not deferred again, when that row is ok.
  const settledBy = new Map<ProviderId, ReconciliationRow>();
  for (const r of [...rows].reverse()) {
    if (r.status !== "deferred") settledBy.set(r.providerId, r);
    else if (settledBy.get(r.providerId)?.status === "ok") r.settledInCycle = settledBy.get(r.providerId)!.cycle;
  }
  return rows;
}

/**
 * Where the money of the settled cycles went, to the micro-USDC. Two sources pay providers: the
 * fees users pay into the revenue pool (public USDC transfers), and the per-call and tiered usage
 * the operator bills its users and pays from its own funds (off chain; `usageMicro`, recomputed
 * from the usage lines and the public pricing). A cycle's
 *   feesMicro + usageMicro + levyMicro + carriedInMicro + deferredInMicro
 *     = paidMicro + platformFeeMicro + carriedOutMicro + deferredOutMicro
 * where `feesMicro` is what the pool received in the cycle's blocks, `paidMicro` the decrypted
 * payouts tagged with the cycle, `platformFeeMicro` the fee on the pool and on the usage, the
 * carries are the free pool's (the reserve, or the whole pool when no free API had usage), and
 * the deferred amounts are what providers whose pending queue was full were owed and not paid
 * (`payoutStatus`): carried out by the cycle that deferred them, into the next, whose owed
 * amounts include them. It holds exactly when the cycle paid what its settlement released and
 * what earlier cycles deferred, less what it deferred. Over all cycles,
 *   feesMicro + usageMicro + levyMicro = paidMicro + platformFeeMicro + carriedOutMicro + deferredOutMicro + unsettledMicro
 * with every fee payment indexed so far, the last cycle's carry and deferrals (still owed) and the
 * fees received after the last boundary (the next cycle's). `depositedMicro`, the public deposits
 * into the payers' encrypted balances in the same blocks, is shown and not part of the equality:
 * deposits carry the pool's fees and the operator's own money alike.
 */
export type MoneyFlow = {
  /** Payments into the revenue pool. */
  feesMicro: bigint;
  /** What the paid calls brought in (Σ revenueMicro of the lines): the usage and the levy, where every billed call was paid. */
  callRevenueMicro: bigint;
  /** Per-call and tiered usage, priced. */
  usageMicro: bigint;
  /** The calls' levy, into the free-API pool. */
  levyMicro: bigint;
  depositedMicro: bigint;
  paidMicro: bigint;
  platformFeeMicro: bigint;
  carriedInMicro: bigint;
  carriedOutMicro: bigint;
  /** Owed to providers the previous cycle deferred (0 in the total). */
  deferredInMicro: bigint;
  /** Owed to providers this cycle deferred; in the total, the last cycle's (still owed). */
  deferredOutMicro: bigint;
  /** Fees received after the last boundary; 0 for a single cycle. */
  unsettledMicro: bigint;
  /** In less out: 0 when the money is accounted for. */
  differenceMicro: bigint;
  ok: boolean;
};

const flowOf = (f: Omit<MoneyFlow, "differenceMicro" | "ok">): MoneyFlow => {
  const differenceMicro =
    f.feesMicro +
    f.usageMicro +
    f.levyMicro +
    f.carriedInMicro +
    f.deferredInMicro -
    (f.paidMicro + f.platformFeeMicro + f.carriedOutMicro + f.deferredOutMicro + f.unsettledMicro);
  return { ...f, differenceMicro, ok: differenceMicro === 0n };
};

/** What a cycle's rows deferred: carried in from the previous cycle, and out to the next. */
export function deferredOf(rows: readonly ReconciliationRow[]): { deferredInMicro: bigint; deferredOutMicro: bigint } {
  let deferredInMicro = 0n;
  let deferredOutMicro = 0n;
  for (const r of rows) {
    deferredInMicro += r.deferredInMicro;
    if (r.status === "deferred") deferredOutMicro += r.owedMicro;
  }
  return { deferredInMicro, deferredOutMicro };
}

/**
 * One cycle's money flow: `paidMicro` its decrypted payouts, `depositedMicro` the payers' deposits
 * in its blocks, and what its rows deferred (`deferredOf`; none when not given).
 */
export function cycleMoneyFlow(
  e: CycleEarnings,
  paid: { paidMicro: bigint; depositedMicro: bigint; deferredInMicro?: bigint; deferredOutMicro?: bigint },
): MoneyFlow {
  return flowOf({
    feesMicro: e.poolMicro,
    callRevenueMicro: e.callRevenueMicro,
    usageMicro: e.usageMicro,
    levyMicro: e.levyMicro,
    depositedMicro: paid.depositedMicro,
    paidMicro: paid.paidMicro,
    platformFeeMicro: e.poolFeeMicro + e.usageFeeMicro,
    carriedInMicro: e.carriedInMicro,
    carriedOutMicro: e.carriedOutMicro,
    deferredInMicro: paid.deferredInMicro ?? 0n,
    deferredOutMicro: paid.deferredOutMicro ?? 0n,
    unsettledMicro: 0n,
  });
}

/**
 * The money flow over every cycle through the indexed head: `feesMicro` and `depositedMicro` every
 * fee payment and payer deposit indexed, `paidMicro` every decrypted payout, `deferredMicro` what
 * the last cycle deferred (still owed).
 */
export function totalMoneyFlow(
  earnings: readonly CycleEarnings[],
  all: { feesMicro: bigint; depositedMicro: bigint; paidMicro: bigint; deferredMicro?: bigint },
): MoneyFlow {
  const settledFees = earnings.reduce((s, e) => s + e.poolMicro, 0n);
  return flowOf({
    feesMicro: all.feesMicro,
    callRevenueMicro: earnings.reduce((s, e) => s + e.callRevenueMicro, 0n),
    usageMicro: earnings.reduce((s, e) => s + e.usageMicro, 0n),
    levyMicro: earnings.reduce((s, e) => s + e.levyMicro, 0n),
    depositedMicro: all.depositedMicro,
    paidMicro: all.paidMicro,
    platformFeeMicro: earnings.reduce((s, e) => s + e.poolFeeMicro + e.usageFeeMicro, 0n),
    carriedInMicro: 0n,
    carriedOutMicro: earnings.at(-1)?.carriedOutMicro ?? 0n,
    deferredInMicro: 0n,
    deferredOutMicro: all.deferredMicro ?? 0n,
    unsettledMicro: all.feesMicro - settledFees,
  });
}

export type Due = {
  cycle: number;
  throughBlock: bigint;
  poolMicro: bigint;
  due: Map<ProviderId, bigint>;
  /** The part of `due` that is this cycle's free-pool split. */
  poolShares: Map<ProviderId, bigint>;
};

/** Where the payout ledger stands (`ledgerState`). */
export type LedgerState = {
  payments: CyclePayments;
  paid: Map<ProviderId, bigint>;
  unfinished: Due | null;
  next: Due | null;
  last: CycleBoundary | null;
  /** The lines of the batches through `through` that settlement ignored or capped (`admitLines`). */
  alerts: LineAlert[];
};

/** What a cycle owes: its earnings through its boundary less everything `paid`. Throws OverpaidError (`owed`). */
export function dueOf(e: CycleEarnings, paid: ReadonlyMap<ProviderId, bigint>): Due {
  return {
    cycle: e.cycle,
    throughBlock: e.throughBlock,
    poolMicro: e.poolMicro,
    due: owed(e.earnedThrough, paid),
    poolShares: e.poolShares,
  };
}

/**
 * Where the payout ledger stands: what was paid (per the payout tags), the last recorded cycle if it
 * still owes someone (an interrupted cycle, to finish under its own boundary), and what a new
 * cycle through `through` would owe. `owed` throws OverpaidError if anyone was paid more than earned.
 */
export function ledgerState(args: {
  batches: readonly DecryptedBatch[];
  serverBindings: readonly ServerBindingFact[];
  providerChanges: readonly ProviderChangeFact[];
  poolFees: readonly PoolFeeFact[];
  payouts: readonly Payout[];
  amountOf: (p: Payout) => bigint;
  schedule: SettlementSchedule;
  poolSecret: PoolSecret;
  through: bigint;
}): LedgerState {
  const payments = paymentsByCycle(args.payouts, args.amountOf);
  const paid = paidTotals(payments);
  const recorded = boundariesOf(args.payouts);
  const last = recorded.at(-1) ?? null;
  const rules = rulesOf(args);
  const settled = foldCycles(emptySettlementState(), recorded, args, rules);
  const finished = settled.earnings.length > 0 ? dueOf(settled.earnings.at(-1)!, paid) : null;
  const unfinished = finished && finished.due.size > 0 ? finished : null;
  let next: Due | null = null;
  if (!last || args.through > last.throughBlock) {
    const after = settled.state.throughBlock;
    const inCycle = <T extends ChainPosition>(items: readonly T[]) =>
      items.filter((x) => x.blockNumber > after && x.blockNumber <= args.through);
    const boundary = { cycle: (last?.cycle ?? 0) + 1, throughBlock: args.through };
    next = dueOf(
      settleCycle(settled.state, boundary, { batches: inCycle(args.batches), poolFees: inCycle(args.poolFees) }, rules).earnings,
      paid,
    );
  }
  const alerts = admitLines(
    args.batches.filter((b) => b.blockNumber <= args.through),
    rules.serverBindings,
    args.schedule,
  ).alerts;
  return { payments, paid, unfinished, next, last, alerts };
}

/**
 * The ledger as the operator reads it from indexed facts: batches with its decrypted lines, payout
 * amounts opened with its key (`amounts`, by transaction), the pool reserve from its secret, the
 * settlement settings as recorded on chain.
 */
export function operatorLedgerState(
  facts: Pick<SettlementFacts, "providerChanges" | "poolFees" | "payouts" | "auditorChanges" | "settlementRecords" | "serverBindings">,
  args: {
    batches: readonly DecryptedBatch[];
    amounts: ReadonlyMap<Hex, bigint>;
    operatorSk: bigint;
    through: bigint;
  },
) {
  return ledgerState({
    batches: args.batches,
    serverBindings: facts.serverBindings,
    providerChanges: facts.providerChanges,
    poolFees: facts.poolFees,
    payouts: facts.payouts,
    amountOf: (p) => args.amounts.get(p.txHash)!,
    schedule: settlementSchedule(facts.settlementRecords),
    poolSecret: operatorPoolSecret(args.operatorSk, facts.auditorChanges),
    through: args.through,
  });
}
