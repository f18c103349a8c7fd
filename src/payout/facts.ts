import { type Address, type Hex, getAddress } from "viem";
import type { PricingModelName } from "../../ponder.schema.js";
import type { UsageGraphqlClient } from "../history/usage-api.js";
import { indexedBlocks } from "../indexer/process.js";
import type { ProviderId } from "../revenue/types.js";
import { type Pricing, PricingModel } from "../usage/registry.js";
import { type PayoutMemo, decodeMemo } from "./memo.js";

/** A provider's registration right after one of its ProviderRegistry events. */
export type ProviderChangeFact = {
  providerId: ProviderId;
  namespace: string;
  payoutAccount: Address;
  active: boolean;
  pricing: Pricing;
  blockNumber: bigint;
  logIndex: number;
};

/** A committed usage batch: where it sits on chain, its period start (server clock, ms) and its encrypted lines. */
export type BatchFact = { server: Address; batchId: Hex; periodStart: bigint; encryptedLines: Hex; blockNumber: bigint; logIndex: number };

/** A fee payment into the revenue pool (token units, which are micro-USDC for 6-decimal USDC). */
export type PoolFeeFact = { amount: bigint; blockNumber: bigint; logIndex: number };

/** A private transfer from a payer account that carries a payout memo. */
export type PayoutFact = {
  txHash: Hex;
  from: Address;
  to: Address;
  memo: PayoutMemo;
  /** The sender-side ciphertext [c1.x, c1.y, c2.x, c2.y]; null when the indexer read block state instead of calldata. */
  senderVTT: bigint[] | null;
  auditorPCT: bigint[];
  blockNumber: bigint;
  logIndex: number;
};

/** Everything a settlement is computed from, as indexed up to `indexedBlock`. */
export type SettlementFacts = {
  indexedBlock: bigint;
  providerChanges: ProviderChangeFact[];
  batches: BatchFact[];
  poolFees: PoolFeeFact[];
  payouts: PayoutFact[];
};

const MODELS: Record<PricingModelName, Pricing["model"]> = {
  PerCall: PricingModel.PerCall,
  FreePool: PricingModel.FreePool,
  Tiered: PricingModel.Tiered,
};

export const byChainOrder = (a: { blockNumber: bigint; logIndex: number }, b: { blockNumber: bigint; logIndex: number }) =>
  a.blockNumber === b.blockNumber ? a.logIndex - b.logIndex : a.blockNumber < b.blockNumber ? -1 : 1;

const words = (w: readonly string[] | null): bigint[] | null => (w === null ? null : w.map((v) => BigInt(v)));

/**
 * Reads the settlement facts from the indexer's GraphQL. Payouts are the transfers from `payers`
 * whose message decodes as a payout memo: only a payer can send from a payer account, so no one
 * else can make a provider look paid. `"any"` takes memos from every sender (an auditor checking
 * everything: a memo from elsewhere then shows up as a mismatch).
 */
