import { type Address, getAddress, type Hex, isAddress, isHex, parseAbiParameters } from "viem";
import { InvalidCallRecordError } from "./errors.js";
import { keccak256Bytes } from "./keccak.js";
import { isValidNamespace } from "./registry.js";

export type CallOutcome = "ok" | "tool_error" | "exception";

/** Outcomes in the order of their uint8 code in the leaf encoding. */
export const CALL_OUTCOMES = ["ok", "tool_error", "exception"] as const satisfies readonly CallOutcome[];

/** Where an x402 payment for a call stands. */
export type PaymentStatus = "settled" | "unpaid" | "refused" | "settle_pending";
export const PAYMENT_STATUSES = ["settled", "unpaid", "refused", "settle_pending"] as const satisfies readonly PaymentStatus[];

/**
 * The x402 payment of a paid tool call. `amountMicro` is what the payer was asked for (the
 * provider's price plus any platform surcharge); `payer` and `nonce` are the authorization's
 * (null when no payment was sent); `txHash` is the settlement's transfer. The rules:
 * - "settled": the transfer is on chain (`txHash` set) and the call is billed: a settled payment
 *   and a billed call are the same fact;
 * - "unpaid": no payment was sent, or the call failed and its payment was not settled; not billed;
 * - "refused": the facilitator refused the payment (funds, signature, validity, replay); not billed;
 * - "settle_pending": the tool ran and settlement did not finish; the spool keeps it and the meter
 *   retries, and the call is billed only once it is settled.
 */
export type CallPayment = { payer: Address | null; amountMicro: bigint; nonce: Hex | null; txHash: Hex | null; status: PaymentStatus };

/**
 * One metered MCP tool call. Times are Unix milliseconds; `durationMs` is measured separately
 * (a monotonic clock) and need not equal `endedAt - startedAt`. `priceMicro` is what this call
 * costs in micro-USDC, as the meter priced it; a non-billable call costs 0.
 */
export type CallRecord = {
  eventId: string;
  /** FlowMCP schema namespace of the provider. */
  provider: string;
  tool: string;
  startedAt: number;
  endedAt: number;
  durationMs: number;
  outcome: CallOutcome;
  requestBytes: number;
  responseBytes: number;
  billable: boolean;
  priceMicro: bigint;
  /** Present on calls of paid tools (x402); not part of the leaf, the transfer itself is on chain. */
  payment?: CallPayment;
};

const FIELDS = [
  "eventId",
  "provider",
  "tool",
  "startedAt",
  "endedAt",
  "durationMs",
  "outcome",
  "requestBytes",
  "responseBytes",
  "billable",
  "priceMicro",
] as const satisfies readonly (keyof CallRecord)[];

/** Limit on the UTF-8 length of `eventId` and `tool`. */
export const MAX_RECORD_STRING_BYTES = 256;
const UINT64_LIMIT = 1n << 64n;

/**
 * Canonical encoding: `abi.encode` of the fields in declaration order, the outcome as its index
 * in `CALL_OUTCOMES`, numbers as uint64.
 */
export const CALL_RECORD_ABI = parseAbiParameters(
  "string eventId, string provider, string tool, uint64 startedAt, uint64 endedAt, uint64 durationMs, uint8 outcome, uint64 requestBytes, uint64 responseBytes, bool billable, uint64 priceMicro",
);

const utf8Length = (s: string): number => new TextEncoder().encode(s).length;

const isBytes32 = (v: unknown): v is Hex => typeof v === "string" && isHex(v) && v.length === 66;

