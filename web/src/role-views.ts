import { html, nothing, type TemplateResult } from "lit-html";
import { formatUsdc } from "../../src/money/usdc.js";
import {
  cycleStatusText,
  MONEY_FLOW_COLUMNS,
  moneyFlowCells,
  payoutStatusText,
  reconciliationHeadline,
} from "../../src/payout/reconcile.js";
import type { AuditorView } from "./auditor.js";
import type { Table } from "./export.js";
import type { OperatorView, Part } from "./operator.js";
import { card, msTime, short, tableSection, usdc } from "./ui.js";

/** The auditor's and the operator's views: templates over the figures `auditor.ts` and `operator.ts` compute. */

const NUMERIC_1_TO_9 = new Set([0, 1, 2, 3, 4, 5, 6, 7, 8]);
/** The money-flow table's numeric columns: the cycle and the amounts, all but the status. */
const NUMERIC_FLOW = new Set(Array.from({ length: MONEY_FLOW_COLUMNS.length }, (_, i) => i));

export type AuditorControls = {
  operator: string;
  drill: number | null;
  onOperator(event: Event): void;
  onPeriod(period: "day" | "month"): void;
  onDrill(cycle: number | null): void;
};

export function auditorForm(c: AuditorControls, period: "day" | "month", busy: boolean): TemplateResult {
  return html`
    <form class="panel settings" @submit=${c.onOperator}>
      <label>Operator address (its registered key and yours give the pool reserves)
        <input name="operator" data-testid="operator-address" required pattern="0x[0-9a-fA-F]{40}" .value=${c.operator} placeholder="0x…" />
      </label>
      <label>Audit period
        <select data-testid="audit-period" @change=${(e: Event) => c.onPeriod((e.target as HTMLSelectElement).value as "day" | "month")}>
          <option value="day" ?selected=${period === "day"}>UTC day</option>
          <option value="month" ?selected=${period === "month"}>UTC month</option>
        </select>
      </label>
      <button type="submit" ?disabled=${busy}>Reconcile</button>
      <p class="note">Defaults to the UsageLedger's operator, read from the RPC.</p>
    </form>
  `;
}

