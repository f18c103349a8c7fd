import type { Context } from "ponder:registry";
import { amountPct, balance, balanceHistory, token } from "ponder:schema";
import type { Address, Hex } from "viem";
import { EncryptedERCAbi } from "../../abis/EncryptedERCAbi.js";
import { IDENTITY, mulBasePublic, pointEquals } from "../eerc/curve.js";
import { type EGCT, addEGCT, normalizeEGCT, subEGCT } from "../eerc/elgamal.js";
import type { BalanceChangeKind, RowSource } from "../../ponder.schema.js";
import { egctToWords, wordsToEGCT } from "./calldata.js";

// Replays the eERC balance model (contracts/EncryptedERC.sol, `_credit` and `_spend`) per
// (account, tokenId), so that every balance change is stored without reading the chain:
// - a credit adds its EGCT, appends its amount PCT at index = transactionIndex, records the new
//   EGCT as a snapshot at the current nonce, and increments transactionIndex;
// - a spend subtracts its EGCT from the current one, drops the amount PCTs credited up to the
//   snapshot it was proven against (pendingFrom = that snapshot's transactionIndex), stores the
//   caller's balancePCT, and increments nonce and transactionIndex.

export type EventMeta = { id: string; blockNumber: bigint; logIndex: number; timestamp: bigint; txHash: Hex };

type Db = Context["db"];
type BalanceState = {
  eGCT: EGCT;
  nonce: bigint;
  transactionIndex: bigint;
  pendingFrom: bigint;
  balancePCT: bigint[];
};

const ZERO_PCT: bigint[] = [0n, 0n, 0n, 0n, 0n, 0n, 0n];
const lower = (a: Address) => a.toLowerCase() as Address;

export const metaOf = (event: {
  id: string;
  block: { number: bigint; timestamp: bigint };
  log: { logIndex: number };
  transaction: { hash: Hex };
}): EventMeta => ({
  id: event.id,
  blockNumber: event.block.number,
  logIndex: event.log.logIndex,
  timestamp: event.block.timestamp,
  txHash: event.transaction.hash,
});

export const eventColumns = (m: EventMeta) => ({ blockNumber: m.blockNumber, logIndex: m.logIndex, timestamp: m.timestamp, txHash: m.txHash });

async function currentState(db: Db, account: Address, tokenId: bigint): Promise<BalanceState> {
  const row = await db.find(balance, { account: lower(account), tokenId });
  if (!row) return { eGCT: { c1: [...IDENTITY], c2: [...IDENTITY] }, nonce: 0n, transactionIndex: 0n, pendingFrom: 0n, balancePCT: ZERO_PCT };
  return { eGCT: wordsToEGCT(row.eGCT), nonce: row.nonce, transactionIndex: row.transactionIndex, pendingFrom: row.pendingFrom, balancePCT: row.balancePCT };
}

async function record(
  db: Db,
  args: { account: Address; tokenId: bigint; kind: BalanceChangeKind; source: RowSource; meta: EventMeta; state: BalanceState },
): Promise<void> {
  const { account, tokenId, kind, source, meta, state } = args;
  const values = {
    eGCT: egctToWords(state.eGCT),
    nonce: state.nonce,
    transactionIndex: state.transactionIndex,
    pendingFrom: state.pendingFrom,
    balancePCT: state.balancePCT,
  };
  await db.insert(balanceHistory).values({
    account: lower(account),
    tokenId,
    kind,
    source,
    eventId: meta.id,
    ...values,
    ...eventColumns(meta),
  });
  await db
    .insert(balance)
    .values({ account: lower(account), tokenId, ...values, blockNumber: meta.blockNumber, logIndex: meta.logIndex })
    .onConflictDoUpdate({ ...values, blockNumber: meta.blockNumber, logIndex: meta.logIndex });
}

type CreditKind = "deposit" | "transfer_in" | "mint";

/** `_credit`: adds `add` (a VTT, or (identity, value·Base8) for a deposit) and appends `pct`. */
export async function applyCredit(
  db: Db,
  args: { account: Address; tokenId: bigint; kind: CreditKind; add: EGCT; pct: bigint[]; meta: EventMeta },
): Promise<void> {
  const cur = await currentState(db, args.account, args.tokenId);
  await db
    .insert(amountPct)
    .values({
      account: lower(args.account),
      tokenId: args.tokenId,
      index: cur.transactionIndex,
      pct: args.pct,
      kind: args.kind,
      eventId: args.meta.id,
      ...eventColumns(args.meta),
    });
  await record(db, {
    account: args.account,
    tokenId: args.tokenId,
    kind: args.kind,
    source: "calldata",
    meta: args.meta,
    state: { ...cur, eGCT: addEGCT(cur.eGCT, args.add), transactionIndex: cur.transactionIndex + 1n },
  });
}

/**
 * The transactionIndex recorded with `snapshot` at the current nonce (what the contract keeps in
 * `snapshots`): the history rows since the last spend are the only valid snapshots.
 */
async function snapshotIndex(db: Db, account: Address, tokenId: bigint, cur: BalanceState, snapshot: EGCT): Promise<bigint | undefined> {
  const target = normalizeEGCT(snapshot);
  for (let t = cur.transactionIndex; t > 0n; t--) {
    const row = await db.find(balanceHistory, { account: lower(account), tokenId, transactionIndex: t });
    if (!row || row.nonce !== cur.nonce) return undefined;
    const e = wordsToEGCT(row.eGCT);
    if (pointEquals(e.c1, target.c1) && pointEquals(e.c2, target.c2)) return t;
  }
  return undefined;
}

