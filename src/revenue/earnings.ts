import { InvalidRevenueInputError, OverpaidError, type Overpayment } from "./errors.js";
import { isProviderId, type ProviderId, type Revenue } from "./types.js";

/**
 * Each provider's cumulative earnings (net micro-USDC) over the priced periods, optionally only
 * the periods up to and including `throughPeriod`; every provider with usage in those periods is
 * present, by id ascending, 0 included.
 */
export function earnings(revenue: Revenue, options: { throughPeriod?: number } = {}): Map<ProviderId, bigint> {
  const through = options.throughPeriod;
  if (through !== undefined && !Number.isSafeInteger(through)) {
    throw new InvalidRevenueInputError("throughPeriod", "must be a safe integer");
  }
  const sums = new Map<ProviderId, bigint>();
  for (const [period, priced] of revenue.byPeriod) {
    if (through !== undefined && period > through) continue;
    for (const [id, p] of priced.providers) sums.set(id, (sums.get(id) ?? 0n) + p.netMicro);
  }
  const out = new Map<ProviderId, bigint>();
  for (const id of [...sums.keys()].sort()) out.set(id, sums.get(id)!);
  return out;
}

function checkAmounts(field: string, amounts: ReadonlyMap<ProviderId, bigint>): void {
  if (!(amounts instanceof Map)) throw new InvalidRevenueInputError(field, "must be a Map of provider id to micro-USDC");
  for (const [id, v] of amounts) {
    if (!isProviderId(id)) throw new InvalidRevenueInputError(field, `key ${String(id)} is not a canonical provider id`);
    if (typeof v !== "bigint" || v < 0n) throw new InvalidRevenueInputError(field, `${id} must be a non-negative bigint`);
  }
}

/**
 * What each provider is owed: cumulative earnings minus what the chain shows as already paid.
 * Only positive amounts are returned, by id ascending. A provider paid more than it earned (or
 * paid without earnings) is an invariant breach: `OverpaidError` lists every such provider and
 * nothing is returned.
 */
export function owed(earned: ReadonlyMap<ProviderId, bigint>, alreadyPaid: ReadonlyMap<ProviderId, bigint>): Map<ProviderId, bigint> {
  checkAmounts("earned", earned);
  checkAmounts("alreadyPaid", alreadyPaid);
  const ids = [...new Set([...earned.keys(), ...alreadyPaid.keys()])].sort();
  const out = new Map<ProviderId, bigint>();
  const overpaid: Overpayment[] = [];
  for (const id of ids) {
    const e = earned.get(id) ?? 0n;
    const p = alreadyPaid.get(id) ?? 0n;
    if (p > e) overpaid.push({ providerId: id, earnedMicro: e, paidMicro: p });
    else if (e > p) out.set(id, e - p);
  }
  if (overpaid.length > 0) throw new OverpaidError(overpaid);
  return out;
}
