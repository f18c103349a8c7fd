import { randomUUID } from "node:crypto";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import type { McpServer, RegisteredTool, ToolCallback } from "@modelcontextprotocol/sdk/server/mcp.js";
import type { AnySchema, ZodRawShapeCompat } from "@modelcontextprotocol/sdk/server/zod-compat.js";
import type { CallToolResult, ToolAnnotations } from "@modelcontextprotocol/sdk/types.js";
import { type Address, getAddress, type Hex, isAddress } from "viem";
import { BaseError } from "../errors.js";
import { batchIdOf } from "../usage/batch.js";
import { type PeriodUnit, periodOf } from "../usage/period.js";
import { type CallOutcome, type CallPayment, type CallRecord, MAX_RECORD_STRING_BYTES } from "../usage/record.js";
import { isValidNamespace } from "../usage/registry.js";
import { renderMetrics } from "../util/prometheus.js";
import { InvalidPaymentPayloadError } from "../x402/errors.js";
import type { PaymentFacilitator } from "../x402/facilitator.js";
import { type ExactPayment, exactPaymentOf, paymentRequiredResult, X402_PAYMENT_RESPONSE_META } from "../x402/mcp.js";
import {
  acceptsRequirements,
  type PaymentTerms,
  paymentRequirementsFor,
  validatePaymentTerms,
  X402_VERSION,
} from "../x402/requirements.js";
import { type SettlementOutcome, settlementOutcome } from "../x402/settlement.js";
import type { PricingSource } from "./pricing.js";
import { type CloseLine, type SettleLine, Spool, SpoolCorruptError, type SpoolFsync } from "./spool.js";
import { BatchIdConflictError, type BatchSubmitter } from "./submit.js";

/** Limit on the UTF-8 length of a recorded tool (route) name. */
const MAX_TOOL_BYTES = MAX_RECORD_STRING_BYTES;

/**
 * The tool name FlowMCP derives from a route and its schema namespace: both in snake_case,
 * joined by "_", cut to 63 characters, with ":" removed and "-" and "/" turned into "_".
 * It can lose the namespace, which is why the meter never reads the provider back out of it.
 */
export function flowMcpToolName(route: string, namespace: string): string {
  const snake = (s: string) => s.replace(/([a-z0-9])([A-Z])/g, "$1_$2").toLowerCase();
  return `${snake(route)}_${snake(namespace)}`.substring(0, 63).replaceAll(":", "").replaceAll("-", "_").replaceAll("/", "_");
}

/** A closed batch of call records, handed to `onBatch` for submission. */
export type ClosedBatch = {
  server: Address;
  /** Per-server, 1, 2, 3, … (or from `startSequence`) in closing order; kept across restarts. */
  sequence: number;
  batchId: Hex;
  /** Pricing period of every record in the batch (YYYYMM or YYYYMMDD, UTC). */
  period: number;
  /** Earliest `startedAt` and latest `endedAt` of the records (Unix ms): the batch's period on chain. */
  periodStart: number;
  periodEnd: number;
  closedAt: number;
  records: CallRecord[];
};

/**
 * What `onBatch` resolves with once the batch is committed. Submission must be idempotent: a
 * batch can be handed over again after a restart, and "already committed" counts as success.
 */
// biome-ignore lint/suspicious/noConfusingVoidType: a submitter callback may return nothing
export type BatchSubmission = { txHash?: string | null } | void;

/** The size at which a batch closes whatever its age: a safety valve, far above a time window's calls. */
export const DEFAULT_MAX_RECORDS = 100_000;

export type MeterOptions = {
  spoolDir: string;
  /** The server's signing address; names the spool file and goes into every batch id. */
  serverAddress: Address;
  pricing: PricingSource;
  /**
   * A batch closes when its first record is `maxAgeMs` old. Closing on time keeps a batch from
   * saying how many records it holds: a provider reading its own line would otherwise learn the
   * others' calls in a batch closed at a known size. `maxRecords` (default 100,000) is only a
   * safety valve; a batch it closes says it holds that many.
   */
  batch: { maxAgeMs: number; maxRecords?: number };
  onBatch?: (closed: ClosedBatch) => Promise<BatchSubmission>;
  /**
   * The UsageLedger submitter (`createBatchSubmitter`), instead of `onBatch`: it commits each closed
   * batch, and `recover` first checks with it that the id of the next batch is still free on
   * chain, so a meter whose spool was lost (or replaced by an older copy) refuses to start
   * (SpoolBehindLedgerError) rather than number batches under ids already committed.
   */
  submitter?: Pick<BatchSubmitter, "server" | "onBatch" | "committedBatchHash">;
  /**
   * The sequence of the first batch when the spool holds none (default 1). After a spool is lost,
   * the sequence after the server's last committed batch lets the meter go on under the same key
   * (docs/operations.md, Recovering a lost spool). A spool that holds batches goes on from its own
   * numbering; a `startSequence` beyond it is refused.
   */
  startSequence?: number;
  /** Milliseconds since the epoch (default `Date.now`; fractions are dropped). */
  clock?: () => number;
  /** Pricing period (default "month"): free quotas restart and batches never span two periods. */
  period?: PeriodUnit;
  /** "batch" (default): fsync when a batch closes; "always": also after every call record. */
  fsync?: SpoolFsync;
  /** Backoff between failed `onBatch` attempts (default 1 s doubling to 60 s). */
  retry?: { minMs: number; maxMs: number };
  /** Called when an `onBatch` attempt fails; the batch is retried. */
  onSubmitError?: (error: unknown, batch: ClosedBatch) => void;
  /**
   * Settles the paid calls `recover` finds pending in the spool, right away. Without it they are
   * settled by the facilitator of the first paid tool registered, from then on.
   */
  facilitator?: PaymentFacilitator;
};

