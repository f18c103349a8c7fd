import type { Address, Hex } from "viem";
import { atOrBefore, byChainPosition, type ChainPosition } from "../chain/position.js";
import type { Point } from "../eerc/curve.js";
import type { Logger } from "../log.js";
import type { Notifier } from "../notify/webhooks.js";
import { type SettlementSchedule, termAt } from "../revenue/schedule.js";
import type { ProviderId } from "../revenue/types.js";
import { type DecryptedLine, linesFormatVersion, type UsageLine } from "../usage/lines.js";
import { periodOf } from "../usage/period.js";
import type { BatchFact } from "./facts.js";

/** The first line format whose copies are tied together (a public commitment per line). */
const FIRST_CHECKED_FORMAT = 3n;

/** No cap: what `setServerProviders` takes for a cap that does not limit. */
export const NO_CAP = (1n << 64n) - 1n;

/** A `ServerProviderBound` event of the UsageLedger: a server's binding to one provider from this position on. */
export type ServerBindingFact = ChainPosition & {
  server: Address;
  providerId: ProviderId;
  bound: boolean;
  /** Most billable calls one batch of the server counts for the provider (NO_CAP: unlimited). */
  maxCallsPerBatch: bigint;
  /** Most billable calls the server's batches of one pricing period count for the provider (NO_CAP: unlimited). */
  maxCallsPerPeriod: bigint;
};

/**
 * What the operator checks of a batch's auditor copies (`decryptLinesFor`'s `verify`): each must be
 * the operator's line encrypted to an auditor key set at or before the batch's block.
 */
export function auditorCheck(
  facts: { auditorChanges: readonly { publicKey: Point; blockNumber: bigint }[] },
  batch: { blockNumber: bigint },
): { verify: { role: "auditor"; pks: Point[] }[] } {
  return {
    verify: [{ role: "auditor", pks: facts.auditorChanges.filter((a) => a.blockNumber <= batch.blockNumber).map((a) => a.publicKey) }],
  };
}

/** A batch with the lines its reader decrypted (the operator's or the auditor's copies). */
export type DecryptedBatch = BatchFact & { lines: readonly DecryptedLine[] };

/**
 * Why settlement did not count a line in full:
 * - `unbound`: the batch's server was not bound to the line's provider when the batch was committed;
 * - `capped`: the line reported more billable calls than its server's caps for the provider left;
 * - `copy-mismatch`: the reader's copy of the line does not match the line's public commitment;
 * - `unchecked-format`: the batch's lines are of a format before version 3, whose copies cannot be checked.
 */
export type LineAlertReason = "unbound" | "capped" | "copy-mismatch" | "unchecked-format";

export type LineAlert = ChainPosition & {
  reason: LineAlertReason;
  server: Address;
  batchId: Hex;
  providerId: ProviderId;
  /** The pricing period of the batch (YYYYMM or YYYYMMDD). */
  period: number;
  /** Billable calls the line reported. */
  billableCalls: bigint;
  /** Billable calls settlement counts (0 unless capped). */
  admittedCalls: bigint;
};

/** The pricing period of a batch: its period start under the settlement record in force then. */
export function batchPeriod(batch: Pick<BatchFact, "periodStart" | "blockNumber" | "logIndex">, schedule: SettlementSchedule): number {
  const inForce = termAt(schedule, batch.periodStart / 1000n, batch);
  return periodOf(Number(batch.periodStart), inForce.periodUnit);
}

/** The binding of (server, provider) in force at `at`: its latest event at or before it. */
function bindingAt(bindings: readonly ServerBindingFact[] | undefined, at: ChainPosition): ServerBindingFact | undefined {
  let found: ServerBindingFact | undefined;
  for (const b of bindings ?? []) {
    if (!atOrBefore(b, at)) break;
    found = b;
  }
  return found;
}

/** Server bindings by `server:provider` (lower case), each list in chain order: what `admitLines` looks a line's binding up in. */
export type BindingIndex = ReadonlyMap<string, readonly ServerBindingFact[]>;

