/**
 * What a settlement attempt means for the call it pays. The rules:
 * - a success with a transaction hash is settled: the call is billed, once;
 * - a failure the facilitator gives for the payment itself (signature, funds, validity window,
 *   nonce used or cancelled, amount, payee, token) is final: no retry can change it, the call is
 *   recorded refused and not billed;
 * - anything else (a thrown error, a broadcast whose receipt did not come, a failed transaction
 *   or simulation, an unknown reason) is pending: the spool keeps the payment and it is retried.
 *   A retry is safe because settlement is idempotent per authorization nonce, and it ends: once
 *   `validBefore` passes, the facilitator answers with a final reason.
 * Pure.
 */
import type { SettleResponse } from "@x402/core/types";

/** Reasons (x402 exact EVM error codes) that settle a payment's fate for good. */
export const FINAL_SETTLE_REASONS: ReadonlySet<string> = new Set([
  "invalid_exact_evm_scheme",
  "invalid_exact_evm_network_mismatch",
  "invalid_exact_evm_missing_eip712_domain",
  "invalid_exact_evm_recipient_mismatch",
  "invalid_exact_evm_signature",
  "invalid_exact_evm_payload_authorization_valid_before",
  "invalid_exact_evm_authorization_value",
  "invalid_exact_evm_payload_authorization_value_mismatch",
  "invalid_exact_evm_token_name_mismatch",
  "invalid_exact_evm_token_version_mismatch",
  "invalid_exact_evm_eip3009_not_supported",
  "invalid_exact_evm_nonce_already_used",
  "invalid_exact_evm_insufficient_balance",
  "invalid_exact_evm_failed_to_parse_signature",
  "unsupported_payload_type",
]);

export type SettlementOutcome =
  | { status: "settled"; txHash: `0x${string}` }
  | { status: "refused"; reason: string }
  | { status: "pending"; reason: string };

const TX_HASH = /^0x[0-9a-fA-F]{64}$/;

/** The outcome of one attempt: its response, or the error it threw. */
export function settlementOutcome(attempt: { response: SettleResponse } | { error: unknown }): SettlementOutcome {
  if ("error" in attempt) {
    return { status: "pending", reason: attempt.error instanceof Error ? attempt.error.message : String(attempt.error) };
  }
  const { response } = attempt;
  if (response.success && TX_HASH.test(response.transaction))
    return { status: "settled", txHash: response.transaction.toLowerCase() as `0x${string}` };
  const reason = response.errorReason ?? (response.success ? "settled without a transaction hash" : "unknown");
  return FINAL_SETTLE_REASONS.has(reason) ? { status: "refused", reason } : { status: "pending", reason };
}