/**
 * Charging a tool per call with x402: the terms (chain, USDC, revenue pool, EIP-712 domain,
 * surcharge) and the facilitator that verifies and settles the payments.
 */
export type ToolPayment = PaymentTerms & { facilitator: PaymentFacilitator };

export type MeteredToolSpec<InputArgs extends undefined | ZodRawShapeCompat | AnySchema> = {
  /** FlowMCP schema namespace: the provider the call is attributed to. */
  namespace: string;
  /** FlowMCP route name: recorded as the tool. */
  route: string;
  /** MCP tool name (default: FlowMCP's name for the route, see `flowMcpToolName`). */
  name?: string;
  title?: string;
  description: string;
  inputSchema?: InputArgs;
  outputSchema?: ZodRawShapeCompat | AnySchema;
  annotations?: ToolAnnotations;
  /** Charge each call with x402 (see `instrument`). */
  payment?: ToolPayment;
};

export type RecoveryReport = {
  /** Call records in the spool. */
  calls: number;
  /** Records after the last close: the open batch. */
  openRecords: number;
  closedBatches: number;
  /** Closed batches without a `submitted` line, handed to `onBatch` again. */
  unsubmitted: number[];
  nextSequence: number;
  /** Bytes of a torn last line that were cut off. */
  tornBytes: number;
  /** Paid calls whose settlement had not finished, retried once a paid tool is registered. */
  pendingSettlements: number;
};

/**
 * The spool is behind the chain: the id the next batch would take is already committed for this
 * server, so the spool is new, was deleted, or is an older copy. Starting would put new usage
 * under committed ids, where it never reaches the chain.
 */
export class SpoolBehindLedgerError extends BaseError {
  readonly code = "SPOOL_BEHIND_LEDGER";
  constructor(
    readonly server: Address,
    readonly spoolPath: string,
    /** The sequence the spool would number the next batch with. */
    readonly nextSequence: number,
    /** The last sequence found committed, counting on from `nextSequence`. */
    readonly lastCommitted: number,
  ) {
    super(
      `server ${server} already has batches committed on chain up to sequence ${lastCommitted}, but its spool ${spoolPath} ` +
        `would number the next batch ${nextSequence}: the spool is new, was deleted or is an older copy. ` +
        `Restore the spool, or start with a new server key, or set startSequence: ${lastCommitted + 1} (after the last committed batch)`,
    );
  }
}

/** `startSequence` lies beyond the batches the spool already holds. */
export class StartSequenceError extends BaseError {
  readonly code = "START_SEQUENCE_AHEAD_OF_SPOOL";
  constructor(
    readonly spoolPath: string,
    readonly startSequence: number,
    readonly nextSequence: number,
  ) {
    super(
      `startSequence ${startSequence} is beyond the spool ${spoolPath}, whose batches go on at ${nextSequence}: ` +
        "startSequence applies to a spool that holds no batch",
    );
  }
}

export class MeterNotRecoveredError extends BaseError {
  readonly code = "METER_NOT_RECOVERED";
  constructor() {
    super("await meter.recover() before serving tool calls");
  }
}

/** The namespace (provider) and route of an MCP tool name, or undefined for a tool that is not a provider's. */
export type ToolAttribution = (toolName: string) => { namespace: string; route: string } | undefined;

/**
 * Attribution of FlowMCP schemas' tools: each route's tool name as FlowMCP derives it. Two
 * routes whose names collide (FlowMCP cuts names at 63 characters) cannot be told apart: refused.
 */
export function flowMcpAttribution(schemas: readonly { namespace: string; routes: Readonly<Record<string, unknown>> }[]): ToolAttribution {
  const byName = new Map<string, { namespace: string; route: string }>();
  for (const { namespace, routes } of schemas) {
    for (const route of Object.keys(routes)) {
      const name = flowMcpToolName(route, namespace);
      const other = byName.get(name);
      if (other) throw new TypeError(`${namespace}.${route} and ${other.namespace}.${other.route} share the tool name "${name}"`);
      byName.set(name, { namespace, route });
    }
  }
  return (toolName) => byName.get(toolName);
}

