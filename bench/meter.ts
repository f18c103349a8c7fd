import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import type { FetchLike } from "@modelcontextprotocol/sdk/shared/transport.js";
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import { z } from "zod";
import { createMeter, freeQuotaThenPerCall, serveMcpOverHttp, staticPricing } from "../src/meter/index.js";
import { percentile, RESULTS_DIR, round, writeResults } from "./report.js";

export type MeterBenchOptions = { calls: number; log: (line: string) => void };

export type MeterBenchResult = {
  calls: number;
  withoutP50Ms: number;
  withP50Ms: number;
  addedP50Ms: number;
  withoutP95Ms: number;
  withP95Ms: number;
};

const WARMUP = 200;

/**
 * The SDK's client transport passes one connection-wide AbortSignal to every fetch, and undici
 * keeps a listener on it per request until the request is garbage-collected; over thousands of
 * calls that trips MaxListenersExceededWarning. Each POST gets its own signal, forwarded from the
 * connection's, and the forwarding listener goes when the response arrives.
 */
const perRequestSignalFetch: FetchLike = (url, init) => {
  const parent = init?.signal;
  if (!parent || init?.method !== "POST") return fetch(url, init);
  const controller = new AbortController();
  const forward = () => controller.abort(parent.reason);
  parent.addEventListener("abort", forward, { once: true });
  return fetch(url, { ...init, signal: controller.signal }).finally(() => parent.removeEventListener("abort", forward));
};

/**
 * Latency of a real MCP tool call over Streamable HTTP on loopback, with and without the meter:
 * one server registers the same handler twice, plain and metered, and one client alternates
 * between the two. The metered calls spool, price and batch as in production (fsync at batch close).
 */
export async function benchMeter({ calls, log }: MeterBenchOptions): Promise<MeterBenchResult> {
  const spoolDir = mkdtempSync(join(tmpdir(), "bench-meter-"));
  let batches = 0;
  const meter = createMeter({
    spoolDir,
    serverAddress: "0x000000000000000000000000000000000000bEEF",
    pricing: staticPricing({ bench: freeQuotaThenPerCall(100, 1_000n) }),
    batch: { maxRecords: 500, maxAgeMs: 5_000 },
    onBatch: async () => {
      batches++;
    },
  });
  await meter.recover();
  const handler = async ({ q }: { q: string }): Promise<CallToolResult> => ({ content: [{ type: "text", text: `result for ${q}` }] });
  const inputSchema = { q: z.string() };
  const host = await serveMcpOverHttp({
    createMcpServer: () => {
      const server = new McpServer({ name: "bench", version: "1.0.0" });
      server.registerTool("echo_plain", { description: "echo", inputSchema }, handler);
      meter.registerTool(server, { namespace: "bench", route: "echo", name: "echo_metered", description: "echo", inputSchema }, handler);
      return server;
    },
  });
  const client = new Client({ name: "bench", version: "1.0.0" });
  await client.connect(new StreamableHTTPClientTransport(new URL(host.url), { fetch: perRequestSignalFetch }));
  const timeCall = async (name: string, i: number): Promise<number> => {
    const t0 = performance.now();
    const result = await client.callTool({ name, arguments: { q: `query ${i}` } });
    const ms = performance.now() - t0;
    if (result.isError) throw new Error(`${name} failed: ${JSON.stringify(result.content)}`);
    return ms;
  };
  try {
    log(`meter: ${WARMUP} warm-up calls, then ${calls} calls each way, alternating`);
    for (let i = 0; i < WARMUP; i++) {
      await timeCall("echo_plain", i);
      await timeCall("echo_metered", i);
    }
    const without: number[] = [];
    const withMeter: number[] = [];
    for (let i = 0; i < calls; i++) {
      if (i % 2 === 0) {
        without.push(await timeCall("echo_plain", i));
        withMeter.push(await timeCall("echo_metered", i));
      } else {
        withMeter.push(await timeCall("echo_metered", i));
        without.push(await timeCall("echo_plain", i));
      }
    }
    await meter.flush();
    const result: MeterBenchResult = {
      calls,
      withoutP50Ms: round(percentile(without, 50), 3),
      withP50Ms: round(percentile(withMeter, 50), 3),
      addedP50Ms: round(percentile(withMeter, 50) - percentile(without, 50), 3),
      withoutP95Ms: round(percentile(without, 95), 3),
      withP95Ms: round(percentile(withMeter, 95), 3),
    };
    log(
      `meter: p50 ${result.withoutP50Ms} ms without, ${result.withP50Ms} ms with (+${result.addedP50Ms} ms); ` +
        `p95 ${result.withoutP95Ms} / ${result.withP95Ms} ms; ${batches} batches`,
    );
    const file = join(RESULTS_DIR, "usage.json");
    const previous = existsSync(file) ? (JSON.parse(readFileSync(file, "utf8")) as Record<string, unknown>) : {};
    const { machine: _machine, measuredAt: _measuredAt, ...kept } = previous;
    log(`meter: results in ${writeResults("usage.json", { ...kept, meter: result })}`);
    return result;
  } finally {
    await client.close();
    await host.close();
    await meter.close();
    rmSync(spoolDir, { recursive: true, force: true });
  }
}
