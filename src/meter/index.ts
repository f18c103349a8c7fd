export {
  type BatchSubmission,
  type ClosedBatch,
  createMeter,
  flowMcpToolName,
  Meter,
  MeterClosedError,
  MeterNotRecoveredError,
  type MeteredToolSpec,
  type MeterOptions,
  type PeriodUnit,
  periodOf,
  type RecoveryReport,
} from "./meter.js";
export {
  freeQuotaThenPerCall,
  InvalidPricingError,
  OPEN_ENDED_TIER,
  type PricingSource,
  priceOfCall,
  pricingFromRegistry,
  type ProviderPricing,
  staticPricing,
  UnknownProviderError,
} from "./pricing.js";
export { parseSpool, readSpool, SpoolCorruptError, type SpoolFsync, type SpoolLine, SpoolLockedError } from "./spool.js";
export { type McpHttpHost, serveMcpOverHttp } from "./http.js";
export {
  BatchSubmitError,
  type BatchSubmitter,
  type BatchSubmitterOptions,
  createBatchSubmitter,
  isBatchAlreadyCommitted,
  postSubmit,
  type ServerAccount,
  type SubmitMode,
  type SubmitResult,
  submitRequestBody,
} from "./submit.js";