/**
 * `_spend`: subtracts `sub` (the sender VTT, the burnt VTB, or (identity, value·Base8) for a
 * withdrawal) and stores `balancePCT`. Returns false when the proof's snapshot is not among the
 * indexed ones, in which case nothing was written and the caller reads the chain instead.
 */
export async function applySpend(
  db: Db,
  args: { account: Address; tokenId: bigint; kind: "transfer_out" | "withdraw" | "burn"; sub: EGCT; snapshot: EGCT; balancePCT: bigint[]; meta: EventMeta },
): Promise<boolean> {
  const cur = await currentState(db, args.account, args.tokenId);
  const pendingFrom = await snapshotIndex(db, args.account, args.tokenId, cur, args.snapshot);
  if (pendingFrom === undefined) return false;
  await record(db, {
    account: args.account,
    tokenId: args.tokenId,
    kind: args.kind,
    source: "calldata",
    meta: args.meta,
    state: {
      eGCT: subEGCT(cur.eGCT, args.sub),
      nonce: cur.nonce + 1n,
      transactionIndex: cur.transactionIndex + 1n,
      pendingFrom,
      balancePCT: args.balancePCT,
    },
  });
  return true;
}

/** (identity, value·Base8): what a deposit adds and a withdrawal subtracts. */
// Deposit and withdrawal amounts are public, so the fast variable-time multiplication is safe here.
export const plainEGCT = (value: bigint): EGCT => ({ c1: [...IDENTITY], c2: mulBasePublic(value) });

/**
 * For a change that could not be replayed from calldata (the transaction did not call the eERC
 * directly): the balance as `balanceOf` returns it at the end of the event's block. Exact unless
 * the same balance changes again later in that block.
 */
export async function applyBlockState(
  context: Pick<Context, "db" | "client" | "contracts">,
  args: { account: Address; tokenId: bigint; kind: BalanceChangeKind; meta: EventMeta },
): Promise<{ creditPCT: bigint[] | undefined; balancePCT: bigint[] }> {
  const { db } = context;
  const cur = await currentState(db, args.account, args.tokenId);
  const [eGCT, nonce, amountPCTs, balancePCT] = await context.client.readContract({
    abi: EncryptedERCAbi,
    address: context.contracts.EncryptedERC.address as Address,
    functionName: "balanceOf",
    args: [args.account, args.tokenId],
    blockNumber: args.meta.blockNumber,
  });
  // A credit's own PCT is the one at the index it was given; later ones in this block belong
  // to later events, which store them themselves.
  const credited = amountPCTs.find((a) => a.index === cur.transactionIndex);
  const creditPCT = credited && (args.kind === "deposit" || args.kind === "transfer_in" || args.kind === "mint") ? [...credited.pct] : undefined;
  if (creditPCT) {
    await db
      .insert(amountPct)
      .values({
        account: lower(args.account),
        tokenId: args.tokenId,
        index: cur.transactionIndex,
        pct: creditPCT,
        kind: args.kind as CreditKind,
        eventId: args.meta.id,
        ...eventColumns(args.meta),
      });
  }
  const state: BalanceState = {
    eGCT: normalizeEGCT({ c1: [eGCT.c1.x, eGCT.c1.y], c2: [eGCT.c2.x, eGCT.c2.y] }),
    nonce,
    transactionIndex: cur.transactionIndex + 1n,
    pendingFrom: amountPCTs.length > 0 ? amountPCTs[0]!.index : cur.transactionIndex + 1n,
    balancePCT: [...balancePCT],
  };
  await record(db, { account: args.account, tokenId: args.tokenId, kind: args.kind, source: "block_state", meta: args.meta, state });
  return { creditPCT, balancePCT: state.balancePCT };
}

/** The token row, created on the token's first deposit (its address and both decimals read once). */
export async function ensureToken(
  context: Pick<Context, "db" | "client" | "contracts">,
  tokenId: bigint,
  meta: EventMeta,
): Promise<{ decimals: number; eercDecimals: number }> {
  const existing = await context.db.find(token, { tokenId });
  if (existing) return existing;
  const eerc = context.contracts.EncryptedERC.address as Address;
  const tokenAddress = await context.client.readContract({ abi: EncryptedERCAbi, address: eerc, functionName: "tokenAddresses", args: [tokenId] });
  const [decimals, eercDecimals] = await Promise.all([
    context.client.readContract({ abi: ERC20_DECIMALS_ABI, address: tokenAddress, functionName: "decimals" }),
    context.client.readContract({ abi: EncryptedERCAbi, address: eerc, functionName: "decimals" }),
  ]);
  const row = { tokenId, tokenAddress: lower(tokenAddress), decimals: Number(decimals), eercDecimals: Number(eercDecimals), blockNumber: meta.blockNumber, txHash: meta.txHash };
  await context.db.insert(token).values(row);
  return row;
}

/** Token units → eERC units, as `_deposit` scales them (the dust is what does not divide). */
export function toEercUnits(tokenAmount: bigint, t: { decimals: number; eercDecimals: number }): bigint {
  const diff = t.decimals - t.eercDecimals;
  return diff >= 0 ? tokenAmount / 10n ** BigInt(diff) : tokenAmount * 10n ** BigInt(-diff);
}

/** eERC units → token units, as `_toTokenUnits` pays a withdrawal out. */
export function toTokenUnits(value: bigint, t: { decimals: number; eercDecimals: number }): bigint {
  const diff = t.decimals - t.eercDecimals;
  return diff >= 0 ? value * 10n ** BigInt(diff) : value / 10n ** BigInt(-diff);
}

const ERC20_DECIMALS_ABI = [
  { type: "function", name: "decimals", stateMutability: "view", inputs: [], outputs: [{ type: "uint8" }] },
] as const;
