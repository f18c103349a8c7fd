import type { Hex } from "viem";
import { atOrBefore, type ChainPosition } from "../chain/position.js";
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
import { getOrCreate } from "../util/map.js";
import { admitLines, type DecryptedBatch, type LineAlert, type ServerBindingFact } from "./admission.js";
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

/** Every line with its pricing period, the fee of that period and the pricing that applies to it (null: earns nothing). */
function pricedLines(batches: readonly DecryptedBatch[], changes: readonly ProviderChangeFact[], schedule: SettlementSchedule) {
  const byProvider = new Map<ProviderId, ProviderChangeFact[]>();
  for (const c of changes) {
    const list = byProvider.get(c.providerId) ?? [];
    list.push(c);
    byProvider.set(c.providerId, list);
  }
  const pricingOf = new Map<string, Pricing | null>();
  const termOfPeriod = new Map<number, SettlementTerm>();
  const out: {
    blockNumber: bigint;
    period: number;
    feeBps: bigint;
    providerId: ProviderId;
    billableCalls: bigint;
    levyMicro: bigint;
    revenueMicro: bigint;
    pricing: Pricing | null;
  }[] = [];
  for (const batch of batches) {
    const inForce = termAt(schedule, batch.periodStart / 1000n, batch);
    const period = periodOf(Number(batch.periodStart), inForce.periodUnit);
    const feeBps = BigInt(getOrCreate(termOfPeriod, period, () => inForce).feeBps);
    for (const line of batch.lines) {
      const providerId = line.providerId.toLowerCase() as ProviderId;
      const key = `${providerId}:${period}`;
      let pricing = pricingOf.get(key);
      if (pricing === undefined) {
        const reg = registrationAt(byProvider.get(providerId) ?? [], batch);
        pricing = reg?.active ? reg.pricing : null;
        pricingOf.set(key, pricing);
      }
      out.push({
        blockNumber: batch.blockNumber,
        period,
        feeBps,
        providerId,
        billableCalls: line.billableCalls,
        levyMicro: levyOf(line),
        revenueMicro: line.revenueMicro,
        pricing,
      });
    }
  }
  return out;
}