/** The key of a (server, provider) pair in a `BindingIndex`. */
export const bindingKey = (b: Pick<ServerBindingFact, "server" | "providerId">): string =>
  `${b.server.toLowerCase()}:${b.providerId.toLowerCase()}`;

/** Bindings (in any order) as a `BindingIndex`; built once, it spares `admitLines` sorting them at every call. */
export function indexBindings(bindings: readonly ServerBindingFact[]): Map<string, ServerBindingFact[]> {
  const byPair = new Map<string, ServerBindingFact[]>();
  for (const b of [...bindings].sort(byChainPosition)) {
    const key = bindingKey(b);
    const list = byPair.get(key);
    if (list) list.push(b);
    else byPair.set(key, [b]);
  }
  return byPair;
}

/** Billable calls counted so far per `server:provider:period` (lower case), against the caps per period. */
export type AdmittedCalls = { get(key: string): bigint | undefined; set(key: string, calls: bigint): unknown };

/** A line cut to `admitted` billable calls: its amount and revenue in proportion, rounded down. */
function capLine(line: UsageLine, admitted: bigint): UsageLine {
  const scale = (v: bigint) => (line.billableCalls === 0n ? 0n : (v * admitted) / line.billableCalls);
  return { ...line, billableCalls: admitted, amountMicro: scale(line.amountMicro), revenueMicro: scale(line.revenueMicro) };
}

/**
 * The lines settlement counts, and what it did not count. Batches are taken in chain order; a
 * line of a batch is
 * - ignored when the batch's lines are of format version 1 or 2: their copies are not tied
 *   together, so nothing shows whether the parties read the same line. Bindings are newer than
 *   version 3, so a batch that could count (its server bound at its commit) was written after it;
 * - ignored when the reader's copy is flagged (`copyMismatch`): it disagrees with the line's
 *   public commitment or, as the operator and the auditor check, with the other's copy;
 * - ignored when the batch's server was not bound to the line's provider at the batch's position
 *   on chain (the latest `ServerProviderBound` for the pair at or before it). A server with no
 *   binding recorded is bound to nothing: its lines earn nothing until the owner binds it;
 * - otherwise counted up to the caps of that binding: at most `maxCallsPerBatch` billable calls,
 *   and at most `maxCallsPerPeriod` over all of the server's counted lines for the provider in the
 *   batch's pricing period (earlier batches first). A capped line keeps its calls; its billable
 *   calls are cut to what the caps leave, and its amount and revenue in proportion, rounded down.
 *   A line cut to 0 billable calls is dropped.
 * Every ignored or capped line is reported as an alert. The rule reads only chain facts and the
 * lines the operator and the auditor each check against the other's copy, so the operator (agent
 * and API) and the auditor count the same calls.
 *
 * `used` holds the calls counted so far per (server, provider, pricing period): empty for a
 * history from genesis, or what the earlier batches counted when `batches` continue it (all of
 * them later in chain order). It is updated in place, so admitting a history in consecutive
 * pieces counts what admitting it at once does.
 */