/** FlowMCP's tools report a failed upstream call as a text result starting "Error:", without `isError`. */
export const flowMcpFailed = (result: CallToolResult): boolean =>
  result?.isError === true || (result?.content?.[0]?.type === "text" && result.content[0].text.startsWith("Error:"));

export class UnattributedToolError extends BaseError {
  readonly code = "UNATTRIBUTED_TOOL";
  constructor(readonly toolName: string) {
    super(`tool "${toolName}" is not attributed to a provider: the meter cannot record its calls`);
  }
}

export class MeterClosedError extends BaseError {
  readonly code = "METER_CLOSED";
  constructor() {
    super("the meter is closed");
  }
}

function jsonBytes(value: unknown): number {
  try {
    const s = JSON.stringify(value);
    return s === undefined ? 0 : Buffer.byteLength(s, "utf8");
  } catch {
    return 0;
  }
}

/** The result the MCP SDK sends for a handler that threw. */
const thrownResult = (error: unknown): CallToolResult => ({
  content: [{ type: "text", text: error instanceof Error ? error.message : String(error) }],
  isError: true,
});

type OpenBatch = { period: number; openedAt: number; records: CallRecord[] };

type Invocation = { startedAt: number; t0: number; result?: CallToolResult; error?: unknown; outcome: CallOutcome };

export class Meter {
  readonly server: Address;
  readonly spoolPath: string;
  private readonly pricing: PricingSource;
  private readonly maxRecords: number;
  private readonly maxAgeMs: number;
  private readonly onBatch?: (closed: ClosedBatch) => Promise<BatchSubmission>;
  private readonly clock: () => number;
  private readonly periodUnit: PeriodUnit;
  private readonly fsyncMode: SpoolFsync;
  private readonly retry: { minMs: number; maxMs: number };
  private readonly onSubmitError?: (error: unknown, batch: ClosedBatch) => void;
  private readonly committedBatchHash?: (batchId: Hex) => Promise<Hex | null>;
  private readonly startSequence: number;

  private spool: Spool | null = null;
  /** Set when a batch's id is committed on chain with other content: delivery stops until a restart. */
  private conflict: BatchIdConflictError | null = null;
  private closed = false;
  private nextSequence = 1;
  private open: OpenBatch | null = null;
  private period = 0;
  /** Billable calls per provider in `period`. */
  private readonly counts = new Map<string, number>();
  /** Closed batches not yet submitted, by sequence. */
  private readonly pending = new Map<number, ClosedBatch>();
  private ageTimer: NodeJS.Timeout | null = null;
  private retryTimer: NodeJS.Timeout | null = null;
  private failures = 0;
  private delivering: Promise<void> | null = null;
  /** Paid calls whose settlement has not finished, by eventId. */
  private readonly settling = new Map<string, SettleLine>();
  /** Authorizations accepted (payer:nonce → validBefore, Unix s): one authorization pays one call. */
  private readonly authorizations = new Map<string, bigint>();
  private settler: PaymentFacilitator | null = null;
  private settleTimer: NodeJS.Timeout | null = null;
  private settleFailures = 0;
  private settlingNow: Promise<void> | null = null;

  constructor(options: MeterOptions) {
    if (!isAddress(options.serverAddress)) throw new TypeError(`serverAddress is not an address: ${options.serverAddress}`);
    const { maxRecords = DEFAULT_MAX_RECORDS, maxAgeMs } = options.batch;
    if (!Number.isSafeInteger(maxRecords) || maxRecords < 1) throw new RangeError("batch.maxRecords must be a positive integer");
    if (!(maxAgeMs > 0)) throw new RangeError("batch.maxAgeMs must be positive");
    this.server = getAddress(options.serverAddress);
    this.spoolPath = join(options.spoolDir, `${this.server.toLowerCase()}.jsonl`);
    this.pricing = options.pricing;
    this.maxRecords = maxRecords;
    this.maxAgeMs = maxAgeMs;
    if (options.submitter) {
      if (options.onBatch) throw new TypeError("give onBatch or submitter, not both");
      if (getAddress(options.submitter.server) !== this.server) {
        throw new TypeError(`the submitter commits for ${options.submitter.server}, not for the meter's server ${this.server}`);
      }
      const submitter = options.submitter;
      this.onBatch = (closed) => submitter.onBatch(closed);
      this.committedBatchHash = (batchId) => submitter.committedBatchHash(batchId);
    } else {
      this.onBatch = options.onBatch;
    }
    const { startSequence = 1 } = options;
    if (!Number.isSafeInteger(startSequence) || startSequence < 1) throw new RangeError("startSequence must be a positive integer");
    this.startSequence = startSequence;
    const clock = options.clock ?? Date.now;
    this.clock = () => Math.floor(clock());
    this.periodUnit = options.period ?? "month";
    this.fsyncMode = options.fsync ?? "batch";
    this.retry = options.retry ?? { minMs: 1_000, maxMs: 60_000 };
    this.onSubmitError = options.onSubmitError;
    this.settler = options.facilitator ?? null;
    mkdirSync(options.spoolDir, { recursive: true });
  }

