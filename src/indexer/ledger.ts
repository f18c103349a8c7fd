import type { Context } from "ponder:registry";
import { account, amountPct, balance, balanceHistory, token } from "ponder:schema";
import type { Address, Hex } from "viem";
import { EncryptedERCAbi } from "../../abis/EncryptedERCAbi.js";
import { RegistrarAbi } from "../../abis/RegistrarAbi.js";
import type { BalanceChangeKind, RowSource } from "../../ponder.schema.js";
import { type BalanceRpc, readBalance } from "../eerc/balance-read.js";
import { IDENTITY, type Point, pointEquals } from "../eerc/curve.js";
import { addEGCT, addPublicAmount, type EGCT, normalizeEGCT, subEGCT } from "../eerc/elgamal.js";
import { egctToWords, wordsToEGCT } from "./calldata.js";

// Replays the eERC balance model per (account, tokenId), so that every balance change is stored
// without reading the chain. It is the model of the audited eERC (`eerc-interface.md`, "Audited
// versions and their state transitions"), which our contract follows too:
// - a credit (transfer in, mint) adds its EGCT and appends its amount PCT with index =
//   transactionIndex; the new EGCT is a snapshot with that same index; transactionIndex += 1;
// - a deposit adds Enc(value, 1, PK), appends its PCT with index t = transactionIndex, records the
//   snapshot with index t + 1, and transactionIndex += 2;
// - a spend subtracts its EGCT (the sender VTT, the burnt VTB, or Enc(value, 1, PK) for a
//   withdrawal) from the current one, drops the amount PCTs with index <= the index of the
//   snapshot it was proven against, stores the caller's balancePCT, nonce += 1, and records the
//   result as a snapshot with index transactionIndex; transactionIndex += 1.
// A history row is keyed by the transactionIndex after its change, so the snapshot a row's EGCT
// was recorded as has index transactionIndex − 1 and a spend against it keeps the PCTs from
// `pendingFrom` = that row's transactionIndex on.

export type EventMeta = { id: string; blockNumber: bigint; logIndex: number; timestamp: bigint; txHash: Hex };

type Db = Context["db"];
type BalanceState = {
  eGCT: EGCT;
  nonce: bigint;
  transactionIndex: bigint;
  pendingFrom: bigint;
  balancePCT: bigint[];
  source: RowSource;
  blockNumber: bigint;
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

export const eventColumns = (m: EventMeta) => ({
  blockNumber: m.blockNumber,
  logIndex: m.logIndex,
  timestamp: m.timestamp,
  txHash: m.txHash,
});

async function currentState(db: Db, account: Address, tokenId: bigint): Promise<BalanceState> {
  const row = await db.find(balance, { account: lower(account), tokenId });
  if (!row) {
    return {
      eGCT: { c1: [...IDENTITY], c2: [...IDENTITY] },
      nonce: 0n,
      transactionIndex: 0n,
      pendingFrom: 0n,
      balancePCT: ZERO_PCT,
      source: "calldata",
      blockNumber: -1n,
    };
  }
  return {
    eGCT: wordsToEGCT(row.eGCT),
    nonce: row.nonce,
    transactionIndex: row.transactionIndex,
    pendingFrom: row.pendingFrom,
    balancePCT: row.balancePCT,
    source: row.source,
    blockNumber: row.blockNumber,
  };
}

/**
 * True when the balance was last read from the chain at the end of this event's block: that read
 * already holds this event's change, which must not be applied a second time.
 */
const alreadyInBlockState = (cur: BalanceState, meta: EventMeta) => cur.source === "block_state" && cur.blockNumber === meta.blockNumber;

async function record(
  db: Db,
  args: { account: Address; tokenId: bigint; kind: BalanceChangeKind; meta: EventMeta; state: BalanceState },
): Promise<void> {
  const { account, tokenId, kind, meta, state } = args;
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
    source: state.source,
    eventId: meta.id,
    ...values,
    ...eventColumns(meta),
  });
  const latest = { ...values, source: state.source, blockNumber: meta.blockNumber, logIndex: meta.logIndex };
  await db
    .insert(balance)
    .values({ account: lower(account), tokenId, ...latest })
    .onConflictDoUpdate(latest);
}

type CreditKind = "deposit" | "transfer_in" | "mint";