export async function readSettlementFacts(
  client: UsageGraphqlClient,
  payers: readonly Address[] | "any",
  options: { readStatus?: boolean } = {},
): Promise<SettlementFacts> {
  // Inside the indexer's own API there is no HTTP round trip to /status: the latest fact stands in.
  let indexedBlock = -1n;
  if (options.readStatus !== false) {
    const statusUrl = new URL("..", client.url).href.replace(/\/$/, "");
    const indexed = Object.values(await indexedBlocks(statusUrl));
    if (indexed.length === 0) throw new Error(`the indexer at ${statusUrl} reports no chain`);
    indexedBlock = BigInt(Math.min(...indexed));
  }

  type ChangeRow = {
    providerId: Hex;
    namespace: string;
    payoutAccount: Address;
    active: boolean;
    pricingModel: PricingModelName;
    pricePerCallMicro: string;
    poolWeight: number;
    tierUpToCalls: string[];
    tierPriceMicro: string[];
    blockNumber: string;
    logIndex: number;
  };
  type BatchRow = { server: Address; batchId: Hex; periodStart: string; encryptedLines: Hex; blockNumber: string; logIndex: number };
  type FeeRow = { amount: string; blockNumber: string; logIndex: number };
  type TransferRow = { txHash: Hex; from: Address; to: Address; senderVTT: string[] | null; auditorPCT: string[]; blockNumber: string; logIndex: number };
  type MessageRow = { txHash: Hex; encryptedMsg: Hex };

  const fromFilter = payers === "any" ? "" : `from_in: ${JSON.stringify(payers.map((p) => p.toLowerCase()))}, `;
  const none = payers !== "any" && payers.length === 0;
  const [changes, batches, fees, transfers, messages] = await Promise.all([
    client.all<ChangeRow>(
      "providerChanges",
      "providerId namespace payoutAccount active pricingModel pricePerCallMicro poolWeight tierUpToCalls tierPriceMicro blockNumber logIndex",
      "blockNumber",
    ),
    client.all<BatchRow>("usageCommitments", "server batchId periodStart encryptedLines blockNumber logIndex", "blockNumber"),
    client.all<FeeRow>("poolFees", "amount blockNumber logIndex", "blockNumber"),
    none
      ? Promise.resolve([])
      : client.all<TransferRow>("privateTransfers", "txHash from to senderVTT auditorPCT blockNumber logIndex", "blockNumber", fromFilter ? `{ ${fromFilter} }` : undefined),
    none ? Promise.resolve([]) : client.all<MessageRow>("privateMessages", "txHash encryptedMsg", "blockNumber", `{ ${fromFilter}messageType: "TRANSFER" }`),
  ]);

  const memos = new Map<string, PayoutMemo>();
  for (const m of messages) {
    const memo = decodeMemo(m.encryptedMsg);
    if (memo) memos.set(m.txHash.toLowerCase(), memo);
  }
  const payouts: PayoutFact[] = [];
  for (const t of transfers) {
    const memo = memos.get(t.txHash.toLowerCase());
    if (!memo) continue;
    payouts.push({
      txHash: t.txHash,
      from: getAddress(t.from),
      to: getAddress(t.to),
      memo,
      senderVTT: words(t.senderVTT),
      auditorPCT: words(t.auditorPCT)!,
      blockNumber: BigInt(t.blockNumber),
      logIndex: t.logIndex,
    });
  }

  if (options.readStatus === false) {
    for (const r of [...changes, ...batches, ...fees, ...transfers]) if (BigInt(r.blockNumber) > indexedBlock) indexedBlock = BigInt(r.blockNumber);
  }
  return {
    indexedBlock,
    providerChanges: changes
      .map((r) => ({
        providerId: r.providerId.toLowerCase() as ProviderId,
        namespace: r.namespace,
        payoutAccount: getAddress(r.payoutAccount),
        active: r.active,
        pricing: {
          model: MODELS[r.pricingModel],
          pricePerCallMicro: BigInt(r.pricePerCallMicro),
          poolWeight: r.poolWeight,
          tiers: r.tierUpToCalls.map((upTo, i) => ({ upToCalls: BigInt(upTo), priceMicro: BigInt(r.tierPriceMicro[i]!) })),
        },
        blockNumber: BigInt(r.blockNumber),
        logIndex: r.logIndex,
      }))
      .sort(byChainOrder),
    batches: batches
      .map((r) => ({
        server: getAddress(r.server),
        batchId: r.batchId,
        periodStart: BigInt(r.periodStart),
        encryptedLines: r.encryptedLines,
        blockNumber: BigInt(r.blockNumber),
        logIndex: r.logIndex,
      }))
      .sort(byChainOrder),
    poolFees: fees.map((r) => ({ amount: BigInt(r.amount), blockNumber: BigInt(r.blockNumber), logIndex: r.logIndex })).sort(byChainOrder),
    payouts: payouts.sort(byChainOrder),
  };
}
