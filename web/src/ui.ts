import { html, type TemplateResult } from "lit-html";
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

/** A table with its CSV/JSON buttons; `action` adds a last cell to each row (a drill-down button, say), not exported. */
export function tableSection(
  title: string,
  table: Table,
  empty: string,
  numeric: ReadonlySet<number>,
  rowAttrs?: (i: number) => string,
  action?: (i: number) => TemplateResult,
): TemplateResult {
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
                ${table.rows.map(
                  (r, i) =>
                    html`<tr data-key=${rowAttrs?.(i) ?? ""}>${r.map((c, j) => html`<td class=${numeric.has(j) ? "num" : ""} title=${c}>${c.startsWith("0x") ? short(c) : c}</td>`)}${action ? html`<td class="action">${action(i)}</td>` : ""}</tr>`,
                )}
              </tbody>
            </table>
          </div>`
      }
    </section>
  `;
}