function validatePayment(
  value: unknown,
  record: { billable: boolean; outcome: string },
  fail: (field: string, reason: string) => never,
): CallPayment {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return fail("payment", "must be an object");
  const p = value as Record<string, unknown>;
  for (const key of Object.keys(p)) {
    if (!["payer", "amountMicro", "nonce", "txHash", "status"].includes(key)) fail(`payment.${key}`, "is not a payment field");
  }
  if (typeof p.status !== "string" || !(PAYMENT_STATUSES as readonly string[]).includes(p.status)) {
    fail("payment.status", `must be one of ${PAYMENT_STATUSES.join(", ")}`);
  }
  const status = p.status as PaymentStatus;
  if (typeof p.amountMicro !== "bigint") fail("payment.amountMicro", "must be a bigint (micro-USDC)");
  else if (p.amountMicro < 0n || p.amountMicro >= UINT64_LIMIT) fail("payment.amountMicro", "must be in [0, 2^64)");
  if (!(p.payer === null || (typeof p.payer === "string" && isAddress(p.payer)))) fail("payment.payer", "must be an address or null");
  if (!(p.nonce === null || isBytes32(p.nonce))) fail("payment.nonce", "must be 32 bytes of hex or null");
  if (!(p.txHash === null || isBytes32(p.txHash))) fail("payment.txHash", "must be 32 bytes of hex or null");
  if (status === "settled") {
    if (p.txHash === null) fail("payment.txHash", "must be set for a settled payment");
    if (p.payer === null || p.nonce === null) fail("payment", "a settled payment names its payer and nonce");
    if (!record.billable) fail("billable", "must be true for a settled payment: a settled payment is a billed call");
  } else {
    if (p.txHash !== null) fail("payment.txHash", `must be null for a ${status} payment`);
    if (record.billable) fail("billable", `must be false for a ${status} payment: only a settled payment is billed`);
    if (status === "settle_pending" && (p.payer === null || p.nonce === null))
      fail("payment", "a pending settlement names its payer and nonce");
  }
  return {
    payer: p.payer === null ? null : getAddress(p.payer as string),
    amountMicro: p.amountMicro as bigint,
    nonce: p.nonce === null ? null : ((p.nonce as string).toLowerCase() as Hex),
    txHash: p.txHash === null ? null : ((p.txHash as string).toLowerCase() as Hex),
    status,
  };
}

/** Checks a value read from anywhere (JSON, a spool, an API) and returns it as a CallRecord. */
export function validateCallRecord(value: unknown): CallRecord {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new InvalidCallRecordError("record", "must be an object");
  }
  const r = value as Record<string, unknown>;
  const eventId = typeof r.eventId === "string" && r.eventId.length > 0 ? r.eventId : undefined;
  const fail = (field: string, reason: string): never => {
    throw new InvalidCallRecordError(field, reason, eventId);
  };

  for (const key of Object.keys(r)) {
    if (key !== "payment" && !(FIELDS as readonly string[]).includes(key)) fail(key, "is not a call record field");
  }
  for (const field of ["eventId", "tool"] as const) {
    const v = r[field];
    if (typeof v !== "string" || v.length === 0) fail(field, "must be a non-empty string");
    else if (utf8Length(v) > MAX_RECORD_STRING_BYTES) fail(field, `must be at most ${MAX_RECORD_STRING_BYTES} bytes`);
  }
  if (!isValidNamespace(r.provider)) fail("provider", "must be a FlowMCP namespace (1 to 64 ASCII letters or digits)");
  for (const field of ["startedAt", "endedAt", "durationMs", "requestBytes", "responseBytes"] as const) {
    const v = r[field];
    if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0) fail(field, "must be a non-negative integer");
  }
  if ((r.endedAt as number) < (r.startedAt as number)) fail("endedAt", "is before startedAt");
  if (typeof r.outcome !== "string" || !(CALL_OUTCOMES as readonly string[]).includes(r.outcome)) {
    fail("outcome", `must be one of ${CALL_OUTCOMES.join(", ")}`);
  }
  if (typeof r.billable !== "boolean") fail("billable", "must be a boolean");
  const price = r.priceMicro;
  if (typeof price !== "bigint") fail("priceMicro", "must be a bigint (micro-USDC)");
  else if (price < 0n || price >= UINT64_LIMIT) fail("priceMicro", "must be in [0, 2^64)");
  else if (!r.billable && price !== 0n) fail("priceMicro", "must be 0 for a non-billable call");

  const record = Object.fromEntries(FIELDS.map((f) => [f, r[f]])) as CallRecord;
  if (r.payment !== undefined) record.payment = validatePayment(r.payment, record, fail);
  return record;
}

