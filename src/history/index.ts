export * from "./types.js";
export * from "./errors.js";
export { parseAuditTotals, parseEarnings } from "./parse.js";
export { assertKeyMatches, auditTotals, decryptHistory, decryptReceived, periodKey } from "./decrypt.js";
export { type ApiClientOptions, HistoryApiClient } from "./api-client.js";
export {
  type ChainBalance,
  type ChainToken,
  type RpcSource,
  auditFromChain,
  auditResponseFromChain,
  balanceFromChain,
  openRpc,
  receivedFromChain,
  registeredKey,
  tokensFromChain,
  verifyAccountKey,
} from "./chain.js";
export {
  type CommittedBatch,
  type ProviderRef,
  type ProviderUsageBatch,
  type ProviderUsageLine,
  type ProviderUsageReport,
  type RecordGroup,
  type RecordsCheck,
  RecordsFileError,
  type RecordsMismatch,
  type UsageTotals,
  checkRecords,
  decryptProviderUsage,
  parseRecordsFile,
  providersFromChain,
  usageBatchesFromChain,
} from "./usage.js";
export { UsageGraphqlClient } from "./usage-api.js";