/** Earnings of each cycle, in boundary order. */
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
  const admitted = admitLines(args.batches, args.serverBindings, args.schedule).batches;
  const lines = pricedLines(admitted, args.providerChanges, args.schedule);
  const poolFeeTerms = args.poolFees.map((f) => termAt(args.schedule, f.timestamp, f));
  const poolShares = new Map<ProviderId, bigint>();
  const out: CycleEarnings[] = [];
  let afterBlock = -1n;
  let carriedInMicro = 0n;
  const usageBefore = { gross: 0n, fee: 0n };
  for (const boundary of args.boundaries) {
    const { cycle, throughBlock } = boundary;
    const inCycle = (b: bigint) => b > afterBlock && b <= throughBlock;

    const commercial = new Map<bigint, RevenueLine[]>();
    const pricing = new Map<string, Pricing | null>();
    const weights = new Map<ProviderId, bigint>();
    const billableCalls = new Map<ProviderId, bigint>();
    const levyByFee = new Map<bigint, bigint>();
    let callRevenueMicro = 0n;
    for (const l of lines) {
      if (l.blockNumber > throughBlock) continue;
      const current = inCycle(l.blockNumber);
      if (current) {
        billableCalls.set(l.providerId, (billableCalls.get(l.providerId) ?? 0n) + l.billableCalls);
        levyByFee.set(l.feeBps, (levyByFee.get(l.feeBps) ?? 0n) + l.levyMicro);
        callRevenueMicro += l.revenueMicro;
      }
      if (l.pricing?.model === PricingModel.FreePool) {
        if (current) weights.set(l.providerId, (weights.get(l.providerId) ?? 0n) + l.billableCalls * BigInt(l.pricing.poolWeight));
        continue;
      }
      getOrCreate(commercial, l.feeBps, () => []).push(l);
      pricing.set(`${l.providerId}:${l.period}`, l.pricing);
    }

    let poolMicro = 0n;
    const poolByTerm = new Map<SettlementTerm, bigint>();
    for (const [i, f] of args.poolFees.entries()) {
      if (!inCycle(f.blockNumber)) continue;
      poolMicro += f.amount;
      poolByTerm.set(poolFeeTerms[i]!, (poolByTerm.get(poolFeeTerms[i]!) ?? 0n) + f.amount);
    }
    let poolFeeMicro = 0n;
    for (const [term, amount] of poolByTerm) poolFeeMicro += feeMicro(amount, BigInt(term.feeBps));
    let levyMicro = 0n;
    for (const [feeBps, amount] of levyByFee) {
      levyMicro += amount;
      poolFeeMicro += feeMicro(amount, feeBps);
    }
    const afterFee = poolMicro + levyMicro - poolFeeMicro;
    const positive = [...weights.values()].some((w) => w > 0n);
    const carriedOutMicro = positive ? poolReserve(args.poolSecret(boundary), cycle, afterFee) : afterFee + carriedInMicro;
    const splitMicro = afterFee + carriedInMicro - carriedOutMicro;
    const cyclePoolShares = positive ? allocatePool(splitMicro, weights) : new Map<ProviderId, bigint>();
    for (const [id, share] of cyclePoolShares) poolShares.set(id, (poolShares.get(id) ?? 0n) + share);

    // Each period has one fee, so pricing the lines fee by fee prices every (period, provider) once.
    const earned = new Map<ProviderId, bigint>();
    const usageThrough = { gross: 0n, fee: 0n };
    for (const [feeBps, group] of commercial) {
      const revenue = priceLines({ lines: group, pricing: (id, period) => pricing.get(`${id}:${period}`) ?? null, feeBps });
      for (const [id, a] of revenue.perProvider) {
        earned.set(id, (earned.get(id) ?? 0n) + a.netMicro);
        usageThrough.gross += a.grossMicro;
        usageThrough.fee += a.feeMicro;
      }
    }
    for (const [id, share] of poolShares) earned.set(id, (earned.get(id) ?? 0n) + share);
    const earnedThrough = new Map<ProviderId, bigint>();
    for (const id of [...earned.keys()].sort()) earnedThrough.set(id, earned.get(id)!);

    out.push({
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
      usageMicro: usageThrough.gross - usageBefore.gross,
      usageFeeMicro: usageThrough.fee - usageBefore.fee,
    });
    afterBlock = throughBlock;
    carriedInMicro = carriedOutMicro;
    Object.assign(usageBefore, usageThrough);
  }
  return out;
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

export type ReconciliationRow = {
  cycle: number;
  providerId: ProviderId;
  /** Earned through the cycle's boundary minus everything paid in earlier cycles. */
  owedMicro: bigint;
  paidMicro: bigint;
  transfers: number;
  ok: boolean;
};

/** Per cycle and provider: paid == owed, in exactly one transfer (at most one, of 0, when nothing was owed). */
export function reconcileCycles(earnings: readonly CycleEarnings[], payments: CyclePayments): ReconciliationRow[] {
  const paidBefore = new Map<ProviderId, bigint>();
  const rows: ReconciliationRow[] = [];
  for (const c of earnings) {
    const paid = payments.get(c.cycle) ?? new Map();
    const ids = [...new Set([...c.earnedThrough.keys(), ...paid.keys()])].sort();
    for (const id of ids) {
      const owedMicro = (c.earnedThrough.get(id) ?? 0n) - (paidBefore.get(id) ?? 0n);
      const p = paid.get(id) ?? { amountMicro: 0n, transfers: 0 };
      if (owedMicro === 0n && p.transfers === 0) continue;
      rows.push({
        cycle: c.cycle,
        providerId: id,
        owedMicro,
        paidMicro: p.amountMicro,
        transfers: p.transfers,
        // Nothing owed: no transfer, or one zero-amount transfer (the agent pads every cycle with them).
        ok: p.amountMicro === owedMicro && (owedMicro > 0n ? p.transfers === 1 : p.transfers <= 1),
      });
    }
    for (const [id, p] of paid) paidBefore.set(id, (paidBefore.get(id) ?? 0n) + p.amountMicro);
  }
  return rows;
}