export function admitLines(
  batches: readonly DecryptedBatch[],
  bindings: readonly ServerBindingFact[] | BindingIndex,
  schedule: SettlementSchedule,
  used: AdmittedCalls = new Map(),
): { batches: DecryptedBatch[]; alerts: LineAlert[] } {
  const byPair = bindings instanceof Map ? bindings : indexBindings(bindings as readonly ServerBindingFact[]);
  const alerts: LineAlert[] = [];
  const admittedBatches: DecryptedBatch[] = [];
  for (const batch of [...batches].sort(byChainPosition)) {
    let period: number | undefined;
    const periodOfBatch = () => (period ??= batchPeriod(batch, schedule));
    const alert = (reason: LineAlertReason, line: UsageLine, providerId: ProviderId, admittedCalls: bigint) =>
      alerts.push({
        reason,
        server: batch.server,
        batchId: batch.batchId,
        providerId,
        period: periodOfBatch(),
        billableCalls: line.billableCalls,
        admittedCalls,
        blockNumber: batch.blockNumber,
        logIndex: batch.logIndex,
      });
    const server = batch.server.toLowerCase();
    const version = linesFormatVersion(batch.encryptedLines);
    const lines: UsageLine[] = [];
    for (const line of batch.lines) {
      const providerId = line.providerId.toLowerCase() as ProviderId;
      const { copyMismatch, ...plain } = line;
      if (version < FIRST_CHECKED_FORMAT) {
        alert("unchecked-format", line, providerId, 0n);
        continue;
      }
      if (copyMismatch) {
        alert("copy-mismatch", line, providerId, 0n);
        continue;
      }
      const pair = `${server}:${providerId}`;
      const binding = bindingAt(byPair.get(pair), batch);
      if (!binding?.bound) {
        alert("unbound", line, providerId, 0n);
        continue;
      }
      const usedKey = `${pair}:${periodOfBatch()}`;
      const usedBefore = used.get(usedKey) ?? 0n;
      const periodLeft = binding.maxCallsPerPeriod > usedBefore ? binding.maxCallsPerPeriod - usedBefore : 0n;
      let admitted = line.billableCalls;
      if (admitted > binding.maxCallsPerBatch) admitted = binding.maxCallsPerBatch;
      if (admitted > periodLeft) admitted = periodLeft;
      used.set(usedKey, usedBefore + admitted);
      if (admitted === line.billableCalls) {
        lines.push(plain);
        continue;
      }
      alert("capped", line, providerId, admitted);
      if (admitted > 0n) lines.push(capLine(plain, admitted));
    }
    admittedBatches.push({ ...batch, lines });
  }
  return { batches: admittedBatches, alerts };
}

/** One line per alert, for the agent's log: which batch and provider, never a count of calls (usage stays with the key holders). */
export function describeLineAlert(a: LineAlert): string {
  const where = `batch ${a.batchId} of server ${a.server} (block ${a.blockNumber})`;
  switch (a.reason) {
    case "unbound":
      return `${where}: its line for provider ${a.providerId} is ignored: the server was not bound to that provider`;
    case "capped":
      return `${where}: its line for provider ${a.providerId} reported more billable calls than the server's caps count (reconcile shows how many)`;
    case "copy-mismatch":
      return `${where}: a line's copy does not match its public commitment; it is ignored`;
    case "unchecked-format":
      return `${where}: its lines are of a format whose copies cannot be checked (before version 3); they are ignored`;
  }
}

/**
 * Reports the alerts not reported before (`reported` remembers them by batch): one ALERT log line
 * per alert, and one `usage.ignored` webhook per batch with how many lines each reason touched
 * (the batch, its server and block; never a provider or a count of calls).
 */
export function reportLineAlerts(alerts: readonly LineAlert[], out: { log: Logger; notify?: Notifier; reported: Set<string> }): void {
  const byBatch = new Map<string, LineAlert[]>();
  for (const a of alerts) {
    const key = `${a.server}:${a.batchId}`;
    if (out.reported.has(key)) continue;
    byBatch.set(key, [...(byBatch.get(key) ?? []), a]);
  }
  for (const [key, list] of byBatch) {
    out.reported.add(key);
    const first = list[0]!;
    for (const a of list)
      out.log.error(
        { alert: true, reason: a.reason, server: a.server, batchId: a.batchId, block: Number(a.blockNumber) },
        `ALERT ${describeLineAlert(a)}`,
      );
    const count = (reason: LineAlertReason) => list.filter((a) => a.reason === reason).length;
    out.notify?.notify(
      "usage.ignored",
      {
        server: first.server,
        batchId: first.batchId,
        blockNumber: first.blockNumber.toString(),
        unbound: count("unbound"),
        capped: count("capped"),
        copyMismatch: count("copy-mismatch"),
        uncheckedFormat: count("unchecked-format"),
      },
      `usage.ignored:${key}`,
    );
  }
}
