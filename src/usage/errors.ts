import { BaseError } from "../errors.js";
export abstract class UsageError extends BaseError {}

/** A call record that cannot be committed; `field` names the offending field. */
export class InvalidCallRecordError extends UsageError {
  readonly code = "INVALID_CALL_RECORD";
  constructor(
    readonly field: string,
    readonly reason: string,
    /** the record's eventId, when it had a usable one */
    readonly eventId?: string,
  ) {
    super(`invalid call record${eventId ? ` ${eventId}` : ""}: ${field} ${reason}`);
  }
}

/** An aggregate usage line that cannot be encrypted; `field` names the offending field. */
export class InvalidUsageLineError extends UsageError {
  readonly code = "INVALID_USAGE_LINE";
  constructor(
    readonly field: string,
    readonly reason: string,
  ) {
    super(`invalid usage line: ${field} ${reason}`);
  }
}

/** Provider pricing the ProviderRegistry would reject; `field` names the offending field. */
export class InvalidPricingError extends UsageError {
  readonly code = "INVALID_PRICING";
  constructor(
    readonly field: string,
    readonly reason: string,
  ) {
    super(`invalid pricing: ${field} ${reason}`);
  }
}

export class InvalidNamespaceError extends UsageError {
  readonly code = "INVALID_NAMESPACE";
  constructor(readonly namespace: unknown) {
    super(`provider namespace must be 1 to 64 ASCII letters or digits, got ${JSON.stringify(namespace)}`);
  }
}

export class EmptyBatchError extends UsageError {
  readonly code = "EMPTY_BATCH";
  constructor() {
    super("a usage batch needs at least one call record");
  }
}

export class DuplicateRecordError extends UsageError {
  readonly code = "DUPLICATE_RECORD";
  constructor(readonly eventId: string) {
    super(`call record ${eventId} appears more than once in the batch`);
  }
}

/** A batch parameter (server, sequence, period) that is invalid or inconsistent with its records. */
export class InvalidBatchError extends UsageError {
  readonly code = "INVALID_BATCH";
  constructor(
    readonly field: string,
    readonly reason: string,
  ) {
    super(`invalid usage batch: ${field} ${reason}`);
  }
}

/** A public key no line can be encrypted to (not a subgroup point, or the identity). */
export class InvalidRecipientKeyError extends UsageError {
  readonly code = "INVALID_RECIPIENT_KEY";
  constructor(readonly recipient: string) {
    super(`public key of ${recipient} is not a valid BabyJubJub subgroup point`);
  }
}

/** Encrypted lines that do not follow the serialised format. */
export class MalformedLinesError extends UsageError {
  readonly code = "MALFORMED_ENCRYPTED_LINES";
}

export class MerkleError extends UsageError {
  readonly code = "MERKLE_ERROR";
}
