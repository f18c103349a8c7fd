import { isOnCurve, mulBase, mulPoint, type Point, randomScalar, SUBGROUP_ORDER } from "./curve.js";
import { PCTDecryptionError, validateAmount } from "./errors.js";
import { poseidonDecrypt, poseidonEncrypt } from "./poseidon.js";

/** `[c0, c1, c2, c3, authKey.x, authKey.y, nonce]` */
export type PCT = bigint[];

const TWO_128 = 1n << 128n;

function randomNonce(): bigint {
  const buf = new Uint8Array(16);
  globalThis.crypto.getRandomValues(buf);
  let n = 0n;
  for (const b of buf) n = (n << 8n) | BigInt(b);
  return n;
}

export function encryptPCT(
  amount: bigint,
  pk: Point,
  opts: { random?: bigint; nonce?: bigint } = {},
): { pct: PCT; random: bigint; nonce: bigint; authKey: Point; ciphertext: bigint[] } {
  validateAmount(amount, { allowZero: true });
  const random = opts.random ?? randomScalar();
  if (random <= 0n || random >= SUBGROUP_ORDER) throw new RangeError("PCT random must be in [1, l)");
  const nonce = opts.nonce ?? randomNonce();
  if (nonce < 0n || nonce >= TWO_128) throw new RangeError("PCT nonce must be in [0, 2^128)");
  const authKey = mulBase(random);
  const ciphertext = poseidonEncrypt([amount], mulPoint(pk, random), nonce);
  return { pct: [...ciphertext, authKey[0], authKey[1], nonce], random, nonce, authKey, ciphertext };
}

export function isEmptyPCT(pct: readonly bigint[]): boolean {
  return pct.every((w) => w === 0n);
}

/** Decrypts the amount; throws PCTDecryptionError on a malformed PCT or a failed tag. */
export function decryptPCT(pct: readonly bigint[], sk: bigint): bigint {
  if (pct.length !== 7) throw new PCTDecryptionError(`PCT must have 7 words, got ${pct.length}`);
  const authKey: Point = [pct[4], pct[5]];
  const nonce = pct[6];
  if (!isOnCurve(authKey)) throw new PCTDecryptionError("PCT authKey is not on the curve");
  if (nonce < 0n || nonce >= TWO_128) throw new PCTDecryptionError("PCT nonce is not below 2^128");
  const plain = poseidonDecrypt(pct.slice(0, 4), mulPoint(authKey, sk), nonce, 1);
  if (!plain) throw new PCTDecryptionError();
  return plain[0]!;
}

/**
 * Decrypts a PCT with the randomness it was made with instead of the recipient's key: its sender
 * recomputes the shared key random·PK. Throws PCTDecryptionError unless the PCT's authKey is
 * random·Base8 and its tag checks.
 */
export function decryptPCTWithRandom(pct: readonly bigint[], random: bigint, recipientPk: Point): bigint {
  if (pct.length !== 7) throw new PCTDecryptionError(`PCT must have 7 words, got ${pct.length}`);
  const authKey = mulBase(random);
  if (authKey[0] !== pct[4] || authKey[1] !== pct[5]) throw new PCTDecryptionError("PCT authKey is not random·Base8");
  if (pct[6] < 0n || pct[6] >= TWO_128) throw new PCTDecryptionError("PCT nonce is not below 2^128");
  const plain = poseidonDecrypt(pct.slice(0, 4), mulPoint(recipientPk, random), pct[6], 1);
  if (!plain) throw new PCTDecryptionError();
  return plain[0]!;
}
