import {
  addPoints,
  BASE8,
  IDENTITY,
  mulBase,
  mulBasePublic,
  mulPoint,
  type Point,
  pointEquals,
  randomScalar,
  SUBGROUP_ORDER,
  subPoints,
  sumPointsEach,
} from "./curve.js";
import { validateAmount } from "./errors.js";

export type EGCT = { c1: Point; c2: Point };

export const ZERO_EGCT: EGCT = Object.freeze({
  c1: Object.freeze([0n, 1n]) as unknown as Point,
  c2: Object.freeze([0n, 1n]) as unknown as Point,
}) as EGCT;

const isAllZero = (p: readonly bigint[]) => p[0] === 0n && p[1] === 0n;

/** Empty balance: the identity pair, or an unset on-chain struct that reads as all zeros. */
export function isZeroEGCT(ct: EGCT): boolean {
  return (pointEquals(ct.c1, IDENTITY) && pointEquals(ct.c2, IDENTITY)) || (isAllZero(ct.c1) && isAllZero(ct.c2));
}

/** Maps an all-zero (unset) EGCT to the identity pair; other values pass through. */
export function normalizeEGCT(ct: EGCT): EGCT {
  return isAllZero(ct.c1) && isAllZero(ct.c2)
    ? { c1: [...IDENTITY], c2: [...IDENTITY] }
    : { c1: [ct.c1[0], ct.c1[1]], c2: [ct.c2[0], ct.c2[1]] };
}

/** Exponential ElGamal: (r·Base8, m·Base8 + r·PK), m in [0, l). */
export function encryptElGamal(m: bigint, pk: Point, r?: bigint): { ct: EGCT; random: bigint } {
  validateAmount(m, { allowZero: true });
  const random = r ?? randomScalar();
  if (random <= 0n || random >= SUBGROUP_ORDER) throw new RangeError("ElGamal random must be in [1, l)");
  return {
    ct: { c1: mulBase(random), c2: addPoints(mulBase(m), mulPoint(pk, random)) },
    random,
  };
}

export function addEGCT(a: EGCT, b: EGCT): EGCT {
  const [x, y] = [normalizeEGCT(a), normalizeEGCT(b)];
  return { c1: addPoints(x.c1, y.c1), c2: addPoints(x.c2, y.c2) };
}

export function subEGCT(a: EGCT, b: EGCT): EGCT {
  const [x, y] = [normalizeEGCT(a), normalizeEGCT(b)];
  return { c1: subPoints(x.c1, y.c1), c2: subPoints(x.c2, y.c2) };
}

/** C2 − sk·C1, i.e. m·Base8 for the right key. */
export function decryptElGamalPoint(ct: EGCT, sk: bigint): Point {
  const { c1, c2 } = normalizeEGCT(ct);
  return subPoints(c2, mulPoint(c1, sk));
}

/**
 * How the eERC contract encrypts a public amount (a deposit, a withdrawal) under an account's key:
 * with randomness 1, (Base8, PK + value·Base8). The amount is public, so the variable-time
 * multiplication is safe here.
 */
export function encryptPublicAmount(value: bigint, pk: Point): EGCT {
  return { c1: [...BASE8], c2: addPoints(pk, mulBasePublic(value)) };
}

/** `addEGCT(ct, encryptPublicAmount(value, pk))` (a deposit's credit) with half the field inversions. */
export function addPublicAmount(ct: EGCT, value: bigint, pk: Point): EGCT {
  const x = normalizeEGCT(ct);
  const [c1, c2] = sumPointsEach([{ points: [x.c1, BASE8] }, { points: [x.c2, pk], k: value }]);
  return { c1: c1!, c2: c2! };
}
