import { InvalidPricingError } from "./errors.js";

// A provider's pricing, in the ProviderRegistry's own form: the meter prices each call with
// `priceOfCall`, the settlement prices a period's calls with `amountOfCalls`, and both agree
// (the amount of n calls is the sum of the first n call prices).

/** ProviderRegistry's `PricingModel` enum. */
export const PricingModel = { PerCall: 0, FreePool: 1, Tiered: 2 } as const;
export type PricingModel = (typeof PricingModel)[keyof typeof PricingModel];

export type Tier = { upToCalls: bigint; priceMicro: bigint };

/** ProviderRegistry's `Pricing` struct, amounts in micro-USDC. */
export type Pricing = { model: PricingModel; pricePerCallMicro: bigint; poolWeight: number; tiers: Tier[] };

export const MAX_TIERS = 16;
const UINT64_MAX = (1n << 64n) - 1n;
/** `upToCalls` of an open-ended last tier. */
export const OPEN_ENDED_TIER = UINT64_MAX;

export const perCall = (priceMicro: bigint): Pricing => ({
  model: PricingModel.PerCall,
  pricePerCallMicro: priceMicro,
  poolWeight: 0,
  tiers: [],
});

/** Billable calls (previous `upToCalls`, `upToCalls`] of a period cost that tier's price; calls beyond the last tier cost nothing. */
export const tiered = (tiers: readonly Tier[]): Pricing => ({
  model: PricingModel.Tiered,
  pricePerCallMicro: 0n,
  poolWeight: 0,
  tiers: tiers.map((t) => ({ upToCalls: t.upToCalls, priceMicro: t.priceMicro })),
});

/** `freeCalls` free billable calls per period, then `priceMicro` each. */
export const freeQuotaThenPerCall = (freeCalls: number | bigint, priceMicro: bigint): Pricing =>
  BigInt(freeCalls) === 0n
    ? perCall(priceMicro)
    : tiered([
        { upToCalls: BigInt(freeCalls), priceMicro: 0n },
        { upToCalls: OPEN_ENDED_TIER, priceMicro },
      ]);

/** A share of the free pool by billable calls × `poolWeight`; each call is priced 0 but is still billable usage. */
export const freePool = (poolWeight = 1): Pricing => ({ model: PricingModel.FreePool, pricePerCallMicro: 0n, poolWeight, tiers: [] });

const isUint = (v: unknown, max: bigint): v is bigint => typeof v === "bigint" && v >= 0n && v <= max;

/** Mirrors the registry's checks, so a relay can refuse before anything is signed or sent. */
export function validatePricing(pricing: Pricing): Pricing {
  const fail = (field: string, reason: string): never => {
    throw new InvalidPricingError(field, reason);
  };
  const { model, pricePerCallMicro, poolWeight, tiers } = pricing;
  if (!isUint(pricePerCallMicro, UINT64_MAX)) fail("pricePerCallMicro", "must be a uint64 bigint");
  if (!Number.isSafeInteger(poolWeight) || poolWeight < 0 || poolWeight > 0xffffffff) fail("poolWeight", "must be a uint32");
  if (!Array.isArray(tiers)) fail("tiers", "must be an array");
  const unused = (field: string) => fail(field, "must be zero (or empty) for this model");
  if (model === PricingModel.PerCall) {
    if (pricePerCallMicro === 0n) fail("pricePerCallMicro", "must be positive for per-call pricing");
    if (poolWeight !== 0) unused("poolWeight");
    if (tiers.length !== 0) unused("tiers");
  } else if (model === PricingModel.FreePool) {
    if (poolWeight === 0) fail("poolWeight", "must be positive for free-pool pricing");
    if (pricePerCallMicro !== 0n) unused("pricePerCallMicro");
    if (tiers.length !== 0) unused("tiers");
  } else if (model === PricingModel.Tiered) {
    if (tiers.length === 0) fail("tiers", "must have at least one tier");
    if (tiers.length > MAX_TIERS) fail("tiers", `must have at most ${MAX_TIERS} tiers`);
    if (pricePerCallMicro !== 0n) unused("pricePerCallMicro");
    if (poolWeight !== 0) unused("poolWeight");
    let previous = 0n;
    for (const [i, t] of tiers.entries()) {
      if (!isUint(t.upToCalls, UINT64_MAX)) fail(`tiers[${i}].upToCalls`, "must be a uint64 bigint");
      if (!isUint(t.priceMicro, UINT64_MAX)) fail(`tiers[${i}].priceMicro`, "must be a uint64 bigint");
      if (t.upToCalls <= previous) fail(`tiers[${i}].upToCalls`, "must be greater than the previous tier's");
      previous = t.upToCalls;
    }
  } else {
    fail("model", "must be PerCall (0), FreePool (1) or Tiered (2)");
  }
  return pricing;
}

/** A ProviderRegistry `Pricing` struct as viem decodes it (model as a number, read-only tiers), checked. */
export function pricingFromChain(p: { model: number; pricePerCallMicro: bigint; poolWeight: number; tiers: readonly Tier[] }): Pricing {
  return validatePricing({
    model: p.model as PricingModel,
    pricePerCallMicro: p.pricePerCallMicro,
    poolWeight: p.poolWeight,
    tiers: p.tiers.map((t) => ({ upToCalls: t.upToCalls, priceMicro: t.priceMicro })),
  });
}

/** Price of the billable call with 0-based index `callIndexInPeriod` in its period (0 for a free-pool call). */
export function priceOfCall(pricing: Pricing, callIndexInPeriod: number | bigint): bigint {
  if (pricing.model === PricingModel.PerCall) return pricing.pricePerCallMicro;
  if (pricing.model === PricingModel.FreePool) return 0n;
  const callNumber = BigInt(callIndexInPeriod) + 1n;
  for (const t of pricing.tiers) if (callNumber <= t.upToCalls) return t.priceMicro;
  return 0n;
}

/** Price of a period's first `billableCalls` billable calls: the sum of their `priceOfCall`, computed per tier. */
export function amountOfCalls(pricing: Pricing, billableCalls: bigint): bigint {
  if (pricing.model === PricingModel.PerCall) return billableCalls * pricing.pricePerCallMicro;
  if (pricing.model === PricingModel.FreePool) return 0n;
  let total = 0n;
  let previous = 0n;
  for (const t of pricing.tiers) {
    if (billableCalls <= previous) break;
    const upTo = billableCalls < t.upToCalls ? billableCalls : t.upToCalls;
    total += (upTo - previous) * t.priceMicro;
    previous = t.upToCalls;
  }
  return total;
}
