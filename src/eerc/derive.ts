import { hmac } from "@noble/hashes/hmac.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex, numberToBytes } from "viem";
import { SUBGROUP_ORDER } from "./curve.js";

const mac = (secret: bigint, message: string): bigint =>
  BigInt(bytesToHex(hmac(sha256, numberToBytes(secret), new TextEncoder().encode(message))));

/**
 * A scalar in [1, l) derived from a private key and a context string (HMAC-SHA256): randomness
 * that the key holder can recompute later and nobody else can predict. Each context must name
 * exactly one encryption.
 */
export function deriveScalar(secret: bigint, context: string): bigint {
  return (mac(secret, `random|${context}`) % (SUBGROUP_ORDER - 1n)) + 1n;
}

/** A PCT nonce (below 2^128) derived like `deriveScalar`. */
export function deriveNonce(secret: bigint, context: string): bigint {
  return mac(secret, `nonce|${context}`) % (1n << 128n);
}

/** A fraction of `whole` (in [0, whole], floor of whole × u for a derived u in [0, 1)), derived like `deriveScalar`. */
export function deriveShareOf(secret: bigint, context: string, whole: bigint): bigint {
  if (whole < 0n) throw new RangeError("the whole must not be negative");
  return (whole * mac(secret, `share|${context}`)) >> 256n;
}
