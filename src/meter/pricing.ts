import { BaseError } from "../errors.js";
import { type Pricing, PricingModel, type Tier, validatePricing } from "../usage/registry.js";

/**
 * Where the meter gets a provider's per-call price. `priceFor` runs on the hot path of every
 * billable call, so it is synchronous: a source backed by the chain keeps a snapshot of the
 * ProviderRegistry and refreshes it off the call path.
 */
export interface PricingSource {
  /**
   * Price in micro-USDC of a provider's billable call, given how many billable calls the
   * provider already had in the current period (0 for the first). Throws
   * `UnknownProviderError` for a namespace it has no pricing for.
   */
  priceFor(namespace: string, callIndexInPeriod: number): bigint;
}

/**
 * A provider's pricing, with the models of ProviderRegistry:
 * - `per_call`: `priceMicro` for every billable call;
 * - `tiered`: billable calls number (previous `upToCalls`, `upToCalls`] of a period cost that
 *   tier's `priceMicro` (0 for a free quota); calls beyond the last tier cost nothing, so an
 *   open-ended last tier uses 2^64 − 1;
 * - `free_pool`: no per-call price; the provider is paid a share of a pool by usage, so its
 *   calls are still billable usage, priced 0.
 */
export type ProviderPricing =
  | { model: "per_call"; priceMicro: bigint }
  | { model: "tiered"; tiers: readonly Tier[] }
  | { model: "free_pool" };

export const OPEN_ENDED_TIER = (1n << 64n) - 1n;

/** `freeCalls` free billable calls per period, then `priceMicro` each. */
export function freeQuotaThenPerCall(freeCalls: number | bigint, priceMicro: bigint): ProviderPricing {
  const free = BigInt(freeCalls);
  if (free === 0n) return { model: "per_call", priceMicro };
  return {
    model: "tiered",
    tiers: [
      { upToCalls: free, priceMicro: 0n },
      { upToCalls: OPEN_ENDED_TIER, priceMicro },
    ],
  };
}

export class UnknownProviderError extends BaseError {
  readonly code = "UNKNOWN_PROVIDER";
  constructor(readonly namespace: string) {
    super(`no pricing for provider namespace "${namespace}"`);
  }
}

export class InvalidMeterPricingError extends BaseError {
  readonly code = "INVALID_PRICING";
}

const isUint64 = (v: unknown): v is bigint => typeof v === "bigint" && v >= 0n && v <= OPEN_ENDED_TIER;

function checkPricing(namespace: string, pricing: ProviderPricing): ProviderPricing {
  const fail = (reason: string): never => {
    throw new InvalidMeterPricingError(`${namespace}: ${reason}`);
  };
  switch (pricing.model) {
    case "free_pool":
      return { model: "free_pool" };
    case "per_call":
      if (!isUint64(pricing.priceMicro)) fail("priceMicro must be a uint64 bigint (micro-USDC)");
      return { model: "per_call", priceMicro: pricing.priceMicro };
    case "tiered": {
      const tiers = pricing.tiers;
      if (!Array.isArray(tiers) || tiers.length === 0) fail("tiered pricing needs at least one tier");
      let previous = 0n;
      for (const t of tiers) {
        if (!isUint64(t.upToCalls) || t.upToCalls <= previous) fail("tier upToCalls must be strictly increasing uint64 values above 0");
        if (!isUint64(t.priceMicro)) fail("tier priceMicro must be a uint64 bigint (micro-USDC)");
        previous = t.upToCalls;
      }
      return { model: "tiered", tiers: tiers.map((t) => ({ upToCalls: t.upToCalls, priceMicro: t.priceMicro })) };
    }
    default:
      return fail("unknown pricing model");
  }
}

/** Price of the billable call with 0-based index `callIndexInPeriod` in its period. */
export function priceOfCall(pricing: ProviderPricing, callIndexInPeriod: number): bigint {
  switch (pricing.model) {
    case "free_pool":
      return 0n;
    case "per_call":
      return pricing.priceMicro;
    case "tiered": {
      const callNumber = BigInt(callIndexInPeriod) + 1n;
      for (const t of pricing.tiers) if (callNumber <= t.upToCalls) return t.priceMicro;
      return 0n;
    }
  }
}

/** The meter's view of a ProviderRegistry entry's pricing (checked with the registry's own rules). */
export function pricingFromRegistry(pricing: Pricing): ProviderPricing {
  const p = validatePricing(pricing);
  switch (p.model) {
    case PricingModel.PerCall:
      return { model: "per_call", priceMicro: p.pricePerCallMicro };
    case PricingModel.FreePool:
      return { model: "free_pool" };
    default:
      return { model: "tiered", tiers: p.tiers.map((t) => ({ upToCalls: t.upToCalls, priceMicro: t.priceMicro })) };
  }
}

/** A fixed price list, keyed by FlowMCP namespace. */
export function staticPricing(table: Readonly<Record<string, ProviderPricing>>): PricingSource {
  const prices = new Map<string, ProviderPricing>();
  for (const [namespace, pricing] of Object.entries(table)) prices.set(namespace, checkPricing(namespace, pricing));
  return {
    priceFor(namespace, callIndexInPeriod) {
      const pricing = prices.get(namespace);
      if (pricing === undefined) throw new UnknownProviderError(namespace);
      return priceOfCall(pricing, callIndexInPeriod);
    },
  };
}
