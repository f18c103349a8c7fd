import { BaseError, InvalidFieldError } from "../errors.js";

/** A call record that cannot be committed; `field` names the offending field. */
export class InvalidCallRecordError extends InvalidFieldError {
  readonly code = "INVALID_CALL_RECORD";
  constructor(
    field: string,
    reason: string,
    /** the record's eventId, when it had a usable one */
    readonly eventId?: string,
  ) {
    super(`invalid call record${eventId ? ` ${eventId}` : ""}`, field, reason);
  }
}

/** An aggregate usage line that cannot be encrypted; `field` names the offending field. */
export class InvalidUsageLineError extends InvalidFieldError {
  readonly code = "INVALID_USAGE_LINE";
  constructor(field: string, reason: string) {
    super("invalid usage line", field, reason);
  }
}

/** Provider pricing the ProviderRegistry would reject; `field` names the offending field. */
export class InvalidPricingError extends InvalidFieldError {
  readonly code = "INVALID_PRICING";
  constructor(field: string, reason: string) {
    super("invalid pricing", field, reason);
  }
}

export class InvalidNamespaceError extends BaseError {
  readonly code = "INVALID_NAMESPACE";
  constructor(readonly namespace: unknown) {
    super(`provider namespace must be 1 to 64 ASCII letters or digits, got ${JSON.stringify(namespace)}`);
  }
}

export class EmptyBatchError extends BaseError {
  readonly code = "EMPTY_BATCH";
  constructor() {
    super("a usage batch needs at least one call record");
  }
}

export class DuplicateRecordError extends BaseError {
  readonly code = "DUPLICATE_RECORD";
  constructor(readonly eventId: string) {
    super(`call record ${eventId} appears more than once in the batch`);
  }
}

/** A batch parameter (server, sequence, period) that is invalid or inconsistent with its records. */
export class InvalidBatchError extends InvalidFieldError {
  readonly code = "INVALID_BATCH";
  constructor(field: string, reason: string) {
    super("invalid usage batch", field, reason);
  }
}

/** A public key no line can be encrypted to (not a subgroup point, or the identity). */
export class InvalidRecipientKeyError extends BaseError {
  readonly code = "INVALID_RECIPIENT_KEY";
  constructor(readonly recipient: string) {
    super(`public key of ${recipient} is not a valid BabyJubJub subgroup point`);
  }
}

/** Encrypted lines that do not follow the serialised format. */
export class MalformedLinesError extends BaseError {
  readonly code = "MALFORMED_ENCRYPTED_LINES";
}

export class MerkleError extends BaseError {
  readonly code = "MERKLE_ERROR";
}

/** A registry nonce from another lane than the request's: the registry would refuse its signature. */
export class NonceLaneMismatchError extends InvalidFieldError {
  readonly code = "NONCE_LANE_MISMATCH";
  constructor(
    readonly nonce: bigint,
    readonly expectedKey: bigint,
  ) {
    super("registry request", "nonce", `${nonce} is not in nonce lane ${expectedKey} (read it with nonces(owner, ${expectedKey}))`);
  }
}
