import { html, nothing, render, type TemplateResult } from "lit-html";
import type uPlot from "uplot";
import { LOCAL_CHAIN_ID } from "../../src/chain/local.js";
import { formatUsdc } from "../../src/money/usdc.js";
import { downloadCsv, downloadJson, type Table } from "./export.js";
import type { ProviderView } from "./provider.js";
import { connectInjected, DEMO_ACCOUNTS, demoSigner, injectedProvider, rpcChainId, type Session, type Signer } from "./wallet.js";
import "./style.css";

/**
 * The provider dashboard. The page reads the query API and the chain's JSON-RPC endpoint, both
 * set in the page (or with `?api=` and `?rpc=`); the eERC key lives in `session` and nowhere
 * else: not in the URL, not in storage, never in a request.
 */

type Status = { kind: "idle" } | { kind: "busy"; what: string } | { kind: "error"; message: string };

const params = new URLSearchParams(location.search);
/** Served by the API at /app/, the API is one level up; opened as a file, it must be given. */
const defaultApi = location.protocol.startsWith("http") ? new URL("..", location.href).href : "";

const state = {
  apiUrl: params.get("api") ?? defaultApi,
  rpcUrl: params.get("rpc") ?? "http://127.0.0.1:8545",
  chainId: null as number | null,
  chainError: null as string | null,
  demoIndex: 1,
  session: null as Session | null,
  view: null as ProviderView | null,
  status: { kind: "idle" } as Status,
};

const root = document.getElementById("app")!;
let chart: uPlot | null = null;

const usdc = (micro: bigint) => `${formatUsdc(micro)} USDC`;
const short = (hex: string) => (hex.length > 14 ? `${hex.slice(0, 8)}…${hex.slice(-4)}` : hex);
const msTime = (ms: bigint) => (ms <= 8_640_000_000_000_000n ? new Date(Number(ms)).toISOString().replace(".000Z", "Z") : `${ms} ms`);
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
    const { loadProviderView } = await import("./provider.js");
    const view = await loadProviderView(state.apiUrl, session.address, session.sk);
    if (state.session !== session) return;
    state.view = view;
    state.status = { kind: "idle" };
  } catch (e) {
    state.status = { kind: "error", message: errorText(e) };
  }
  update();
}

function disconnect(): void {
  state.session = null;
  state.view = null;
  state.status = { kind: "idle" };
  update();
}

function applySettings(event: Event): void {
  event.preventDefault();
  const form = new FormData(event.target as HTMLFormElement);
  state.apiUrl = String(form.get("api") ?? "").trim();
  state.rpcUrl = String(form.get("rpc") ?? "").trim();
  void checkChain().then(refresh);
}

// ------------------------------------------------------------------------------------- views

function page(): TemplateResult {
  return html`
    <header>
      <h1>BackendShield <span>provider dashboard</span></h1>
      <p class="lede">Balances, payouts and usage decrypted in this page with your eERC key, derived from your wallet's signature and kept in memory only.</p>
    </header>
    <main>
      ${settings()} ${connection()} ${statusLine()} ${state.view && state.session ? providerView(state.view) : nothing}
    </main>
  `;
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
          @click=${() => wallet && connect(() => connectInjected(wallet), "wallet")}
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

function card(label: string, value: string, testId: string, detail: TemplateResult | string): TemplateResult {
  return html`<div class="card"><h3>${label}</h3><p class="figure" data-testid=${testId}>${value}</p><p class="note">${detail}</p></div>`;
}

function exportButtons(table: Table): TemplateResult {
  return html`<span class="exports">
    <button class="small" data-testid=${`${table.name}-csv`} @click=${() => downloadCsv(table)}>CSV</button>
    <button class="small" data-testid=${`${table.name}-json`} @click=${() => downloadJson(table)}>JSON</button>
  </span>`;
}

function tableSection(
  title: string,
  table: Table,
  empty: string,
  numeric: ReadonlySet<number>,
  rowAttrs?: (i: number) => string,
): TemplateResult {
  return html`
    <section class="panel">
      <div class="section-head"><h2>${title}</h2>${exportButtons(table)}</div>
      ${
        table.rows.length === 0
          ? html`<p class="note">${empty}</p>`
          : html`<div class="scroll">
            <table data-testid=${table.name}>
              <thead><tr>${table.headers.map((h, i) => html`<th class=${numeric.has(i) ? "num" : ""}>${h}</th>`)}</tr></thead>
              <tbody>
                ${table.rows.map(
                  (r, i) =>
                    html`<tr data-key=${rowAttrs?.(i) ?? ""}>${r.map((c, j) => html`<td class=${numeric.has(j) ? "num" : ""} title=${c}>${c.startsWith("0x") ? short(c) : c}</td>`)}</tr>`,
                )}
              </tbody>
            </table>
          </div>`
      }
    </section>
  `;
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
  const usageRows = v.usage.batches.flatMap((b) => b.lines.map((l) => ({ batch: b, line: l })));
  const usage: Table = {
    name: "usage",
    headers: ["batch", "block", "period (UTC)", "namespace", "calls", "billable", "amount (USDC)"],
    rows: usageRows.map(({ batch, line }) => [
      batch.batchId,
      String(batch.blockNumber),
      `${msTime(batch.periodStart)} – ${msTime(batch.periodEnd)}`,
      line.namespace ?? line.providerId,
      String(line.calls),
      String(line.billableCalls),
      formatUsdc(line.amountMicro),
    ]),
    json: { batches: v.usage.batches, byProvider: v.usage.byProvider, total: v.usage.total },
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
      ${card("Usage", usdc(v.usage.total.amountMicro), "usage-total", `${v.usage.total.billableCalls} billable of ${v.usage.total.calls} calls in ${v.usage.batches.length} batch(es)`)}
    </section>
    <section class="panel">
      <h2>Earnings per cycle</h2>
      ${v.cycles.length === 0 ? html`<p class="note">No payout cycle has paid this account yet.</p>` : html`<div id="chart" class="chart" data-testid="chart"></div>`}
    </section>
    ${tableSection("Payouts per cycle", cycles, "No payouts yet.", new Set([0, 1, 2, 3, 4]), (i) => `cycle-${v.cycles[i]!.cycle}`)}
    ${tableSection("Payouts received", received, "No incoming transfers.", new Set([0, 4]), (i) => v.received[i]!.txHash)}
    ${tableSection("Usage per batch", usage, "No committed usage decrypts under this key.", new Set([1, 4, 5, 6]))}
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
  if (!target || !view) {
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
update();
void checkChain();
