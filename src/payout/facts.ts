import { type Address, getAddress, type Hex } from "viem";
import type { PricingModelName } from "../../ponder.schema.js";
import { byChainPosition, type ChainPosition } from "../chain/position.js";
import type { Point } from "../eerc/curve.js";
import type { CommittedBatch } from "../history/usage.js";
import type { IndexerClient } from "../indexer-client/client.js";
import type { SettlementRecord } from "../revenue/schedule.js";
import type { ProviderId } from "../revenue/types.js";
import type { PeriodUnit } from "../usage/period.js";
import { type Pricing, PricingModel } from "../usage/pricing.js";
import type { ServerBindingFact } from "./admission.js";
import { attributeTransfers, decodeTag, type PayerTransfer, type Payout, type UnattributedTransfer } from "./tag.js";

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
/** A committed batch, with what settlement needs of it. */
export type BatchFact = Pick<CommittedBatch, "server" | "batchId" | "periodStart" | "encryptedLines" | "blockNumber" | "logIndex">;

/** A fee payment into the revenue pool (token units, which are micro-USDC for 6-decimal USDC), with its block's timestamp. */
export type PoolFeeFact = ChainPosition & { amount: bigint; timestamp: bigint };

/** A converter deposit into a payer's encrypted balance: its amount is public (`credited`, eERC units: micro-USDC). */
export type DepositFact = ChainPosition & { account: Address; creditedMicro: bigint };

/** The block every indexed chain has reached (the lowest), with its timestamp (Unix seconds). */
export type IndexedHead = { number: bigint; timestamp: bigint };

export async function indexedHead(status: IndexerClient): Promise<IndexedHead> {
  const indexed = Object.values(await status.indexedHeads()).sort((a, b) => a.number - b.number);
  if (indexed.length === 0) throw new Error(`the indexer at ${status.baseUrl} reports no chain`);
  return { number: BigInt(indexed[0]!.number), timestamp: BigInt(indexed[0]!.timestamp) };
}

/** Everything a settlement is computed from, as indexed up to `indexedBlock`. */
export type SettlementFacts = {
  indexedBlock: bigint;
  /** The timestamp of `indexedBlock` (Unix seconds). */
  indexedTimestamp: bigint;
  /** The settlement settings the ProviderRegistry recorded, in chain order. */
  settlementRecords: SettlementRecord[];
  providerChanges: ProviderChangeFact[];
  /** The UsageLedger's server-to-provider bindings and their caps, in chain order. */
  serverBindings: ServerBindingFact[];
  batches: BatchFact[];
  poolFees: PoolFeeFact[];
  /** The payer accounts whose transfers were read. */
  payers: Address[];
  /** Every transfer from a payer that is a payout, matched to its cycle and provider. */
  payouts: Payout[];
  /** Every other transfer from a payer: the ledger cannot account for it. */
  unattributed: UnattributedTransfer[];
  /** Every deposit by a payer, in chain order (the money flow the auditor reports). */
  deposits: DepositFact[];
  /** The public key each payout's receiver had registered when it was paid, by transaction. */
  receiverKeys: Map<Hex, Point>;
  /** Every auditor the eERC had, in chain order (the pool reserves depend on the one in force). */
  auditorChanges: { publicKey: Point; blockNumber: bigint }[];
};

const MODELS: Record<PricingModelName, Pricing["model"]> = {
  PerCall: PricingModel.PerCall,
  FreePool: PricingModel.FreePool,
  Tiered: PricingModel.Tiered,
};

const words = (w: readonly string[] | null): bigint[] | null => (w === null ? null : w.map((v) => BigInt(v)));

/**
 * Reads the settlement facts from the indexer's GraphQL. The payouts are the transfers from
 * `payers`: only a payer can send from a payer account, so no one else can make a provider look
 * paid, and every transfer a payer sent must be a payout the ledger accounts for. `"any"` (an
 * auditor without the operator's list) takes as payers every account that sent a tagged transfer.
 */
