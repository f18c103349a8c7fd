export { createToolPayer, type PaidToolCall, type ToolPayer, type ToolPayerOptions } from "./client.js";
export { InvalidPaymentPayloadError, InvalidPaymentTermsError, PaymentFailedError } from "./errors.js";
export {
  createInProcessFacilitator,
  findAuthorizationTransfer,
  type InProcessFacilitator,
  type InProcessFacilitatorOptions,
  type PaymentFacilitator,
} from "./facilitator.js";
export {
  type Eip3009Authorization,
  type ExactPayment,
  exactPaymentOf,
  paymentRequiredOf,
  paymentRequiredResult,
  paymentResponseOf,
  X402_PAYMENT_META,
  X402_PAYMENT_RESPONSE_META,
} from "./mcp.js";
export {
  acceptsRequirements,
  DEFAULT_MAX_TIMEOUT_SECONDS,
  EXACT_SCHEME,
  networkOf,
  type PaymentTerms,
  paymentAmount,
  paymentRequirementsFor,
  validatePaymentTerms,
  X402_VERSION,
} from "./requirements.js";
export { FINAL_SETTLE_REASONS, type SettlementOutcome, settlementOutcome } from "./settlement.js";
