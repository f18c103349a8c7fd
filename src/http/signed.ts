import type { Hex } from "viem";
import { z } from "zod/v4";
import { ApiInputError } from "./input.js";
import { uint } from "./schema.js";

/** A relayed signature must leave at least this long to mine its transaction (seconds). */
export const MIN_DEADLINE_LEAD_S = 60;
/** And may not be valid for longer than this (seconds): a leaked signature stays usable that long. */
export const MAX_DEADLINE_LEAD_S = 24 * 60 * 60;

/** A signature's deadline on the wire: Unix seconds, a uint256. Its window is checked against the clock by `checkDeadline`. */
export const deadline = uint(256).meta({ description: "Unix seconds after which the signature is void" });

/** A 65-byte ECDSA signature (r ‖ s ‖ v), or longer bytes for a contract signer (ERC-1271), lower-cased. */
export const signature = z
  .string({ error: "must be 0x-prefixed hex of a 65-byte signature" })
  .regex(/^0x([0-9a-fA-F]{2}){65,4096}$/, { error: "must be 0x-prefixed hex of a 65-byte signature", abort: true })
  .transform((v) => v.toLowerCase() as Hex)
  .meta({ description: "EIP-712 signature: 65 bytes from an EOA, longer for an ERC-1271 contract signer" });

/** A relayed signature's deadline, Unix seconds: at least a minute and at most a day from `now`. */
export function checkDeadline(field: string, value: bigint, now: number): bigint {
  if (value <= BigInt(now)) throw new ApiInputError(field, "has passed: sign again with a later deadline");
  if (value < BigInt(now + MIN_DEADLINE_LEAD_S)) {
    throw new ApiInputError(field, `must be at least ${MIN_DEADLINE_LEAD_S} s in the future, to leave time to mine`);
  }
  if (value > BigInt(now + MAX_DEADLINE_LEAD_S)) throw new ApiInputError(field, `must be at most ${MAX_DEADLINE_LEAD_S} s in the future`);
  return value;
}
