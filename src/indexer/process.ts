import { type ChildProcess, spawn } from "node:child_process";
import { createWriteStream } from "node:fs";
import { join } from "node:path";
import { freePort } from "../chain/anvil.js";
import { PROJECT_ROOT } from "../eerc/artifacts.js";
import { BaseError } from "../errors.js";

export type IndexerOptions = {
  /** `ponder start` indexes and serves; `ponder serve` only serves an existing schema (Postgres only). */
  command?: "start" | "serve";
  /** Deployment manifest to index (sets DEPLOYMENT_FILE). */
  manifestPath?: string;
  /** Extra environment, e.g. EERC_ADDRESS, REGISTRAR_ADDRESS, START_BLOCK, PONDER_RPC_URL_<chainId>. */
  env?: Record<string, string | undefined>;
  /** HTTP port; a free loopback port when absent. */
  port?: number;
  /** Postgres connection string; PGlite when absent. */
  databaseUrl?: string;
  /** PGlite directory (default `.ponder/pglite`). */
  pgliteDir?: string;
  /** Database schema for Ponder's tables (default "public"). */
  schema?: string;
  /** `ponder start --views-schema`: views that always point at this deployment's tables. */
  viewsSchema?: string;
  /** Append the indexer's output to this file. */
  logFile?: string;
  /** Copy the indexer's output to this process's stdout. */
  logToStdout?: boolean;
  /** How long to wait for `/ready` (default 120 s). */
  readyTimeoutMs?: number;
  /** `ponder --root`: another Ponder app on the same configuration (default: the project's). */
  root?: string;
};

export type RunningIndexer = {
  url: string;
  port: number;
  pid: number;
  /** The last lines of output, for error messages. */
  recentOutput(): string;
  /** SIGTERM and wait: Ponder releases its schema lock and exits. */
  stop(): Promise<void>;
  /** SIGKILL, as a crash would. */
  kill(): void;
  exited: Promise<number | null>;
};

export class IndexerStartError extends BaseError {
  readonly code = "INDEXER_START_FAILED";
}

/**
 * The API's readiness (`GET /ops/health`), which after a restart also waits for the blocks Ponder
 * indexes again; an app without that route is ready with Ponder's `/ready`.
 */
async function apiReady(url: string): Promise<boolean> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(5_000) });
    if (res.status === 404) return true;
    return res.ok && ((await res.json()) as { ready?: unknown }).ready === true;
  } catch {
    return false;
  }
}

const PONDER_BIN = join(PROJECT_ROOT, "node_modules", "ponder", "dist", "esm", "bin", "ponder.js");
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function httpStatus(url: string): Promise<number | undefined> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(2_000) });
    await res.arrayBuffer();
    return res.status;
  } catch {
    return undefined;
  }
}

/** Spawns `ponder start` (or `ponder serve`) from the project root and waits until it is ready (`/ready`, then `/ops/health`). */
export async function startIndexer(options: IndexerOptions = {}): Promise<RunningIndexer> {
  const command = options.command ?? "start";
  const port = options.port ?? (await freePort());
  const schema = options.schema ?? "public";
  const args = [PONDER_BIN, command, "--port", String(port), "--hostname", "127.0.0.1", "--schema", schema];
  if (options.root) args.splice(1, 0, "--root", options.root);
  if (options.viewsSchema) args.push("--views-schema", options.viewsSchema);
  const env: Record<string, string | undefined> = {
    ...process.env,
    PONDER_TELEMETRY_DISABLED: "true",
    ...options.env,
    // The API reads the indexer's own /status on this port.
    PORT: String(port),
  };
  if (options.manifestPath) env.DEPLOYMENT_FILE = options.manifestPath;
  delete env.DATABASE_PRIVATE_URL;
  if (options.databaseUrl) env.DATABASE_URL = options.databaseUrl;
  else delete env.DATABASE_URL;
  if (options.pgliteDir) env.PONDER_PGLITE_DIR = options.pgliteDir;

  const child: ChildProcess = spawn(process.execPath, args, { cwd: PROJECT_ROOT, env, stdio: ["ignore", "pipe", "pipe"] });
  const recent: string[] = [];
  const file = options.logFile ? createWriteStream(options.logFile, { flags: "a" }) : undefined;
  const onData = (chunk: Buffer) => {
    for (const line of chunk.toString().split("\n")) if (line) recent.push(line);
    if (recent.length > 200) recent.splice(0, recent.length - 200);
    file?.write(chunk);
    if (options.logToStdout) process.stdout.write(chunk);
  };
  child.stdout!.on("data", onData);
  child.stderr!.on("data", onData);
  const exited = new Promise<number | null>((resolve) =>
    child.once("exit", (code, signal) => {
      // A crash leaves nothing of Ponder's own in the log: say how the process ended.
      file?.end(
        `${new Date().toISOString()} ponder ${command} (pid ${child.pid}) exited: ${signal ? `signal ${signal}` : `code ${code}`}\n`,
      );
      resolve(code);
    }),
  );
  const recentOutput = () => recent.join("\n");

  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + (options.readyTimeoutMs ?? 120_000);
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new IndexerStartError(
        `ponder ${command} exited (${child.exitCode ?? child.signalCode}) before it was ready:\n${recentOutput()}`,
      );
    }
    if ((await httpStatus(`${url}/ready`)) === 200 && (await apiReady(`${url}/ops/health`))) break;
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      await exited;
      throw new IndexerStartError(`ponder ${command} was not ready on ${url} in time:\n${recentOutput()}`);
    }
    await sleep(100);
  }

  return {
    url,
    port,
    pid: child.pid!,
    recentOutput,
    exited,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 15_000);
      await exited;
      clearTimeout(timer);
    },
    kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    },
  };
}
