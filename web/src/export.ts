import { toJson } from "../../src/cli/output.js";

/**
 * Tables as files: CSV (RFC 4180 quoting; amounts as the USDC decimal strings the page shows) and
 * JSON (bigints as decimal strings, as the CLI's `--json` writes them). Built in the page and
 * handed to the browser as a download: nothing is sent anywhere.
 */

export type Table = { name: string; headers: string[]; rows: string[][]; json: unknown };

const cell = (v: string): string => (/[",\r\n]/.test(v) ? `"${v.replaceAll('"', '""')}"` : v);

export function toCsv(table: Pick<Table, "headers" | "rows">): string {
  return `${[table.headers, ...table.rows].map((r) => r.map(cell).join(",")).join("\r\n")}\r\n`;
}

export function download(fileName: string, type: string, text: string): void {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const a = document.createElement("a");
  a.href = url;
  a.download = fileName;
  a.click();
  setTimeout(() => URL.revokeObjectURL(url), 0);
}

export const downloadCsv = (table: Table) => download(`${table.name}.csv`, "text/csv", toCsv(table));
export const downloadJson = (table: Table) => download(`${table.name}.json`, "application/json", toJson(table.json));
