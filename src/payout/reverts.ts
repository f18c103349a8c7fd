import { type Abi, decodeErrorResult, type Hex, type PublicClient, parseAbi } from "viem";
import { EncryptedERCAbi } from "../../abis/EncryptedERCAbi.js";

/**
 * Why a payout transfer reverted, as far as the payer can act on it:
 * - `stale_snapshot`: the balance the proof was made against is not a valid snapshot at the
 *   payer's nonce any more (the balance moved under a chain of proofs): prove again from chain;
 * - `receiver_full`: the receiver's pending amount PCTs are at the contract's cap
 *   (`PendingHistoryLimitReached`, reported for a 2026 hardening of the audited eERC): no credit
 *   reaches it until it spends, so its transfer is deferred to a later cycle;
 * - `unknown`: no reason could be read (no revert data, or the transaction would succeed now):
 *   treated as a moved balance, within the payer's recovery budget;
 * - `other`: any other decoded error: the payer stops, as nothing it can do changes it.
 */
export type RevertKind = "stale_snapshot" | "receiver_full" | "unknown" | "other";

export type RevertReason = {
  kind: RevertKind;
  /** The decoded error's name (and arguments), or what was found instead. */
  error: string;
};

/** Our EncryptedERC's errors, and the hardening's queue cap, which ours has only in `EncryptedERCCapped`. */
const DECODE_ABI = [...EncryptedERCAbi, ...parseAbi(["error PendingHistoryLimitReached()"])] as Abi;

const isHexData = (v: unknown): v is Hex => typeof v === "string" && /^0x[0-9a-fA-F]*$/.test(v) && v.length >= 10;

/** The revert data carried by a viem error (a failed call, gas estimate or simulation), if any. */
export function revertDataOf(err: unknown): Hex | undefined {
  let e: unknown = err;
  for (let depth = 0; e && typeof e === "object" && depth < 12; depth++) {
    const x = e as { raw?: unknown; data?: unknown; cause?: unknown };
    if (isHexData(x.raw)) return x.raw;
    if (isHexData(x.data)) return x.data;
    if (x.data && typeof x.data === "object" && isHexData((x.data as { data?: unknown }).data)) return (x.data as { data: Hex }).data;
    e = x.cause;
  }
  return undefined;
}

/**
 * Classifies revert data. `provedFrom` says what the transfer's proof was made against: the
 * balance read from chain, or one predicted from the payer's earlier transfers still in flight.
 * Our contract names a stale snapshot (`InvalidBalanceSnapshot`); the audited one reverts with
 * `InvalidProof` for it as for any failed check, so there `InvalidProof` on a predicted balance
 * reads as a moved balance, and on a balance read from chain as unknown (retried, within budget).
 */
export function classifyRevert(data: Hex | undefined, provedFrom: "chain" | "predicted"): RevertReason {
  if (!data) return { kind: "unknown", error: "no revert data" };
  let name: string;
  let args: readonly unknown[] | undefined;
  try {
    const decoded = decodeErrorResult({ abi: DECODE_ABI, data });
    name = decoded.errorName;
    args = decoded.args as readonly unknown[] | undefined;
  } catch {
    return { kind: "other", error: `undecoded revert data ${data.slice(0, 10)}` };
  }
  const error = args && args.length > 0 ? `${name}(${args.map(String).join(", ")})` : name;
  if (name === "InvalidBalanceSnapshot") return { kind: "stale_snapshot", error };
  if (name === "PendingHistoryLimitReached") return { kind: "receiver_full", error };
  if (name === "InvalidProof") return { kind: provedFrom === "predicted" ? "stale_snapshot" : "unknown", error };
  return { kind: "other", error };
}

/**
 * Why a mined transaction reverted: it is replayed with `eth_call` on the state after its block,
 * from the same sender with the same data and gas. A snapshot that was stale when the transaction
 * ran is still stale there (only the payer's own later spends change its nonce, and an earlier
 * failure stops the chain), and a full queue only empties when its owner spends.
 */
export async function minedRevertReason(
  publicClient: PublicClient,
  hash: Hex,
  blockNumber: bigint,
  provedFrom: "chain" | "predicted",
): Promise<RevertReason> {
  const tx = await publicClient.getTransaction({ hash });
  try {
    await publicClient.call({ account: tx.from, to: tx.to ?? undefined, data: tx.input, gas: tx.gas, blockNumber });
  } catch (err) {
    return classifyRevert(revertDataOf(err), provedFrom);
  }
  return { kind: "unknown", error: "the transaction succeeds on the state after its block" };
}
