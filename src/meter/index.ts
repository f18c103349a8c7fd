export { createLogger, type Logger, type LoggerOptions, type LogTarget } from "../log.js";
export { type PeriodUnit, periodOf } from "../usage/period.js";
export {
  freePool,
  freeQuotaThenPerCall,
  OPEN_ENDED_TIER,
  type Pricing,
  PricingModel,
  perCall,
  priceOfCall,
  type Tier,
  tiered,
} from "../usage/pricing.js";
export {
  createInProcessFacilitator,
  findAuthorizationTransfer,
  type InProcessFacilitator,
  type InProcessFacilitatorOptions,
  type PaymentFacilitator,
} from "../x402/facilitator.js";
export { exactPaymentOf, paymentRequiredOf, paymentRequiredResult, X402_PAYMENT_META, X402_PAYMENT_RESPONSE_META } from "../x402/mcp.js";
export { networkOf, type PaymentTerms, paymentAmount, paymentRequirementsFor } from "../x402/requirements.js";
export {
  type McpHandlerOptions,
  type McpHonoHandler,
  type McpHttpHost,
  type McpRequestHandler,
  type McpSessions,
  mcpHonoHandler,
  mcpRequestHandler,
  serveMcpOverHttp,
} from "./http.js";
export {
  type BatchSubmission,
  type ClosedBatch,
  createMeter,
  flowMcpAttribution,
  flowMcpFailed,
  flowMcpToolName,
  Meter,
  MeterClosedError,
  type MeteredToolSpec,
  MeterNotRecoveredError,
  type MeterOptions,
  type RecoveryReport,
  SpoolBehindLedgerError,
  StartSequenceError,
  type ToolAttribution,
  type ToolPayment,
  UnattributedToolError,
} from "./meter.js";
export { InvalidMeterPricingError, type PricingSource, staticPricing, UnknownProviderError } from "./pricing.js";
export { type RegistryPricing, type RegistryPricingOptions, registryPricing } from "./registry-pricing.js";
export { parseSpool, readSpool, SpoolCorruptError, type SpoolFsync, type SpoolLine, SpoolLockedError } from "./spool.js";
export {
  BatchIdConflictError,
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