  /**
   * Opens the spool and replays it: records after the last close form the open batch, the
   * period's billable counts are rebuilt, and closed batches without a `submitted` line are
   * handed to `onBatch` again (in sequence order). Call once, before serving tool calls.
   */
  async recover(): Promise<RecoveryReport> {
    if (this.spool) throw new Error("meter already recovered");
    const { spool, contents } = Spool.open(this.spoolPath, { fsync: this.fsyncMode });
    // A refused recover (a chain read failed, the spool is behind the ledger) may be retried: replay from scratch.
    this.period = 0;
    this.counts.clear();
    this.settling.clear();
    this.authorizations.clear();
    this.pending.clear();
    this.nextSequence = 1;
    this.open = null;
    const corrupt = (reason: string) => {
      spool.close();
      return new SpoolCorruptError(this.spoolPath, -1, reason);
    };
    let calls = 0;
    let since: { period: number; record: CallRecord }[] = [];
    const closedAll = new Map<number, ClosedBatch>();
    // The first close line sets the numbering (1, or the startSequence the spool was begun with).
    let closes = 0;
    for (const line of contents.lines) {
      if (line.type === "settle") {
        this.settling.set(line.record.eventId, line);
        this.rememberAuthorization(
          line.record.payment,
          BigInt((line.payload.payload as { authorization?: { validBefore?: string } }).authorization?.validBefore ?? "0"),
        );
      } else if (line.type === "call") {
        this.settling.delete(line.record.eventId);
        calls++;
        since.push({ period: line.period, record: line.record });
        if (line.period > this.period) {
          this.period = line.period;
          this.counts.clear();
        }
        if (line.record.billable && line.period === this.period) {
          this.counts.set(line.record.provider, (this.counts.get(line.record.provider) ?? 0) + 1);
        }
      } else if (line.type === "close") {
        if (closes === 0 && line.sequence >= 1) this.nextSequence = line.sequence;
        if (line.sequence !== this.nextSequence) throw corrupt(`close of sequence ${line.sequence}, expected ${this.nextSequence}`);
        closes++;
        if (line.count !== since.length) throw corrupt(`batch ${line.sequence} closes ${line.count} records, spool has ${since.length}`);
        closedAll.set(
          line.sequence,
          this.closedBatch(
            line,
            since.map((s) => s.record),
          ),
        );
        this.nextSequence++;
        since = [];
      } else if (line.type === "submitted") {
        if (!closedAll.has(line.sequence)) throw corrupt(`submitted line for unknown batch ${line.sequence}`);
        closedAll.delete(line.sequence);
      }
    }
    if (closes === 0) this.nextSequence = this.startSequence;
    else if (this.startSequence > this.nextSequence) {
      spool.close();
      throw new StartSequenceError(this.spoolPath, this.startSequence, this.nextSequence);
    }
    try {
      await this.checkNextIdFree();
    } catch (err) {
      spool.close();
      throw err;
    }
    for (const [sequence, batch] of closedAll) this.pending.set(sequence, batch);
    if (since.length > 0) {
      const first = since[0].record;
      this.open = { period: since[since.length - 1].period, openedAt: first.endedAt, records: since.map((s) => s.record) };
      this.armAgeTimer(Math.max(0, this.maxAgeMs - (this.clock() - first.endedAt)));
    }
    this.spool = spool;
    const report: RecoveryReport = {
      calls,
      openRecords: since.length,
      closedBatches: closes,
      unsubmitted: [...this.pending.keys()],
      nextSequence: this.nextSequence,
      tornBytes: contents.tornBytes,
      pendingSettlements: this.settling.size,
    };
    this.kick();
    this.kickSettlements(0);
    return report;
  }

  /**
   * With a submitter: the id the next batch takes must be free on chain. When it is taken, the
   * batches committed after it are counted (doubling, then halving: a few reads) to name the
   * sequence to start after.
   */
  private async checkNextIdFree(): Promise<void> {
    const read = this.committedBatchHash;
    if (!read) return;
    const committed = async (sequence: number) => (await read(batchIdOf(this.server, sequence))) !== null;
    const next = this.nextSequence;
    if (!(await committed(next))) return;
    let last = next;
    let step = 1;
    while (await committed(last + step)) {
      last += step;
      step *= 2;
    }
    // `last` is committed and `last + step` is not: narrow down between them.
    let free = last + step;
    while (free - last > 1) {
      const mid = last + Math.floor((free - last) / 2);
      if (await committed(mid)) last = mid;
      else free = mid;
    }
    throw new SpoolBehindLedgerError(this.server, this.spoolPath, next, last);
  }