export async function readSettlementFacts(
  client: IndexerClient,
  payers: readonly Address[] | "any",
  options: {
    /** Where `/status` answers, when not at `client` (the API reads its own GraphQL in memory). */
    status?: IndexerClient;
    /** The indexed head, when the caller has read it (`indexedHead`). */
    head?: IndexedHead;
    /**
     * Only the facts of the blocks after this one through the indexed head, for a reader that
     * holds the earlier ones: their payouts are attributed with `knownProviderChanges` too.
     */
    after?: bigint;
    /** The provider changes of the blocks through `after`. */
    knownProviderChanges?: readonly ProviderChangeFact[];
  } = {},
): Promise<SettlementFacts> {
  // The block everything below was indexed through; read first, so no fact is newer than it.
  const { number: indexedBlock, timestamp: indexedTimestamp } = options.head ?? (await indexedHead(options.status ?? client));
  // With `after`, the facts of the blocks (after, indexedBlock] only.
  const window = options.after === undefined ? [] : [`blockNumber_gt: "${options.after}"`, `blockNumber_lte: "${indexedBlock}"`];
  const where = (...parts: string[]) => (parts.length + window.length === 0 ? undefined : `{ ${[...parts, ...window].join(", ")} }`);

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
  type BindingRow = {
    server: Address;
    providerId: Hex;
    bound: boolean;
    maxCallsPerBatch: string;
    maxCallsPerPeriod: string;
    blockNumber: string;
    logIndex: number;
  };
  type FeeRow = { amount: string; blockNumber: string; logIndex: number; timestamp: string };
  type SettlementRow = { feeBps: number; periodUnit: PeriodUnit; effectiveFrom: string; blockNumber: string; logIndex: number };
  type TransferRow = {
    txHash: Hex;
    from: Address;
    to: Address;
    senderVTT: string[] | null;
    receiverPCT: string[] | null;
    auditorPCT: string[];
    blockNumber: string;
    logIndex: number;
  };
  type RegistrationRow = { address: Address; publicKey: string[]; blockNumber: string };
  type DepositRow = { account: Address; credited: string; blockNumber: string; logIndex: number };
  type AuditorRow = { publicKey: string[]; blockNumber: string; logIndex: number };

  const fromFilter = payers === "any" ? where() : where(`from_in: ${JSON.stringify(payers.map((p) => p.toLowerCase()))}`);
  const none = payers !== "any" && payers.length === 0;
  const [changes, batches, fees, transferRows, auditors, settlements, bindings] = await Promise.all([
    client.all<ChangeRow>(
      "providerChanges",
      "providerId namespace payoutAccount active pricingModel pricePerCallMicro poolWeight tierUpToCalls tierPriceMicro blockNumber logIndex",
      "blockNumber",
      where(),
    ),
    client.all<BatchRow>("usageCommitments", "server batchId periodStart encryptedLines blockNumber logIndex", "blockNumber", where()),
    client.all<FeeRow>("poolFees", "amount blockNumber logIndex timestamp", "blockNumber", where()),
    none
      ? Promise.resolve([])
      : client.all<TransferRow>(
          "privateTransfers",
          "txHash from to senderVTT receiverPCT auditorPCT blockNumber logIndex",
          "blockNumber",
          fromFilter,
        ),
    client.all<AuditorRow>("auditorChanges", "publicKey blockNumber logIndex", "blockNumber", where()),
    client.all<SettlementRow>("settlementChanges", "feeBps periodUnit effectiveFrom blockNumber logIndex", "blockNumber", where()),
    client.all<BindingRow>(
      "serverBindings",
      "server providerId bound maxCallsPerBatch maxCallsPerPeriod blockNumber logIndex",
      "blockNumber",
      where(),
    ),
  ]);

  let transfers: PayerTransfer[] = transferRows.map((t) => ({
    txHash: t.txHash,
    from: getAddress(t.from),
    to: getAddress(t.to),
    auditorPCT: words(t.auditorPCT)!,
    receiverPCT: words(t.receiverPCT),
    senderVTT: words(t.senderVTT),
    blockNumber: BigInt(t.blockNumber),
    logIndex: t.logIndex,
  }));
  const payerList =
    payers === "any"
      ? [...new Set(transfers.filter((t) => decodeTag(t.auditorPCT[6]!)).map((t) => t.from))]
      : payers.map((p) => getAddress(p));
  const payerSet = new Set(payerList);
  transfers = transfers.filter((t) => payerSet.has(t.from)).sort(byChainPosition);

  const providerChanges = changes
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
    .sort(byChainPosition);
  const { payouts, unattributed } = attributeTransfers(transfers, [...(options.knownProviderChanges ?? []), ...providerChanges]);

  const receivers = [...new Set(payouts.map((p) => p.to.toLowerCase()))];
  const depositors = payerList.map((p) => p.toLowerCase());
  const [registrations, depositRows] = await Promise.all([
    receivers.length === 0
      ? Promise.resolve([])
      : client.all<RegistrationRow>(
          "registrations",
          "address publicKey blockNumber",
          "blockNumber",
          `{ address_in: ${JSON.stringify(receivers)} }`,
        ),
    depositors.length === 0
      ? Promise.resolve([])
      : client.all<DepositRow>(
          "deposits",
          "account credited blockNumber logIndex",
          "blockNumber",
          where(`account_in: ${JSON.stringify(depositors)}`),
        ),
  ]);
  const receiverKeys = new Map<Hex, Point>();
  for (const p of payouts) {
    let key: Point | undefined;
    for (const r of registrations) {
      if (getAddress(r.address) === p.to && BigInt(r.blockNumber) <= p.blockNumber)
        key = [BigInt(r.publicKey[0]!), BigInt(r.publicKey[1]!)];
    }
    if (key) receiverKeys.set(p.txHash, key);
  }

  return {
    indexedBlock,
    indexedTimestamp,
    settlementRecords: settlements
      .map((r) => ({
        feeBps: r.feeBps,
        periodUnit: r.periodUnit,
        effectiveFrom: BigInt(r.effectiveFrom),
        blockNumber: BigInt(r.blockNumber),
        logIndex: r.logIndex,
      }))
      .sort(byChainPosition),
    providerChanges,
    serverBindings: bindings
      .map((r) => ({
        server: getAddress(r.server),
        providerId: r.providerId.toLowerCase() as ProviderId,
        bound: r.bound,
        maxCallsPerBatch: BigInt(r.maxCallsPerBatch),
        maxCallsPerPeriod: BigInt(r.maxCallsPerPeriod),
        blockNumber: BigInt(r.blockNumber),
        logIndex: r.logIndex,
      }))
      .sort(byChainPosition),
    batches: batches
      .map((r) => ({
        server: getAddress(r.server),
        batchId: r.batchId,
        periodStart: BigInt(r.periodStart),
        encryptedLines: r.encryptedLines,
        blockNumber: BigInt(r.blockNumber),
        logIndex: r.logIndex,
      }))
      .sort(byChainPosition),
    poolFees: fees
      .map((r) => ({ amount: BigInt(r.amount), blockNumber: BigInt(r.blockNumber), logIndex: r.logIndex, timestamp: BigInt(r.timestamp) }))
      .sort(byChainPosition),
    payers: payerList,
    auditorChanges: auditors
      .map((a) => ({
        publicKey: [BigInt(a.publicKey[0]!), BigInt(a.publicKey[1]!)] as Point,
        blockNumber: BigInt(a.blockNumber),
        logIndex: a.logIndex,
      }))
      .sort(byChainPosition)
      .map(({ publicKey, blockNumber }) => ({ publicKey, blockNumber })),
    payouts,
    unattributed,
    deposits: depositRows
      .map((r) => ({
        account: getAddress(r.account),
        creditedMicro: BigInt(r.credited),
        blockNumber: BigInt(r.blockNumber),
        logIndex: r.logIndex,
      }))
      .sort(byChainPosition),
    receiverKeys,
  };
}

