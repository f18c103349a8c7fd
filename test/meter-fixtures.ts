import { type ChildProcess, spawn } from "node:child_process";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import type { Address } from "viem";
import { z } from "zod";
import { PROJECT_ROOT } from "../src/eerc/artifacts.js";
import type { FlowMcpSchema } from "../src/local/flowmcp.js";
import {
  freePool,
  freeQuotaThenPerCall,
  type Meter,
  type Pricing,
  perCall,
  type RecoveryReport,
  staticPricing,
} from "../src/meter/index.js";

export const SERVER_ADDRESS: Address = "0x5e7a1C0DE0000000000000000000000000000001";

/** weather: 1,500 µUSDC per call after 2 free calls a period; news: free pool; finance: 2,500 µUSDC per call. */
export const PRICES: Record<string, Pricing> = {
  weather: freeQuotaThenPerCall(2, 1_500n),
  news: freePool(),
  finance: perCall(2_500n),
};
export const PRICING = staticPricing(PRICES);

/** A FlowMCP route name long enough that FlowMCP's 63-character tool name loses the namespace. */
export const LONG_NEWS_ROUTE = "searchHeadlinesByTopicAndRegionWithFullArticleMetadataAndSourceRanking";

export type Upstream = { url: string; hits: Map<string, number>; close(): Promise<void> };

/**
 * Three small provider APIs on one loopback server. `city=fail` and `symbol=FAIL` answer 500.
 */