  /**
   * Registers `handler` as a tool on `mcpServer`, metered: every call appends one record to the
   * spool before its result is returned. A handler that throws is recorded as "exception" and
   * the error rethrown for the SDK to turn into an error result.
   */
  registerTool<InputArgs extends undefined | ZodRawShapeCompat | AnySchema = undefined>(
    mcpServer: McpServer,
    spec: MeteredToolSpec<InputArgs>,
    handler: ToolCallback<InputArgs>,
  ): RegisteredTool {
    const name = spec.name ?? flowMcpToolName(spec.route, spec.namespace);
    const config = {
      title: spec.title,
      description: spec.description,
      inputSchema: spec.inputSchema,
      outputSchema: spec.outputSchema,
      annotations: spec.annotations,
    };
    return mcpServer.registerTool(name, config, this.metered(name, spec, handler, undefined, spec.payment) as ToolCallback<InputArgs>);
  }

  /**
   * Meters every tool registered on `mcpServer` from now on, through `tool` or `registerTool`,
   * as FlowMCP's `activateServerTools` registers them: `attribution` names the provider
   * (namespace) and route of each tool name (see `flowMcpAttribution`). A tool it cannot
   * attribute, or of a namespace the pricing does not know, is refused at registration.
   * `failed` tells a failed call from its result (default: `isError`; FlowMCP's tools answer a
   * failure with text, see `flowMcpFailed`): a failed call is recorded and not billed.
   *
   * With `payment`, every call whose price (plus surcharge) is not 0 is paid with x402: a call
   * without a valid payment in `_meta["x402/payment"]` gets a payment-required result, is recorded
   * unpaid or refused and not billed; a verified payment runs the tool, is settled, and the call is
   * recorded with the settlement's transaction and billed. A failed call's payment is not settled.
   * A settlement that does not finish is kept in the spool and retried until it is settled or refused.
   */
  instrument(
    mcpServer: McpServer,
    options: { attribution: ToolAttribution; failed?: (result: CallToolResult) => boolean; payment?: ToolPayment },
  ): McpServer {
    const wrap =
      (register: (...args: unknown[]) => RegisteredTool) =>
      (...args: unknown[]): RegisteredTool => {
        const name = args[0];
        const handler = args.at(-1);
        if (typeof name !== "string" || typeof handler !== "function") return register(...args);
        const attributed = options.attribution(name);
        if (!attributed) throw new UnattributedToolError(name);
        const metered = this.metered(name, attributed, handler, options.failed, options.payment);
        return register(...args.slice(0, -1), metered);
      };
    const server = mcpServer as unknown as Record<"tool" | "registerTool", (...args: unknown[]) => RegisteredTool>;
    server.tool = wrap(server.tool.bind(mcpServer));
    server.registerTool = wrap(server.registerTool.bind(mcpServer));
    return mcpServer;
  }

