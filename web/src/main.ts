import { html, nothing, render, type TemplateResult } from "lit-html";
import type uPlot from "uplot";
import { getAddress } from "viem";
import { LOCAL_CHAIN_ID } from "../../src/chain/local.js";
import { formatUsdc } from "../../src/money/usdc.js";
import type { AuditorView } from "./auditor.js";
import type { Table } from "./export.js";
import type { OperatorView } from "./operator.js";
import type { ProviderView } from "./provider.js";
import type { AuditorControls, RunState } from "./role-views.js";
import { ledgerOperator, type ViewKind, viewFor } from "./roles.js";
import { card, msTime, onTablePage, PAGE_ROWS, resetTablePages, short, tableSection, usdc } from "./ui.js";
import { connectInjected, DEMO_ACCOUNTS, demoSigner, injectedProvider, rpcChainId, type Session, type Signer } from "./wallet.js";
import { withdrawPanel } from "./withdraw-panel.js";
import "./style.css";

/**
 * The dashboard: the provider's, the auditor's and the operator's views. The page reads the query
 * API, the chain's JSON-RPC endpoint and the payout agent, all set in the page (or with `?api=`,
 * `?rpc=` and `?agent=`); the eERC key lives in `session` and nowhere else: not in the URL, not in
 * storage, never in a request. Each view's decryption code loads when the view is first opened.
 */

type Status = { kind: "idle" } | { kind: "busy"; what: string } | { kind: "error"; message: string };

const params = new URLSearchParams(location.search);
/** Served by the API at /app/, the API is one level up; opened as a file, it must be given. */
const defaultApi = location.protocol.startsWith("http") ? new URL("..", location.href).href : "";

const state = {
  apiUrl: params.get("api") ?? defaultApi,
  rpcUrl: params.get("rpc") ?? "http://127.0.0.1:8545",
  agentUrl: params.get("agent") ?? "http://127.0.0.1:42070",
  chainId: null as number | null,
  chainError: null as string | null,
  demoIndex: 1,
  session: null as Session | null,
  /** The connected wallet's signer, for the operator's Distribute request. */
  signer: null as Signer | null,
  tab: "provider" as ViewKind,
  view: null as ProviderView | null,
  auditor: null as AuditorView | null,
  operatorAddress: "",
  period: "day" as "day" | "month",
  drill: null as number | null,
  operator: null as OperatorView | null,
  run: { kind: "idle" } as RunState,
  status: { kind: "idle" } as Status,
};

const root = document.getElementById("app")!;
let chart: uPlot | null = null;
/** The auditor's and operator's templates, loaded with their view (they bring the settlement code). */
let roleViews: typeof import("./role-views.js") | null = null;

const errorText = (e: unknown) => (e instanceof Error ? e.message : String(e));

function update(): void {
  render(page(), root);
  drawChart();
}

async function checkChain(): Promise<void> {
  state.chainId = null;
  state.chainError = null;
  update();
  try {
    state.chainId = await rpcChainId(state.rpcUrl);
  } catch (e) {
    state.chainError = errorText(e);
  }
  update();
}

async function connect(signer: () => Promise<{ signer: Signer; chainId: number }>, source: Session["source"]): Promise<void> {
  disconnect();
  try {
    state.status = { kind: "busy", what: "waiting for the signature that derives the eERC key" };
    update();
    const s = await signer();
    const { deriveKeyFromWallet } = await import("./provider.js");
    state.session = { address: s.signer.address, chainId: s.chainId, source, sk: await deriveKeyFromWallet(s.signer) };
    state.signer = s.signer;
    state.tab = await viewFor(s.signer.address, state.apiUrl, state.rpcUrl);
    await refresh();
  } catch (e) {
    state.status = { kind: "error", message: errorText(e) };
    update();
  }
}