async function storePCT(
  db: Db,
  args: { account: Address; tokenId: bigint; index: bigint; pct: bigint[]; kind: CreditKind; meta: EventMeta },
): Promise<void> {
  await db
    .insert(amountPct)
    .values({
      account: lower(args.account),
      tokenId: args.tokenId,
      index: args.index,
      pct: args.pct,
      kind: args.kind,
      eventId: args.meta.id,
      ...eventColumns(args.meta),
    })
    .onConflictDoNothing();
}

/**
 * A credit: adds `add` (the receiver VTT of a transfer or a mint) and appends `pct`. Returns
 * false, writing nothing, when the balance was already read from the chain for this block.
 */
export async function applyCredit(
  db: Db,
  args: { account: Address; tokenId: bigint; kind: "transfer_in" | "mint"; add: EGCT; pct: bigint[]; meta: EventMeta },
): Promise<boolean> {
  const cur = await currentState(db, args.account, args.tokenId);
  if (alreadyInBlockState(cur, args.meta)) return false;
  await storePCT(db, { ...args, index: cur.transactionIndex });
  await record(db, {
    account: args.account,
    tokenId: args.tokenId,
    kind: args.kind,
    meta: args.meta,
    state: { ...cur, eGCT: addEGCT(cur.eGCT, args.add), transactionIndex: cur.transactionIndex + 1n, source: "calldata" },
  });
  return true;
}

/**
 * A deposit of `value` eERC units: adds Enc(value, 1, PK), appends `pct` and advances the
 * transactionIndex by two. A deposit that credits nothing (possible on the audited contract,
 * which accepts amounts below one eERC unit) changes nothing.
 */
export async function applyDeposit(
  db: Db,
  args: { account: Address; tokenId: bigint; value: bigint; publicKey: Point; pct: bigint[]; meta: EventMeta },
): Promise<boolean> {
  const cur = await currentState(db, args.account, args.tokenId);
  if (alreadyInBlockState(cur, args.meta)) return false;
  if (args.value === 0n) return true;
  await storePCT(db, { ...args, kind: "deposit", index: cur.transactionIndex });
  await record(db, {
    account: args.account,
    tokenId: args.tokenId,
    kind: "deposit",
    meta: args.meta,
    state: {
      ...cur,
      eGCT: addPublicAmount(cur.eGCT, args.value, args.publicKey),
      transactionIndex: cur.transactionIndex + 2n,
      source: "calldata",
    },
  });
  return true;
}

/**
 * The transactionIndex of the history row whose EGCT is `snapshot` at the current nonce (the
 * snapshot's own index plus one): only rows since the last spend share the current nonce.
 */
async function snapshotIndex(db: Db, account: Address, tokenId: bigint, cur: BalanceState, snapshot: EGCT): Promise<bigint | undefined> {
  const target = normalizeEGCT(snapshot);
  for (let t = cur.transactionIndex; t > 0n; t--) {
    const row = await db.find(balanceHistory, { account: lower(account), tokenId, transactionIndex: t });
    // Deposits skip an index, and a read of block state may skip several.
    if (!row) continue;
    if (row.nonce !== cur.nonce) return undefined;
    const e = wordsToEGCT(row.eGCT);
    if (pointEquals(e.c1, target.c1) && pointEquals(e.c2, target.c2)) return t;
  }
  return undefined;
}

/**
 * A spend: subtracts `sub` and stores `balancePCT`. Returns "replayed", "included" when the
 * balance was already read from the chain for this block, or "unknown_snapshot" when the proof's
 * snapshot is not among the indexed ones; in the last two cases nothing was written.
 */
export async function applySpend(
  db: Db,
  args: {
    account: Address;
    tokenId: bigint;
    kind: "transfer_out" | "withdraw" | "burn";
    sub: EGCT;
    snapshot: EGCT;
    balancePCT: bigint[];
    meta: EventMeta;
  },
): Promise<"replayed" | "included" | "unknown_snapshot"> {
  const cur = await currentState(db, args.account, args.tokenId);
  if (alreadyInBlockState(cur, args.meta)) return "included";
  const pendingFrom = await snapshotIndex(db, args.account, args.tokenId, cur, args.snapshot);
  if (pendingFrom === undefined) return "unknown_snapshot";
  await record(db, {
    account: args.account,
    tokenId: args.tokenId,
    kind: args.kind,
    meta: args.meta,
    state: {
      eGCT: subEGCT(cur.eGCT, args.sub),
      nonce: cur.nonce + 1n,
      transactionIndex: cur.transactionIndex + 1n,
      pendingFrom,
      balancePCT: args.balancePCT,
      source: "calldata",
      blockNumber: args.meta.blockNumber,
    },
  });
  return "replayed";
}

