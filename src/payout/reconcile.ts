import type { Address, Hex } from "viem";
import type { Point } from "../eerc/curve.js";
import { PCTDecryptionError } from "../eerc/errors.js";
import { decryptPCT } from "../eerc/pct.js";
import type { IndexerClient } from "../indexer-client/client.js";
import { formatUsdc } from "../money/usdc.js";
import { type AssertedSettlement, settlementMismatches, settlementSchedule, termAt } from "../revenue/schedule.js";
import type { ProviderId } from "../revenue/types.js";
import { decryptLinesFor } from "../usage/lines.js";
import { admitLines, type LineAlert } from "./admission.js";
import { readPendingQueues } from "./deferral.js";
import { SettlementMismatchError } from "./errors.js";
import { readSettlementFacts } from "./facts.js";
import {
  boundariesOf,
  type CycleEarnings,
  cycleEarnings,
  cycleMoneyFlow,
  deferredOf,
  isUnpaid,
  type MoneyFlow,
  type PayoutStatus,
  paymentsByCycle,
  poolSecret,
  type ReconciliationRow,
  reconcileCycles,
  totalMoneyFlow,
} from "./settlement.js";
import type { UnattributedTransfer } from "./tag.js";

export type CycleReconciliation = Pick<
  CycleEarnings,
  "cycle" | "throughBlock" | "poolMicro" | "poolFeeMicro" | "carriedInMicro" | "splitMicro" | "carriedOutMicro"
> & {
  owedMicro: bigint;
  paidMicro: bigint;
  transfers: number;
  /**
   * Every provider paid what it was owed or was deferred (its pending queue full: `payoutStatus`),
   * and the cycle's money flow balances with the deferred amounts carried.
   */
  ok: boolean;
  rows: ReconciledRow[];
  /** Where the cycle's money came from and went (`MoneyFlow` in `settlement.ts`). */
  moneyFlow: MoneyFlow;
};

export type ReconciledRow = ReconciliationRow & { namespace: string | null };

export type Reconciliation = {
  ok: boolean;
  /** The accounts whose transfers were checked: the operator's payers, or every sender of a payout tag. */
  payers: Address[];
  /** Transfers from a payer that are not payouts the ledger can account for: each makes the reconciliation fail. */
  unattributed: Pick<UnattributedTransfer, "txHash" | "from" | "to" | "blockNumber" | "reason">[];
  /** Everything the payout transfers moved, as the auditor decrypts it. */
  totalMicro: bigint;
  cycles: CycleReconciliation[];
  /** The money flow over every cycle, with the fees received after the last boundary. */
  moneyFlow: MoneyFlow;
  /** Billable calls per provider over all settled cycles, from the auditor's copy of the usage lines. */
  billableCalls: Map<ProviderId, bigint>;
  /**
   * Lines settlement ignored or capped (`admitLines`): a server reporting for a provider it was not
   * bound to, over its caps, or a line whose auditor or operator copy disagrees with the other or
   * with the line's commitment. The operator ignores the same lines, so they do not fail `ok`.
   */
  alerts: LineAlert[];
  /**
   * The eERC's cap on a balance's pending amount PCTs that deferrals were checked against (its
   * `MAX_PENDING_AMOUNT_PCTS()`); null when none is known: then no payout counts as deferred.
   */
  pendingCap: bigint | null;
  /** What the last cycle deferred: owed, not paid yet. */
  deferredMicro: bigint;
  indexedBlock: bigint;
};

/**
 * The auditor's independent check of every payout cycle: decrypts the auditor copy of every usage
 * line and the auditor PCT of every payout transfer, recomputes each cycle's earnings from the
 * public pricing, fees and pool payments and the boundaries the payout tags record, and compares,
 * per cycle and provider, paid with owed. Any other transfer from a payer fails it: money that
 * left a payer outside the ledger is exactly what a reconciliation must not miss. Each cycle's
 * money flow, and the total, must balance to the micro-USDC (`MoneyFlow`). The fee and the
 * pricing period are the ones the ProviderRegistry records, period by period; `asserted` values
 * that disagree with the record in force at the indexed head throw SettlementMismatchError.
 * A provider owed something and paid nothing in a cycle is deferred, not short, when its payout
 * account's pending queue held `pendingCap` amount PCTs or more at the cycle's last payout
 * transfer, as the indexer's replay of the balance model shows it (`deferral.ts`): what it is
 * owed is carried to the next cycle, in the rows and in the money flow.
 */