/** The tables settlement reads, as `factsFingerprint` and `factsMissing` name them. */
const FINGERPRINTED = [
  "providerChanges",
  "usageCommitments",
  "poolFees",
  "auditorChanges",
  "settlementChanges",
  "serverBindings",
  "privateTransfers",
] as const;
type FingerprintedTable = (typeof FINGERPRINTED)[number];

/** The latest fact at or below a block of each table settlement reads: `print` compares, `blocks` locates. */
export type LatestFacts = { print: string; blocks: Record<FingerprintedTable, bigint | null> };

/**
 * The latest fact at or below `block` of each table settlement reads (the payers' transfers
 * only): a reorg that replaces any of the blocks through `block` changes one of them, so a reader
 * that keeps the facts through `block` compares this before it reads on. Two requests: the usage
 * commitment alone, since one may be wider than the API serves next to other rows, and the other
 * tables' latest rows together.
 */
export async function readLatestFacts(client: IndexerClient, payers: readonly Address[], block: bigint): Promise<LatestFacts> {
  const atOrBelow = `blockNumber_lte: "${block}"`;
  const where = (field: FingerprintedTable) =>
    field === "privateTransfers" ? `${atOrBelow}, from_in: ${JSON.stringify(payers.map((p) => p.toLowerCase()))}` : atOrBelow;
  type Latest = { items: { blockNumber: string; logIndex: number; txHash: Hex }[] };
  const latest = (field: FingerprintedTable) =>
    `${field}(where: { ${where(field)} }, orderBy: "blockNumber", orderDirection: "desc", limit: 1) { items { blockNumber logIndex txHash } }`;
  const wide = (field: FingerprintedTable) => field === "usageCommitments";
  const [usage, others] = await Promise.all([
    client.query<Record<string, Latest>>(`{ ${FINGERPRINTED.filter(wide).map(latest).join(" ")} }`),
    client.query<Record<string, Latest>>(
      `{ ${FINGERPRINTED.filter((f) => !wide(f))
        .map(latest)
        .join(" ")} }`,
    ),
  ]);
  const rows = FINGERPRINTED.map((field) => ({ ...others, ...usage })[field]?.items[0] ?? null);
  const blocks = Object.fromEntries(FINGERPRINTED.map((field, i) => [field, rows[i] ? BigInt(rows[i].blockNumber) : null]));
  return { print: JSON.stringify(rows), blocks: blocks as LatestFacts["blocks"] };
}

