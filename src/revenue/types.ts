import type { Hex } from "viem";
import type { Pricing } from "../usage/pricing.js";

/**
 * A provider id as `providerIdOf` and `decryptLinesFor` return it: "0x" and 64 lowercase hex
 * digits. Only this canonical form is accepted, so string order is byte order and one provider
 * has one key.
 */
export type ProviderId = Hex;

/**
 * One finalized usage line as the operator decrypts it from a committed batch, with the batch's
 * pricing period (UTC month YYYYMM, or day YYYYMMDD). A (period, provider) may have many lines,
 * one per batch; they add up. Other fields of a `UsageLine` may be present and are not read.
 */
export type RevenueLine = { period: number; providerId: ProviderId; billableCalls: bigint };

/**
 * The registered pricing in force for a provider in a period: a `Pricing` (ProviderRegistry
 * struct), `null` for a registered provider that earns nothing for that period (inactive), or
 * `undefined` for an unknown provider (refused). A map applies the same pricing to every period.
 */
export type PricingLookup =
  | ReadonlyMap<ProviderId, Pricing | null>
  | ((providerId: ProviderId, period: number) => Pricing | null | undefined);

export type PriceLinesInput = {
  lines: Iterable<RevenueLine>;
  pricing: PricingLookup;
  /** Revenue pool of each period for the free-pool providers, in micro-USDC. */
  pools?: ReadonlyMap<number, bigint>;
  /** Platform fee in basis points, 0 to 10,000. */
  feeBps: number | bigint;
};

export type Amounts = {
  /** What the pricing yields: per-call or tiered price, or the share of the pool after its fee. */
  grossMicro: bigint;
  /** Platform fee taken from `grossMicro` (always 0 for a pool share: the pool pays its fee before the split). */
  feeMicro: bigint;
  /** grossMicro − feeMicro: what the provider earns. */
  netMicro: bigint;
};

export type PricedModel = "per_call" | "tiered" | "free_pool" | "inactive";

export type ProviderPeriod = Amounts & { model: PricedModel; billableCalls: bigint };

export type PeriodRevenue = {
  period: number;
  /** Every provider with usage in the period, by id ascending. */
  providers: Map<ProviderId, ProviderPeriod>;
  poolMicro: bigint;
  poolFeeMicro: bigint;
  /** Σ billableCalls × poolWeight over the period's free-pool providers. */
  poolUsageWeight: bigint;
  /** The pool after its fee when no free-pool provider has billable usage: it stays with the platform. */
  unallocatedPoolMicro: bigint;
  /** Fees of the period: per-call and tiered fees plus the pool fee. */
  platformFeeMicro: bigint;
};

export type Revenue = {
  /** Cumulative amounts over every period of the input, by id ascending. */
  perProvider: Map<ProviderId, Amounts>;
  platformFeeMicro: bigint;
  unallocatedPoolMicro: bigint;
  /** By period ascending. */
  byPeriod: Map<number, PeriodRevenue>;
};

const PROVIDER_ID_RE = /^0x[0-9a-f]{64}$/;

export function isProviderId(id: unknown): id is ProviderId {
  return typeof id === "string" && PROVIDER_ID_RE.test(id);
}