async function refresh(): Promise<void> {
  const session = state.session;
  if (!session) return;
  state.status = { kind: "busy", what: "reading the API and decrypting" };
  update();
  try {
    const tab = state.tab;
    if (tab !== "provider" && !roleViews) roleViews = await import("./role-views.js");
    if (tab === "provider") {
      const { loadProviderView } = await import("./provider.js");
      state.view?.usage.cancel();
      let loaded: ProviderView | null = null;
      // The usage keeps decrypting after the first page of its table is shown: redraw as it goes.
      const onProgress = () => loaded && state.view === loaded && update();
      const view = await loadProviderView(state.apiUrl, session.address, session.sk, { firstRows: PAGE_ROWS, onProgress });
      if (state.session !== session) return view.usage.cancel();
      loaded = view;
      state.view = view;
    } else if (tab === "auditor") {
      if (!state.operatorAddress) state.operatorAddress = (await ledgerOperator(state.apiUrl, state.rpcUrl)) ?? "";
      if (!/^0x[0-9a-fA-F]{40}$/.test(state.operatorAddress))
        throw new Error("give the operator's address: the UsageLedger's operator could not be read");
      const { loadAuditorView } = await import("./auditor.js");
      const view = await loadAuditorView({
        apiUrl: state.apiUrl,
        account: session.address,
        sk: session.sk,
        operator: getAddress(state.operatorAddress),
        period: state.period,
        rpcUrl: state.rpcUrl,
      });
      if (state.session !== session) return;
      state.auditor = view;
    } else {
      const { loadOperatorView } = await import("./operator.js");
      const view = await loadOperatorView({ apiUrl: state.apiUrl, agentUrl: state.agentUrl, account: session.address, sk: session.sk });
      if (state.session !== session) return;
      state.operator = view;
    }
    state.status = { kind: "idle" };
  } catch (e) {
    state.status = { kind: "error", message: errorText(e) };
  }
  update();
}

function disconnect(): void {
  state.session = null;
  state.signer = null;
  state.view?.usage.cancel();
  state.view = null;
  resetTablePages();
  state.auditor = null;
  state.operator = null;
  state.drill = null;
  state.run = { kind: "idle" };
  state.status = { kind: "idle" };
  update();
}

function applySettings(event: Event): void {
  event.preventDefault();
  const form = new FormData(event.target as HTMLFormElement);
  state.apiUrl = String(form.get("api") ?? "").trim();
  state.rpcUrl = String(form.get("rpc") ?? "").trim();
  state.agentUrl = String(form.get("agent") ?? "").trim();
  void checkChain().then(refresh);
}

function openTab(tab: ViewKind): void {
  state.tab = tab;
  const loaded = tab === "provider" ? state.view : tab === "auditor" ? state.auditor : state.operator;
  if (loaded) update();
  else void refresh();
}