export async function startUpstream(): Promise<Upstream> {
  const hits = new Map<string, number>();
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://upstream");
    hits.set(url.pathname, (hits.get(url.pathname) ?? 0) + 1);
    const json = (status: number, body: unknown) => res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body));
    switch (url.pathname) {
      case "/weather/forecast": {
        const city = url.searchParams.get("city") ?? "";
        if (city === "fail") return json(500, { error: "forecast backend down" });
        return json(200, {
          city,
          days: [
            { day: 1, tempC: 18 },
            { day: 2, tempC: 21 },
          ],
        });
      }
      case "/news/search":
        return json(200, { topic: url.searchParams.get("topic"), headlines: ["Markets open higher", "Rain expected"] });
      case "/finance/quote": {
        const symbol = url.searchParams.get("symbol") ?? "";
        if (symbol === "FAIL") return json(500, { error: "quote feed unavailable" });
        return json(200, { symbol, priceCents: 18_234 });
      }
      default:
        return json(404, { error: "not found" });
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    hits,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

const text = (body: string): CallToolResult => ({ content: [{ type: "text", text: body }] });

export type HandlerCall = { tool: string; sessionId: string | undefined; requestId: string | number };

/**
 * A FlowMCP-style server with three providers' tools, each fetching its provider's API:
 * weather returns an error result when its API fails, finance throws.
 */
export function createProviderServer(meter: Meter, upstreamUrl: string, calls?: HandlerCall[]): McpServer {
  const server = new McpServer({ name: "flowmcp-test", version: "1.0.0" });
  const seen = (tool: string, extra: { sessionId?: string; requestId: string | number }) =>
    calls?.push({ tool, sessionId: extra.sessionId, requestId: extra.requestId });
  meter.registerTool(
    server,
    { namespace: "weather", route: "getForecast", description: "Forecast for a city", inputSchema: { city: z.string() } },
    async ({ city }, extra) => {
      seen("getForecast", extra);
      const res = await fetch(`${upstreamUrl}/weather/forecast?city=${encodeURIComponent(city)}`);
      const body = await res.text();
      if (!res.ok) return { content: [{ type: "text", text: `weather API answered ${res.status}: ${body}` }], isError: true };
      return text(body);
    },
  );
  meter.registerTool(
    server,
    { namespace: "news", route: LONG_NEWS_ROUTE, description: "Headlines for a topic", inputSchema: { topic: z.string() } },
    async ({ topic }, extra) => {
      seen(LONG_NEWS_ROUTE, extra);
      const res = await fetch(`${upstreamUrl}/news/search?topic=${encodeURIComponent(topic)}`);
      return text(await res.text());
    },
  );
  meter.registerTool(
    server,
    { namespace: "finance", route: "getQuote", description: "Quote for a symbol", inputSchema: { symbol: z.string() } },
    async ({ symbol }, extra) => {
      seen("getQuote", extra);
      const res = await fetch(`${upstreamUrl}/finance/quote?symbol=${encodeURIComponent(symbol)}`);
      const body = await res.text();
      if (!res.ok) throw new Error(`finance API answered ${res.status}`);
      return text(body);
    },
  );
  return server;
}

/** FlowMCP schemas for the three providers' APIs on `upstreamUrl`, as `activateServerTools` takes them. */
export function flowMcpSchemas(upstreamUrl: string): FlowMcpSchema[] {
  const get = (route: string, key: string, description: string) => ({
    requestMethod: "GET" as const,
    description,
    route,
    parameters: [{ position: { key, location: "query" as const } }],
  });
  return [
    { namespace: "weather", root: `${upstreamUrl}/weather`, routes: { getForecast: get("/forecast", "city", "Forecast for a city") } },
    { namespace: "news", root: `${upstreamUrl}/news`, routes: { [LONG_NEWS_ROUTE]: get("/search", "topic", "Headlines for a topic") } },
    { namespace: "finance", root: `${upstreamUrl}/finance`, routes: { getQuote: get("/quote", "symbol", "Quote for a symbol") } },
  ];
}

export async function connectClient(url: string): Promise<Client> {
  const client = new Client({ name: "meter-test-client", version: "1.0.0" });
  await client.connect(new StreamableHTTPClientTransport(new URL(url)));
  return client;
}

export type MeterChild = {
  child: ChildProcess;
  url: string;
  report: RecoveryReport;
  exited: Promise<void>;
  /** Resolves when the child prints `{"flushed":true}`. */
  flushed: Promise<void>;
};

/**
 * Runs test/meter-child.ts: a metered MCP server that recovers its spool, serves on loopback
 * and submits batches to `ledgerUrl`.
 */
export async function startMeterChild(env: {
  spoolDir: string;
  ledgerUrl: string;
  maxRecords: number;
  maxAgeMs: number;
  holdAfterCommitMs: number;
  flush?: boolean;
}): Promise<MeterChild> {
  const child = spawn(process.execPath, ["--import", "tsx", join(PROJECT_ROOT, "test", "meter-child.ts")], {
    cwd: PROJECT_ROOT,
    env: {
      ...process.env,
      SPOOL_DIR: env.spoolDir,
      LEDGER_URL: env.ledgerUrl,
      MAX_RECORDS: String(env.maxRecords),
      MAX_AGE_MS: String(env.maxAgeMs),
      HOLD_AFTER_COMMIT_MS: String(env.holdAfterCommitMs),
      FLUSH: env.flush ? "1" : "",
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stderr = "";
  child.stderr!.on("data", (d: Buffer) => {
    stderr += d.toString();
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  let flushedResolve!: () => void;
  const flushed = new Promise<void>((resolve) => {
    flushedResolve = resolve;
  });
  const ready = await new Promise<{ url: string; report: RecoveryReport }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`meter child did not start: ${stderr}`)), 60_000);
    child.once("exit", (code) => reject(new Error(`meter child exited (${code}): ${stderr}`)));
    createInterface({ input: child.stdout! }).on("line", (line) => {
      const msg = JSON.parse(line) as { url?: string; report?: RecoveryReport; flushed?: boolean };
      if (msg.flushed) flushedResolve();
      else if (msg.url && msg.report) {
        clearTimeout(timer);
        resolve({ url: msg.url, report: msg.report });
      }
    });
  });
  return { child, ...ready, exited, flushed };
}
