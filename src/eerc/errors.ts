import type { Hex } from "viem";
import { BaseError } from "../errors.js";
import type { Point } from "./curve.js";

export abstract class EercError extends BaseError {}

export class InvalidPrivateKeyError extends EercError {
  readonly code = "INVALID_PRIVATE_KEY";
  constructor(reason = "private key must be in [1, l)") {
    super(reason);
  }
}

export class PCTDecryptionError extends EercError {
  readonly code = "PCT_DECRYPTION_FAILED";
  constructor(reason = "PCT authentication failed (wrong key or tampered ciphertext)") {
    super(reason);
  }
}

export type BalanceCorruption = "pct-decryption" | "egct-mismatch" | "balance-out-of-range";

export class BalanceViewCorruptError extends EercError {
  readonly code = "BALANCE_VIEW_CORRUPT";
  constructor(
    readonly reason: BalanceCorruption,
    detail: string,
    /** index of the offending amountPCT (its on-chain `index` field), if any */
    readonly pctIndex?: bigint,
  ) {
    super(`balance view corrupt (${reason}): ${detail}`);
  }
}

/** A `bytes message` was given to an eERC without the message overloads (the May 2025 version). */
export class MessagesUnsupportedError extends EercError {
  readonly code = "MESSAGES_UNSUPPORTED";
  constructor(readonly encryptedERC: Hex) {
    super(`the eERC at ${encryptedERC} has no bytes-message overloads (a version before July 2025): send without a message`);
  }
}

export class ReceiverNotRegisteredError extends EercError {
  readonly code = "RECEIVER_NOT_REGISTERED";
  constructor(readonly address: Hex) {
    super(`receiver ${address} is not registered`);
  }
}

export class SenderNotRegisteredError extends EercError {
  readonly code = "SENDER_NOT_REGISTERED";
  constructor(readonly address: Hex) {
    super(`sender ${address} is not registered`);
  }
}

export class AuditorNotSetError extends EercError {
  readonly code = "AUDITOR_NOT_SET";
  constructor(readonly contract?: Hex) {
    super(`no auditor public key is set${contract ? ` on ${contract}` : ""}`);
  }
}

export class InvalidAmountError extends EercError {
  readonly code = "INVALID_AMOUNT";
  constructor(
    /** the offending value; not a bigint when it was not an integer at all */
    readonly amount: unknown,
    reason: string,
  ) {
    super(`invalid amount ${String(amount)}: ${reason}`);
  }
}

export class InsufficientBalanceError extends EercError {
  readonly code = "INSUFFICIENT_BALANCE";
  constructor(
    readonly address: Hex,
    readonly balance: bigint,
    readonly amount: bigint,
  ) {
    // The plaintext balance stays in a field for its owner; messages end up in logs.
    super(`balance of ${address} is below the amount to spend`);
  }
}

export class KeyMismatchError extends EercError {
  readonly code = "KEY_MISMATCH";
  constructor(
    readonly address: Hex,
    readonly registeredPublicKey: Point,
    readonly derivedPublicKey: Point,
  ) {
    super(`derived key for ${address} does not match the registered public key (${registeredPublicKey[0]}, ${registeredPublicKey[1]})`);
  }

  override get summary(): string {
    return `key mismatch: ${this.message}`;
  }
}

const L = 2736030358979909402780800718157159386076813972158567259200215660948447373041n;

/** Returns the amount as a bigint in [1, l) (or [0, l) with allowZero), else throws InvalidAmountError. */
export function validateAmount(amount: unknown, opts: { allowZero?: boolean } = {}): bigint {
  if (typeof amount !== "bigint") throw new InvalidAmountError(amount, "must be a bigint");
  const min = opts.allowZero ? 0n : 1n;
  if (amount < min) throw new InvalidAmountError(amount, opts.allowZero ? "must be ≥ 0" : "must be > 0");
  if (amount >= L) throw new InvalidAmountError(amount, "must be below the subgroup order l");
  return amount;
}