  /** `handler`, recording each call as one of `namespace`'s calls of `route`; with `payment`, charged per call. */
  private metered(
    name: string,
    { namespace: provider, route: tool }: { namespace: string; route: string },
    handler: unknown,
    failed: (result: CallToolResult) => boolean = (result) => result?.isError === true,
    payment?: ToolPayment,
  ): (...params: unknown[]) => Promise<CallToolResult> {
    if (!isValidNamespace(provider)) throw new TypeError(`namespace "${provider}" is not 1 to 64 ASCII letters or digits`);
    if (tool.length === 0 || Buffer.byteLength(tool, "utf8") > MAX_TOOL_BYTES)
      throw new TypeError(`route must be 1 to ${MAX_TOOL_BYTES} bytes`);
    this.pricing.priceFor(provider, 0);
    const terms = payment ? validatePaymentTerms(payment) : undefined;
    if (payment) this.adoptSettler(payment.facilitator);
    const requestFraming = Buffer.byteLength(`{"name":${JSON.stringify(name)},"arguments":}`, "utf8");
    const call = handler as (...params: unknown[]) => CallToolResult | Promise<CallToolResult>;
    // The SDK passes (arguments, extra) to a tool with an input schema, (extra) to one without.
    const requestBytes = (params: unknown[]) => requestFraming + (params.length >= 2 ? jsonBytes(params[0]) : 2);
    const invoke = async (params: unknown[]): Promise<Invocation> => {
      const startedAt = this.clock();
      const t0 = performance.now();
      try {
        const result = await call(...params);
        return { startedAt, t0, result, outcome: failed(result) ? "tool_error" : "ok" };
      } catch (error) {
        return { startedAt, t0, error, outcome: "exception" };
      }
    };
    const recordOf = (ran: Invocation, params: unknown[], payment?: CallPayment): CallRecord => ({
      eventId: randomUUID(),
      provider,
      tool,
      startedAt: ran.startedAt,
      endedAt: Math.max(ran.startedAt, this.clock()),
      durationMs: Math.round(performance.now() - ran.t0),
      outcome: ran.outcome,
      requestBytes: requestBytes(params),
      responseBytes: jsonBytes(ran.outcome === "exception" ? thrownResult(ran.error) : ran.result),
      billable: ran.outcome === "ok" && payment === undefined,
      priceMicro: 0n,
      ...(payment ? { payment } : {}),
    });
    const answer = (ran: Invocation): CallToolResult => {
      if (ran.outcome === "exception") throw ran.error;
      return ran.result as CallToolResult;
    };
    const unpaid = async (params: unknown[]): Promise<CallToolResult> => {
      const ran = await invoke(params);
      this.record(recordOf(ran, params));
      return answer(ran);
    };
    if (!terms || !payment) return (...params) => unpaid(params);
    const facilitator = payment.facilitator;

    return async (...params: unknown[]): Promise<CallToolResult> => {
      const priceMicro = this.quote(provider);
      const requirements = paymentRequirementsFor(terms, priceMicro);
      if (!requirements) return unpaid(params);
      const amountMicro = BigInt(requirements.amount);
      const required = (error: string) =>
        paymentRequiredResult({
          x402Version: X402_VERSION,
          error,
          resource: { url: `mcp://tool/${name}`, description: `${provider} ${tool}` },
          accepts: [requirements],
        });
      const refuse = (status: "unpaid" | "refused", paid: ExactPayment | undefined, error: string, startedAt: number, t0: number) => {
        const result = required(error);
        const ran: Invocation = { startedAt, t0, result, outcome: "tool_error" };
        const { from, nonce } = paid?.authorization ?? { from: null, nonce: null };
        this.record(recordOf(ran, params, { payer: from, amountMicro, nonce, txHash: null, status }));
        return result;
      };
      const startedAt = this.clock();
      const t0 = performance.now();
      const extra = params.at(-1) as { _meta?: Record<string, unknown> } | undefined;
      let paid: ExactPayment | undefined;
      try {
        paid = exactPaymentOf(extra?._meta);
      } catch (err) {
        if (err instanceof InvalidPaymentPayloadError) return refuse("refused", undefined, err.message, startedAt, t0);
        throw err;
      }
      if (!paid) return refuse("unpaid", undefined, "payment required", startedAt, t0);
      if (!acceptsRequirements(paid.payload.accepted, requirements)) {
        return refuse("refused", paid, "the payment accepts other requirements than this call's", startedAt, t0);
      }
      const key = `${paid.authorization.from}:${paid.authorization.nonce}`;
      if (this.authorizations.has(key)) return refuse("refused", paid, "authorization already presented", startedAt, t0);
      let reason: string | undefined;
      try {
        const verified = await facilitator.verify(paid.payload, requirements);
        if (!verified.isValid) reason = verified.invalidReason ?? "payment invalid";
      } catch (err) {
        reason = `verification failed: ${err instanceof Error ? err.message : String(err)}`;
      }
      // Checked again after the await: the same authorization may have been presented meanwhile.
      if (reason === undefined && this.authorizations.has(key)) reason = "authorization already presented";
      if (reason !== undefined) return refuse("refused", paid, reason, startedAt, t0);
      this.rememberAuthorization({ payer: paid.authorization.from, nonce: paid.authorization.nonce }, paid.authorization.validBefore);

      const ran = await invoke(params);
      const { from: payer, nonce } = paid.authorization;
      if (ran.outcome !== "ok") {
        // Not charged for a failed call: the authorization is never settled.
        this.record(recordOf(ran, params, { payer, amountMicro, nonce, txHash: null, status: "unpaid" }));
        return answer(ran);
      }
      const pending = recordOf(ran, params, { payer, amountMicro, nonce, txHash: null, status: "settle_pending" });
      const line: SettleLine = { type: "settle", record: pending, priceMicro, requirements, payload: paid.payload };
      this.appendSettle(line);
      const outcome = await this.settleOnce(line, facilitator);
      const network = requirements.network;
      if (outcome.status === "refused") return required(`settlement failed: ${outcome.reason}`);
      const response =
        outcome.status === "settled"
          ? { success: true, transaction: outcome.txHash, network, payer }
          : { success: false, errorReason: "settlement_pending", transaction: "", network, payer };
      const result = ran.result as CallToolResult;
      return { ...result, _meta: { ...result._meta, [X402_PAYMENT_RESPONSE_META]: response } };
    };
  }

  /** The price of `provider`'s next billable call, as `record` would price it now. */
  private quote(provider: string): bigint {
    const period = Math.max(this.period, periodOf(this.clock(), this.periodUnit));
    const index = period === this.period ? (this.counts.get(provider) ?? 0) : 0;
    return this.pricing.priceFor(provider, index, period);
  }

  private rememberAuthorization(payment: Pick<CallPayment, "payer" | "nonce"> | undefined, validBefore: bigint): void {
    if (!payment?.payer || !payment.nonce) return;
    const now = BigInt(Math.floor(this.clock() / 1000));
    for (const [key, until] of this.authorizations) if (until < now) this.authorizations.delete(key);
    this.authorizations.set(`${payment.payer}:${payment.nonce}`, validBefore);
  }

  private appendSettle(line: SettleLine): void {
    if (!this.spool) throw new MeterNotRecoveredError();
    if (this.closed) throw new MeterClosedError();
    this.spool.append(line);
    this.settling.set(line.record.eventId, line);
  }

