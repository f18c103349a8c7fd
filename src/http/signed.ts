import type { Hex } from "viem";
import { ApiInputError, parseUint } from "./input.js";

/** A relayed signature must leave at least this long to mine its transaction (seconds). */
export const MIN_DEADLINE_LEAD_S = 60;
/** And may not be valid for longer than this (seconds): a leaked signature stays usable that long. */
export const MAX_DEADLINE_LEAD_S = 24 * 60 * 60;

/** A signature's deadline, Unix seconds: at least a minute and at most a day from `now`. */
export function parseDeadline(field: string, value: unknown, now: number): bigint {
  const deadline = parseUint(field, value, 256);
  if (deadline <= BigInt(now)) throw new ApiInputError(field, "has passed: sign again with a later deadline");
  if (deadline < BigInt(now + MIN_DEADLINE_LEAD_S)) {
    throw new ApiInputError(field, `must be at least ${MIN_DEADLINE_LEAD_S} s in the future, to leave time to mine`);
  }
  if (deadline > BigInt(now + MAX_DEADLINE_LEAD_S))
    throw new ApiInputError(field, `must be at most ${MAX_DEADLINE_LEAD_S} s in the future`);
  return deadline;
}

/** A 65-byte ECDSA signature (r ‖ s ‖ v), or longer bytes for a contract signer (ERC-1271). */
export function parseSignature(field: string, value: unknown): Hex {
  if (typeof value !== "string" || !/^0x([0-9a-fA-F]{2})+$/.test(value) || value.length < 2 + 130 || value.length > 2 + 2 * 4096) {
    throw new ApiInputError(field, "must be 0x-prefixed hex of a 65-byte signature");
  }
  return value.toLowerCase() as Hex;
}