export function auditorView(v: AuditorView, c: AuditorControls): TemplateResult {
  const r = v.reconciliation;
  const cycles: Table = {
    name: "reconcile-cycles",
    headers: ["cycle", "through block", "pool", "carried in", "pool split", "carried out", "owed", "paid", "transfers", "status"],
    rows: r.cycles.map((cy) => [
      String(cy.cycle),
      String(cy.throughBlock),
      formatUsdc(cy.poolMicro),
      formatUsdc(cy.carriedInMicro),
      formatUsdc(cy.splitMicro),
      formatUsdc(cy.carriedOutMicro),
      formatUsdc(cy.owedMicro),
      formatUsdc(cy.paidMicro),
      String(cy.transfers),
      cycleStatusText(cy),
    ]),
    json: r,
  };
  const flow: Table = {
    name: "money-flow",
    headers: ["cycle", ...MONEY_FLOW_COLUMNS],
    rows: [...r.cycles.map((cy) => [String(cy.cycle), ...moneyFlowCells(cy.moneyFlow)]), ["total", ...moneyFlowCells(r.moneyFlow)]],
    json: { cycles: r.cycles.map((cy) => ({ cycle: cy.cycle, ...cy.moneyFlow })), total: r.moneyFlow },
  };
  const periods: Table = {
    name: "audit-periods",
    headers: ["period", "token", "entries", "decrypted", "undecryptable", "transfers", "withdrawals", "mints", "burns", "total (USDC)"],
    rows: v.audit.periods.map((p) => [
      p.period,
      String(p.tokenId ?? "?"),
      String(p.entries),
      String(p.decrypted),
      String(p.undecryptable),
      formatUsdc(p.byKind.transfer.amountMicro),
      formatUsdc(p.byKind.withdraw.amountMicro),
      formatUsdc(p.byKind.mint.amountMicro),
      formatUsdc(p.byKind.burn.amountMicro),
      formatUsdc(p.amountMicro),
    ]),
    json: v.audit.periods,
  };
  const tokens: Table = {
    name: "audit-tokens",
    headers: ["token", "entries", "decrypted", "undecryptable", "total (USDC)"],
    rows: v.audit.tokens.map((t) => [
      String(t.tokenId ?? "?"),
      String(t.entries),
      String(t.decrypted),
      String(t.undecryptable),
      formatUsdc(t.amountMicro),
    ]),
    json: v.audit,
  };
  const drilled = c.drill === null ? null : r.cycles.find((cy) => cy.cycle === c.drill);
  return html`
    <section class="cards">
      ${card(
        "Reconciliation",
        reconciliationHeadline(r),
        "reconcile-status",
        html`${r.ok ? html`<span class="ok">✓</span>` : nothing} through indexed block ${r.indexedBlock}; payers ${r.payers.map(short).join(", ") || "none"};
        pending-queue cap ${r.pendingCap === null ? html`none known${v.pendingCapError ? ` (${v.pendingCapError})` : ""}: a provider passed over because its queue was full shows as short` : String(r.pendingCap)}`,
      )}
      ${card("Paid in all", usdc(r.totalMicro), "reconcile-total", `${r.cycles.length} cycle(s), auditor PCTs decrypted here`)}
      ${card(
        "Audited",
        usdc(v.audit.tokens.reduce((s, t) => s + t.amountMicro, 0n)),
        "audit-total",
        `${v.audit.tokens.reduce((s, t) => s + t.decrypted, 0)} entries decrypted, ${v.audit.undecryptable.length} undecryptable${v.audit.keyIsCurrentAuditor ? "" : "; not the current auditor's key"}`,
      )}
    </section>
    ${tableSection(
      "Cycles: paid against owed",
      cycles,
      "No payout cycle yet.",
      NUMERIC_1_TO_9,
      (i) => `cycle-${r.cycles[i]!.cycle}`,
      (i) => {
        const cycle = r.cycles[i]!.cycle;
        return html`<button class="small" data-testid=${`drill-${cycle}`} @click=${() => c.onDrill(c.drill === cycle ? null : cycle)}>
        ${c.drill === cycle ? "Hide" : "Transfers"}
      </button>`;
      },
    )}
    ${drilled ? cycleDetail(v, drilled.cycle, drilled.rows) : nothing}
    ${tableSection("Money flow (USDC)", flow, "No payout cycle yet.", NUMERIC_FLOW)}
    ${
      r.unattributed.length > 0
        ? tableSection(
            "Payer transfers that are not accountable payouts",
            {
              name: "unattributed",
              headers: ["block", "transaction", "from", "to", "why"],
              rows: r.unattributed.map((t) => [String(t.blockNumber), t.txHash, t.from, t.to, t.reason]),
              json: r.unattributed,
            },
            "",
            new Set([0]),
          )
        : nothing
    }
    ${tableSection(`Audit totals per UTC ${v.period} and token`, periods, "No auditor PCT yet.", new Set([2, 3, 4, 5, 6, 7, 8, 9]))}
    ${tableSection("Audit totals per token", tokens, "No auditor PCT yet.", new Set([1, 2, 3, 4]))}
  `;
}

function cycleDetail(v: AuditorView, cycle: number, rows: AuditorView["reconciliation"]["cycles"][number]["rows"]): TemplateResult {
  const providers: Table = {
    name: "cycle-providers",
    headers: ["provider", "owed (USDC)", "paid (USDC)", "transfers", "status"],
    rows: rows.map((p) => [
      p.namespace ?? p.providerId,
      formatUsdc(p.owedMicro),
      formatUsdc(p.paidMicro),
      String(p.transfers),
      payoutStatusText(p, v.reconciliation.pendingCap),
    ]),
    json: rows,
  };
  const mine = v.transfers.filter((t) => t.cycle === cycle);
  const transfers: Table = {
    name: "cycle-transfers",
    headers: ["block", "provider", "from", "to", "tx", "amount (USDC)"],
    rows: mine.map((t) => [
      String(t.blockNumber),
      t.namespace ?? t.providerId,
      t.from,
      t.to,
      t.txHash,
      t.amountMicro === null ? "undecryptable" : formatUsdc(t.amountMicro),
    ]),
    json: mine,
  };
  return html`<div data-testid="cycle-detail">
    ${tableSection(`Cycle ${cycle}: per provider`, providers, "Nothing owed or paid in this cycle.", new Set([1, 2, 3]))}
    ${tableSection(`Cycle ${cycle}: transfers`, transfers, "No transfer in this cycle.", new Set([0, 5]))}
  </div>`;
}

export type RunState = { kind: "idle" } | { kind: "busy"; line: string } | { kind: "done"; line: string } | { kind: "error"; line: string };

const failed = <T>(p: Part<T>, what: string): TemplateResult | null =>
  p.ok ? null : html`<p class="note bad" data-testid=${`${what}-error`}>${what}: ${p.error}</p>`;

