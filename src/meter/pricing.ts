import { BaseError } from "../errors.js";
import { InvalidPricingError } from "../usage/errors.js";
import { type Pricing, priceOfCall, validatePricing } from "../usage/pricing.js";

/**
 * Where the meter gets a provider's per-call price. `priceFor` runs on the hot path of every
 * billable call, so it is synchronous: a source backed by the chain keeps a snapshot of the
 * ProviderRegistry and refreshes it off the call path.
 */
export interface PricingSource {
  /**
   * Price in micro-USDC of a provider's billable call, given how many billable calls the
   * provider already had in the current period (0 for the first), and that period's number.
   * Throws `UnknownProviderError` for a namespace it has no pricing for.
   */
  priceFor(namespace: string, callIndexInPeriod: number, period?: number): bigint;
}

export class UnknownProviderError extends BaseError {
  readonly code = "UNKNOWN_PROVIDER";
  constructor(
    readonly namespace: string,
    options: { cause?: unknown } = {},
  ) {
    super(`no pricing for provider namespace "${namespace}"`, options);
  }
}

export class InvalidMeterPricingError extends BaseError {
  readonly code = "INVALID_PRICING";
}

/** A copy of `pricing`, checked with the ProviderRegistry's own rules (`validatePricing`). */
function checkPricing(namespace: string, pricing: Pricing): Pricing {
  try {
    const { model, pricePerCallMicro, poolWeight, tiers } = validatePricing(pricing);
    return { model, pricePerCallMicro, poolWeight, tiers: tiers.map((t) => ({ ...t })) };
  } catch (e) {
    if (e instanceof InvalidPricingError) throw new InvalidMeterPricingError(`${namespace}: ${e.field} ${e.reason}`);
    if (e instanceof TypeError) throw new InvalidMeterPricingError(`${namespace}: not a pricing`);
    throw e;
  }
}

/**
 * A fixed price list, keyed by FlowMCP namespace: ProviderRegistry entries' pricing, or built with
 * `perCall`, `tiered`, `freeQuotaThenPerCall` and `freePool`.
 */
export function staticPricing(table: Readonly<Record<string, Pricing>>): PricingSource {
  const prices = new Map<string, Pricing>();
  for (const [namespace, pricing] of Object.entries(table)) prices.set(namespace, checkPricing(namespace, pricing));
  return {
    priceFor(namespace, callIndexInPeriod) {
      const pricing = prices.get(namespace);
      if (pricing === undefined) throw new UnknownProviderError(namespace);
      return priceOfCall(pricing, callIndexInPeriod);
    },
  };
}