  /** One settlement attempt; a settled or refused payment writes the call's record and leaves the pending set. */
  private async settleOnce(line: SettleLine, facilitator: PaymentFacilitator): Promise<SettlementOutcome> {
    let outcome: SettlementOutcome;
    try {
      outcome = settlementOutcome({ response: await facilitator.settle(line.payload, line.requirements) });
    } catch (error) {
      outcome = settlementOutcome({ error });
    }
    if (!this.settling.has(line.record.eventId) || this.closed) return outcome;
    const payment = line.record.payment!;
    if (outcome.status === "settled") {
      this.settling.delete(line.record.eventId);
      this.record({ ...line.record, billable: true, payment: { ...payment, txHash: outcome.txHash, status: "settled" } }, line.priceMicro);
      this.settleFailures = 0;
    } else if (outcome.status === "refused") {
      this.settling.delete(line.record.eventId);
      this.record({ ...line.record, payment: { ...payment, status: "refused" } });
    } else {
      this.settleFailures++;
      this.kickSettlements();
    }
    return outcome;
  }

  private adoptSettler(facilitator: PaymentFacilitator): void {
    if (this.settler) return;
    this.settler = facilitator;
    this.kickSettlements(0);
  }

  /** Schedules a retry of the pending settlements (after the backoff, or `delayMs`). */
  private kickSettlements(delayMs?: number): void {
    if (this.settleTimer || this.closed || !this.spool || !this.settler || this.settling.size === 0) return;
    const delay = delayMs ?? Math.min(this.retry.maxMs, this.retry.minMs * 2 ** Math.max(0, this.settleFailures - 1));
    this.settleTimer = setTimeout(() => {
      this.settleTimer = null;
      void this.settlePending();
    }, delay);
    this.settleTimer.unref();
  }

  /**
   * Retries every pending settlement now, one at a time, and waits for them; what stays pending
   * is retried later with backoff. Needs a paid tool registered (its facilitator settles).
   */
  async settlePending(): Promise<void> {
    if (this.settlingNow) return this.settlingNow;
    const settler = this.settler;
    if (!settler || !this.spool || this.closed) return;
    this.settlingNow = (async () => {
      for (const line of [...this.settling.values()]) {
        if (this.closed) break;
        await this.settleOnce(line, settler);
      }
    })().finally(() => {
      this.settlingNow = null;
    });
    return this.settlingNow;
  }

  /** Paid calls whose settlement has not finished (records with payment "settle_pending"). */
  pendingSettlements(): CallRecord[] {
    return [...this.settling.values()].map((l) => l.record);
  }

  /** Prices, appends and batches one record. Synchronous: one write on the hot path. */
  private record(record: CallRecord, quotedPrice?: bigint): void {
    const spool = this.spool;
    if (!spool) throw new MeterNotRecoveredError();
    if (this.closed) throw new MeterClosedError();
    const now = record.endedAt;
    if (this.open && now - this.open.openedAt >= this.maxAgeMs) this.closeOpenBatch();
    const period = Math.max(this.period, periodOf(now, this.periodUnit));
    if (this.open && this.open.period !== period) this.closeOpenBatch();
    if (period !== this.period) {
      this.period = period;
      this.counts.clear();
    }
    if (record.billable) {
      const index = this.counts.get(record.provider) ?? 0;
      // A paid call is billed the price it was paid for.
      record.priceMicro = quotedPrice ?? this.pricing.priceFor(record.provider, index, period);
      spool.append({ type: "call", period, record });
      this.counts.set(record.provider, index + 1);
    } else {
      spool.append({ type: "call", period, record });
    }
    if (this.open) this.open.records.push(record);
    else {
      this.open = { period, openedAt: now, records: [record] };
      this.armAgeTimer(this.maxAgeMs);
    }
    if (this.open.records.length >= this.maxRecords) this.closeOpenBatch();
  }

  private armAgeTimer(ms: number): void {
    if (this.ageTimer) clearTimeout(this.ageTimer);
    this.ageTimer = setTimeout(() => {
      this.ageTimer = null;
      if (this.spool && !this.closed) this.closeOpenBatch();
    }, ms);
    this.ageTimer.unref();
  }

  private closedBatch(line: CloseLine, records: CallRecord[]): ClosedBatch {
    let periodStart = records[0].startedAt;
    let periodEnd = records[0].endedAt;
    for (const r of records) {
      if (r.startedAt < periodStart) periodStart = r.startedAt;
      if (r.endedAt > periodEnd) periodEnd = r.endedAt;
    }
    return {
      server: this.server,
      sequence: line.sequence,
      batchId: line.batchId as Hex,
      period: line.period,
      periodStart,
      periodEnd,
      closedAt: line.closedAt,
      records,
    };
  }

