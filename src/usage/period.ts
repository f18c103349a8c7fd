/**
 * Periods are UTC calendar days or months. Pricing numbers them YYYYMMDD or YYYYMM (tiers restart
 * with each); the audit labels them `YYYY-MM-DD` or `YYYY-MM`.
 */
export type PeriodUnit = "day" | "month";

export const PERIOD_UNITS = ["day", "month"] as const satisfies readonly PeriodUnit[];

export const isPeriodUnit = (value: unknown): value is PeriodUnit => PERIOD_UNITS.includes(value as PeriodUnit);

/** The pricing period of a time in Unix milliseconds: YYYYMMDD or YYYYMM. */
export function periodOf(ms: number, unit: PeriodUnit): number {
  const d = new Date(ms);
  const month = d.getUTCFullYear() * 100 + d.getUTCMonth() + 1;
  return unit === "month" ? month : month * 100 + d.getUTCDate();
}

/** The audit label of a time in Unix seconds: `YYYY-MM-DD` or `YYYY-MM`. */
export function periodLabel(timestampS: bigint, unit: PeriodUnit): string {
  const iso = new Date(Number(timestampS) * 1000).toISOString();
  return unit === "day" ? iso.slice(0, 10) : iso.slice(0, 7);
}

const DAY_S = 86_400n;

/** The start (Unix seconds) of the period holding `timestampS`. */
export function periodStartOf(timestampS: bigint, unit: PeriodUnit): bigint {
  const dayStart = timestampS - (((timestampS % DAY_S) + DAY_S) % DAY_S);
  if (unit === "day") return dayStart;
  const d = new Date(Number(dayStart) * 1000);
  return BigInt(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1) / 1000);
}

/** The start (Unix seconds) of the period after the one holding `timestampS`. */
export function nextPeriodStart(timestampS: bigint, unit: PeriodUnit): bigint {
  if (unit === "day") return periodStartOf(timestampS, "day") + DAY_S;
  const d = new Date(Number(periodStartOf(timestampS, "month")) * 1000);
  return BigInt(Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1) / 1000);
}

/** The first period start at or after `timestampS`. */
export function periodStartAtOrAfter(timestampS: bigint, unit: PeriodUnit): bigint {
  const start = periodStartOf(timestampS, unit);
  return start === timestampS ? start : nextPeriodStart(timestampS, unit);
}
