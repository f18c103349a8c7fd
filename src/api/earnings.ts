import type { db as ApiDb } from "ponder:api";
import { account, amountPct, balance, balanceHistory, privateTransfer, provider, token } from "ponder:schema";
import { and, asc, eq } from "ponder";
import { type Address, getAddress, type Hex } from "viem";
import { toDecimalStrings } from "../eerc/format.js";
import type { EarningsBody } from "../indexer-client/schemas.js";

type Db = typeof ApiDb;

/** A provider's current payout account, as the indexed ProviderRegistry names it; undefined for an unknown provider id. */
export async function payoutAccountOf(db: Db, providerId: Hex): Promise<Address | undefined> {
  const [row] = await db
    .select({ payoutAccount: provider.payoutAccount })
    .from(provider)
    .where(eq(provider.providerId, providerId.toLowerCase() as Hex))
    .limit(1);
  return row ? getAddress(row.payoutAccount) : undefined;
}

/**
 * An account's balance history per token, each row expanded to the view `balanceOf` returned
 * right after that change (EGCT, nonce, transactionIndex, balancePCT and the pending amount PCTs),
 * so its owner can decrypt any point in time with its key alone. Undefined for an unknown account.
 */
export async function earnings(db: Db, address: Address, tokenId?: bigint): Promise<EarningsBody | undefined> {
  const key = address.toLowerCase() as Address;
  const [acct] = await db.select().from(account).where(eq(account.address, key)).limit(1);
  if (!acct) return undefined;
  const forToken = <T extends typeof balance | typeof balanceHistory | typeof amountPct>(table: T, accountColumn: T["account"]) =>
    tokenId === undefined ? eq(accountColumn, key) : and(eq(accountColumn, key), eq(table.tokenId, tokenId));

  const [tokens, history, pcts, received] = await Promise.all([
    db
      .select({ tokenId: balance.tokenId, tokenAddress: token.tokenAddress })
      .from(balance)
      .leftJoin(token, eq(token.tokenId, balance.tokenId))
      .where(forToken(balance, balance.account))
      .orderBy(asc(balance.tokenId)),
    db
      .select()
      .from(balanceHistory)
      .where(forToken(balanceHistory, balanceHistory.account))
      .orderBy(asc(balanceHistory.blockNumber), asc(balanceHistory.logIndex), asc(balanceHistory.transactionIndex)),
    db.select().from(amountPct).where(forToken(amountPct, amountPct.account)).orderBy(asc(amountPct.tokenId), asc(amountPct.index)),
    db
      .select()
      .from(privateTransfer)
      .where(tokenId === undefined ? eq(privateTransfer.to, key) : and(eq(privateTransfer.to, key), eq(privateTransfer.tokenId, tokenId)))
      .orderBy(asc(privateTransfer.blockNumber), asc(privateTransfer.logIndex)),
  ]);

  const pctsByToken = new Map<bigint, { index: bigint; pct: bigint[] }[]>();
  for (const p of pcts) {
    const list = pctsByToken.get(p.tokenId) ?? [];
    list.push({ index: p.index, pct: p.pct });
    pctsByToken.set(p.tokenId, list);
  }
  /** The amount PCTs still pending after a change: indexes in [pendingFrom, transactionIndex). */
  const pending = (t: bigint, from: bigint, to: bigint) => {
    const list = pctsByToken.get(t) ?? [];
    let lo = 0;
    let hi = list.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (list[mid]!.index < from) lo = mid + 1;
      else hi = mid;
    }
    const out: { pct: bigint[]; index: bigint }[] = [];
    for (let i = lo; i < list.length && list[i]!.index < to; i++) out.push({ pct: list[i]!.pct, index: list[i]!.index });
    return out;
  };

  const body = {
    account: getAddress(acct.address),
    publicKey: acct.publicKey,
    tokens: tokens.map((t) => ({ tokenId: t.tokenId, tokenAddress: t.tokenAddress ? getAddress(t.tokenAddress) : null })),
    balanceHistory: history.map((h) => ({
      tokenId: h.tokenId,
      blockNumber: h.blockNumber,
      logIndex: h.logIndex,
      timestamp: h.timestamp,
      txHash: h.txHash,
      kind: h.kind,
      eGCT: { c1: [h.eGCT[0], h.eGCT[1]], c2: [h.eGCT[2], h.eGCT[3]] },
      nonce: h.nonce,
      transactionIndex: h.transactionIndex,
      balancePCT: h.balancePCT,
      amountPCTs: pending(h.tokenId, h.pendingFrom, h.transactionIndex),
    })),
    receivedTransfers: received.map((r) => ({
      from: getAddress(r.from),
      tokenId: r.tokenId,
      blockNumber: r.blockNumber,
      txHash: r.txHash,
      amountPCT: r.receiverPCT,
    })),
  };
  return toDecimalStrings(body) as unknown as EarningsBody;
}
