import { amountOfCalls, type Pricing, PricingModel, validatePricing } from "../usage/pricing.js";
import { getOrCreate } from "../util/map.js";
import { allocateSorted } from "./allocate.js";
import { InvalidRevenueInputError, UnknownProviderPricingError } from "./errors.js";
import {
  type Amounts,
  isProviderId,
  type PeriodRevenue,
  type PricedModel,
  type PriceLinesInput,
  type PricingLookup,
  type ProviderId,
  type ProviderPeriod,
  type Revenue,
  type RevenueLine,
} from "./types.js";

export const BPS_DENOMINATOR = 10_000n;

/** The platform fee on `grossMicro`: floor(gross × bps / 10,000); the remainder stays with the payee. */
export function feeMicro(grossMicro: bigint, feeBps: bigint): bigint {
  return (grossMicro * feeBps) / BPS_DENOMINATOR;
}

export function checkFeeBps(feeBps: number | bigint): bigint {
  const ok =
    (typeof feeBps === "bigint" && feeBps >= 0n && feeBps <= BPS_DENOMINATOR) ||
    (typeof feeBps === "number" && Number.isSafeInteger(feeBps) && feeBps >= 0 && feeBps <= 10_000);
  if (!ok) throw new InvalidRevenueInputError("feeBps", "must be an integer from 0 to 10000");
  return BigInt(feeBps);
}

const isPeriod = (p: unknown): p is number => typeof p === "number" && Number.isSafeInteger(p) && p > 0;

/** Billable calls per (period, provider id as given), in one pass with no per-line allocation but the sums. */
function aggregate(lines: Iterable<RevenueLine>): Map<number, Map<string, bigint>> {
  const byPeriod = new Map<number, Map<string, bigint>>();
  let lastPeriod = Number.NaN;
  let current: Map<string, bigint> | undefined;
  for (const line of lines) {
    const { period, providerId, billableCalls } = line;
    if (typeof billableCalls !== "bigint" || billableCalls < 0n) {
      throw new InvalidRevenueInputError("lines.billableCalls", "must be a non-negative bigint");
    }
    if (period !== lastPeriod || current === undefined) {
      if (!isPeriod(period)) throw new InvalidRevenueInputError("lines.period", "must be a positive safe integer");
      current = getOrCreate(byPeriod, period, () => new Map());
      lastPeriod = period;
    }
    const sum = current.get(providerId);
    current.set(providerId, sum === undefined ? billableCalls : sum + billableCalls);
  }
  for (const calls of byPeriod.values()) {
    for (const id of calls.keys()) {
      if (!isProviderId(id))
        throw new InvalidRevenueInputError(
          "lines.providerId",
          `${String(id)} is not a canonical provider id (0x + 64 lowercase hex digits)`,
        );
    }
  }
  return byPeriod;
}

type Resolve = (providerId: ProviderId, period: number) => Pricing | null;

function resolver(lookup: PricingLookup): Resolve {
  const checked = new WeakSet<Pricing>();
  const check = (providerId: ProviderId, period: number, pricing: Pricing | null | undefined): Pricing | null => {
    if (pricing === undefined) throw new UnknownProviderPricingError(providerId, period);
    if (pricing === null) return null;
    if (!checked.has(pricing)) {
      validatePricing(pricing);
      checked.add(pricing);
    }
    return pricing;
  };
  if (typeof lookup === "function") return (id, period) => check(id, period, lookup(id, period));
  if (!(lookup instanceof Map)) throw new InvalidRevenueInputError("pricing", "must be a Map or a function");
  for (const id of lookup.keys()) {
    if (!isProviderId(id)) throw new InvalidRevenueInputError("pricing", `key ${String(id)} is not a canonical provider id`);
  }
  return (id, period) => check(id, period, lookup.get(id));
}

function checkPools(pools: ReadonlyMap<number, bigint> | undefined): ReadonlyMap<number, bigint> {
  if (pools === undefined) return new Map();
  if (!(pools instanceof Map)) throw new InvalidRevenueInputError("pools", "must be a Map of period to micro-USDC");
  for (const [period, pool] of pools) {
    if (!isPeriod(period)) throw new InvalidRevenueInputError("pools", `period ${String(period)} must be a positive safe integer`);
    if (typeof pool !== "bigint" || pool < 0n)
      throw new InvalidRevenueInputError("pools", `pool of ${period} must be a non-negative bigint`);
  }
  return pools;
}

const MODEL_NAMES: Record<number, PricedModel> = {
  [PricingModel.PerCall]: "per_call",
  [PricingModel.FreePool]: "free_pool",
  [PricingModel.Tiered]: "tiered",
};

