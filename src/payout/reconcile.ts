import type { Address } from "viem";
import { decryptPCT } from "../eerc/pct.js";
import type { UsageGraphqlClient } from "../history/usage-api.js";
import type { ProviderId } from "../revenue/types.js";
import { decryptLinesFor } from "../usage/lines.js";
import { readSettlementFacts } from "./facts.js";
import { type ReconciliationRow, type SettlementOptions, boundariesOf, cycleEarnings, paymentsByCycle, reconcileCycles } from "./settlement.js";

export type CycleReconciliation = {
  cycle: number;
  throughBlock: bigint;
  poolMicro: bigint;
  owedMicro: bigint;
  paidMicro: bigint;
  transfers: number;
  ok: boolean;
  rows: (ReconciliationRow & { namespace: string | null })[];
};

export type Reconciliation = {
  ok: boolean;
  /** Everything the payout transfers moved, as the auditor decrypts it. */
  totalMicro: bigint;
  cycles: CycleReconciliation[];
  /** Billable calls per provider over all settled cycles, from the auditor's copy of the usage lines. */
  billableCalls: Map<ProviderId, bigint>;
  indexedBlock: bigint;
};

/**
 * The auditor's independent check of every payout cycle: decrypts the auditor copy of every usage
 * line and the auditor PCT of every payout transfer, recomputes each cycle's earnings from the
 * public pricing, fees and pool payments and the boundaries the memos record, and compares, per
 * cycle and provider, paid with owed.
 */
export async function reconcile(args: {
  indexer: UsageGraphqlClient;
  auditorSk: bigint;
  settlement: SettlementOptions;
  payers?: readonly Address[] | "any";
}): Promise<Reconciliation> {
  const facts = await readSettlementFacts(args.indexer, args.payers ?? "any");
  const batches = facts.batches.map((b) => ({ ...b, lines: decryptLinesFor(b.encryptedLines, args.auditorSk, "auditor") }));
  const amounts = new Map(facts.payouts.map((p) => [p.txHash, decryptPCT(p.auditorPCT, args.auditorSk)]));
  const payments = paymentsByCycle(facts.payouts, (p) => amounts.get(p.txHash)!);
  const earnings = cycleEarnings({
    batches,
    providerChanges: facts.providerChanges,
    poolFees: facts.poolFees,
    boundaries: boundariesOf(facts.payouts),
    options: args.settlement,
  });
  const rows = reconcileCycles(earnings, payments);
  const namespaces = new Map(facts.providerChanges.map((c) => [c.providerId, c.namespace]));
  const billableCalls = new Map<ProviderId, bigint>();
  const cycles = earnings.map((e): CycleReconciliation => {
    for (const [id, n] of e.billableCalls) billableCalls.set(id, (billableCalls.get(id) ?? 0n) + n);
    const mine = rows.filter((r) => r.cycle === e.cycle).map((r) => ({ ...r, namespace: namespaces.get(r.providerId) ?? null }));
    return {
      cycle: e.cycle,
      throughBlock: e.throughBlock,
      poolMicro: e.poolMicro,
      owedMicro: mine.reduce((s, r) => s + r.owedMicro, 0n),
      paidMicro: mine.reduce((s, r) => s + r.paidMicro, 0n),
      transfers: mine.reduce((s, r) => s + r.transfers, 0),
      ok: mine.every((r) => r.ok),
      rows: mine,
    };
  });
  return {
    ok: cycles.every((c) => c.ok),
    totalMicro: [...amounts.values()].reduce((a, b) => a + b, 0n),
    cycles,
    billableCalls,
    indexedBlock: facts.indexedBlock,
  };
}
