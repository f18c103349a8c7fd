import { mulBase, type Point, pointEquals, SUBGROUP_ORDER } from "./curve.js";
import { decryptElGamalPoint, type EGCT } from "./elgamal.js";
import { BalanceViewCorruptError, PCTDecryptionError } from "./errors.js";
import { decryptPCT, isEmptyPCT } from "./pct.js";

export type BalanceView = {
  eGCT: EGCT;
  balancePCT: readonly bigint[];
  amountPCTs: readonly { pct: readonly bigint[]; index: bigint }[];
};

/** Decrypted PCTs by their words, for callers that decrypt many views sharing PCTs (a balance history). */
export type PCTCache = Map<string, bigint>;

function decryptOrCorrupt(pct: readonly bigint[], sk: bigint, what: string, index?: bigint, cache?: PCTCache): bigint {
  const key = cache && pct.join(",");
  const hit = key === undefined ? undefined : cache!.get(key);
  if (hit !== undefined) return hit;
  try {
    const value = decryptPCT(pct, sk);
    if (key !== undefined) cache!.set(key, value);
    return value;
  } catch (e) {
    if (e instanceof PCTDecryptionError) {
      throw new BalanceViewCorruptError("pct-decryption", `${what} does not decrypt: ${e.message}`, index);
    }
    throw e;
  }
}

/**
 * decrypt(balancePCT) + Σ decrypt(amountPCTs), checked against the EGCT. Identical PCTs are
 * decrypted once (a queue filled by replaying one ciphertext costs one decryption, not thousands).
 */
export function decryptBalance(view: BalanceView, sk: bigint, cache: PCTCache = new Map()): bigint {
  let sum = isEmptyPCT(view.balancePCT) ? 0n : decryptOrCorrupt(view.balancePCT, sk, "balancePCT", undefined, cache);
  for (const { pct, index } of view.amountPCTs) {
    sum += decryptOrCorrupt(pct, sk, `amountPCT #${index}`, index, cache);
  }
  if (sum >= SUBGROUP_ORDER) {
    throw new BalanceViewCorruptError("balance-out-of-range", "PCT total is not below l");
  }
  let decrypted: Point;
  try {
    decrypted = decryptElGamalPoint(view.eGCT, sk);
  } catch (e) {
    if (e instanceof RangeError) throw new BalanceViewCorruptError("egct-mismatch", e.message);
    throw e;
  }
  if (!pointEquals(decrypted, mulBase(sum))) {
    throw new BalanceViewCorruptError("egct-mismatch", `EGCT does not decrypt to the PCT total (${view.amountPCTs.length} amountPCTs)`);
  }
  return sum;
}