/**
 * Where the money of the settled cycles went, to the micro-USDC. Two sources pay providers: the
 * fees users pay into the revenue pool (public USDC transfers), and the per-call and tiered usage
 * the operator bills its users and pays from its own funds (off chain; `usageMicro`, recomputed
 * from the usage lines and the public pricing). A cycle's
 *   feesMicro + usageMicro + carriedInMicro = paidMicro + platformFeeMicro + carriedOutMicro
 * where `feesMicro` is what the pool received in the cycle's blocks, `paidMicro` the decrypted
 * payouts tagged with the cycle, `platformFeeMicro` the fee on the pool and on the usage, and the
 * carries are the free pool's (the reserve, or the whole pool when no free API had usage). It
 * holds exactly when the cycle paid what its settlement released. Over all cycles,
 *   feesMicro + usageMicro = paidMicro + platformFeeMicro + carriedMicro + unsettledMicro
 * with every fee payment indexed so far, the last cycle's carry and the fees received after the
 * last boundary (the next cycle's). `depositedMicro`, the public deposits into the payers'
 * encrypted balances in the same blocks, is shown and not part of the equality: deposits carry
 * the pool's fees and the operator's own money alike.
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
  /** Fees received after the last boundary; 0 for a single cycle. */
  unsettledMicro: bigint;
  /** In less out: 0 when the money is accounted for. */
  differenceMicro: bigint;
  ok: boolean;
};

const flowOf = (f: Omit<MoneyFlow, "differenceMicro" | "ok">): MoneyFlow => {
  const differenceMicro =
    f.feesMicro + f.usageMicro + f.levyMicro + f.carriedInMicro - (f.paidMicro + f.platformFeeMicro + f.carriedOutMicro + f.unsettledMicro);
  return { ...f, differenceMicro, ok: differenceMicro === 0n };
};

/** One cycle's money flow: `paidMicro` its decrypted payouts, `depositedMicro` the payers' deposits in its blocks. */
export function cycleMoneyFlow(e: CycleEarnings, paid: { paidMicro: bigint; depositedMicro: bigint }): MoneyFlow {
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
    unsettledMicro: 0n,
  });
}

/**
 * The money flow over every cycle through the indexed head: `feesMicro` and `depositedMicro` every
 * fee payment and payer deposit indexed, `paidMicro` every decrypted payout.
 */
export function totalMoneyFlow(
  earnings: readonly CycleEarnings[],
  all: { feesMicro: bigint; depositedMicro: bigint; paidMicro: bigint },
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
}): {
  payments: CyclePayments;
  paid: Map<ProviderId, bigint>;
  unfinished: Due | null;
  next: Due | null;
  last: CycleBoundary | null;
  /** The lines of the batches through `through` that settlement ignored or capped (`admitLines`). */
  alerts: LineAlert[];
} {
  const payments = paymentsByCycle(args.payouts, args.amountOf);
  const paid = paidTotals(payments);
  const recorded = boundariesOf(args.payouts);
  const last = recorded.at(-1) ?? null;
  const settle = (boundaries: CycleBoundary[]): Due => {
    const e = cycleEarnings({
      batches: args.batches,
      serverBindings: args.serverBindings,
      providerChanges: args.providerChanges,
      poolFees: args.poolFees,
      boundaries,
      schedule: args.schedule,
      poolSecret: args.poolSecret,
    }).at(-1)!;
    return {
      cycle: e.cycle,
      throughBlock: e.throughBlock,
      poolMicro: e.poolMicro,
      due: owed(e.earnedThrough, paid),
      poolShares: e.poolShares,
    };
  };
  let unfinished: Due | null = null;
  if (last) {
    const d = settle(recorded);
    if (d.due.size > 0) unfinished = d;
  }
  const next =
    !last || args.through > last.throughBlock ? settle([...recorded, { cycle: (last?.cycle ?? 0) + 1, throughBlock: args.through }]) : null;
  const alerts = admitLines(
    args.batches.filter((b) => b.blockNumber <= args.through),
    args.serverBindings,
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
