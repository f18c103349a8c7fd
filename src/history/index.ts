export { type PeriodUnit, periodLabel } from "../usage/period.js";
export {
  auditFromChain,
  auditResponseFromChain,
  balanceFromChain,
  type ChainBalance,
  type ChainToken,
  openRpc,
  type RpcSource,
  receivedFromChain,
  registeredKey,
  tokensFromChain,
  verifyAccountKey,
} from "./chain.js";
export { assertKeyMatches, auditTotals, decryptHistory, decryptReceived } from "./decrypt.js";
export * from "./errors.js";
export * from "./types.js";
export {
  type CommittedBatch,
  checkRecords,
  decryptProviderUsage,
  type ProviderRef,
  type ProviderUsageBatch,
  type ProviderUsageLine,
  type ProviderUsageReport,
  parseRecordsFile,
  providersFromChain,
  type RecordGroup,
  type RecordsCheck,
  RecordsFileError,
  type RecordsMismatch,
  type UsageTotals,
  usageBatchesFromChain,
} from "./usage.js";
