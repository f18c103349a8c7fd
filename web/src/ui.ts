import { html, nothing, type TemplateResult } from "lit-html";
import { formatUsdc } from "../../src/money/usdc.js";
import { downloadCsv, downloadJson, type Table } from "./export.js";

/** The page's shared pieces: formatting, figure cards and exportable tables. */

export const usdc = (micro: bigint) => `${formatUsdc(micro)} USDC`;
export const short = (hex: string) => (hex.length > 14 ? `${hex.slice(0, 8)}…${hex.slice(-4)}` : hex);
export const msTime = (ms: bigint) =>
  ms <= 8_640_000_000_000_000n ? new Date(Number(ms)).toISOString().replace(".000Z", "Z") : `${ms} ms`;

export function card(label: string, value: string, testId: string, detail: TemplateResult | string): TemplateResult {
  return html`<div class="card"><h3>${label}</h3><p class="figure" data-testid=${testId}>${value}</p><p class="note">${detail}</p></div>`;
}

export function exportButtons(table: Table): TemplateResult {
  return html`<span class="exports">
    <button class="small" data-testid=${`${table.name}-csv`} @click=${() => downloadCsv(table)}>CSV</button>
    <button class="small" data-testid=${`${table.name}-json`} @click=${() => downloadJson(table)}>JSON</button>
  </span>`;
}

/** Rows a table shows at a time; a longer table is paged (its exports still hold every row). */
export const PAGE_ROWS = 100;

/** The page each long table shows, by table name; reset by `resetTablePages` when another account connects. */
const tablePages = new Map<string, number>();
let rerender: () => void = () => {};

/** What redraws the page after a table's page changes. */
export const onTablePage = (redraw: () => void) => {
  rerender = redraw;
};
export const resetTablePages = () => tablePages.clear();

function pager(name: string, page: number, pages: number, rows: number): TemplateResult {
  const go = (p: number) => () => {
    tablePages.set(name, p);
    rerender();
  };
  const first = page * PAGE_ROWS + 1;
  const last = Math.min(rows, (page + 1) * PAGE_ROWS);
  return html`<p class="pager note">
    <button class="small" data-testid=${`${name}-prev`} ?disabled=${page === 0} @click=${go(page - 1)}>Previous</button>
    <span data-testid=${`${name}-rows`}>rows ${first.toLocaleString("en")}–${last.toLocaleString("en")} of ${rows.toLocaleString("en")}</span>
    <button class="small" data-testid=${`${name}-next`} ?disabled=${page >= pages - 1} @click=${go(page + 1)}>Next</button>
  </p>`;
}

/**
 * A table with its CSV/JSON buttons; `action` adds a last cell to each row (a drill-down button, say), not exported.
 * Over PAGE_ROWS rows it shows one page at a time, with Previous and Next.
 */
export function tableSection(
  title: string,
  table: Table,
  empty: string,
  numeric: ReadonlySet<number>,
  rowAttrs?: (i: number) => string,
  action?: (i: number) => TemplateResult,
): TemplateResult {
  const pages = Math.max(1, Math.ceil(table.rows.length / PAGE_ROWS));
  const page = Math.min(tablePages.get(table.name) ?? 0, pages - 1);
  const offset = page * PAGE_ROWS;
  const shown = pages > 1 ? table.rows.slice(offset, offset + PAGE_ROWS) : table.rows;
  return html`
    <section class="panel">
      <div class="section-head"><h2>${title}</h2>${exportButtons(table)}</div>
      ${
        table.rows.length === 0
          ? html`<p class="note">${empty}</p>`
          : html`<div class="scroll">
            <table data-testid=${table.name}>
              <thead><tr>${table.headers.map((h, i) => html`<th class=${numeric.has(i) ? "num" : ""}>${h}</th>`)}${action ? html`<th></th>` : ""}</tr></thead>
              <tbody>
                ${shown.map(
                  (r, k) =>
                    html`<tr data-key=${rowAttrs?.(offset + k) ?? ""}>${r.map((c, j) => html`<td class=${numeric.has(j) ? "num" : ""} title=${c}>${c.startsWith("0x") ? short(c) : c}</td>`)}${action ? html`<td class="action">${action(offset + k)}</td>` : ""}</tr>`,
                )}
              </tbody>
            </table>
          </div>
          ${pages > 1 ? pager(table.name, page, pages, table.rows.length) : nothing}`
      }
    </section>
  `;
}