/** The account's registered public key: from its Register event, or from the Registrar when it registered before the start block. */
export async function accountPublicKey(
  context: Pick<Context, "db" | "client" | "contracts">,
  user: Address,
  blockNumber: bigint,
): Promise<Point> {
  const row = await context.db.find(account, { address: lower(user) });
  if (row) return [row.publicKey[0]!, row.publicKey[1]!];
  const [x, y] = await context.client.readContract({
    abi: RegistrarAbi,
    address: context.contracts.Registrar.address as Address,
    functionName: "getUserPublicKey",
    args: [user],
    blockNumber,
  });
  return [x, y];
}

/**
 * For a change that could not be replayed from calldata (the transaction did not call the eERC
 * directly, or the proof's snapshot is unknown): the balance as `balanceOf` returns it (read in bounded pieces) at the end
 * of the event's block, taken whole (its transactionIndex and pending PCTs included) so the
 * chain's numbering is never mixed with a replayed one. Later changes of this balance in the same
 * block are part of that read and are not applied again. Returns the credited PCT (the newest
 * one, exact when this event is the balance's last change in its block) and the balancePCT.
 */
export async function applyBlockState(
  context: Pick<Context, "db" | "client" | "contracts">,
  args: { account: Address; tokenId: bigint; kind: BalanceChangeKind; meta: EventMeta },
): Promise<{ creditPCT: bigint[] | undefined; balancePCT: bigint[] }> {
  const { db } = context;
  const cur = await currentState(db, args.account, args.tokenId);
  // The bounded read (balance-read.ts): one balanceOf would not fit an eth_call on a long pending queue.
  const view = await readBalance(context.client as unknown as BalanceRpc, {
    encryptedERC: context.contracts.EncryptedERC.address as Address,
    user: args.account,
    tokenId: args.tokenId,
    blockNumber: args.meta.blockNumber,
  });
  const { eGCT, nonce, amountPCTs, balancePCT, transactionIndex } = view;
  const isCredit = args.kind === "deposit" || args.kind === "transfer_in" || args.kind === "mint";
  const newest = amountPCTs.reduce<(typeof amountPCTs)[number] | undefined>((a, p) => (!a || p.index > a.index ? p : a), undefined);
  const creditPCT = isCredit && newest && newest.index >= cur.transactionIndex ? [...newest.pct] : undefined;
  if (alreadyInBlockState(cur, args.meta)) return { creditPCT, balancePCT: cur.balancePCT };
  for (const p of amountPCTs) {
    if (p.index >= cur.transactionIndex) {
      await storePCT(db, {
        account: args.account,
        tokenId: args.tokenId,
        index: p.index,
        pct: [...p.pct],
        kind: isCredit ? (args.kind as CreditKind) : "transfer_in",
        meta: args.meta,
      });
    }
  }
  const state: BalanceState = {
    eGCT: normalizeEGCT(eGCT),
    nonce,
    transactionIndex,
    pendingFrom: amountPCTs.reduce((min, p) => (p.index < min ? p.index : min), transactionIndex),
    balancePCT: [...balancePCT],
    source: "block_state",
    blockNumber: args.meta.blockNumber,
  };
  await record(db, { account: args.account, tokenId: args.tokenId, kind: args.kind, meta: args.meta, state });
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
  const tokenAddress = await context.client.readContract({
    abi: EncryptedERCAbi,
    address: eerc,
    functionName: "tokenAddresses",
    args: [tokenId],
  });
  const [decimals, eercDecimals] = await Promise.all([
    context.client.readContract({ abi: ERC20_DECIMALS_ABI, address: tokenAddress, functionName: "decimals" }),
    context.client.readContract({ abi: EncryptedERCAbi, address: eerc, functionName: "decimals" }),
  ]);
  const row = {
    tokenId,
    tokenAddress: lower(tokenAddress),
    decimals: Number(decimals),
    eercDecimals: Number(eercDecimals),
    blockNumber: meta.blockNumber,
    txHash: meta.txHash,
  };
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