const auditorControls = (): AuditorControls => ({
  operator: state.operatorAddress,
  drill: state.drill,
  onOperator: (event: Event) => {
    event.preventDefault();
    state.operatorAddress = String(new FormData(event.target as HTMLFormElement).get("operator") ?? "").trim();
    void refresh();
  },
  onPeriod: (period) => {
    state.period = period;
    void refresh();
  },
  onDrill: (cycle) => {
    state.drill = cycle;
    update();
  },
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * The operator's "Run a cycle now": signs the Distribute request, follows the agent's status until
 * the cycle is done, then reloads the view until the indexer has the cycle's transfers.
 */
async function runCycle(): Promise<void> {
  const signer = state.signer;
  const session = state.session;
  if (!signer || !session) return;
  const setRun = (run: RunState) => {
    state.run = run;
    update();
  };
  try {
    setRun({ kind: "busy", line: "waiting for the signature of the Distribute request" });
    const op = await import("./operator.js");
    const before = (await op.agentStatus(state.agentUrl)).last?.finishedAt ?? null;
    await op.requestCycle(state.agentUrl, signer);
    setRun({ kind: "busy", line: "accepted: the agent is starting the cycle" });
    let last = null;
    while (!last) {
      await sleep(400);
      const s = await op.agentStatus(state.agentUrl);
      if (s.state === "running" && s.progress) {
        const p = s.progress;
        setRun({ kind: "busy", line: `cycle ${p.cycle}: proved ${p.proved}/${p.total}, paid ${p.paid}/${p.total}` });
      } else if (s.state === "idle" && s.last && s.last.finishedAt !== before) last = s.last;
    }
    if (last.status === "failed") throw new Error(`the cycle failed: ${last.message}`);
    if (last.status === "nothing_owed") {
      await refresh();
      return setRun({ kind: "done", line: `nothing owed through block ${last.throughBlock}` });
    }
    setRun({ kind: "busy", line: `cycle ${last.cycle} paid; waiting for the indexer` });
    for (let i = 0; i < 60; i++) {
      const view = await op.loadOperatorView({ apiUrl: state.apiUrl, agentUrl: state.agentUrl, account: session.address, sk: session.sk });
      if (state.session !== session) return;
      state.operator = view;
      if (view.payer.ok && view.payer.value.cycles.some((c) => c.cycle === last.cycle)) break;
      await sleep(500);
    }
    setRun({ kind: "done", line: `cycle ${last.cycle}: ${last.transfers} transfer(s) paid in ${last.seconds} s` });
  } catch (e) {
    setRun({ kind: "error", line: errorText(e) });
  }
}

// ------------------------------------------------------------------------------------- views

function page(): TemplateResult {
  return html`
    <header>
      <h1>BackendShield <span>dashboard</span></h1>
      <p class="lede">Balances, payouts, reconciliations and usage decrypted in this page with your eERC key, derived from your wallet's signature and kept in memory only.</p>
    </header>
    <main>
      ${settings()} ${connection()} ${state.session ? tabs() : nothing} ${state.tab === "auditor" && state.session && roleViews ? roleViews.auditorForm(auditorControls(), state.period, state.status.kind === "busy") : nothing}
      ${statusLine()} ${state.session ? current() : nothing}
    </main>
  `;
}

const TABS: { tab: ViewKind; label: string }[] = [
  { tab: "provider", label: "Provider" },
  { tab: "auditor", label: "Auditor" },
  { tab: "operator", label: "Operator" },
];

function tabs(): TemplateResult {
  return html`<nav class="tabs" role="tablist">
    ${TABS.map(
      (t) =>
        html`<button role="tab" data-testid=${`view-${t.tab}`} aria-selected=${state.tab === t.tab ? "true" : "false"} class=${state.tab === t.tab ? "selected" : ""} @click=${() => openTab(t.tab)}>${t.label}</button>`,
    )}
  </nav>`;
}

function current(): TemplateResult | typeof nothing {
  if (state.tab === "provider")
    return html`${withdrawPanel({ session: state.session!, rpcUrl: state.rpcUrl, update })}${state.view ? providerView(state.view) : nothing}`;
  if (!roleViews) return nothing;
  if (state.tab === "auditor") return state.auditor ? roleViews.auditorView(state.auditor, auditorControls()) : nothing;
  return state.operator ? roleViews.operatorView(state.operator, state.run, () => void runCycle()) : nothing;
}

function settings(): TemplateResult {
  const chain =
    state.chainError !== null
      ? html`<span class="bad">RPC: ${state.chainError}</span>`
      : state.chainId === null
        ? html`<span>RPC: checking…</span>`
        : html`<span data-testid="chain-id">chain ${state.chainId}${state.chainId === LOCAL_CHAIN_ID ? " (local anvil)" : ""}</span>`;
  return html`
    <form class="panel settings" @submit=${applySettings}>
      <label>API URL <input name="api" type="url" required .value=${state.apiUrl} placeholder="https://indexer.example/" /></label>
      <label>RPC URL <input name="rpc" type="url" required .value=${state.rpcUrl} placeholder="https://rpc.example/" /></label>
      <label>Agent URL <input name="agent" type="url" data-testid="agent-url" .value=${state.agentUrl} placeholder="https://agent.example/" /></label>
      <button type="submit">Apply</button>
      <p class="note">${chain}</p>
    </form>
  `;
}

function connection(): TemplateResult {
  const wallet = injectedProvider();
  const local = state.chainId === LOCAL_CHAIN_ID;
  const busy = state.status.kind === "busy";
  if (state.session) {
    const s = state.session;
    return html`
      <section class="panel connected">
        <p>
          <strong data-testid="account">${s.address}</strong>
          <span class="tag">${s.source === "demo" ? "demo account" : "wallet"}</span>
          <span class="note">eERC key derived in this page, held in memory</span>
        </p>
        <div class="actions">
          <button @click=${refresh} ?disabled=${busy}>Refresh</button>
          <button @click=${disconnect}>Disconnect (forget the key)</button>
        </div>
      </section>
    `;
  }
  return html`
    <section class="panel connect">
      <div>
        <h2>Connect</h2>
        <button
          data-testid="connect-wallet"
          ?disabled=${!wallet || busy}
          @click=${() => wallet && connect(() => connectInjected(wallet, state.chainId), "wallet")}
        >
          Connect wallet
        </button>
        <p class="note">
          ${wallet ? "Your wallet signs the eERC registration message; the key is derived from that signature here." : "No injected wallet (window.ethereum) in this browser."}
        </p>
      </div>
      <fieldset class="demo" ?disabled=${!local || busy}>
        <legend>Demo accounts — local chain only</legend>
        <p class="note">
          anvil's well-known test keys, which are public: for the local demo (chain ${LOCAL_CHAIN_ID}) only.
          ${local ? nothing : html`<strong>Disabled: the RPC is not a local anvil chain.</strong>`}
        </p>
        <select data-testid="demo-account" @change=${(e: Event) => (state.demoIndex = Number((e.target as HTMLSelectElement).value))}>
          ${DEMO_ACCOUNTS.map((a) => html`<option value=${a.index} ?selected=${a.index === state.demoIndex}>#${a.index} ${short(a.address)}</option>`)}
        </select>
        <button
          data-testid="demo-connect"
          @click=${() => connect(async () => ({ signer: demoSigner(state.demoIndex, state.chainId ?? 0), chainId: state.chainId ?? 0 }), "demo")}
        >
          Use demo account
        </button>
      </fieldset>
    </section>
  `;
}

function statusLine(): TemplateResult | typeof nothing {
  const s = state.status;
  if (s.kind === "busy") return html`<p class="status" role="status">${s.what}…</p>`;
  if (s.kind === "error") return html`<p class="status bad" role="alert" data-testid="error">${s.message}</p>`;
  return nothing;
}

function providerView(v: ProviderView): TemplateResult {
  const token = v.history.tokens.find((t) => t.balanceMicro !== null) ?? v.history.tokens[0];
  const paidMicro = v.received.reduce((sum, r) => (r.cycle === null ? sum : sum + r.amountMicro), 0n);
  const pending = v.history.pending;

  const cycles: Table = {
    name: "cycles",
    headers: ["cycle", "through block", "transfers", "earned (USDC)", "cumulative paid (USDC)"],
    rows: v.cycles.map((c) => [
      String(c.cycle),
      String(c.throughBlock),
      String(c.transfers),
      formatUsdc(c.amountMicro),
      formatUsdc(c.cumulativeMicro),
    ]),
    json: v.cycles,
  };
  const received: Table = {
    name: "payouts",
    headers: ["block", "cycle", "from", "tx", "amount (USDC)"],
    rows: v.received.map((r) => [
      String(r.blockNumber),
      r.cycle === null ? "not a payout" : String(r.cycle),
      r.from,
      r.txHash,
      formatUsdc(r.amountMicro),
    ]),
    json: v.received,
  };
  const rows = v.history.tokens.flatMap((t) => t.rows);
  const history: Table = {
    name: "balance-history",
    headers: ["block", "time (UTC)", "kind", "change (USDC)", "balance (USDC)", "tx"],
    rows: rows.map((r) => [
      String(r.blockNumber),
      msTime(r.timestamp * 1000n),
      r.kind,
      formatUsdc(r.deltaMicro),
      formatUsdc(r.balanceMicro),
      r.txHash,
    ]),
    json: rows,
  };
  const scan = v.usage;
  const u = scan.report;
  const usageRows = u.batches.flatMap((b) => b.lines.map((l) => ({ batch: b, line: l })));
  const usage: Table = {
    name: "usage",
    headers: ["batch", "block", "period (UTC)", "namespace", "calls", "billable", "amount (USDC)", "calls paid (USDC)"],
    rows: usageRows.map(({ batch, line }) => [
      batch.batchId,
      String(batch.blockNumber),
      `${msTime(batch.periodStart)} – ${msTime(batch.periodEnd)}`,
      line.namespace ?? line.providerId,
      String(line.calls),
      String(line.billableCalls),
      formatUsdc(line.amountMicro),
      formatUsdc(line.revenueMicro),
    ]),
    json: { batches: u.batches, byProvider: u.byProvider, total: u.total, copyMismatches: u.copyMismatches },
  };

  return html`
    <section class="cards">
      ${card(
        "Balance",
        token?.balanceMicro == null ? "no balance yet" : usdc(token.balanceMicro),
        "balance",
        html`<span class="ok">✓</span> PCT sum checked against the encrypted balance (EGCT)${token ? html`, token ${token.tokenId}` : nothing}`,
      )}
      ${card(
        "Pending",
        pending ? usdc(pending.amountMicro) : "unavailable",
        "pending",
        pending ? `owed through block ${pending.throughBlock}, not yet paid` : (v.pendingUnavailable ?? ""),
      )}
      ${card("Paid", usdc(paidMicro), "paid", `${v.cycles.length} cycle(s), ${v.received.filter((r) => r.cycle !== null).length} payout transfer(s)`)}
      ${card("Usage", usdc(u.total.amountMicro), "usage-total", `${u.total.billableCalls} billable of ${u.total.calls} calls in ${u.batches.length} batch(es)${scan.done ? "" : " so far"}`)}
    </section>
    <section class="panel">
      <h2>Earnings per cycle</h2>
      ${v.cycles.length === 0 ? html`<p class="note">No payout cycle has paid this account yet.</p>` : html`<div id="chart" class="chart" data-testid="chart"></div>`}
    </section>
    ${tableSection("Payouts per cycle", cycles, "No payouts yet.", new Set([0, 1, 2, 3, 4]), (i) => `cycle-${v.cycles[i]!.cycle}`)}
    ${tableSection("Payouts received", received, "No incoming transfers.", new Set([0, 4]), (i) => v.received[i]!.txHash)}
    ${scan.error !== null ? html`<p class="note bad" data-testid="usage-error">The usage could not be read to the end: ${scan.error}</p>` : nothing}
    ${scan.done || scan.error !== null ? nothing : html`<p class="note" data-testid="usage-progress" aria-live="polite">Decrypting the usage in this page: ${scan.scanned.toLocaleString("en")} of the ${scan.read.toLocaleString("en")} batches read so far; the usage figures grow until every batch is done.</p>`}
    ${u.copyMismatches.map((m) => html`<p class="note bad" data-testid="usage-copy-mismatch">Alert: in batch ${short(m.batchId)} (block ${m.blockNumber}, server ${short(m.server)}) this account's copy of a line does not match the batch's commitment; it is left out of the figures above (docs/security.md).</p>`)}
    ${tableSection("Usage per batch", usage, scan.done ? "No committed usage decrypts under this key." : "None of the batches decrypted so far holds usage of this account.", new Set([1, 4, 5, 6, 7]))}
    ${tableSection("Balance history", history, "No balance history.", new Set([0, 3, 4]))}
  `;
}

// ------------------------------------------------------------------------------------- chart

let chartFor: ProviderView | null = null;
let chartWidth = 0;

let chartModule: typeof import("./chart.js") | null = null;

function drawChart(): void {
  const target = document.getElementById("chart");
  const view = state.view;
  if (!target || !view || state.tab !== "provider") {
    chart?.destroy();
    chart = null;
    chartFor = null;
    return;
  }
  const width = Math.max(240, Math.floor(target.clientWidth));
  if (chart && chartFor === view && chartWidth === width && target.contains(chart.root)) return;
  if (!chartModule) {
    void import("./chart.js").then((m) => {
      chartModule = m;
      drawChart();
    });
    return;
  }
  chart?.destroy();
  chart = chartModule.earningsChart(target, view.cycles, width);
  chartFor = view;
  chartWidth = width;
}

new ResizeObserver(() => drawChart()).observe(root);
onTablePage(update);
update();
void checkChain();
