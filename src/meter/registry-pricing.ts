import { type Address, BaseError, ContractFunctionRevertedError, type PublicClient } from "viem";
import { ProviderRegistryAbi } from "../../abis/ProviderRegistryAbi.js";
import { type Pricing, priceOfCall, pricingFromChain } from "../usage/pricing.js";
import { providerIdOf } from "../usage/registry.js";
import { type PricingSource, UnknownProviderError } from "./pricing.js";

export type RegistryPricingOptions = {
  publicClient: PublicClient;
  registry: Address;
  /** The FlowMCP namespaces this server serves, each a registered provider. */
  namespaces: readonly string[];
  /** How often the registry is read again, off the call path (default 15 s). */
  refreshMs?: number;
  /** Called when a refresh fails; the last snapshot stays in use. */
  onRefreshError?: (error: unknown) => void;
};

export type RegistryPricing = PricingSource & {
  /** Reads the registry now; resolves when the snapshot is replaced. */
  refresh(): Promise<void>;
  close(): void;
};

/**
 * Live pricing from the ProviderRegistry: a snapshot of each provider's registered pricing,
 * read again every `refreshMs`, so a change on chain reaches the meter without a restart. As in
 * the settlement, a change applies from the next pricing period: a provider's pricing is pinned
 * at its first billable call of each period. An inactive provider's calls are priced 0 (the
 * settlement pays nothing for them).
 */
export async function registryPricing(options: RegistryPricingOptions): Promise<RegistryPricing> {
  const read = async (): Promise<Map<string, Pricing | null>> => {
    const snapshot = new Map<string, Pricing | null>();
    for (const namespace of options.namespaces) {
      const entry = await options.publicClient
        .readContract({ address: options.registry, abi: ProviderRegistryAbi, functionName: "getProvider", args: [providerIdOf(namespace)] })
        .catch((cause: unknown) => {
          // Only the registry's own answer means "not registered"; an unreachable node stays what it is.
          const revert = cause instanceof BaseError ? cause.walk((e) => e instanceof ContractFunctionRevertedError) : null;
          if (revert instanceof ContractFunctionRevertedError && revert.data?.errorName === "UnknownProvider")
            throw new UnknownProviderError(namespace, { cause });
          throw cause;
        });
      snapshot.set(namespace, entry.active ? pricingFromChain(entry.pricing) : null);
    }
    return snapshot;
  };
  let snapshot = await read();
  const pinned = new Map<string, { period: number; pricing: Pricing | null }>();
  const refresh = async () => {
    snapshot = await read();
  };
  const timer = setInterval(() => refresh().catch((e) => options.onRefreshError?.(e)), options.refreshMs ?? 15_000);
  timer.unref();
  return {
    priceFor(namespace, callIndexInPeriod, period) {
      if (!snapshot.has(namespace)) throw new UnknownProviderError(namespace);
      let pin = pinned.get(namespace);
      if (!pin || (period !== undefined && pin.period !== period)) {
        pin = { period: period ?? 0, pricing: snapshot.get(namespace)! };
        pinned.set(namespace, pin);
      }
      return pin.pricing ? priceOfCall(pin.pricing, callIndexInPeriod) : 0n;
    },
    refresh,
    close: () => clearInterval(timer),
  };
}
