import { type Hex, encodeAbiParameters, keccak256, parseAbiParameters } from "viem";
import { InvalidCallRecordError } from "./errors.js";
import { isValidNamespace } from "./registry.js";

export type CallOutcome = "ok" | "tool_error" | "exception";

/** Outcomes in the order of their uint8 code in the leaf encoding. */
export const CALL_OUTCOMES = ["ok", "tool_error", "exception"] as const satisfies readonly CallOutcome[];

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
    if (!(FIELDS as readonly string[]).includes(key)) fail(key, "is not a call record field");
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

  return Object.fromEntries(FIELDS.map((f) => [f, r[f]])) as CallRecord;
}

/** The record's canonical ABI encoding (validates it first). */
export function encodeCallRecord(record: CallRecord): Hex {
  const r = validateCallRecord(record);
  return encodeAbiParameters(CALL_RECORD_ABI, [
    r.eventId,
    r.provider,
    r.tool,
    BigInt(r.startedAt),
    BigInt(r.endedAt),
    BigInt(r.durationMs),
    CALL_OUTCOMES.indexOf(r.outcome),
    BigInt(r.requestBytes),
    BigInt(r.responseBytes),
    r.billable,
    r.priceMicro,
  ]);
}

/**
 * Merkle leaf: keccak256(keccak256(encoding)), as OpenZeppelin's StandardMerkleTree does, so a
 * leaf (32-byte preimage) can never be confused with an inner node (64-byte preimage) and
 * `MerkleProof.verify` accepts the proofs on chain.
 */
export function callRecordLeaf(record: CallRecord): Hex {
  return keccak256(keccak256(encodeCallRecord(record)));
}
