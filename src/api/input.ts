import { type Address, getAddress, isAddress } from "viem";

/** A request parameter that is malformed; answered with 400 `{ error: { field, message } }`. */
export class ApiInputError extends Error {
  constructor(readonly field: string, message: string) {
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
