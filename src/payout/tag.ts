import { type Address, getAddress, type Hex } from "viem";
import type { Point } from "../eerc/curve.js";
import { deriveScalar } from "../eerc/derive.js";
import type { EGCT } from "../eerc/elgamal.js";
import { PCTDecryptionError } from "../eerc/errors.js";
import type { TransferPCTOptions } from "../eerc/inputs.js";
import { decryptPCTWithRandom } from "../eerc/pct.js";
import { wordsToEGCT } from "../indexer/calldata.js";
import type { ProviderId } from "../revenue/types.js";

/**
 * The payout tag: what makes a private transfer a payout, carried by the transfer itself so that
 * the payout ledger is on chain on every eERC version, with or without the `bytes message`
 * overloads, and is written atomically with the payment. It is the nonce of the transfer's
 * auditor PCT (public in the `PrivateTransfer` event) and of its receiver PCT. A PCT nonce is
 * any value below 2^128 chosen by the prover, and the circuit binds it into the proof:
 *
 *   bits 112..127  0xB5B2, the format
 *   bits  80..111  the cycle (from 1)
 *   bits  32..79   the block the cycle settles through
 *   bits   0..31   the provider: the first 4 bytes of its id (keccak256 of its namespace)
 *
 * The provider slot only has to tell apart the providers paid to the same account. Cycle,
 * boundary and receiving account are public anyway (the timing and parties of eERC transfers
 * are). The amount stays encrypted: the auditor reads it from the auditor PCT, and the operator
 * from the receiver PCT, whose randomness is derived from the operator's key (`receiverRandom`).
 * A payer's transfer without a tag the ledger can match is never silently skipped: the agent
 * refuses to run a cycle and reconciliation fails (`UnattributedTransfer`).
 */
export type PayoutTag = { cycle: number; throughBlock: bigint; providerSlot: number };

const FORMAT = 0xb5b2n;
const MAX_CYCLE = 2 ** 32 - 1;
const MAX_BLOCK = (1n << 48n) - 1n;

export const providerSlot = (providerId: ProviderId): number => Number.parseInt(providerId.slice(2, 10), 16);

export function encodeTag(args: { cycle: number; throughBlock: bigint; providerId: ProviderId }): bigint {
  if (!Number.isInteger(args.cycle) || args.cycle < 1 || args.cycle > MAX_CYCLE)
    throw new RangeError(`payout cycle ${args.cycle} is outside 1..${MAX_CYCLE}`);
  if (args.throughBlock < 0n || args.throughBlock > MAX_BLOCK) throw new RangeError(`block ${args.throughBlock} does not fit a payout tag`);
  return (FORMAT << 112n) | (BigInt(args.cycle) << 80n) | (args.throughBlock << 32n) | BigInt(providerSlot(args.providerId));
}

/** The tag a PCT nonce holds, or undefined when the nonce is not a payout tag. */
export function decodeTag(nonce: bigint): PayoutTag | undefined {
  if (nonce >> 112n !== FORMAT || nonce >= 1n << 128n) return undefined;
  const cycle = Number((nonce >> 80n) & 0xffffffffn);
  if (cycle === 0) return undefined;
  return { cycle, throughBlock: (nonce >> 32n) & MAX_BLOCK, providerSlot: Number(nonce & 0xffffffffn) };
}

/**
 * The randomness of a payout's receiver PCT, derived from the operator's key, the tag and the
 * transfer's sender VTT (fresh for every transfer, so no two PCTs share a key): whoever holds the
 * operator's key reads the amount back, and the circuit proves it is the amount transferred.
 */
export function receiverRandom(operatorSk: bigint, tag: bigint, senderVTT: EGCT): bigint {
  return deriveScalar(operatorSk, `payout|${tag}|${senderVTT.c1[0]}|${senderVTT.c1[1]}`);
}

/** The PCT choices of a payout transfer: both nonces hold the tag, the receiver PCT's randomness is the operator's. */
export function payoutPCTOptions(operatorSk: bigint, tag: bigint): TransferPCTOptions {
  return { nonce: tag, receiverPCTRandom: (senderVTT) => receiverRandom(operatorSk, tag, senderVTT) };
}