export async function reconcile(args: {
  indexer: IndexerClient;
  auditorSk: bigint;
  /** The operator's registered eERC public key: with the auditor's key it gives the pool reserves. */
  operatorPk: Point;
  /** Settings the caller expects to be in force (the CLI's `--fee-bps`, `--pricing-period`); checked, never used to settle. */
  asserted?: AssertedSettlement;
  payers?: readonly Address[] | "any";
  /** The eERC's `MAX_PENDING_AMOUNT_PCTS()` (`readPendingCap`); null or absent: none known, so nothing counts as deferred. */
  pendingCap?: bigint | null;
}): Promise<Reconciliation> {
  const pendingCap = args.pendingCap ?? null;
  const facts = await readSettlementFacts(args.indexer, args.payers ?? "any");
  const schedule = settlementSchedule(facts.settlementRecords);
  if (args.asserted) {
    const inForce = termAt(schedule, facts.indexedTimestamp);
    const mismatches = settlementMismatches(args.asserted, inForce);
    if (mismatches.length > 0) throw new SettlementMismatchError(mismatches, inForce);
  }
  // The operator's copy of each line is checked too, so the auditor ignores exactly the lines the operator does.
  const batches = facts.batches.map((b) => ({
    ...b,
    lines: decryptLinesFor(b.encryptedLines, args.auditorSk, "auditor", { verify: [{ role: "operator", pks: [args.operatorPk] }] }),
  }));
  const unattributed = [...facts.unattributed];
  const amounts = new Map<Hex, bigint>();
  for (const p of facts.payouts) {
    try {
      amounts.set(p.txHash, decryptPCT(p.auditorPCT, args.auditorSk));
    } catch (e) {
      if (!(e instanceof PCTDecryptionError)) throw e;
      unattributed.push({ ...p, reason: "its auditor PCT does not open with the auditor's key" });
    }
  }
  const payouts = facts.payouts.filter((p) => amounts.has(p.txHash));
  const payments = paymentsByCycle(payouts, (p) => amounts.get(p.txHash)!);
  const earnings = cycleEarnings({
    batches,
    serverBindings: facts.serverBindings,
    providerChanges: facts.providerChanges,
    poolFees: facts.poolFees,
    boundaries: boundariesOf(payouts),
    schedule,
    poolSecret: () => poolSecret(args.auditorSk, args.operatorPk),
  });
  // The queues of the providers owed something and paid nothing tell a deferral from a short payout.
  const queues = await readPendingQueues(args.indexer, {
    unpaid: reconcileCycles(earnings, payments).filter(isUnpaid),
    payouts,
    providerChanges: facts.providerChanges,
  });
  const rows = reconcileCycles(earnings, payments, { pendingCap, queues });
  const namespaces = new Map(facts.providerChanges.map((c) => [c.providerId, c.namespace]));
  const billableCalls = new Map<ProviderId, bigint>();
  const cycles = earnings.map((e): CycleReconciliation => {
    for (const [id, n] of e.billableCalls) billableCalls.set(id, (billableCalls.get(id) ?? 0n) + n);
    const mine = rows.filter((r) => r.cycle === e.cycle).map((r) => ({ ...r, namespace: namespaces.get(r.providerId) ?? null }));
    const paidMicro = mine.reduce((s, r) => s + r.paidMicro, 0n);
    const depositedMicro = facts.deposits
      .filter((d) => d.blockNumber > e.afterBlock && d.blockNumber <= e.throughBlock)
      .reduce((s, d) => s + d.creditedMicro, 0n);
    const moneyFlow = cycleMoneyFlow(e, { paidMicro, depositedMicro, ...deferredOf(mine) });
    return {
      cycle: e.cycle,
      throughBlock: e.throughBlock,
      poolMicro: e.poolMicro,
      poolFeeMicro: e.poolFeeMicro,
      carriedInMicro: e.carriedInMicro,
      splitMicro: e.splitMicro,
      carriedOutMicro: e.carriedOutMicro,
      owedMicro: mine.reduce((s, r) => s + r.owedMicro, 0n),
      paidMicro,
      transfers: mine.reduce((s, r) => s + r.transfers, 0),
      ok: mine.every((r) => r.ok) && moneyFlow.ok,
      rows: mine,
      moneyFlow,
    };
  });
  const totalMicro = [...amounts.values()].reduce((a, b) => a + b, 0n);
  const deferredMicro = cycles.at(-1)?.moneyFlow.deferredOutMicro ?? 0n;
  const moneyFlow = totalMoneyFlow(earnings, {
    feesMicro: facts.poolFees.reduce((s, f) => s + f.amount, 0n),
    depositedMicro: facts.deposits.reduce((s, d) => s + d.creditedMicro, 0n),
    paidMicro: totalMicro,
    deferredMicro,
  });
  const { alerts } = admitLines(batches, facts.serverBindings, schedule);
  return {
    ok: unattributed.length === 0 && cycles.every((c) => c.ok) && moneyFlow.ok,
    payers: facts.payers,
    unattributed: unattributed.map(({ txHash, from, to, blockNumber, reason }) => ({ txHash, from, to, blockNumber, reason })),
    totalMicro,
    cycles,
    moneyFlow,
    billableCalls,
    alerts,
    pendingCap,
    deferredMicro,
    indexedBlock: facts.indexedBlock,
  };
}