/** A record as JSON takes it: amounts as decimal strings. */
export function callRecordToJson(record: CallRecord): Record<string, unknown> {
  const { payment, ...rest } = record;
  return {
    ...rest,
    priceMicro: record.priceMicro.toString(),
    ...(payment ? { payment: { ...payment, amountMicro: payment.amountMicro.toString() } } : {}),
  };
}

const DECIMAL = /^(0|[1-9]\d*)$/;

/** The inverse of `callRecordToJson`, validated; amounts must be decimal strings. */
export function callRecordFromJson(value: unknown): CallRecord {
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw new InvalidCallRecordError("record", "must be an object");
  const r = value as Record<string, unknown>;
  const eventId = typeof r.eventId === "string" ? r.eventId : undefined;
  const amount = (v: unknown, field: string): bigint => {
    if (typeof v !== "string" || !DECIMAL.test(v))
      throw new InvalidCallRecordError(field, "must be a decimal string (micro-USDC)", eventId);
    return BigInt(v);
  };
  const p = r.payment as Record<string, unknown> | undefined;
  return validateCallRecord({
    ...r,
    priceMicro: amount(r.priceMicro, "priceMicro"),
    ...(p !== undefined
      ? { payment: typeof p === "object" && p !== null ? { ...p, amountMicro: amount(p.amountMicro, "payment.amountMicro") } : p }
      : {}),
  });
}

const textEncoder = new TextEncoder();
const WORD = 32;
const HEAD_BYTES = FIELDS.length * WORD;
const padded = (n: number) => Math.ceil(n / WORD) * WORD;

/** Writes a non-negative integer below 2^64 right-aligned into the 32-byte word at `at`. */
function putUint(view: DataView, at: number, v: number | bigint): void {
  if (typeof v === "bigint") view.setBigUint64(at + 24, v);
  else {
    view.setUint32(at + 24, Math.floor(v / 2 ** 32));
    view.setUint32(at + 28, v >>> 0);
  }
}

/**
 * `abi.encode` of a validated record's fields, written straight into bytes: this runs once per
 * record on every batch build and every Merkle check, where a generic ABI encoder costs several
 * times more than the hashing. Equal to `encodeAbiParameters(CALL_RECORD_ABI, …)`.
 */
function encodeValidated(r: CallRecord): Uint8Array {
  const strings = [textEncoder.encode(r.eventId), textEncoder.encode(r.provider), textEncoder.encode(r.tool)];
  let size = HEAD_BYTES;
  for (const s of strings) size += WORD + padded(s.length);
  const out = new Uint8Array(size);
  const view = new DataView(out.buffer);
  let tail = HEAD_BYTES;
  strings.forEach((s, i) => {
    putUint(view, i * WORD, tail);
    putUint(view, tail, s.length);
    out.set(s, tail + WORD);
    tail += WORD + padded(s.length);
  });
  const statics: (number | bigint)[] = [
    r.startedAt,
    r.endedAt,
    r.durationMs,
    CALL_OUTCOMES.indexOf(r.outcome),
    r.requestBytes,
    r.responseBytes,
    r.billable ? 1 : 0,
    r.priceMicro,
  ];
  statics.forEach((v, i) => {
    putUint(view, (strings.length + i) * WORD, v);
  });
  return out;
}

const toHex = (bytes: Uint8Array): Hex => `0x${Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("hex")}`;

/** The record's canonical ABI encoding (validates it first). */
export function encodeCallRecord(record: CallRecord): Hex {
  return toHex(encodeValidated(validateCallRecord(record)));
}

/** Leaf of a record already checked by `validateCallRecord`. */
export function validatedRecordLeaf(record: CallRecord): Hex {
  return toHex(keccak256Bytes(keccak256Bytes(encodeValidated(record))));
}

/**
 * Merkle leaf: keccak256(keccak256(encoding)), as OpenZeppelin's StandardMerkleTree does, so a
 * leaf (32-byte preimage) can never be confused with an inner node (64-byte preimage) and
 * `MerkleProof.verify` accepts the proofs on chain.
 */
export function callRecordLeaf(record: CallRecord): Hex {
  return validatedRecordLeaf(validateCallRecord(record));
}