/** A payout's amount read with the operator's key; throws PCTDecryptionError when its receiver PCT was not made with that key. */
export function operatorAmount(operatorSk: bigint, payout: Payout, receiverPk: Point): bigint {
  if (!payout.receiverPCT || !payout.senderVTT)
    throw new PCTDecryptionError("the indexer has no receiver PCT or sender VTT for this transfer");
  const random = receiverRandom(operatorSk, payout.receiverPCT[6]!, wordsToEGCT(payout.senderVTT));
  return decryptPCTWithRandom(payout.receiverPCT, random, receiverPk);
}

/**
 * Every payout's amount as the operator reads it. A payout whose amount the operator's key does
 * not open is not one this operator made: it joins the unattributed transfers.
 */
export function operatorAmounts(
  operatorSk: bigint,
  facts: { payouts: readonly Payout[]; receiverKeys: ReadonlyMap<Hex, Point> },
  cache: Map<Hex, bigint> = new Map(),
): { amounts: Map<Hex, bigint>; unreadable: UnattributedTransfer[] } {
  const unreadable: UnattributedTransfer[] = [];
  for (const p of facts.payouts) {
    if (cache.has(p.txHash)) continue;
    const pk = facts.receiverKeys.get(p.txHash);
    try {
      if (!pk) throw new PCTDecryptionError("the receiver has no registered key");
      cache.set(p.txHash, operatorAmount(operatorSk, p, pk));
    } catch (e) {
      if (!(e instanceof PCTDecryptionError)) throw e;
      unreadable.push({ ...p, reason: "its receiver PCT does not open with the operator's key" });
    }
  }
  return { amounts: cache, unreadable };
}

/** A private transfer from a payer, before it is matched to a provider. */
export type PayerTransfer = {
  txHash: Hex;
  from: Address;
  to: Address;
  auditorPCT: bigint[];
  /** Null when the indexer could not read it (the transfer did not call the eERC directly and its credit was not found). */
  receiverPCT: bigint[] | null;
  /** [c1.x, c1.y, c2.x, c2.y]; null when the transfer did not call the eERC directly. */
  senderVTT: bigint[] | null;
  blockNumber: bigint;
  logIndex: number;
};

/** A payout: a payer's transfer matched to a cycle and a provider. */
export type Payout = PayerTransfer & { cycle: number; throughBlock: bigint; providerId: ProviderId };

/** A payer's transfer that is not a payout the ledger can account for: the agent stops, reconciliation fails. */
export type UnattributedTransfer = PayerTransfer & { reason: string };

/**
 * Matches each payer transfer to its cycle and provider: its auditor PCT nonce must be a payout
 * tag, the receiver PCT must carry the same nonce, and exactly one provider that ever paid out to
 * the receiving account (as of the transfer) must have the tag's provider slot.
 */
export function attributeTransfers(
  transfers: readonly PayerTransfer[],
  payoutAccounts: readonly { providerId: ProviderId; payoutAccount: Address; blockNumber: bigint }[],
): { payouts: Payout[]; unattributed: UnattributedTransfer[] } {
  const payouts: Payout[] = [];
  const unattributed: UnattributedTransfer[] = [];
  for (const t of transfers) {
    const tag = decodeTag(t.auditorPCT[6]!);
    if (!tag) {
      unattributed.push({ ...t, reason: "its auditor PCT nonce is not a payout tag" });
      continue;
    }
    if (t.receiverPCT && t.receiverPCT[6] !== t.auditorPCT[6]) {
      unattributed.push({ ...t, reason: "its receiver and auditor PCTs carry different tags" });
      continue;
    }
    const to = getAddress(t.to);
    const candidates = new Set(
      payoutAccounts
        .filter(
          (p) => p.blockNumber <= t.blockNumber && getAddress(p.payoutAccount) === to && providerSlot(p.providerId) === tag.providerSlot,
        )
        .map((p) => p.providerId),
    );
    if (candidates.size !== 1) {
      unattributed.push({
        ...t,
        reason:
          candidates.size === 0
            ? "no provider paying out to its receiver has its tag's provider slot"
            : "several providers paying out to its receiver share its tag's provider slot",
      });
      continue;
    }
    payouts.push({ ...t, cycle: tag.cycle, throughBlock: tag.throughBlock, providerId: [...candidates][0]! });
  }
  return { payouts, unattributed };
}
