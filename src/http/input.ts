import { type Address, getAddress, type Hex, isAddress, isHex } from "viem";
import { BaseError } from "../errors.js";

export type ApiErrorStatus = 400 | 401 | 403 | 404 | 409 | 413 | 415 | 422;

/**
 * A request the API refuses; answered with `status` (400 unless told) and
 * `{ error: { field, message } }`, `field` naming the offending part of the request.
 */
export class ApiInputError extends BaseError {
  readonly code = "INVALID_REQUEST";
  constructor(
    readonly field: string,
    message: string,
    readonly status: ApiErrorStatus = 400,
  ) {
    super(message);
  }
}

const MAX_UINT256 = (1n << 256n) - 1n;

export function parseAddress(field: string, value: string | undefined): Address {
  if (value === undefined || !isAddress(value, { strict: false })) {
    throw new ApiInputError(field, "must be a 0x-prefixed 20-byte hex address");
  }
  return getAddress(value);
}

/** An optional uint256 in decimal. */
export function parseTokenId(value: string | undefined): bigint | undefined {
  if (value === undefined) return undefined;
  if (!/^\d{1,78}$/.test(value) || BigInt(value) > MAX_UINT256) {
    throw new ApiInputError("tokenId", "must be a non-negative decimal integer below 2^256");
  }
  return BigInt(value);
}

// ---------------------------------------------------------------- JSON bodies

export type JsonObject = Record<string, unknown>;

/** Parses a request body as JSON; anything else is a 400 on `body`. */
export function parseJsonBody(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new ApiInputError("body", "must be valid JSON");
  }
}

/** `value` as an object holding only `allowed` keys. */
export function expectObject(field: string, value: unknown, allowed: readonly string[]): JsonObject {
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw new ApiInputError(field, "must be a JSON object");
  for (const key of Object.keys(value)) {
    if (!allowed.includes(key)) throw new ApiInputError(field === "body" ? key : `${field}.${key}`, "is not an accepted field");
  }
  return value as JsonObject;
}

/**
 * An unsigned integer below 2^bits: a decimal string (the way bigints travel in JSON) or, for
 * convenience, a JSON number that is a safe integer.
 */
export function parseUint(field: string, value: unknown, bits: number): bigint {
  let n: bigint | undefined;
  if (typeof value === "string" && /^\d{1,78}$/.test(value)) n = BigInt(value);
  else if (typeof value === "number" && Number.isSafeInteger(value) && value >= 0) n = BigInt(value);
  if (n === undefined || n >= 1n << BigInt(bits)) {
    throw new ApiInputError(field, `must be a non-negative integer below 2^${bits} (a decimal string)`);
  }
  return n;
}

/** A 0x-prefixed hex string of exactly `bytes` bytes, lower-cased. */
export function parseFixedHex(field: string, value: unknown, bytes: number): Hex {
  if (typeof value !== "string" || !isHex(value, { strict: true }) || value.length !== 2 + 2 * bytes) {
    throw new ApiInputError(field, `must be 0x-prefixed hex of ${bytes} bytes`);
  }
  return value.toLowerCase() as Hex;
}

/** A non-empty 0x-prefixed hex byte string, lower-cased. */
export function parseBytes(field: string, value: unknown): Hex {
  if (typeof value !== "string" || !isHex(value, { strict: true }) || value.length < 4 || value.length % 2 !== 0) {
    throw new ApiInputError(field, "must be non-empty 0x-prefixed hex bytes");
  }
  return value.toLowerCase() as Hex;
}

export function parseAddressField(field: string, value: unknown): Address {
  if (typeof value !== "string") throw new ApiInputError(field, "must be a 0x-prefixed 20-byte hex address");
  return parseAddress(field, value);
}

export function parseBoolean(field: string, value: unknown): boolean {
  if (typeof value !== "boolean") throw new ApiInputError(field, "must be true or false");
  return value;
}
