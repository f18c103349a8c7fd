/**
 * x402 over MCP, as its MCP transport defines it: a paid tool answers an unpaid call with an
 * error result whose `structuredContent` is the `PaymentRequired` (also JSON in `content[0].text`);
 * the client calls again with the `PaymentPayload` in the request's `_meta["x402/payment"]`; the
 * server returns the tool's result with the `SettleResponse` in `_meta["x402/payment-response"]`.
 */
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import type { PaymentPayload, PaymentRequired, PaymentRequirements, SettleResponse } from "@x402/core/types";
import { type Address, getAddress, type Hex, isAddress, isHex } from "viem";
import { InvalidPaymentPayloadError } from "./errors.js";
import { X402_VERSION } from "./requirements.js";

export const X402_PAYMENT_META = "x402/payment";
export const X402_PAYMENT_RESPONSE_META = "x402/payment-response";

/** The tool result that asks for payment (or says why a payment was refused, in `error`). */
export function paymentRequiredResult(required: PaymentRequired): CallToolResult {
  return {
    isError: true,
    structuredContent: required as unknown as Record<string, unknown>,
    content: [{ type: "text", text: JSON.stringify(required) }],
  };
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/** The `PaymentRequired` a tool result carries, from `structuredContent` or else `content[0].text`; undefined for any other result. */
export function paymentRequiredOf(result: CallToolResult): PaymentRequired | undefined {
  if (result?.isError !== true) return undefined;
  const looksRequired = (v: unknown): v is PaymentRequired =>
    isObject(v) && typeof v.x402Version === "number" && Array.isArray(v.accepts) && v.accepts.every(isObject);
  if (looksRequired(result.structuredContent)) return result.structuredContent;
  const first = result.content?.[0];
  if (first?.type !== "text") return undefined;
  try {
    const parsed: unknown = JSON.parse(first.text);
    return looksRequired(parsed) ? parsed : undefined;
  } catch {
    return undefined;
  }
}

/** The settlement a paid result carries in its `_meta`. */
export function paymentResponseOf(result: CallToolResult): SettleResponse | undefined {
  const value = result?._meta?.[X402_PAYMENT_RESPONSE_META];
  return isObject(value) && typeof value.success === "boolean" ? (value as unknown as SettleResponse) : undefined;
}

/** An EIP-3009 authorization as signed, amounts and times as bigints. */
export type Eip3009Authorization = { from: Address; to: Address; value: bigint; validAfter: bigint; validBefore: bigint; nonce: Hex };

/** An exact-scheme EVM payment read from a request: the payload as sent, and its authorization checked for shape. */
export type ExactPayment = { payload: PaymentPayload; authorization: Eip3009Authorization; signature: Hex };

const UINT = /^(0|[1-9]\d{0,77})$/;

/**
 * Reads `_meta["x402/payment"]`: undefined when absent, an `ExactPayment` when it is an x402 v2
 * exact-scheme EIP-3009 payload, `InvalidPaymentPayloadError` for anything else. Only the shape
 * is checked here; signature, funds and validity are the facilitator's.
 */
export function exactPaymentOf(meta: Record<string, unknown> | undefined): ExactPayment | undefined {
  const value = meta?.[X402_PAYMENT_META];
  if (value === undefined) return undefined;
  const fail = (field: string, reason: string): never => {
    throw new InvalidPaymentPayloadError(field, reason);
  };
  if (!isObject(value)) return fail("payload", "must be an object");
  if (value.x402Version !== X402_VERSION) fail("x402Version", `must be ${X402_VERSION}`);
  const accepted = value.accepted;
  if (!isObject(accepted)) return fail("accepted", "must be an object");
  for (const field of ["scheme", "network", "asset", "amount", "payTo"] as const) {
    if (typeof accepted[field] !== "string") fail(`accepted.${field}`, "must be a string");
  }
  const inner = value.payload;
  if (!isObject(inner)) return fail("payload", "must be an object");
  const signature = inner.signature;
  if (typeof signature !== "string" || !isHex(signature) || signature.length < 4) fail("payload.signature", "must be hex");
  const auth = inner.authorization;
  if (!isObject(auth)) return fail("payload.authorization", "must be an object (an EIP-3009 authorization)");
  for (const field of ["from", "to"] as const) {
    if (typeof auth[field] !== "string" || !isAddress(auth[field])) fail(`payload.authorization.${field}`, "must be an address");
  }
  for (const field of ["value", "validAfter", "validBefore"] as const) {
    if (typeof auth[field] !== "string" || !UINT.test(auth[field]))
      fail(`payload.authorization.${field}`, "must be a decimal integer string");
  }
  if (typeof auth.nonce !== "string" || !isHex(auth.nonce) || auth.nonce.length !== 66) {
    fail("payload.authorization.nonce", "must be 32 bytes of hex");
  }
  return {
    payload: value as unknown as PaymentPayload,
    signature: signature as Hex,
    authorization: {
      from: getAddress(auth.from as string),
      to: getAddress(auth.to as string),
      value: BigInt(auth.value as string),
      validAfter: BigInt(auth.validAfter as string),
      validBefore: BigInt(auth.validBefore as string),
      nonce: (auth.nonce as string).toLowerCase() as Hex,
    },
  };
}

/** The `accepted` requirement of a payload, typed. */
export const acceptedOf = (payment: ExactPayment): PaymentRequirements => payment.payload.accepted;
