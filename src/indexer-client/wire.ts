import type { Address } from "viem";
import type { BalanceChangeKind } from "../../ponder.schema.js";

// The JSON the API answers, as its server writes it and its client reads it: bigints as decimal
// strings. The client's parsers (src/history/parse.ts) turn these into bigint types.

/** `GET /providers/:providerId/earnings`, bigints as decimal strings. */
export type EarningsBody = {
  account: Address;
  publicKey: [string, string];
  tokens: { tokenId: string; tokenAddress: Address | null }[];
  balanceHistory: {
    tokenId: string;
    blockNumber: string;
    logIndex: number;
    timestamp: string;
    txHash: string;
    kind: BalanceChangeKind;
    eGCT: { c1: [string, string]; c2: [string, string] };
    nonce: string;
    transactionIndex: string;
    balancePCT: string[];
    amountPCTs: { pct: string[]; index: string }[];
  }[];
  receivedTransfers: { from: Address; tokenId: string; blockNumber: string; txHash: string; amountPCT: string[] | null }[];
};

/** `GET /audit/totals`: every auditor PCT, grouped by UTC period and token, bigints as decimal strings. */
export type AuditTotalsBody = {
  auditor: Address | null;
  auditorPublicKey: [string, string] | null;
  periods: {
    period: string;
    tokenId: string;
    entries: { kind: "transfer" | "withdraw" | "mint" | "burn"; txHash: string; auditorAddress: Address; auditorPCT: string[] }[];
  }[];
};

/** `pending` of the earnings response: what the account is owed and not yet paid, as a PCT only its key opens. */
export type PendingField = { pending: { pct: string[]; throughBlock: string } | null; pendingUnavailable?: string };

/** `cycles` of the audit response: what each payout cycle paid in all, as a PCT under the auditor's key. */
export type CyclesField = {
  cycles: { cycle: number; throughBlock: string; transfers: number; totalPCT: string[] }[] | null;
  cyclesUnavailable?: string;
};

/** `GET /providers/:providerId/earnings` as sent. */
export type EarningsWire = EarningsBody & PendingField;

/** `GET /audit/totals` as sent. */
export type AuditTotalsWire = AuditTotalsBody & CyclesField;
