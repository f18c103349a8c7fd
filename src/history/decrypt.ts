import { type Address, isAddressEqual } from "viem";
import { byChainPosition } from "../chain/position.js";
import { decryptBalance, type PCTCache } from "../eerc/balance.js";
import { pointEquals } from "../eerc/curve.js";
import { EercError, KeyMismatchError } from "../eerc/errors.js";
import { publicKeyOf } from "../eerc/keys.js";
import { decryptPCT } from "../eerc/pct.js";
import { getOrCreate } from "../util/map.js";
import { HistoryRowCorruptError, ReceivedTransferCorruptError } from "./errors.js";
import {
  AUDIT_KINDS,
  type AuditKind,
  type AuditReport,
  type AuditTotalsResponse,
  type DecryptedHistory,
  type DecryptedRow,
  type DecryptedTransfer,
  type EarningsResponse,
  type KindTotals,
  type PeriodTotals,
  type ReceivedTransferRecord,
  type TokenHistory,
  type TokenTotals,
  type Totals,
  type UndecryptableEntry,
  type UnresolvedTransfer,
} from "./types.js";

const cmpBig = (a: bigint | null, b: bigint | null) => (a === b ? 0 : a === null ? 1 : b === null ? -1 : a < b ? -1 : 1);

/** Throws KeyMismatchError unless `sk` is the private key of `publicKey`. */
export function assertKeyMatches(account: Address, publicKey: readonly [bigint, bigint], sk: bigint): void {
  const derived = publicKeyOf(sk);
  if (!pointEquals(derived, [publicKey[0], publicKey[1]])) {
    throw new KeyMismatchError(account, [publicKey[0], publicKey[1]], derived);
  }
}

/**
 * Checks an audit key before any total is shown: the current auditor's against the key the audit
 * answer serves for it; anyone else's (a previous auditor, anyone checking) against the key
 * registered for the account, which `registeredKey` reads. KeyMismatchError otherwise.
 */
export async function assertAuditKey(
  response: Pick<AuditTotalsResponse, "auditor" | "auditorPublicKey">,
  account: Address,
  sk: bigint,
  registeredKey: () => Promise<readonly [bigint, bigint]>,
): Promise<void> {
  if (response.auditor && response.auditorPublicKey && isAddressEqual(response.auditor, account))
    assertKeyMatches(account, response.auditorPublicKey, sk);
  else assertKeyMatches(account, await registeredKey(), sk);
}

/**
 * Decrypts each incoming transfer's receiver PCT; a PCT that fails is a typed error naming the
 * transfer. Records without a PCT come back as `unresolved`.
 */
export function decryptReceived(
  records: readonly ReceivedTransferRecord[],
  sk: bigint,
): { received: DecryptedTransfer[]; unresolved: UnresolvedTransfer[] } {
  const received: DecryptedTransfer[] = [];
  const unresolved: UnresolvedTransfer[] = [];
  for (const t of [...records].sort(byChainPosition)) {
    if (t.amountPCT === null) {
      unresolved.push({ from: t.from, tokenId: t.tokenId, blockNumber: t.blockNumber, txHash: t.txHash });
      continue;
    }
    let amountMicro: bigint;
    try {
      amountMicro = decryptPCT(t.amountPCT, sk);
    } catch (e) {
      if (e instanceof EercError) throw new ReceivedTransferCorruptError(t, e);
      throw e;
    }
    received.push({ from: t.from, tokenId: t.tokenId, blockNumber: t.blockNumber, txHash: t.txHash, amountMicro });
  }
  return { received, unresolved };
}

/**
 * Decrypts a provider's earnings response: every balance-history row through decryptBalance
 * (PCTs checked against the EGCT), and every incoming transfer's amount. The key must be the
 * one the response carries for the account (KeyMismatchError otherwise).
 */
