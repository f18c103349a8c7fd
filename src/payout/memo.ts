import { type Hex, decodeAbiParameters, encodeAbiParameters, parseAbiParameters } from "viem";
import { type Point, mulBase, pointEquals } from "../eerc/curve.js";
import { decryptElGamalPoint } from "../eerc/elgamal.js";
import { decryptPCT, encryptPCT } from "../eerc/pct.js";
import { wordsToEGCT } from "../indexer/calldata.js";
import type { ProviderId } from "../revenue/types.js";
import { MemoMismatchError } from "./errors.js";

/**
 * The memo every payout transfer carries in its `bytes message`, version 1:
 * `abi.encode(bytes4 "BSP1", uint64 cycle, uint64 throughBlock, bytes32 providerId, uint256[7] amountPCT)`.
 * Cycle, boundary block and provider are in clear (the receiving account is public anyway, and
 * the registry maps it to the provider); the amount is a PCT under the operator's key. Together
 * the memos on chain are the payout ledger: what each provider was paid, in which cycle, and the
 * block each cycle settled through.
 */
export type PayoutMemo = { cycle: number; throughBlock: bigint; providerId: ProviderId; amountPCT: bigint[] };

export const MEMO_MAGIC = "0x42535031" as const; // "BSP1"
const MEMO_ABI = parseAbiParameters("bytes4 magic, uint64 cycle, uint64 throughBlock, bytes32 providerId, uint256[7] amountPCT");

export function encodeMemo(args: { cycle: number; throughBlock: bigint; providerId: ProviderId; amount: bigint; operatorPk: Point }): Hex {
  const { pct } = encryptPCT(args.amount, args.operatorPk);
  return encodeAbiParameters(MEMO_ABI, [
    MEMO_MAGIC,
    BigInt(args.cycle),
    args.throughBlock,
    args.providerId,
    pct as unknown as readonly [bigint, bigint, bigint, bigint, bigint, bigint, bigint],
  ]);
}

/** The memo in a transfer's message, or undefined when the message is not a payout memo. */
export function decodeMemo(message: Hex): PayoutMemo | undefined {
  try {
    const [magic, cycle, throughBlock, providerId, amountPCT] = decodeAbiParameters(MEMO_ABI, message);
    if (magic.toLowerCase() !== MEMO_MAGIC || cycle === 0n || cycle > BigInt(Number.MAX_SAFE_INTEGER)) return undefined;
    return { cycle: Number(cycle), throughBlock, providerId: providerId.toLowerCase() as ProviderId, amountPCT: [...amountPCT] };
  } catch {
    return undefined;
  }
}

/** The memo's amount, read with the operator's key. */
export function memoAmount(memo: PayoutMemo, operatorSk: bigint): bigint {
  return decryptPCT(memo.amountPCT, operatorSk);
}

/**
 * Checks a memo's amount against what the chain moved: the sender-side ciphertext of the transfer
 * (its sender VTT, an ElGamal encryption of the amount under the payer's key) must decrypt to
 * amount·G. A memo that disagrees is refused, so a wrong memo can never make a provider look paid.
 */
export function checkMemoAmount(args: { amount: bigint; senderVTT: readonly bigint[]; payerSk: bigint; txHash: Hex }): void {
  const point = decryptElGamalPoint(wordsToEGCT(args.senderVTT), args.payerSk);
  if (!pointEquals(point, mulBase(args.amount))) throw new MemoMismatchError(args.txHash);
}
