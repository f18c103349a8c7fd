import {
  type Address,
  BaseError,
  ContractFunctionRevertedError,
  ContractFunctionZeroDataError,
  ExecutionRevertedError,
  getAddress,
  type Hex,
  parseAbi,
} from "viem";
import { atOrBefore, byChainPosition, type ChainPosition } from "../chain/position.js";
import type { IndexerClient } from "../indexer-client/client.js";
import type { ProviderId } from "../revenue/types.js";
import type { ProviderChangeFact } from "./facts.js";
import { type QueueReading, queueKey } from "./settlement.js";
import type { Payout } from "./tag.js";

/**
 * The public facts that tell a deferred payout from a short one. On an eERC that caps each
 * balance's pending amount PCTs (`MAX_PENDING_AMOUNT_PCTS()`: 300 on the reported hardening of the
 * audited eERC, our `EncryptedERCCapped`), a credit to a full queue reverts, so the payout agent
 * skips that provider (it stays owed; a later cycle pays it). The auditor checks the condition
 * without the agent: the receiver's queue length comes from the indexer's replay of the balance
 * model (`balance_history` and `amount_pct`, what `balanceOf` returned after each change), at the
 * cycle's last payout transfer, and is compared with the cap (`payoutStatus` in `settlement.ts`).
 */

/** The pending-queue cap's view, on an eERC that has one. */
export const PENDING_CAP_ABI = parseAbi(["function MAX_PENDING_AMOUNT_PCTS() view returns (uint256)"]);

/**
 * The eERC's cap on a balance's pending amount PCTs (immutable, so any block reads it), or null
 * when the contract has no such view (the audited main and our `EncryptedERC` have no cap). An
 * unreachable endpoint throws.
 */
export async function readPendingCap(
  client: {
    readContract(args: { address: Address; abi: typeof PENDING_CAP_ABI; functionName: "MAX_PENDING_AMOUNT_PCTS" }): Promise<bigint>;
  },
  encryptedERC: Address,
): Promise<bigint | null> {
  try {
    return await client.readContract({ address: encryptedERC, abi: PENDING_CAP_ABI, functionName: "MAX_PENDING_AMOUNT_PCTS" });
  } catch (e) {
    // A revert or an empty answer is a contract without the view; anything else is the endpoint's.
    const noView = (x: unknown) =>
      x instanceof ContractFunctionRevertedError || x instanceof ContractFunctionZeroDataError || x instanceof ExecutionRevertedError;
    if (e instanceof BaseError && e.walk(noView)) return null;
    throw e;
  }
}

/**
 * The pending cap of the eERC the indexer follows, found without a manifest: the contract that
 * emitted the first indexed `AuditorChanged` event, read over `client` (`readPendingCap`). Null
 * when no auditor is set yet (no payout can be audited) or the eERC has no cap.
 */
export async function indexedPendingCap(
  indexer: IndexerClient,
  client: Parameters<typeof readPendingCap>[0] & {
    getTransactionReceipt(args: { hash: Hex }): Promise<{ logs: readonly { address: Address; logIndex: number | null }[] }>;
  },
): Promise<bigint | null> {
  const data = await indexer.query<{ auditorChanges: { items: { txHash: Hex; logIndex: number }[] } }>(
    `{ auditorChanges(orderBy: "blockNumber", orderDirection: "asc", limit: 1) { items { txHash logIndex } } }`,
  );
  const first = data.auditorChanges.items[0];
  if (!first) return null;
  const receipt = await client.getTransactionReceipt({ hash: first.txHash });
  const log = receipt.logs.find((l) => l.logIndex === first.logIndex);
  if (!log) throw new Error(`transaction ${first.txHash} has no log ${first.logIndex}: the RPC serves another chain than the indexer`);
  return readPendingCap(client, getAddress(log.address));
}

type HistoryRow = { blockNumber: string; logIndex: number; transactionIndex: string; pendingFrom: string };

/**
 * How many amount PCTs `account`'s balance of `tokenId` held pending right after the event at
 * `at` (and everything before it), as the indexer replays the balance model: the latest
 * `balance_history` row at or before `at` keeps the `amount_pct` rows with
 * `pendingFrom <= index < transactionIndex`. 0 for a balance never credited by then.
 */