export function decryptHistory(response: EarningsResponse, sk: bigint): DecryptedHistory {
  assertKeyMatches(response.account, response.publicKey, sk);
  const tokens = new Map<bigint, TokenHistory>();
  const token = (tokenId: bigint): TokenHistory => {
    let t = tokens.get(tokenId);
    if (!t) {
      t = { tokenId, tokenAddress: null, rows: [], balanceMicro: null, received: [], receivedTotalMicro: 0n };
      tokens.set(tokenId, t);
    }
    return t;
  };
  for (const { tokenId, tokenAddress } of response.tokens) token(tokenId).tokenAddress = tokenAddress;

  // A provider that rarely spends carries the same pending PCTs through many rows: decrypt each once.
  const cache: PCTCache = new Map();
  for (const row of [...response.balanceHistory].sort(byChainPosition)) {
    const t = token(row.tokenId);
    let balanceMicro: bigint;
    try {
      balanceMicro = decryptBalance({ eGCT: row.eGCT, balancePCT: row.balancePCT, amountPCTs: row.amountPCTs }, sk, cache);
    } catch (e) {
      if (e instanceof EercError || e instanceof RangeError) throw new HistoryRowCorruptError(row, e);
      throw e;
    }
    const decrypted: DecryptedRow = {
      tokenId: row.tokenId,
      blockNumber: row.blockNumber,
      logIndex: row.logIndex,
      timestamp: row.timestamp,
      txHash: row.txHash,
      kind: row.kind,
      balanceMicro,
      deltaMicro: balanceMicro - (t.balanceMicro ?? 0n),
    };
    t.rows.push(decrypted);
    t.balanceMicro = balanceMicro;
  }

  const { received: incoming, unresolved } = decryptReceived(response.receivedTransfers, sk);
  for (const received of incoming) {
    const t = token(received.tokenId);
    t.received.push(received);
    t.receivedTotalMicro += received.amountMicro;
  }

  return {
    account: response.account,
    publicKey: response.publicKey,
    tokens: [...tokens.values()].sort((a, b) => cmpBig(a.tokenId, b.tokenId)),
    unresolved,
    pending: response.pending && { amountMicro: decryptPCT(response.pending.pct, sk), throughBlock: response.pending.throughBlock },
  };
}

const emptyKind = (): KindTotals => ({ entries: 0, decrypted: 0, undecryptable: 0, amountMicro: 0n });

function emptyTotals(): Totals {
  return {
    byKind: Object.fromEntries(AUDIT_KINDS.map((k) => [k, emptyKind()])) as Record<AuditKind, KindTotals>,
    entries: 0,
    decrypted: 0,
    undecryptable: 0,
    amountMicro: 0n,
  };
}

function add(totals: Totals, kind: AuditKind, amount: bigint | null): void {
  const k = totals.byKind[kind];
  k.entries++;
  totals.entries++;
  if (amount === null) {
    k.undecryptable++;
    totals.undecryptable++;
  } else {
    k.decrypted++;
    k.amountMicro += amount;
    totals.decrypted++;
    totals.amountMicro += amount;
  }
}

/**
 * Totals of the auditor PCTs per (period, token) and per token, by kind. An entry whose PCT
 * does not decrypt under `auditorSk` (made under another auditor's key, or tampered) is counted
 * as undecryptable and listed, never dropped.
 */
export function auditTotals(response: AuditTotalsResponse, auditorSk: bigint): AuditReport {
  const ownKey = publicKeyOf(auditorSk);
  const periods = new Map<string, PeriodTotals>();
  const tokens = new Map<string, TokenTotals>();
  const undecryptable: UndecryptableEntry[] = [];

  for (const p of response.periods) {
    const key = `${p.period}\u0000${p.tokenId ?? ""}`;
    const pt = getOrCreate(periods, key, () => ({ period: p.period, tokenId: p.tokenId, ...emptyTotals() }));
    const tkey = String(p.tokenId ?? "");
    const tt = getOrCreate(tokens, tkey, () => ({ tokenId: p.tokenId, ...emptyTotals() }));

    for (const entry of p.entries) {
      let amount: bigint | null;
      try {
        amount = decryptPCT(entry.auditorPCT, auditorSk);
      } catch (e) {
        if (!(e instanceof EercError)) throw e;
        amount = null;
        undecryptable.push({
          period: p.period,
          tokenId: p.tokenId,
          kind: entry.kind,
          txHash: entry.txHash,
          auditorAddress: entry.auditorAddress,
          reason: e.message,
        });
      }
      add(pt, entry.kind, amount);
      add(tt, entry.kind, amount);
    }
  }

  return {
    auditor: response.auditor,
    auditorPublicKey: response.auditorPublicKey,
    keyIsCurrentAuditor: response.auditorPublicKey !== null && pointEquals(ownKey, response.auditorPublicKey),
    periods: [...periods.values()].sort((a, b) => (a.period === b.period ? cmpBig(a.tokenId, b.tokenId) : a.period < b.period ? -1 : 1)),
    tokens: [...tokens.values()].sort((a, b) => cmpBig(a.tokenId, b.tokenId)),
    undecryptable,
    cycles:
      response.auditorPublicKey === null || !pointEquals(ownKey, response.auditorPublicKey)
        ? null
        : (response.cycles?.map((c) => ({
            cycle: c.cycle,
            throughBlock: c.throughBlock,
            transfers: c.transfers,
            totalMicro: decryptPCT(c.totalPCT, auditorSk),
          })) ?? null),
  };
}
