import { ponder } from "ponder:registry";

/**
 * The events the indexer has handlers for (src/*.ts), each with a handler that does nothing, so
 * that Ponder fetches, stores and dispatches exactly what it does for the indexer.
 */
const EVENTS = [
  "EncryptedERC:AuditorChanged",
  "EncryptedERC:Deposit",
  "EncryptedERC:PrivateBurn",
  "EncryptedERC:PrivateMessage",
  "EncryptedERC:PrivateMint",
  "EncryptedERC:PrivateTransfer",
  "EncryptedERC:Withdraw",
  "ProviderRegistry:ProviderActiveChanged",
  "ProviderRegistry:ProviderPayoutAccountChanged",
  "ProviderRegistry:ProviderPricingUpdated",
  "ProviderRegistry:ProviderRegistered",
  "ProviderRegistry:SettlementChanged",
  "Registrar:Register",
  "RevenuePool:Transfer",
  "UsageLedger:ServerAuthorisationChanged",
  "UsageLedger:ServerProviderBound",
  "UsageLedger:UsageCommitted",
] as const;

for (const name of EVENTS) ponder.on(name, async () => {});