export async function pendingQueueAt(
  indexer: IndexerClient,
  args: { account: Address; tokenId: bigint; at: ChainPosition },
): Promise<bigint> {
  const where = (extra: string) => `{ account: "${args.account.toLowerCase()}", tokenId: "${args.tokenId}", ${extra} }`;
  const fields = "blockNumber logIndex transactionIndex pendingFrom";
  const block = `"${args.at.blockNumber}"`;
  // The last change before the block, and every change in it (a queue can be filled in one block), paged.
  const [before, inBlock] = await Promise.all([
    indexer.query<{ balanceHistorys: { items: HistoryRow[] } }>(
      `{ balanceHistorys(where: ${where(`blockNumber_lt: ${block}`)}, orderBy: "transactionIndex", orderDirection: "desc", limit: 1) { items { ${fields} } } }`,
    ),
    indexer.all<HistoryRow>("balanceHistorys", fields, "transactionIndex", where(`blockNumber: ${block}`)),
  ]);
  const rows = [...before.balanceHistorys.items, ...inBlock]
    .map((r) => ({
      blockNumber: BigInt(r.blockNumber),
      logIndex: r.logIndex,
      transactionIndex: BigInt(r.transactionIndex),
      pendingFrom: BigInt(r.pendingFrom),
    }))
    .filter((r) => atOrBefore(r, args.at))
    .sort(byChainPosition);
  const last = rows.at(-1);
  if (!last || last.transactionIndex <= last.pendingFrom) return 0n;
  const count = await indexer.query<{ amountPcts: { totalCount: number } }>(
    `{ amountPcts(where: ${where(`index_gte: "${last.pendingFrom}", index_lt: "${last.transactionIndex}"`)}, limit: 1) { totalCount } }`,
  );
  return BigInt(count.amountPcts.totalCount);
}

/** The eERC token a transfer moved (the token a cycle's payouts are in), found by its position. */
async function tokenOfTransfer(indexer: IndexerClient, transfer: ChainPosition & { txHash: Hex }): Promise<bigint> {
  const data = await indexer.query<{ privateTransfers: { items: { tokenId: string }[] } }>(
    `{ privateTransfers(where: { blockNumber: "${transfer.blockNumber}", logIndex: ${transfer.logIndex} }, limit: 1) { items { tokenId } } }`,
  );
  const row = data.privateTransfers.items[0];
  if (!row) throw new Error(`the indexer has no private transfer ${transfer.txHash}`);
  return BigInt(row.tokenId);
}

/**
 * The pending queue of each provider that `unpaid` lists (owed something, paid nothing in its
 * cycle), read at its cycle's last payout transfer: the payout account in force then (the one the
 * agent pays), in the token the cycle's payouts moved. A provider without a registration by then
 * gets no reading.
 */
export async function readPendingQueues(
  indexer: IndexerClient,
  args: {
    unpaid: readonly { cycle: number; providerId: ProviderId }[];
    payouts: readonly Payout[];
    providerChanges: readonly ProviderChangeFact[];
  },
): Promise<Map<string, QueueReading>> {
  const lastPayout = new Map<number, Payout>();
  for (const p of args.payouts) {
    const seen = lastPayout.get(p.cycle);
    if (!seen || byChainPosition(seen, p) < 0) lastPayout.set(p.cycle, p);
  }
  const tokens = new Map<number, bigint>();
  const out = new Map<string, QueueReading>();
  // One at a time: unpaid providers are few, and the API is shared.
  for (const { cycle, providerId } of args.unpaid) {
    const last = lastPayout.get(cycle);
    if (!last) continue;
    let account: Address | undefined;
    for (const c of args.providerChanges) if (c.providerId === providerId && atOrBefore(c, last)) account = c.payoutAccount;
    if (!account) continue;
    let tokenId = tokens.get(cycle);
    if (tokenId === undefined) {
      tokenId = await tokenOfTransfer(indexer, last);
      tokens.set(cycle, tokenId);
    }
    const at = { blockNumber: last.blockNumber, logIndex: last.logIndex };
    const pendingPCTs = await pendingQueueAt(indexer, { account, tokenId, at });
    out.set(queueKey(cycle, providerId), { account: getAddress(account), tokenId, pendingPCTs, ...at, txHash: last.txHash });
  }
  return out;
}
