import { atOrBefore, byChainPosition, type ChainPosition } from "../chain/position.js";
import { isPeriodUnit, type PeriodUnit, periodStartAtOrAfter } from "../usage/period.js";
import { InvalidRevenueInputError, NoSettlementInForceError } from "./errors.js";
import { checkFeeBps } from "./price.js";

/**
 * The settlement settings over time: the platform fee and the pricing period every party settles
 * with, as the ProviderRegistry records them (`setSettlement`, event `SettlementChanged`). The
 * rules:
 * - A record starts at the first instant at or after its `effectiveFrom`, and not before the
 *   previous record's start, that is a period start both under its own unit and under the unit of
 *   the record before it. So a change never cuts into a period already started: a fee change for
 *   20 March under monthly periods starts on 1 April, and so does a switch from months to days; a
 *   change between daily periods starts on its day.
 * - At any instant the record in force is the latest one started by then; a record starting at the
 *   same instant as the one before it replaces that one before it ever applies.
 * - A usage line is settled under the record in force at its batch's period start, among the
 *   records on chain when the batch was committed (the first record counts from genesis), so a record added later never changes how a
 *   committed batch is settled (the chain takes only records starting in the future; this covers
 *   a server whose clock runs ahead of the chain's). A pricing period's fee is that of the record
 *   of its first line, in chain order.
 * - A payment into the revenue pool is settled under the record in force at its block's timestamp.
 * - Period numbers never collide across units: months are YYYYMM (below 10^6), days YYYYMMDD (from
 *   19700101).
 * Earnings through a block therefore never shrink when a change is recorded after it.
 */
export type SettlementRecord = ChainPosition & {
  feeBps: number;
  periodUnit: PeriodUnit;
  /** Unix seconds, a UTC day start; 0 for a first record that applies from genesis. */
  effectiveFrom: bigint;
};

/** A record as it applies: its place in the history and the instant it starts. */
export type SettlementTerm = SettlementRecord & {
  index: number;
  /** Unix seconds: the first period start from which the record applies. */
  startsAt: bigint;
};

export type SettlementSchedule = readonly SettlementTerm[];

/** What `setSettlement` takes as `periodUnit`. */
export const PERIOD_UNIT_CODES = { month: 0, day: 1 } as const satisfies Record<PeriodUnit, number>;

export function periodUnitOfCode(code: number): PeriodUnit {
  const unit = (Object.keys(PERIOD_UNIT_CODES) as PeriodUnit[]).find((u) => PERIOD_UNIT_CODES[u] === code);
  if (!unit) throw new InvalidRevenueInputError("periodUnit", `unknown period unit code ${code}`);
  return unit;
}

/** A period start under both units: a month start when either is months. */
function commonPeriodStartAtOrAfter(timestampS: bigint, a: PeriodUnit, b: PeriodUnit): bigint {
  return periodStartAtOrAfter(timestampS, a === "month" || b === "month" ? "month" : "day");
}

/** The schedule of a recorded history (in any order; it is put in chain order). */
export function settlementSchedule(records: readonly SettlementRecord[]): SettlementSchedule {
  const out: SettlementTerm[] = [];
  for (const r of [...records].sort(byChainPosition)) {
    checkFeeBps(r.feeBps);
    if (!isPeriodUnit(r.periodUnit)) throw new InvalidRevenueInputError("periodUnit", `unknown period unit ${String(r.periodUnit)}`);
    const previous = out.at(-1);
    if (previous && r.effectiveFrom <= previous.effectiveFrom)
      throw new InvalidRevenueInputError("effectiveFrom", `record ${out.length} does not start after the one before it`);
    const startsAt = previous
      ? commonPeriodStartAtOrAfter(
          r.effectiveFrom > previous.startsAt ? r.effectiveFrom : previous.startsAt,
          r.periodUnit,
          previous.periodUnit,
        )
      : periodStartAtOrAfter(r.effectiveFrom, r.periodUnit);
    out.push({ ...r, index: out.length, startsAt });
  }
  return out;
}

/** One record applying from genesis: the whole history of a deployment that never changed its settings. */
export function fixedSchedule(settings: { feeBps: number; periodUnit: PeriodUnit }): SettlementSchedule {
  return settlementSchedule([{ ...settings, effectiveFrom: 0n, blockNumber: 0n, logIndex: 0 }]);
}

/**
 * The record in force at `timestampS` (Unix seconds), among the records at or before `known` in
 * chain order when it is given; the first record counts as known from genesis (the deployment makes
 * it, and facts such as pool payments may precede it). Throws NoSettlementInForceError before the
 * first record starts.
 */
export function termAt(schedule: SettlementSchedule, timestampS: bigint, known?: ChainPosition): SettlementTerm {
  let found: SettlementTerm | undefined;
  for (const t of schedule) {
    if (known && t.index > 0 && !atOrBefore(t, known)) break;
    if (t.startsAt <= timestampS) found = t;
  }
  if (!found) throw new NoSettlementInForceError(timestampS, schedule.length);
  return found;
}

export type AssertedSettlement = { feeBps?: number; periodUnit?: PeriodUnit };

export type SettlementMismatch =
  | { setting: "feeBps"; asserted: number; recorded: number }
  | { setting: "periodUnit"; asserted: PeriodUnit; recorded: PeriodUnit };

/** Where settings a process was given disagree with the record in force; empty when they agree or none were given. */
export function settlementMismatches(asserted: AssertedSettlement, term: SettlementTerm): SettlementMismatch[] {
  const out: SettlementMismatch[] = [];
  if (asserted.feeBps !== undefined && asserted.feeBps !== term.feeBps)
    out.push({ setting: "feeBps", asserted: asserted.feeBps, recorded: term.feeBps });
  if (asserted.periodUnit !== undefined && asserted.periodUnit !== term.periodUnit)
    out.push({ setting: "periodUnit", asserted: asserted.periodUnit, recorded: term.periodUnit });
  return out;
}

/** A term as a person reads it: "1000 bps, monthly periods, since 2026-04-01". */
export function describeTerm(term: SettlementTerm): string {
  const since = term.startsAt === 0n ? "since genesis" : `from ${new Date(Number(term.startsAt) * 1000).toISOString().slice(0, 10)}`;
  return `${term.feeBps} bps, ${term.periodUnit === "month" ? "monthly" : "daily"} periods, ${since} (record ${term.index})`;
}