  /** Writes the close line (fsync and submission follow off the call path). */
  private closeOpenBatch(): void {
    if (this.ageTimer) {
      clearTimeout(this.ageTimer);
      this.ageTimer = null;
    }
    const open = this.open;
    if (!open || !this.spool) return;
    const sequence = this.nextSequence;
    const line: CloseLine = {
      type: "close",
      sequence,
      batchId: batchIdOf(this.server, sequence),
      period: open.period,
      count: open.records.length,
      closedAt: this.clock(),
    };
    this.spool.append(line);
    this.nextSequence++;
    this.open = null;
    this.pending.set(sequence, this.closedBatch(line, open.records));
    this.kick();
  }

  private kick(): void {
    if (this.delivering || this.closed || this.conflict || !this.spool || this.pending.size === 0) return;
    this.delivering = this.deliver().finally(() => {
      this.delivering = null;
    });
  }

  private async deliver(): Promise<void> {
    const spool = this.spool!;
    await spool.sync();
    if (!this.onBatch) return;
    while (!this.closed && this.pending.size > 0) {
      const batch = this.pending.get(Math.min(...this.pending.keys()))!;
      try {
        await spool.sync();
        const submission = await this.onBatch(batch);
        this.failures = 0;
        if (this.pending.has(batch.sequence) && !this.closed) this.markSubmitted(batch.sequence, submission?.txHash ?? null);
      } catch (err) {
        this.failures++;
        this.onSubmitError?.(err, batch);
        if (err instanceof BatchIdConflictError) {
          // Retrying cannot help: the batch stays pending, and so do the batches after it.
          this.conflict = err;
          return;
        }
        const delay = Math.min(this.retry.maxMs, this.retry.minMs * 2 ** (this.failures - 1));
        this.retryTimer = setTimeout(() => {
          this.retryTimer = null;
          this.kick();
        }, delay);
        this.retryTimer.unref();
        return;
      }
    }
  }

  /** Records that batch `sequence` is committed (for submitters that run outside `onBatch`). */
  markSubmitted(sequence: number, txHash: string | null): void {
    if (!this.spool) throw new MeterNotRecoveredError();
    if (!this.pending.has(sequence)) throw new Error(`batch ${sequence} is not pending`);
    this.spool.append({ type: "submitted", sequence, txHash, at: this.clock() });
    this.pending.delete(sequence);
  }

  /** Why delivery stopped: a batch id committed on chain with other content (null while delivering normally). */
  get submissionConflict(): BatchIdConflictError | null {
    return this.conflict;
  }

  /** Closed batches not yet submitted, in sequence order. */
  pendingBatches(): ClosedBatch[] {
    return [...this.pending.values()].sort((a, b) => a.sequence - b.sequence);
  }

  /**
   * Prometheus text for the host's /metrics: the spool's backlog and its delivery (counts only;
   * what a call earned stays in the spool).
   */
  metrics(): string {
    const pending = [...this.pending.values()];
    const gauge = (name: string, help: string, value: number) => ({ name, help, type: "gauge" as const, samples: [{ value }] });
    return renderMetrics([
      gauge(
        "backendshield_meter_open_records",
        "calls recorded in the open batch, not yet in a closed batch",
        this.open?.records.length ?? 0,
      ),
      gauge("backendshield_meter_unsubmitted_batches", "closed batches not yet committed on chain", pending.length),
      gauge(
        "backendshield_meter_unsubmitted_records",
        "calls in closed batches not yet committed on chain",
        pending.reduce((n, b) => n + b.records.length, 0),
      ),
      gauge("backendshield_meter_submit_failures", "failed submissions in a row (0 once a batch goes through)", this.failures),
      gauge("backendshield_meter_next_sequence", "the sequence number the next closed batch takes", this.nextSequence),
      gauge(
        "backendshield_meter_batch_id_conflict",
        "1 when a batch id is committed on chain with other content and delivery has stopped",
        this.conflict ? 1 : 0,
      ),
      gauge("backendshield_meter_pending_settlements", "paid calls whose x402 settlement has not finished", this.settling.size),
    ]);
  }

  /** Records in the open batch. */
  openRecords(): readonly CallRecord[] {
    return this.open?.records ?? [];
  }

  /** Waits until no submission is in flight. */
  async drain(): Promise<void> {
    while (this.delivering) await this.delivering;
  }

  /** Closes the open batch now and waits for submission of everything pending. */
  async flush(): Promise<void> {
    if (!this.spool) throw new MeterNotRecoveredError();
    if (this.open) this.closeOpenBatch();
    await this.spool.sync();
    this.kick();
    await this.drain();
  }

  /** Stops timers, waits for an in-flight submission, fsyncs and releases the spool. The open batch stays open in the spool. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.ageTimer) clearTimeout(this.ageTimer);
    if (this.retryTimer) clearTimeout(this.retryTimer);
    if (this.settleTimer) clearTimeout(this.settleTimer);
    await this.settlingNow;
    await this.drain();
    this.spool?.close();
  }
}

export function createMeter(options: MeterOptions): Meter {
  return new Meter(options);
}
