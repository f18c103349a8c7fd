import { BaseError, InvalidFieldError } from "../errors.js";

/** Payment terms (price, surcharge, addresses, chain) a tool cannot be charged with; `field` names the offending one. */
export class InvalidPaymentTermsError extends InvalidFieldError {
  readonly code = "INVALID_PAYMENT_TERMS";
  constructor(field: string, reason: string) {
    super("invalid x402 payment terms", field, reason);
  }
}

/** A `_meta["x402/payment"]` value that is not an exact-scheme EVM payment payload. */
export class InvalidPaymentPayloadError extends InvalidFieldError {
  readonly code = "INVALID_PAYMENT_PAYLOAD";
  constructor(field: string, reason: string) {
    super("invalid x402 payment payload", field, reason);
  }
}

/** A paid tool call the agent could not pay: no acceptable requirement, or the server refused the payment. */
export class PaymentFailedError extends BaseError {
  readonly code = "PAYMENT_FAILED";
  constructor(
    message: string,
    /** The server's reason (an x402 error reason such as `invalid_exact_evm_insufficient_balance`), when it gave one. */
    readonly reason?: string,
  ) {
    super(message);
  }
}