function pricePeriod(
  period: number,
  calls: Map<string, bigint> | undefined,
  poolMicro: bigint,
  feeBps: bigint,
  resolve: Resolve,
): PeriodRevenue {
  const ids = calls === undefined ? [] : ([...calls.keys()].sort() as ProviderId[]);
  const providers = new Map<ProviderId, ProviderPeriod>();
  const poolIndex: ProviderPeriod[] = [];
  const poolWeights: bigint[] = [];
  let commercialFee = 0n;
  for (const id of ids) {
    const billableCalls = calls!.get(id)!;
    const pricing = resolve(id, period);
    let entry: ProviderPeriod;
    if (pricing === null) {
      entry = { model: "inactive", billableCalls, grossMicro: 0n, feeMicro: 0n, netMicro: 0n };
    } else if (pricing.model === PricingModel.FreePool) {
      entry = { model: "free_pool", billableCalls, grossMicro: 0n, feeMicro: 0n, netMicro: 0n };
      poolIndex.push(entry);
      poolWeights.push(billableCalls * BigInt(pricing.poolWeight));
    } else {
      const gross = amountOfCalls(pricing, billableCalls);
      const fee = feeMicro(gross, feeBps);
      commercialFee += fee;
      entry = { model: MODEL_NAMES[pricing.model], billableCalls, grossMicro: gross, feeMicro: fee, netMicro: gross - fee };
    }
    providers.set(id, entry);
  }

  const poolFeeMicro = feeMicro(poolMicro, feeBps);
  const distributable = poolMicro - poolFeeMicro;
  let poolUsageWeight = 0n;
  for (const w of poolWeights) poolUsageWeight += w;
  let unallocatedPoolMicro = 0n;
  if (poolUsageWeight === 0n) {
    unallocatedPoolMicro = distributable;
  } else {
    const shares = allocateSorted(distributable, poolWeights);
    for (let i = 0; i < shares.length; i++) {
      poolIndex[i].grossMicro = shares[i];
      poolIndex[i].netMicro = shares[i];
    }
  }
  return {
    period,
    providers,
    poolMicro,
    poolFeeMicro,
    poolUsageWeight,
    unallocatedPoolMicro,
    platformFeeMicro: commercialFee + poolFeeMicro,
  };
}

/**
 * Prices finalized usage: per (period, provider) the billable calls of all its lines add up, then
 * - PerCall: billableCalls × pricePerCallMicro;
 * - Tiered: the period's billable calls walk the tiers (`amountOfCalls`);
 * - FreePool: a share of the period's pool after the pool's fee, split by billableCalls ×
 *   poolWeight with `allocatePool`'s largest-remainder rule;
 * - inactive (pricing `null`): nothing.
 * The platform fee is floor(gross × feeBps / 10,000) on each per-call or tiered amount of a
 * (period, provider), and floor(pool × feeBps / 10,000) on each pool before the split. A pool
 * with no free-pool usage in its period stays with the platform (`unallocatedPoolMicro`).
 *
 * Per period: Σ gross (per-call and tiered) + pool = Σ net + platformFeeMicro + unallocatedPoolMicro.
 * The result depends only on the multiset of lines, never on their order.
 */
export function priceLines(input: PriceLinesInput): Revenue {
  const feeBps = checkFeeBps(input.feeBps);
  const pools = checkPools(input.pools);
  const resolve = resolver(input.pricing);
  const usage = aggregate(input.lines);

  const periods = [...new Set([...usage.keys(), ...pools.keys()])].sort((a, b) => a - b);
  const byPeriod = new Map<number, PeriodRevenue>();
  const totals = new Map<ProviderId, Amounts>();
  let platformFeeMicro = 0n;
  let unallocatedPoolMicro = 0n;
  for (const period of periods) {
    const priced = pricePeriod(period, usage.get(period), pools.get(period) ?? 0n, feeBps, resolve);
    byPeriod.set(period, priced);
    platformFeeMicro += priced.platformFeeMicro;
    unallocatedPoolMicro += priced.unallocatedPoolMicro;
    for (const [id, p] of priced.providers) {
      const t = totals.get(id);
      if (t === undefined) totals.set(id, { grossMicro: p.grossMicro, feeMicro: p.feeMicro, netMicro: p.netMicro });
      else {
        t.grossMicro += p.grossMicro;
        t.feeMicro += p.feeMicro;
        t.netMicro += p.netMicro;
      }
    }
  }
  const perProvider = new Map<ProviderId, Amounts>();
  for (const id of [...totals.keys()].sort()) perProvider.set(id, totals.get(id)!);
  return { perProvider, platformFeeMicro, unallocatedPoolMicro, byPeriod };
}