export async function factsFingerprint(client: IndexerClient, payers: readonly Address[], block: bigint): Promise<string> {
  return (await readLatestFacts(client, payers, block)).print;
}

/**
 * The tables whose latest fact after `after` is not the one `latest` names: facts read while the
 * indexer undid blocks (Ponder reverts a reorg's rows at once and indexes the blocks again one by
 * one, while `/status` still reports the old head) lack the rows of the last blocks. Every table
 * is read in block order, so a read that missed rows missed its latest ones.
 */
export function factsMissing(facts: SettlementFacts, latest: LatestFacts, after: bigint): FingerprintedTable[] {
  const read: Record<FingerprintedTable, readonly { blockNumber: bigint }[]> = {
    providerChanges: facts.providerChanges,
    usageCommitments: facts.batches,
    poolFees: facts.poolFees,
    auditorChanges: facts.auditorChanges,
    settlementChanges: facts.settlementRecords,
    serverBindings: facts.serverBindings,
    privateTransfers: [...facts.payouts, ...facts.unattributed],
  };
  return FINGERPRINTED.filter((table) => {
    const last = read[table].reduce<bigint | null>((m, r) => (m === null || r.blockNumber > m ? r.blockNumber : m), null);
    const expected = latest.blocks[table];
    return last !== (expected !== null && expected > after ? expected : null);
  });
}
