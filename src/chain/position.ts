/** Where an event sits on the chain: its block, then its log's index within the block. */
export type ChainPosition = { blockNumber: bigint; logIndex: number };

/** Chain order, for `Array.prototype.sort`: by block, then by log index (a missing log index counts as 0). */
export function byChainPosition(a: { blockNumber: bigint; logIndex?: number }, b: { blockNumber: bigint; logIndex?: number }): number {
  if (a.blockNumber !== b.blockNumber) return a.blockNumber < b.blockNumber ? -1 : 1;
  return (a.logIndex ?? 0) - (b.logIndex ?? 0);
}

/** `a` is at or before `b` in chain order. */
export const atOrBefore = (a: ChainPosition, b: ChainPosition): boolean => byChainPosition(a, b) <= 0;
