import type { Address, Hex } from "viem";
import type { Point } from "../eerc/curve.js";
import type { EGCT } from "../eerc/elgamal.js";

/** What changed a balance, as the indexer labels its rows. */
export const HISTORY_KINDS = ["deposit", "transfer_in", "transfer_out", "withdraw", "mint", "burn"] as const;
export type HistoryKind = (typeof HISTORY_KINDS)[number];

/** The operations that carry an auditor PCT. */
export const AUDIT_KINDS = ["transfer", "withdraw", "mint", "burn"] as const;
export type AuditKind = (typeof AUDIT_KINDS)[number];

export type AmountPCT = { pct: bigint[]; index: bigint };

/** The event that changed an (account, token) balance. */
type BalanceEvent = {
  tokenId: bigint;
  blockNumber: bigint;
  logIndex: number;
  timestamp: bigint;
  txHash: Hex;
  kind: HistoryKind;
};

/** One snapshot of an (account, token) balance, taken after the event that changed it. */
export type BalanceHistoryRow = BalanceEvent & {
  eGCT: EGCT;
  nonce: bigint;
  transactionIndex: bigint;
  balancePCT: bigint[];
  amountPCTs: AmountPCT[];
};

/**
 * A private transfer to the account; `amountPCT` is the receiver PCT from the calldata, null
 * when the calldata could not be read (a transfer made through another contract).
 */
export type ReceivedTransferRecord = {
  from: Address;
  tokenId: bigint;
  blockNumber: bigint;
  txHash: Hex;
  amountPCT: bigint[] | null;
};

/** `GET /providers/:address/earnings`, with decimal strings turned into bigints. */
export type EarningsResponse = {
  account: Address;
  publicKey: Point;
  tokens: { tokenId: bigint; tokenAddress: Address | null }[];
  balanceHistory: BalanceHistoryRow[];
  receivedTransfers: ReceivedTransferRecord[];
  /** Owed to this account and not yet paid, as a PCT under its key; null when the API cannot say. */
  pending: { pct: bigint[]; throughBlock: bigint } | null;
};

export type AuditEntry = { kind: AuditKind; txHash: Hex; auditorAddress: Address; auditorPCT: bigint[] };

/** `tokenId` is null when it cannot be known (a transfer not sent directly to the eERC contract). */
export type AuditPeriod = { period: string; tokenId: bigint | null; entries: AuditEntry[] };

/** `GET /audit/totals`, with decimal strings turned into bigints. */
export type AuditTotalsResponse = {
  auditor: Address | null;
  auditorPublicKey: Point | null;
  periods: AuditPeriod[];
  /** What each payout cycle paid in all, as a PCT under the auditor's key; null when the API cannot say. */
  cycles: { cycle: number; throughBlock: bigint; transfers: number; totalPCT: bigint[] }[] | null;
};

// ---- decrypted results ----

export type DecryptedRow = BalanceEvent & {
  /** balance after this event, micro-USDC */
  balanceMicro: bigint;
  /** balance change from the previous row of the same token (from 0 for the first row) */
  deltaMicro: bigint;
};

/** An incoming transfer whose amount cannot be read (no receiver PCT available); listed, never dropped. */
export type UnresolvedTransfer = { from: Address; tokenId: bigint | null; blockNumber: bigint; txHash: Hex };

export type DecryptedTransfer = { from: Address; tokenId: bigint; blockNumber: bigint; txHash: Hex; amountMicro: bigint };

export type TokenHistory = {
  tokenId: bigint;
  tokenAddress: Address | null;
  rows: DecryptedRow[];
  /** balance after the last row; null when the token has no rows */
  balanceMicro: bigint | null;
  received: DecryptedTransfer[];
  receivedTotalMicro: bigint;
};

export type DecryptedHistory = {
  account: Address;
  publicKey: Point;
  tokens: TokenHistory[];
  /** incoming transfers without a readable amount */
  unresolved: UnresolvedTransfer[];
  /** owed and not yet paid, decrypted; null when the API did not say */
  pending?: { amountMicro: bigint; throughBlock: bigint } | null;
};

export type KindTotals = { entries: number; decrypted: number; undecryptable: number; amountMicro: bigint };

export type Totals = {
  byKind: Record<AuditKind, KindTotals>;
  entries: number;
  decrypted: number;
  undecryptable: number;
  /** sum of every decrypted amount, all kinds together */
  amountMicro: bigint;
};

export type PeriodTotals = Totals & { period: string; tokenId: bigint | null };
export type TokenTotals = Totals & { tokenId: bigint | null };

export type UndecryptableEntry = {
  period: string;
  tokenId: bigint | null;
  kind: AuditKind;
  txHash: Hex;
  auditorAddress: Address;
  reason: string;
};

export type AuditReport = {
  auditor: Address | null;
  auditorPublicKey: Point | null;
  /** whether the key used is the contract's current auditor key */
  keyIsCurrentAuditor: boolean;
  periods: PeriodTotals[];
  /** grand totals per token over every period */
  tokens: TokenTotals[];
  undecryptable: UndecryptableEntry[];
  /** payout cycle totals, decrypted; null when the API did not say */
  cycles?: { cycle: number; throughBlock: bigint; transfers: number; totalMicro: bigint }[] | null;
};
