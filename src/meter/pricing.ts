import { BaseError } from "../errors.js";
import { InvalidPricingError } from "../usage/errors.js";
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

/** The registry's form of a meter pricing, so both are checked by the same rules. A free-pool weight does not matter to the meter. */
function registryPricingOf(pricing: ProviderPricing): Pricing | undefined {
  switch (pricing?.model) {
    case "per_call":
      return { model: PricingModel.PerCall, pricePerCallMicro: pricing.priceMicro, poolWeight: 0, tiers: [] };
    case "tiered":
      return {
        model: PricingModel.Tiered,
        pricePerCallMicro: 0n,
        poolWeight: 0,
        // Only read by the check, and copied by pricingFromRegistry.
        tiers: pricing.tiers as Tier[],
      };
    case "free_pool":
      return { model: PricingModel.FreePool, pricePerCallMicro: 0n, poolWeight: 1, tiers: [] };
    default:
      return undefined;
  }
}

/** A copy of `pricing`, checked with the ProviderRegistry's own rules (`validatePricing`). */
function checkPricing(namespace: string, pricing: ProviderPricing): ProviderPricing {
  const registry = registryPricingOf(pricing);
  if (!registry) throw new InvalidMeterPricingError(`${namespace}: unknown pricing model`);
  try {
    validatePricing(registry);
  } catch (e) {
    if (e instanceof InvalidPricingError) throw new InvalidMeterPricingError(`${namespace}: ${e.field} ${e.reason}`);
    throw e;
  }
  return pricingFromRegistry(registry);
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
