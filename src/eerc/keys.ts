import { blake512 } from "@noble/hashes/blake1.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { type Hex, hexToBytes } from "viem";
import { mulBase, type Point, SUBGROUP_ORDER } from "./curve.js";
import { InvalidPrivateKeyError } from "./errors.js";
import { poseidonHash } from "./poseidon.js";

const MAX_GRIND = 1000;
const TWO_256 = 1n << 256n;
// Largest multiple of l below 2^256: k mod l is uniform for k under it.
const GRIND_BOUND = TWO_256 - (TWO_256 % SUBGROUP_ORDER);

export function registrationMessage(address: Hex): string {
  return `eERC\nRegistering user with\n Address:${address.toLowerCase()}`;
}

const bytesToBigBE = (b: Uint8Array): bigint => {
  let n = 0n;
  for (const x of b) n = (n << 8n) | BigInt(x);
  return n;
};

const evenHex = (h: string): string => (h.length % 2 === 1 ? `0${h}` : h);

/** Steps 2-3: seed = r, sha256 rejection grind; the key mod l as hex without leading zeros. */
export function groundKeyHex(signature: Hex): string {
  if (!/^0x[0-9a-fA-F]{130}$/.test(signature)) {
    throw new TypeError("signature must be 65 bytes of hex");
  }
  const seed = signature.slice(2, 66);
  for (let i = 0; i < MAX_GRIND; i++) {
    const k = bytesToBigBE(sha256(hexToBytes(`0x${seed}${evenHex(i.toString(16))}`)));
    if (k < GRIND_BOUND) return (k % SUBGROUP_ORDER).toString(16);
  }
  throw new InvalidPrivateKeyError("key grinding did not converge");
}

/**
 * Node's Buffer.from(hex, "hex") semantics for a well-formed hex string: bytes of the
 * longest even-length prefix, so an odd-length string loses its final nibble. The official
 * SDK feeds the (usually 63-char) ground key through it, so the truncation is part of the
 * derivation.
 */
function nodeHexBytes(hex: string): Uint8Array {
  return hexToBytes(`0x${hex.slice(0, hex.length - (hex.length % 2))}`);
}

/** Step 4: circomlib-style BabyJubJub key formatting of the ground key. */
function formatPrivateKey(keyHex: string): bigint {
  const h = blake512(nodeHexBytes(keyHex)).slice(0, 32);
  h[0] &= 0xf8;
  h[31] = (h[31] & 0x7f) | 0x40;
  return (bytesToBigBE(h.reverse()) >> 3n) % SUBGROUP_ORDER;
}

export function deriveKeyFromSignature(signature: Hex): bigint {
  const sk = formatPrivateKey(groundKeyHex(signature));
  validatePrivateKey(sk);
  return sk;
}

export async function deriveKeyFromWallet(account: {
  address: Hex;
  signMessage(args: { message: string }): Promise<Hex>;
}): Promise<bigint> {
  const signature = await account.signMessage({ message: registrationMessage(account.address) });
  return deriveKeyFromSignature(signature);
}

export function validatePrivateKey(sk: bigint): void {
  if (typeof sk !== "bigint" || sk < 1n || sk >= SUBGROUP_ORDER) throw new InvalidPrivateKeyError();
}

export function publicKeyOf(sk: bigint): Point {
  validatePrivateKey(sk);
  return mulBase(sk);
}

/** Poseidon(ChainID, sk, address) as constrained by the registration circuit. */
export function registrationHash(chainId: bigint, sk: bigint, address: Hex): bigint {
  validatePrivateKey(sk);
  return poseidonHash([chainId, sk, BigInt(address)]);
}