/** The money-flow table's columns after the row label, as the CLI and the dashboard print them (USDC). */
export const MONEY_FLOW_COLUMNS = [
  "pool fees",
  "call revenue",
  "usage billed",
  "levy",
  "deposited",
  "paid",
  "platform fee",
  "carried in",
  "carried out",
  "deferred in",
  "deferred out",
  "unsettled",
  "status",
] as const;

/** One money-flow row's cells, in MONEY_FLOW_COLUMNS order. */
export const moneyFlowCells = (f: MoneyFlow): string[] => [
  formatUsdc(f.feesMicro),
  formatUsdc(f.callRevenueMicro),
  formatUsdc(f.usageMicro),
  formatUsdc(f.levyMicro),
  formatUsdc(f.depositedMicro),
  formatUsdc(f.paidMicro),
  formatUsdc(f.platformFeeMicro),
  formatUsdc(f.carriedInMicro),
  formatUsdc(f.carriedOutMicro),
  formatUsdc(f.deferredInMicro),
  formatUsdc(f.deferredOutMicro),
  formatUsdc(f.unsettledMicro),
  f.ok ? "ok" : `MISMATCH by ${formatUsdc(f.differenceMicro)}`,
];

/** Where a receiver's queue was read, as the status texts name it. */
const queueText = (q: NonNullable<ReconciledRow["queue"]>) => `${q.pendingPCTs} pending PCT(s) at block ${q.blockNumber}`;

/**
 * A provider row's status as the CLI and the dashboard print it (`PayoutStatus`): the code, with
 * what the auditor needs to check it (USDC amounts; the queue read for a provider paid nothing).
 */
export function payoutStatusText(r: ReconciledRow, pendingCap: bigint | null): string {
  const texts: Record<PayoutStatus, () => string> = {
    ok: () => (r.deferredInMicro > 0n ? `ok, settles ${formatUsdc(r.deferredInMicro)} deferred` : "ok"),
    deferred: () =>
      `deferred: queue full, ${queueText(r.queue!)} (cap ${pendingCap}); ` +
      (r.settledInCycle === null ? "still owed" : `paid in cycle ${r.settledInCycle}`),
    short: () =>
      `SHORT by ${formatUsdc(r.owedMicro - r.paidMicro)}` +
      (r.queue === null
        ? ""
        : ` (${queueText(r.queue)}${pendingCap === null ? "; no pending cap known" : `, below the cap of ${pendingCap}`})`),
    overpaid: () => `OVERPAID by ${formatUsdc(r.paidMicro - r.owedMicro)}`,
    split: () => `MISMATCH: ${r.transfers} transfers`,
  };
  return texts[r.status]();
}

/** A cycle's status as the CLI and the dashboard print it: ok (with what it deferred and settled) or MISMATCH. */
export function cycleStatusText(c: CycleReconciliation): string {
  if (!c.ok) return "MISMATCH";
  const settled = c.rows.filter((r) => r.status === "ok").reduce((s, r) => s + r.deferredInMicro, 0n);
  return [
    "ok",
    ...(settled > 0n ? [`settles ${formatUsdc(settled)} deferred`] : []),
    ...(c.moneyFlow.deferredOutMicro > 0n ? [`defers ${formatUsdc(c.moneyFlow.deferredOutMicro)}`] : []),
  ].join("; ");
}

/** The reconciliation's verdict in one line, as the CLI and the dashboard print it. */
export function reconciliationHeadline(r: Reconciliation): string {
  if (!r.ok) return "MISMATCH";
  if (!r.cycles.some((c) => c.rows.some((row) => row.status === "deferred"))) return "every cycle paid what it owed";
  return (
    "every cycle paid what it owed, or deferred a provider whose pending queue was full" +
    (r.deferredMicro > 0n ? `; ${formatUsdc(r.deferredMicro)} USDC deferred, still owed` : "")
  );
}