export function operatorView(v: OperatorView, run: RunState, onRun: () => void): TemplateResult {
  const agent = v.agent.ok ? v.agent.value : null;
  const last = agent?.status.last ?? null;
  const lastText =
    last === null
      ? "no cycle since the agent started"
      : last.status === "paid"
        ? `cycle ${last.cycle}: ${last.transfers} transfer(s) in ${last.seconds} s`
        : last.status === "nothing_owed"
          ? `nothing owed through block ${last.throughBlock}`
          : `failed: ${last.message}`;
  const payer = v.payer.ok ? v.payer.value : null;
  const health = v.health.ok ? v.health.value : null;
  const cycles: Table = {
    name: "operator-cycles",
    headers: ["cycle", "through block", "transfers", "paid (USDC)"],
    rows: (payer?.cycles ?? []).map((c) => [String(c.cycle), String(c.throughBlock), String(c.transfers), formatUsdc(c.totalMicro)]),
    json: payer?.cycles ?? [],
  };
  const owed: Table = {
    name: "owed-next",
    headers: ["payout account", "owed next (USDC)"],
    rows: (payer?.owedByAccount ?? []).map((o) => [o.account, formatUsdc(o.amountMicro)]),
    json: payer?.owedByAccount ?? [],
  };
  const ingestion: Table = {
    name: "ingestion",
    headers: ["usage server", "batches", "lines (padded)", "last commit block", "last commit (UTC)"],
    rows: (v.ingestion.ok ? v.ingestion.value : []).map((s) => [
      s.server,
      String(s.batches),
      String(s.lines),
      String(s.lastBlock),
      msTime(s.lastTime * 1000n),
    ]),
    json: v.ingestion.ok ? v.ingestion.value : [],
  };
  const enough = payer && payer.balanceMicro !== null && payer.balanceMicro >= payer.owedMicro;
  return html`
    <section class="cards">
      ${card(
        "Agent",
        agent ? agent.status.state : "unreachable",
        "agent-state",
        agent ? html`operator ${short(agent.chain.operator)}, chain ${agent.chain.chainId}` : v.agent.ok ? "" : v.agent.error,
      )}
      ${card("Last cycle", agent ? lastText : "—", "agent-last", last ? `finished ${last.finishedAt.replace(/\.\d+Z$/, "Z")} (${last.trigger})` : "")}
      ${card(
        "Payer balance",
        payer ? (payer.balanceMicro === null ? "no balance yet" : usdc(payer.balanceMicro)) : "unavailable",
        "payer-balance",
        payer
          ? html`${enough ? html`<span class="ok">✓ covers what is owed next</span>` : html`<span class="bad">less than what is owed next</span>`}`
          : v.payer.ok
            ? ""
            : v.payer.error,
      )}
      ${card("Owed next", payer ? usdc(payer.owedMicro) : "unavailable", "owed-next-total", payer ? `through block ${payer.throughBlock}` : "")}
      ${card(
        "Indexer lag",
        health?.lagBlocks == null ? "unknown" : `${health.lagBlocks} block(s)`,
        "indexer-lag",
        health
          ? `indexed ${health.indexedBlock ?? "?"} of head ${health.headBlock ?? "?"}${health.ready ? "" : ", still catching up"}`
          : v.health.ok
            ? ""
            : v.health.error,
      )}
    </section>
    <section class="panel run">
      <div class="section-head"><h2>Run a cycle now</h2></div>
      <p class="note">Your wallet signs the agent's EIP-712 Distribute request (its chain and agent id from /revenue/chain); the agent pays and this page follows its status.</p>
      <div class="actions">
        <button data-testid="run-cycle" ?disabled=${!agent || run.kind === "busy" || agent.status.state === "running"} @click=${onRun}>Run a cycle now</button>
        ${run.kind === "idle" ? nothing : html`<span data-testid="cycle-progress" class=${run.kind === "error" ? "bad" : run.kind === "done" ? "ok" : ""}>${run.line}</span>`}
      </div>
    </section>
    ${failed(v.payer, "ledger") ?? nothing}
    ${tableSection("Cycles paid", cycles, "No payout cycle yet.", new Set([0, 1, 2, 3]))}
    ${tableSection("Owed next, per payout account", owed, "Nothing is owed.", new Set([1]))}
    ${tableSection("Ingestion", ingestion, v.ingestion.ok ? "No usage batch committed yet." : v.ingestion.error, new Set([1, 2, 3]))}
  `;
}
