import type { Address } from "viem";
import type { Point } from "../eerc/curve.js";
import {
  AUDIT_KINDS,
  type AuditReport,
  type DecryptedHistory,
  type DecryptedTransfer,
  type Totals,
  type UnresolvedTransfer,
} from "../history/types.js";
import type { ProviderUsageReport, RecordsCheck, UsageTotals } from "../history/usage.js";
import { formatUsdc } from "../money/usdc.js";

/** JSON with every bigint as a decimal string (amounts stay exact micro-USDC). */
export function toJson(value: unknown): string {
  return JSON.stringify(value, (_k, v) => (typeof v === "bigint" ? v.toString() : v), 2);
}

/** Plain-text table; columns listed in `right` are right-aligned. */
export function table(headers: string[], rows: string[][], right: ReadonlySet<number> = new Set()): string[] {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (right.has(i) ? c.padStart(widths[i]!) : i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
      .join("  ")
      .trimEnd();
  return [line(headers), ...rows.map(line)];
}

const indent = (lines: string[], by = "  ") => lines.map((l) => by + l);
const signed = (micro: bigint) => (micro > 0n ? `+${formatUsdc(micro)}` : formatUsdc(micro));
const tokenLabel = (tokenId: bigint | null, address?: Address | null) =>
  `${tokenId === null ? "token unknown" : `token ${tokenId}`}${address ? ` (${address})` : ""}`;

function receivedLines(received: DecryptedTransfer[], total: bigint): string[] {
  if (received.length === 0) return ["incoming transfers: none"];
  return [
    `incoming transfers: ${received.length}, total ${formatUsdc(total)} USDC`,
    ...indent(
      table(
        ["block", "from", "amount (USDC)", "tx"],
        received.map((r) => [r.blockNumber.toString(), r.from, formatUsdc(r.amountMicro), r.txHash]),
        new Set([0, 2]),
      ),
    ),
  ];
}

/** API mode: the decrypted balance history and incoming transfers, per token. */
export function renderHistory(h: DecryptedHistory, source: string): string {
  const out = [`account ${h.account}  (key matches the registered eERC public key)`, `source  ${source}`];
  out.push(
    h.pending
      ? `pending ${formatUsdc(h.pending.amountMicro)} USDC owed through block ${h.pending.throughBlock}, paid in the next payout cycle`
      : "pending unknown: this API serves no pending amounts (its operator has not given it the operator's eERC key)",
  );
  if (h.tokens.length === 0) out.push("", "no eERC activity for this account");
  for (const t of h.tokens) {
    out.push("", tokenLabel(t.tokenId, t.tokenAddress));
    out.push(`  balance: ${t.balanceMicro === null ? "no balance history" : `${formatUsdc(t.balanceMicro)} USDC`}`);
    if (t.rows.length > 0) {
      out.push(
        ...indent(
          table(
            ["block", "kind", "change (USDC)", "balance (USDC)", "tx"],
            t.rows.map((r) => [r.blockNumber.toString(), r.kind, signed(r.deltaMicro), formatUsdc(r.balanceMicro), r.txHash]),
            new Set([0, 2, 3]),
          ),
        ),
      );
    }
    out.push(...indent(receivedLines(t.received, t.receivedTotalMicro)));
  }
  out.push(...unresolvedLines(h.unresolved));
  return out.join("\n");
}

function unresolvedLines(unresolved: UnresolvedTransfer[]): string[] {
  if (unresolved.length === 0) return [];
  return [
    "",
    `${unresolved.length} incoming transfer(s) without a readable amount (not sent directly to the eERC contract):`,
    ...indent(
      table(
        ["block", "token", "from", "tx"],
        unresolved.map((u) => [u.blockNumber.toString(), u.tokenId?.toString() ?? "?", u.from, u.txHash]),
        new Set([0]),
      ),
    ),
  ];
}

export type ChainHistory = {
  account: Address;
  publicKey: Point;
  tokens: {
    tokenId: bigint;
    tokenAddress: Address | null;
    balanceMicro: bigint;
    nonce: bigint;
    pendingCredits: number;
    received: DecryptedTransfer[];
    receivedTotalMicro: bigint;
  }[];
  unresolved: UnresolvedTransfer[];
};

/** RPC mode: the current balance per token (from balanceOf) and incoming transfers from the chain. */
export function renderChainHistory(h: ChainHistory, source: string): string {
  const out = [`account ${h.account}  (key matches the registered eERC public key)`, `source  ${source}`];
  if (h.tokens.length === 0) out.push("", "no tokens on this eERC contract yet");
  for (const t of h.tokens) {
    out.push("", tokenLabel(t.tokenId, t.tokenAddress));
    out.push(`  balance: ${formatUsdc(t.balanceMicro)} USDC  (nonce ${t.nonce}, ${t.pendingCredits} credits since the last spend)`);
    out.push(...indent(receivedLines(t.received, t.receivedTotalMicro)));
  }
  out.push(...unresolvedLines(h.unresolved));
  return out.join("\n");
}

function totalsRows(label: string[], t: Totals): string[][] {
  return AUDIT_KINDS.filter((k) => t.byKind[k].entries > 0).map((k) => {
    const kt = t.byKind[k];
    return [...label, k, String(kt.entries), String(kt.undecryptable), formatUsdc(kt.amountMicro)];
  });
}

export function renderAudit(r: AuditReport, meta: { account: Address; period: string; source: string }): string {
  const out = [
    `auditor key of ${meta.account}` +
      (r.keyIsCurrentAuditor
        ? "  (the contract's current auditor key)"
        : `  (NOT the current auditor key; current auditor: ${r.auditor ?? "none"})`),
    `source  ${meta.source}`,
    `period  ${meta.period} (UTC)`,
    "",
  ];
  if (r.periods.length === 0) {
    out.push("no audited operations");
    return out.join("\n");
  }
  const right = new Set([3, 4, 5]);
  out.push(
    ...table(
      ["period", "token", "kind", "entries", "undecryptable", "decrypted (USDC)"],
      r.periods.flatMap((p) => totalsRows([p.period, p.tokenId?.toString() ?? "?"], p)),
      right,
    ),
  );
  out.push("", "totals per token");
  out.push(
    ...indent(
      table(
        ["token", "kind", "entries", "undecryptable", "decrypted (USDC)"],
        r.tokens.flatMap((t) => [
          ...totalsRows([t.tokenId?.toString() ?? "?"], t),
          [t.tokenId?.toString() ?? "?", "all", String(t.entries), String(t.undecryptable), formatUsdc(t.amountMicro)],
        ]),
        new Set([2, 3, 4]),
      ),
    ),
  );
  if (r.cycles && r.cycles.length > 0) {
    out.push("", "payout cycles");
    out.push(
      ...indent(
        table(
          ["cycle", "through block", "transfers", "paid (USDC)"],
          r.cycles.map((c) => [String(c.cycle), c.throughBlock.toString(), String(c.transfers), formatUsdc(c.totalMicro)]),
          new Set([0, 1, 2, 3]),
        ),
      ),
    );
  }
  if (r.undecryptable.length > 0) {
    out.push(
      "",
      `${r.undecryptable.length} entr${r.undecryptable.length === 1 ? "y" : "ies"} did not decrypt under this key ` +
        "(made under another auditor's key, or tampered):",
    );
    out.push(
      ...indent(
        table(
          ["period", "token", "kind", "auditor", "tx"],
          r.undecryptable.map((u) => [u.period, u.tokenId?.toString() ?? "?", u.kind, u.auditorAddress, u.txHash]),
        ),
      ),
    );
  }
  return out.join("\n");
}

/** A Unix-millisecond period bound as ISO time (the raw number when out of Date's range). */
function msTime(ms: bigint): string {
  return ms <= 8_640_000_000_000_000n ? new Date(Number(ms)).toISOString() : `${ms} ms`;
}

function usageRows(lines: (UsageTotals & { providerId: string; namespace: string | null })[]): string[][] {
  return lines.map((l) => [
    l.namespace ?? l.providerId,
    l.calls.toString(),
    l.billableCalls.toString(),
    formatUsdc(l.amountMicro),
    formatUsdc(l.revenueMicro),
  ]);
}

const USAGE_HEADERS = ["namespace", "calls", "billable", "amount (USDC)", "calls paid (USDC)"];
const USAGE_RIGHT = new Set([1, 2, 3, 4]);

/** The provider's decrypted usage per batch and in total, and the records check when there is one. */
export function renderUsage(r: ProviderUsageReport, meta: { source: string; records?: { path: string; check: RecordsCheck } }): string {
  const out = [`account ${r.account}  (key matches the registered eERC public key)`, `source  ${meta.source}`];
  out.push(
    r.namespaces.length > 0
      ? `namespaces paying out to this account: ${r.namespaces.map((p) => `${p.namespace}${p.active ? "" : " (inactive)"}`).join(", ")}`
      : "namespaces paying out to this account: none",
  );
  out.push(`batches: ${r.batchesScanned} committed, ${r.batches.length} with lines for this account`);
  for (const b of r.batches) {
    out.push("", `batch ${b.batchId}  block ${b.blockNumber}  server ${b.server}`);
    out.push(`  period ${msTime(b.periodStart)} – ${msTime(b.periodEnd)}  tx ${b.txHash}`);
    out.push(...indent(table(USAGE_HEADERS, usageRows(b.lines), USAGE_RIGHT)));
  }
  for (const m of r.copyMismatches ?? []) {
    out.push(
      "",
      `ALERT batch ${m.batchId}  block ${m.blockNumber}  server ${m.server}: this account's copy of a line does not match ` +
        "the line's public commitment (the server sent different lines to different parties); it is left out",
    );
  }
  out.push("", "total");
  if (r.byProvider.length === 0) out.push("  no usage decrypts under this key");
  else {
    const all = { providerId: "all", namespace: "all", ...r.total };
    out.push(...indent(table(USAGE_HEADERS, usageRows([...r.byProvider, all]), USAGE_RIGHT)));
  }
  if (meta.records) {
    const c = meta.records.check;
    out.push(
      "",
      `records  ${meta.records.path}: ${c.records} records; ${c.verifiedRecords} in ${c.verifiedBatches} committed batch(es) checked against their Merkle roots and this account's lines` +
        (c.pendingRecords > 0 ? `; ${c.pendingRecords} not in a committed batch yet` : ""),
    );
    if (c.ok) out.push("records  OK: every checked record is committed and adds up to this account's lines");
    else {
      out.push(`records  MISMATCH (${c.mismatches.length}):`);
      out.push(...c.mismatches.map((m) => `  ${m.kind}: ${m.message}`));
    }
  }
  return out.join("\n");
}
