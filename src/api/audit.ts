import type { db as ApiDb } from "ponder:api";
import { auditorChange, privateBurn, privateMint, privateTransfer, withdrawal } from "ponder:schema";
import { desc } from "ponder";
import { getAddress } from "viem";
import { byChainPosition } from "../chain/position.js";
import { toDecimalStrings } from "../eerc/format.js";
import type { AuditTotalsBody } from "../indexer-client/schemas.js";
import { type PeriodUnit, periodLabel } from "../usage/period.js";

type Db = typeof ApiDb;

/**
 * What the auditor needs to total the private flows: each transfer's, withdrawal's, mint's and
 * burn's auditor PCT, grouped by the UTC day or month of its block and by token. The auditor
 * decrypts and adds them; the amounts are never in the clear here.
 */
export async function auditTotals(db: Db, period: PeriodUnit): Promise<AuditTotalsBody> {
  const entryColumns = <T extends typeof privateTransfer | typeof withdrawal | typeof privateMint | typeof privateBurn>(t: T) => ({
    tokenId: t.tokenId,
    txHash: t.txHash,
    auditorAddress: t.auditorAddress,
    auditorPCT: t.auditorPCT,
    timestamp: t.timestamp,
    blockNumber: t.blockNumber,
    logIndex: t.logIndex,
  });
  const [[latest], transfers, withdrawals, mints, burns] = await Promise.all([
    db.select().from(auditorChange).orderBy(desc(auditorChange.blockNumber), desc(auditorChange.logIndex)).limit(1),
    db.select(entryColumns(privateTransfer)).from(privateTransfer),
    db.select(entryColumns(withdrawal)).from(withdrawal),
    db.select(entryColumns(privateMint)).from(privateMint),
    db.select(entryColumns(privateBurn)).from(privateBurn),
  ]);
  const all = [
    ...transfers.map((e) => ({ ...e, kind: "transfer" as const })),
    ...withdrawals.map((e) => ({ ...e, kind: "withdraw" as const })),
    ...mints.map((e) => ({ ...e, kind: "mint" as const })),
    ...burns.map((e) => ({ ...e, kind: "burn" as const })),
  ].sort(byChainPosition);

  const groups = new Map<string, AuditTotalsBody["periods"][number] & { sortKey: [string, bigint] }>();
  for (const e of all) {
    const key = periodLabel(BigInt(e.timestamp), period);
    const groupKey = `${key}/${e.tokenId}`;
    let group = groups.get(groupKey);
    if (!group) {
      group = { period: key, tokenId: e.tokenId.toString(), entries: [], sortKey: [key, e.tokenId] };
      groups.set(groupKey, group);
    }
    group.entries.push(
      toDecimalStrings({ kind: e.kind, txHash: e.txHash, auditorAddress: getAddress(e.auditorAddress), auditorPCT: e.auditorPCT }),
    );
  }
  const periods = [...groups.values()]
    .sort((a, b) => (a.sortKey[0] === b.sortKey[0] ? (a.sortKey[1] < b.sortKey[1] ? -1 : 1) : a.sortKey[0] < b.sortKey[0] ? -1 : 1))
    .map(({ sortKey: _, ...g }) => g);
  return {
    auditor: latest ? getAddress(latest.newAuditor) : null,
    auditorPublicKey: latest ? [latest.publicKey[0]!.toString(), latest.publicKey[1]!.toString()] : null,
    periods,
  };
}
