import { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { cors } from "hono/cors";
import { type Address, getAddress, type Hex, keccak256, recoverTypedDataAddress, toBytes } from "viem";
import { summarize } from "../errors.js";
import { ApiInputError, readJsonBody } from "../http/input.js";
import { parseRequest } from "../http/schema.js";
import { type LogTarget, toLogger } from "../log.js";
import { PROMETHEUS_CONTENT_TYPE } from "../util/prometheus.js";
import type { CycleProgress, CycleResult, PayoutAgent } from "./agent.js";
import { CycleInProgressError } from "./errors.js";
import { AgentMetrics } from "./metrics.js";
import { agentDocument } from "./openapi.js";
import { memoryRequestLog, type RequestLog } from "./requests.js";
import { AGENT_PATHS, type AgentStatus, distributeRequestAt, type LastCycle } from "./schemas.js";

export { MAX_DISTRIBUTE_LEAD_S } from "./schemas.js";

/** Largest request body the agent reads (a distribute request is about 300 bytes). */
export const MAX_AGENT_BODY_BYTES = 16 * 1024;

/**
 * An agent's id, the salt of its EIP-712 domain: its deployment (the UsageLedger it pays for)
 * and its name, so a request signed for one agent is refused by every other.
 */
export const agentIdOf = (ledger: Address, name: string): Hex => keccak256(toBytes(`${getAddress(ledger)}:${name}`));

/** EIP-712 typed data the operator signs to run a cycle now on agent `agentId` (viem `signTypedData`). */
export function distributeTypedData(requestId: Hex, deadline: bigint, chainId: number | bigint, agentId: Hex) {
  return {
    domain: { name: "BackendShield PayoutAgent", version: "2", chainId: BigInt(chainId), salt: agentId },
    types: {
      Distribute: [
        { name: "requestId", type: "bytes32" },
        { name: "deadline", type: "uint256" },
      ],
    },
    primaryType: "Distribute" as const,
    message: { requestId, deadline },
  };
}

export type { LastCycle } from "./schemas.js";

/**
 * Runs cycles one at a time, on request or on a schedule, and keeps their progress for the
 * status endpoint (counts and timings only: amounts stay on chain, encrypted).
 */
export class CycleRunner {
  private running: Promise<CycleResult> | null = null;
  private progress: CycleProgress | null = null;
  last: LastCycle | null = null;
  readonly metrics = new AgentMetrics();
  private timer: NodeJS.Timeout | null = null;
  private readonly log;

  constructor(
    private readonly agent: PayoutAgent,
    log?: LogTarget,
  ) {
    this.log = toLogger(log);
    const onProgress = agent.options.onProgress;
    agent.options.onProgress = (p) => {
      this.progress = p;
      onProgress?.(p);
    };
  }

  get busy(): boolean {
    return this.running !== null;
  }

  status(): AgentStatus {
    return { state: this.running ? "running" : "idle", progress: this.running ? this.progress : null, last: this.last };
  }

  /** Starts a cycle now; throws CycleInProgressError when one is running. */
  start(trigger: string): Promise<CycleResult> {
    if (this.running) throw new CycleInProgressError(this.progress?.cycle ?? null);
    this.progress = null;
    const started = performance.now();
    const run = this.agent.runCycle();
    this.running = run;
    run
      .then((r) => {
        const finishedAt = new Date().toISOString();
        this.metrics.recordCycle(r, (performance.now() - started) / 1000);
        this.last =
          r.status === "paid"
            ? {
                status: "paid",
                cycle: r.cycle,
                throughBlock: r.throughBlock.toString(),
                resumed: r.resumed,
                transfers: r.transfers.length,
                recoveries: r.recoveries,
                seconds: Math.round((performance.now() - started) / 100) / 10,
                finishedAt,
                trigger,
              }
            : { status: "nothing_owed", throughBlock: r.throughBlock.toString(), finishedAt, trigger };
        if (r.status === "nothing_owed")
          this.log.info(
            { trigger, throughBlock: Number(r.throughBlock) },
            `cycle run (${trigger}): nothing owed through block ${r.throughBlock}`,
          );
      })
      .catch((e: unknown) => {
        this.metrics.recordFailure((performance.now() - started) / 1000, e);
        const { code, message } = summarize(e);
        this.last = { status: "failed", code, message, finishedAt: new Date().toISOString(), trigger };
        this.log.error({ trigger, code }, `cycle run (${trigger}) failed: ${code}: ${message}`);
      })
      .finally(() => {
        this.running = null;
      });
    return run;
  }

  /** Runs a cycle every `intervalS` seconds (skipping a beat while one is still running). */
  schedule(intervalS: number): void {
    if (intervalS <= 0) return;
    this.timer = setInterval(() => {
      if (!this.running) this.start("schedule").catch(() => {});
    }, intervalS * 1000);
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.running?.catch(() => {});
  }
}

/**
 * The agent's HTTP API: `POST /revenue/distribute` (operator-signed) starts a cycle now and
 * answers 202; `GET /revenue/status` shows the running cycle's progress and the last result.
 */
export function payoutApp(args: {
  runner: Pick<CycleRunner, "status" | "busy" | "start" | "metrics">;
  operator: Address;
  chainId: number;
  agentId: Hex;
  requests?: RequestLog;
  now?: () => number;
  /** Browser origins allowed to read the routes and send the distribute request (AGENT_CORS_ORIGIN); none by default. */
  corsOrigins?: readonly string[];
}) {
  const app = new Hono();
  const now = args.now ?? (() => Math.floor(Date.now() / 1000));
  const requests = args.requests ?? memoryRequestLog();
  // Named origins only, and only the JSON content type a distribute request needs: the route still refuses any other body.
  if (args.corsOrigins && args.corsOrigins.length > 0)
    app.use("*", cors({ origin: [...args.corsOrigins], allowMethods: ["GET", "POST"], allowHeaders: ["content-type"], maxAge: 600 }));

  app.get(AGENT_PATHS.status, (c) => c.json(args.runner.status() satisfies AgentStatus));
  // Liveness for a supervisor, and counts and timings for Prometheus (never an amount).
  app.get(AGENT_PATHS.health, (c) => c.json({ ok: true, state: args.runner.busy ? "running" : "idle" }));
  app.get(AGENT_PATHS.metrics, (c) =>
    c.text(args.runner.metrics.render(args.runner.busy), 200, { "content-type": PROMETHEUS_CONTENT_TYPE }),
  );
  // What a client signs for: the chain and agent id of the EIP-712 domain, and the operator who may sign.
  app.get(AGENT_PATHS.chain, (c) => c.json({ chainId: args.chainId, operator: args.operator, agentId: args.agentId }));

  const limit = bodyLimit({
    maxSize: MAX_AGENT_BODY_BYTES,
    onError: (c) => c.json({ error: { field: "body", message: `must be at most ${MAX_AGENT_BODY_BYTES} bytes` } }, 413),
  });
  app.post(AGENT_PATHS.distribute, limit, async (c) => {
    const t = now();
    const { requestId, deadline, signature } = parseRequest(
      distributeRequestAt(() => t),
      await readJsonBody(c.req),
    );
    let signer: Address;
    try {
      signer = await recoverTypedDataAddress({ ...distributeTypedData(requestId, deadline, args.chainId, args.agentId), signature });
    } catch {
      throw new ApiInputError("signature", "does not recover to an address", 401);
    }
    if (signer !== args.operator) throw new ApiInputError("signature", `signed by ${signer}, not by the operator`, 403);
    // Lower-cased by the schema: the same id in any case is the same request.
    const id = requestId;
    if (requests.has(id, BigInt(t))) throw new ApiInputError("requestId", "was already used: sign a new request", 409);
    if (args.runner.busy)
      throw new ApiInputError(
        "requestId",
        `${new CycleInProgressError(args.runner.status().progress?.cycle ?? null).message}: try again when it is done`,
        409,
      );
    requests.add(id, deadline);
    args.runner.start(`request ${id.slice(0, 10)}`).catch(() => {});
    return c.json({ accepted: true, status: args.runner.status() }, 202);
  });
  const document = agentDocument();
  app.get(AGENT_PATHS.openapi, (c) => c.json(document));

  app.onError((err, c) => {
    if (err instanceof ApiInputError) return c.json({ error: { field: err.field, message: err.message } }, err.status);
    return c.json({ error: { field: null, message: "internal error" } }, 500);
  });
  return app;
}
