import { SUBGROUP_ORDER, mulBase, pointEquals } from "./curve.js";
import { type EGCT, decryptElGamalPoint } from "./elgamal.js";
import { BalanceViewCorruptError, PCTDecryptionError } from "./errors.js";
import { decryptPCT, isEmptyPCT } from "./pct.js";

export type BalanceView = {
  eGCT: EGCT;
  balancePCT: readonly bigint[];
  amountPCTs: readonly { pct: readonly bigint[]; index: bigint }[];
};

function decryptOrCorrupt(pct: readonly bigint[], sk: bigint, what: string, index?: bigint): bigint {
  try {
    return decryptPCT(pct, sk);
  } catch (e) {
    if (e instanceof PCTDecryptionError) {
      throw new BalanceViewCorruptError("pct-decryption", `${what} does not decrypt: ${e.message}`, index);
    }
    throw e;
  }
}

/** decrypt(balancePCT) + Σ decrypt(amountPCTs), checked against the EGCT. */
export function decryptBalance(view: BalanceView, sk: bigint): bigint {
  let sum = isEmptyPCT(view.balancePCT) ? 0n : decryptOrCorrupt(view.balancePCT, sk, "balancePCT");
  for (const { pct, index } of view.amountPCTs) {
    sum += decryptOrCorrupt(pct, sk, `amountPCT #${index}`, index);
  }
  if (sum >= SUBGROUP_ORDER) {
    throw new BalanceViewCorruptError("balance-out-of-range", "PCT total is not below l");
  }
  let decrypted;
  try {
    decrypted = decryptElGamalPoint(view.eGCT, sk);
  } catch (e) {
    if (e instanceof RangeError) throw new BalanceViewCorruptError("egct-mismatch", e.message);
    throw e;
  }
  if (!pointEquals(decrypted, mulBase(sum))) {
    throw new BalanceViewCorruptError(
      "egct-mismatch",
      `EGCT does not decrypt to the PCT total (${view.amountPCTs.length} amountPCTs)`,
    );
  }
  return sum;
}
