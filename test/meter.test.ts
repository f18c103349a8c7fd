import { spawn } from "node:child_process";
import { appendFileSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { InMemoryTransport } from "@modelcontextprotocol/sdk/inMemory.js";
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { z } from "zod";
import { activateServerTools, type FlowMcpSchema } from "../src/local/flowmcp.js";
import {
  type ClosedBatch,
  createMeter,
  flowMcpAttribution,
  flowMcpFailed,
  flowMcpToolName,
  freePool,
  freeQuotaThenPerCall,
  InvalidMeterPricingError,
  type Meter,
  type MeterOptions,
  PricingModel,
  perCall,
  periodOf,
  readSpool,
  SpoolCorruptError,
  SpoolLockedError,
  serveMcpOverHttp,
  staticPricing,
  tiered,
  UnattributedToolError,
  UnknownProviderError,
} from "../src/meter/index.js";
import type { CloseLine, SpoolLine } from "../src/meter/spool.js";
import { aggregateLines, batchIdOf } from "../src/usage/batch.js";
import { MAX_TIERS } from "../src/usage/pricing.js";
import type { CallRecord } from "../src/usage/record.js";
import { providerIdOf } from "../src/usage/registry.js";
import {
  connectClient,
  createProviderServer,
  type HandlerCall,
  LONG_NEWS_ROUTE,
  PRICING,
  SERVER_ADDRESS,
  startMeterChild,
  startUpstream,
  type Upstream,
} from "./meter-fixtures.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const WEATHER = "get_forecast_weather";
const FINANCE = "get_quote_finance";
const NEWS = flowMcpToolName(LONG_NEWS_ROUTE, "news");

const callRecords = (lines: SpoolLine[]): CallRecord[] => lines.flatMap((l) => (l.type === "call" ? [l.record] : []));
const closeLines = (lines: SpoolLine[]): CloseLine[] => lines.flatMap((l) => (l.type === "close" ? [l] : []));

let upstream: Upstream;
const dirs: string[] = [];
const cleanups: (() => Promise<void>)[] = [];

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "meter-"));
  dirs.push(dir);
  return dir;
}

/** A recovered meter behind a real Streamable HTTP MCP server on loopback. */
async function meteredHost(options: Partial<MeterOptions> & { calls?: HandlerCall[] } = {}) {
  const { calls, ...rest } = options;
  const meter = createMeter({
    spoolDir: tempDir(),
    serverAddress: SERVER_ADDRESS,
    pricing: PRICING,
    batch: { maxRecords: 1_000, maxAgeMs: 600_000 },
    ...rest,
  });
  await meter.recover();
  const host = await serveMcpOverHttp({ createMcpServer: () => createProviderServer(meter, upstream.url, calls) });
  const clients: Client[] = [];
  const connect = async () => {
    const client = await connectClient(host.url);
    clients.push(client);
    return client;
  };
  const close = async () => {
    for (const c of clients) await c.close();
    await host.close();
    await meter.close();
  };
  cleanups.push(close);
  return { meter, host, connect, close };
}

beforeAll(async () => {
  upstream = await startUpstream();
});

afterAll(async () => {
  for (const c of cleanups) await c().catch(() => undefined);
  await upstream.close();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe("metering real MCP calls over Streamable HTTP", () => {
  test("records provider, outcome, billing, price and bytes per call, before the result is returned", async () => {
    const calls: HandlerCall[] = [];
    const { meter, connect } = await meteredHost({ calls });
    const a = await connect();
    const b = await connect();

    expect(NEWS).toHaveLength(63);
    expect(NEWS).not.toContain("news");
    for (const client of [a, b]) {
      expect((await client.listTools()).tools.map((t) => t.name).sort()).toEqual([WEATHER, FINANCE, NEWS].sort());
    }

    type Step = [Client, string, Record<string, string>, Pick<CallRecord, "provider" | "tool" | "outcome" | "billable" | "priceMicro">];
    const weather = (outcome: CallRecord["outcome"], priceMicro: bigint) => ({
      provider: "weather",
      tool: "getForecast",
      outcome,
      billable: outcome === "ok",
      priceMicro,
    });
    const finance = (outcome: CallRecord["outcome"], priceMicro: bigint) => ({
      provider: "finance",
      tool: "getQuote",
      outcome,
      billable: outcome === "ok",
      priceMicro,
    });
    const news = { provider: "news", tool: LONG_NEWS_ROUTE, outcome: "ok" as const, billable: true, priceMicro: 0n };
    const steps: Step[] = [
      [a, WEATHER, { city: "Paris" }, weather("ok", 0n)], // free call 1 of 2
      [b, WEATHER, { city: "Oslo" }, weather("ok", 0n)], // free call 2 of 2
      [a, WEATHER, { city: "fail" }, weather("tool_error", 0n)], // failed: counted, not billed, no quota used
      [b, WEATHER, { city: "Rome" }, weather("ok", 1_500n)],
      [a, NEWS, { topic: "economy" }, news],
      [b, NEWS, { topic: "sports" }, news],
      [a, FINANCE, { symbol: "AAPL" }, finance("ok", 2_500n)],
      [a, FINANCE, { symbol: "FAIL" }, finance("exception", 0n)],
      [b, FINANCE, { symbol: "MSFT" }, finance("ok", 2_500n)],
      [a, WEATHER, { city: "Lima" }, weather("ok", 1_500n)],
    ];
    for (const [i, [client, name, args, expected]] of steps.entries()) {
      const result = await client.callTool({ name, arguments: args });
      expect(result.isError === true, `${name} ${JSON.stringify(args)}`).toBe(expected.outcome !== "ok");
      if (expected.outcome === "exception") expect(JSON.stringify(result.content)).toContain("finance API answered 500");
      if (expected.outcome === "tool_error") expect(JSON.stringify(result.content)).toContain("weather API answered 500");
      // The record is in the spool file by the time the client has the result.
      expect(callRecords(readSpool(meter.spoolPath).lines)).toHaveLength(i + 1);
    }

    const records = callRecords(readSpool(meter.spoolPath).lines);
    expect(records.map(({ provider, tool, outcome, billable, priceMicro }) => ({ provider, tool, outcome, billable, priceMicro }))).toEqual(
      steps.map((s) => s[3]),
    );
    for (const r of records) {
      expect(r.eventId).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      expect(r.requestBytes).toBeGreaterThan(0);
      expect(r.responseBytes).toBeGreaterThan(0);
      expect(Number.isSafeInteger(r.durationMs) && r.durationMs >= 0).toBe(true);
      expect(r.endedAt).toBeGreaterThanOrEqual(r.startedAt);
    }
    expect(new Set(records.map((r) => r.eventId)).size).toBe(records.length);
    expect(meter.openRecords()).toEqual(records);

    // The records are valid batch input; failed calls count as calls, not billable ones.
    const lines = new Map(aggregateLines(records).map((l) => [l.providerId, l]));
    expect(lines.get(providerIdOf("weather"))).toMatchObject({ calls: 5n, billableCalls: 4n, amountMicro: 3_000n });
    expect(lines.get(providerIdOf("news"))).toMatchObject({ calls: 2n, billableCalls: 2n, amountMicro: 0n });
    expect(lines.get(providerIdOf("finance"))).toMatchObject({ calls: 3n, billableCalls: 2n, amountMicro: 5_000n });

    // Each tool really called its provider's API.
    expect(upstream.hits.get("/weather/forecast")).toBe(5);
    expect(upstream.hits.get("/news/search")).toBe(2);
    expect(upstream.hits.get("/finance/quote")).toBe(3);

    // Two connections, JSON-RPC ids reused across them; event ids are still unique.
    const sessions = new Set(calls.map((c) => c.sessionId));
    expect(sessions.size).toBe(2);
    const idsBySession = [...sessions].map((s) => new Set(calls.filter((c) => c.sessionId === s).map((c) => c.requestId)));
    expect([...idsBySession[0]].filter((id) => idsBySession[1].has(id)).length).toBeGreaterThan(0);
  });

  test("registration refuses a namespace the pricing source does not know", async () => {
    const { McpServer } = await import("@modelcontextprotocol/sdk/server/mcp.js");
    const meter = createMeter({
      spoolDir: tempDir(),
      serverAddress: SERVER_ADDRESS,
      pricing: PRICING,
      batch: { maxRecords: 10, maxAgeMs: 1_000 },
    });
    const server = new McpServer({ name: "x", version: "1" });
    expect(() => meter.registerTool(server, { namespace: "maps", route: "geocode", description: "" }, () => ({ content: [] }))).toThrow(
      UnknownProviderError,
    );
  });

  test("pricing: per call, tiers by billable calls in the period (free quota first), free pool", () => {
    const pricing = staticPricing({
      flat: perCall(1n),
      quota: freeQuotaThenPerCall(3, 7n),
      tiers: tiered([
        { upToCalls: 2n, priceMicro: 0n },
        { upToCalls: 4n, priceMicro: 500n },
        { upToCalls: 5n, priceMicro: 300n },
      ]),
      pool: freePool(),
    });
    expect(pricing.priceFor("flat", 0)).toBe(1n);
    expect([0, 1, 2, 3, 4].map((i) => pricing.priceFor("quota", i))).toEqual([0n, 0n, 0n, 7n, 7n]);
    expect([0, 1, 2, 3, 4, 5, 6].map((i) => pricing.priceFor("tiers", i))).toEqual([0n, 0n, 500n, 500n, 300n, 0n, 0n]);
    expect(pricing.priceFor("pool", 10_000)).toBe(0n);
    expect(freeQuotaThenPerCall(0, 9n)).toEqual(perCall(9n));
    expect(() => pricing.priceFor("other", 0)).toThrow(UnknownProviderError);
    expect(() => staticPricing({ x: perCall(-1n) })).toThrow(InvalidMeterPricingError);
    expect(() =>
      staticPricing({
        x: tiered([
          { upToCalls: 5n, priceMicro: 1n },
          { upToCalls: 5n, priceMicro: 2n },
        ]),
      }),
    ).toThrow(InvalidMeterPricingError);
    expect(() => staticPricing({ x: tiered([]) })).toThrow(InvalidMeterPricingError);
    // The registry's own rules: a zero per-call price, or more tiers than the registry takes, is refused with its field.
    expect(() => staticPricing({ x: perCall(0n) })).toThrow("x: pricePerCallMicro must be positive for per-call pricing");
    const tooMany = Array.from({ length: MAX_TIERS + 1 }, (_, i) => ({ upToCalls: BigInt(i + 1), priceMicro: 1n }));
    expect(() => staticPricing({ x: tiered(tooMany) })).toThrow(`x: tiers must have at most ${MAX_TIERS} tiers`);
  });

  test("a ProviderRegistry entry prices calls as the builders do", () => {
    const fromRegistry = staticPricing({
      quota: { model: PricingModel.Tiered, pricePerCallMicro: 0n, poolWeight: 0, tiers: [...freeQuotaThenPerCall(100, 250n).tiers] },
      pool: freePool(3),
    });
    expect([99, 100, 101].map((i) => fromRegistry.priceFor("quota", i))).toEqual([0n, 250n, 250n]);
    expect(fromRegistry.priceFor("pool", 0)).toBe(0n);
    expect(freeQuotaThenPerCall(100, 250n).tiers).toEqual([
      { upToCalls: 100n, priceMicro: 0n },
      { upToCalls: (1n << 64n) - 1n, priceMicro: 250n },
    ]);
    expect(freePool(3).poolWeight).toBe(3);
    expect(() => staticPricing({ x: perCall(0n) })).toThrow(InvalidMeterPricingError);
  });
});

describe("instrumenting a FlowMCP server as it is", () => {
  test("tools registered by FlowMCP's activateServerTools (server.tool) and by registerTool are metered per namespace", async () => {
    const meter = createMeter({ spoolDir: tempDir(), serverAddress: SERVER_ADDRESS, pricing: PRICING, batch: { maxAgeMs: 600_000 } });
    await meter.recover();
    cleanups.push(() => meter.close());
    const weather: FlowMcpSchema = {
      namespace: "weather",
      root: `${upstream.url}/weather`,
      routes: {
        getForecast: {
          requestMethod: "GET",
          description: "forecast",
          route: "/forecast",
          parameters: [{ position: { key: "city", location: "query" } }],
        },
      },
    };
    const server = meter.instrument(new McpServer({ name: "flowmcp-style", version: "1.0.0" }), {
      attribution: flowMcpAttribution([weather, { namespace: "finance", routes: { getQuote: {} } }]),
      failed: flowMcpFailed,
    });
    activateServerTools({ server, schema: weather });
    server.registerTool(FINANCE, { description: "quote", inputSchema: { symbol: z.string() } }, async ({ symbol }) => ({
      content: [{ type: "text", text: `quote ${symbol}` }],
    }));
    // A tool no schema names cannot be attributed to a provider: refused, not silently unmetered.
    expect(() => server.tool("whoami", "who", async () => ({ content: [] }))).toThrow(UnattributedToolError);

    const client = new Client({ name: "agent", version: "1.0.0" });
    const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
    await server.connect(serverSide);
    await client.connect(clientSide);
    cleanups.push(() => client.close());
    for (const city of ["Berlin", "Paris", "Rome", "fail"]) await client.callTool({ name: WEATHER, arguments: { city } });
    const quote = await client.callTool({ name: FINANCE, arguments: { symbol: "ACME" } });
    expect(quote.content).toEqual([{ type: "text", text: "quote ACME" }]);

    const records = meter.openRecords();
    expect(records.map((r) => [r.provider, r.tool, r.outcome, r.billable, r.priceMicro])).toEqual([
      // weather: 2 free calls a period, then 1,500 each; the upstream's failure, reported as "Error: …" text, is not billed.
      ["weather", "getForecast", "ok", true, 0n],
      ["weather", "getForecast", "ok", true, 0n],
      ["weather", "getForecast", "ok", true, 1_500n],
      ["weather", "getForecast", "tool_error", false, 0n],
      ["finance", "getQuote", "ok", true, 2_500n],
    ]);
    expect(records.every((r) => r.requestBytes > 20 && r.responseBytes > 20)).toBe(true);
  });

  test("two FlowMCP routes whose tool names collide cannot be attributed", () => {
    const long = { [LONG_NEWS_ROUTE]: {} };
    expect(() =>
      flowMcpAttribution([
        { namespace: "news", routes: long },
        { namespace: "newsfeed", routes: long },
      ]),
    ).toThrow(/share the tool name/);
  });
});

describe("batches", () => {
  test("close by size and by age, with contiguous sequences and deterministic ids; failed submissions are retried", async () => {
    const delivered: ClosedBatch[] = [];
    const errors: unknown[] = [];
    let failNext = true;
    const { meter, connect } = await meteredHost({
      batch: { maxRecords: 3, maxAgeMs: 400 },
      retry: { minMs: 20, maxMs: 100 },
      onSubmitError: (err) => errors.push(err),
      onBatch: async (batch) => {
        if (failNext) {
          failNext = false;
          throw new Error("RPC unavailable");
        }
        delivered.push(batch);
        return { txHash: `0x${batch.sequence.toString(16).padStart(64, "0")}` };
      },
    });
    const client = await connect();
    for (let i = 0; i < 7; i++) await client.callTool({ name: WEATHER, arguments: { city: `c${i}` } });
    expect(meter.openRecords()).toHaveLength(1);
    expect(meter.metrics()).toMatch(/^backendshield_meter_open_records 1$/m);
    const spooled = () => readSpool(meter.spoolPath).lines;
    expect(closeLines(spooled()).map((c) => [c.sequence, c.count])).toEqual([
      [1, 3],
      [2, 3],
    ]);

    await sleep(600);
    await meter.drain();
    for (let i = 0; i < 50 && delivered.length < 3; i++) await sleep(20);
    expect(errors).toHaveLength(1);
    expect(delivered.map((b) => [b.sequence, b.records.length])).toEqual([
      [1, 3],
      [2, 3],
      [3, 1],
    ]);
    for (const b of delivered) {
      expect(b.batchId).toBe(batchIdOf(SERVER_ADDRESS, b.sequence));
      expect(b.server).toBe(SERVER_ADDRESS);
      expect(b.periodStart).toBe(Math.min(...b.records.map((r) => r.startedAt)));
      expect(b.periodEnd).toBe(Math.max(...b.records.map((r) => r.endedAt)));
    }
    const age = delivered[2];
    // Timers may fire a millisecond or two before Date.now() has moved on by the full delay.
    expect(age.closedAt - age.records[0].endedAt).toBeGreaterThanOrEqual(400 - 5);
    expect(callRecords(spooled()).map((r) => r.eventId)).toEqual(delivered.flatMap((b) => b.records.map((r) => r.eventId)));
    const submitted = spooled().flatMap((l) => (l.type === "submitted" ? [[l.sequence, l.txHash]] : []));
    expect(submitted).toEqual(delivered.map((b) => [b.sequence, `0x${b.sequence.toString(16).padStart(64, "0")}`]));
    expect(meter.pendingBatches()).toEqual([]);
    const metrics = meter.metrics();
    for (const line of ["unsubmitted_batches 0", "unsubmitted_records 0", "submit_failures 0", "next_sequence 4", "open_records 0"]) {
      expect(metrics).toMatch(new RegExp(`^backendshield_meter_${line}$`, "m"));
    }
    expect(metrics).toContain("# TYPE backendshield_meter_unsubmitted_batches gauge");

    // An idle meter closes no empty batches.
    await sleep(500);
    expect(closeLines(spooled())).toHaveLength(3);
  });

  test("a new pricing period closes the open batch and restarts the free quota", async () => {
    let now = Date.UTC(2025, 0, 31, 23, 59, 58);
    const delivered: ClosedBatch[] = [];
    const { meter, connect } = await meteredHost({
      clock: () => now,
      period: "month",
      onBatch: async (b) => {
        delivered.push(b);
      },
    });
    const client = await connect();
    for (let i = 0; i < 3; i++) await client.callTool({ name: WEATHER, arguments: { city: "Paris" } });
    now = Date.UTC(2025, 1, 1, 0, 0, 1);
    await client.callTool({ name: WEATHER, arguments: { city: "Paris" } });
    await meter.drain();
    expect(delivered.map((b) => [b.sequence, b.period, b.records.map((r) => r.priceMicro)])).toEqual([[1, 202501, [0n, 0n, 1_500n]]]);
    expect(meter.openRecords().map((r) => r.priceMicro)).toEqual([0n]);
    expect(periodOf(now, "day")).toBe(20250201);
  });
});

describe("spool durability", () => {
  const spoolFile = (dir: string) => join(dir, `${SERVER_ADDRESS.toLowerCase()}.jsonl`);
  const options = (spoolDir: string, extra: Partial<MeterOptions> = {}): MeterOptions => ({
    spoolDir,
    serverAddress: SERVER_ADDRESS,
    pricing: PRICING,
    batch: { maxRecords: 1_000, maxAgeMs: 600_000 },
    ...extra,
  });

  async function callsThrough(meter: Meter, n: number): Promise<void> {
    const host = await serveMcpOverHttp({ createMcpServer: () => createProviderServer(meter, upstream.url) });
    const client = await connectClient(host.url);
    for (let i = 0; i < n; i++) await client.callTool({ name: WEATHER, arguments: { city: "Paris" } });
    await client.close();
    await host.close();
  }

  test("a torn last line is cut off; a complete last line without its newline is kept; a corrupt line stops recovery", async () => {
    const dir = tempDir();
    const m1 = createMeter(options(dir, { fsync: "always" }));
    await m1.recover();
    await callsThrough(m1, 2);
    await m1.close();
    const intact = readFileSync(spoolFile(dir));
    const lastLine = intact.subarray(intact.lastIndexOf(0x0a, intact.length - 2) + 1);

    appendFileSync(spoolFile(dir), '{"type":"call","period":202501,"record":{"eventId":"to');
    const m2 = createMeter(options(dir));
    const r2 = await m2.recover();
    expect(r2).toMatchObject({ calls: 2, openRecords: 2, closedBatches: 0 });
    expect(r2.tornBytes).toBeGreaterThan(0);
    expect(readFileSync(spoolFile(dir))).toEqual(intact);
    await callsThrough(m2, 1);
    await m2.close();
    expect(callRecords(readSpool(spoolFile(dir)).lines)).toHaveLength(3);

    // A duplicate of a complete line, minus its newline, stands for a write that completed.
    appendFileSync(spoolFile(dir), lastLine.subarray(0, lastLine.length - 1));
    const m3 = createMeter(options(dir));
    expect(await m3.recover()).toMatchObject({ calls: 4, tornBytes: 0 });
    await m3.close();
    expect(readFileSync(spoolFile(dir)).at(-1)).toBe(0x0a);

    const lines = readFileSync(spoolFile(dir), "utf8").split("\n");
    lines[1] = lines[1].slice(0, 20);
    writeFileSync(spoolFile(dir), lines.join("\n"));
    await expect(createMeter(options(dir)).recover()).rejects.toThrow(SpoolCorruptError);
  });

  test("a submitter's start check: the next batch id must be free on chain; startSequence for an empty spool only", async () => {
    const committed = new Set<string>();
    const submitter = {
      server: SERVER_ADDRESS,
      onBatch: async (b: { batchId: string }) => {
        committed.add(b.batchId);
        return { txHash: null };
      },
      committedBatchHash: async (batchId: `0x${string}`) => (committed.has(batchId) ? (`0x${"11".repeat(32)}` as const) : null),
    };
    expect(() => createMeter(options(tempDir(), { submitter, onBatch: submitter.onBatch }))).toThrow(TypeError);
    expect(() =>
      createMeter(options(tempDir(), { submitter: { ...submitter, server: "0x00000000000000000000000000000000000000e1" } })),
    ).toThrow(/not for the meter's server/);
    expect(() => createMeter(options(tempDir(), { startSequence: 0 }))).toThrow(RangeError);
    // Batches 1 to 5 committed by a spool that is gone: 1 is taken, so the count runs on to 5.
    for (let i = 1; i <= 5; i++) committed.add(batchIdOf(SERVER_ADDRESS, i));
    const dir = tempDir();
    const refusal = await createMeter(options(dir, { submitter }))
      .recover()
      .catch((e: unknown) => e);
    expect(refusal).toMatchObject({ code: "SPOOL_BEHIND_LEDGER", nextSequence: 1, lastCommitted: 5 });
    const resumed = createMeter(options(dir, { submitter, startSequence: 6 }));
    expect(await resumed.recover()).toMatchObject({ nextSequence: 6, closedBatches: 0 });
    await callsThrough(resumed, 1);
    await resumed.flush();
    await resumed.close();
    expect(closeLines(readSpool(resumed.spoolPath).lines).map((l) => l.sequence)).toEqual([6]);
    expect(committed.has(batchIdOf(SERVER_ADDRESS, 6))).toBe(true);
    // The spool carries the numbering from then on.
    const again = createMeter(options(dir, { submitter }));
    expect(await again.recover()).toMatchObject({ nextSequence: 7, closedBatches: 1, unsubmitted: [] });
    await again.close();
  });

  test("one meter per spool", async () => {
    const dir = tempDir();
    const m1 = createMeter(options(dir));
    await m1.recover();
    await expect(createMeter(options(dir)).recover()).rejects.toThrow(SpoolLockedError);
    await m1.close();
    const m2 = createMeter(options(dir));
    await m2.recover();
    expect(statSync(m2.spoolPath).mode & 0o777).toBe(0o600);
    await m2.close();
    // A lock from another host is never taken over (its process cannot be checked from here);
    // a dead process's lock on this host is.
    writeFileSync(`${m2.spoolPath}.lock`, "other-host 12345");
    await expect(createMeter(options(dir)).recover()).rejects.toThrow(/in use by process 12345 on other-host/);
    writeFileSync(`${m2.spoolPath}.lock`, `${hostname()} 2147483646`);
    const m3 = createMeter(options(dir));
    await m3.recover();
    await m3.close();
  });

  test("two processes racing for one spool: one holds it, the other gets SpoolLockedError", async () => {
    const spoolPath = join(tempDir(), "race.jsonl");
    const starters = [0, 1].map(() => {
      const child = spawn(process.execPath, ["--import", "tsx", join(import.meta.dirname, "spool-lock-child.ts")], {
        env: { ...process.env, SPOOL_PATH: spoolPath },
        stdio: ["pipe", "pipe", "inherit"],
      });
      const out: string[] = [];
      let waiting: (() => void)[] = [];
      child.stdout!.on("data", (d: Buffer) => {
        out.push(...d.toString().split("\n").filter(Boolean));
        for (const w of waiting) w();
        waiting = [];
      });
      const lineCount = async (n: number) => {
        while (out.length < n) await new Promise<void>((resolve) => waiting.push(resolve));
      };
      const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
      return { child, out, lineCount, exited };
    });
    cleanups.push(async () => {
      for (const s of starters) s.child.kill();
    });
    await Promise.all(starters.map((s) => s.lineCount(1)));
    // Both loaded: start them at once.
    for (const s of starters) s.child.stdin!.write("go\n");
    await Promise.all(starters.map((s) => s.lineCount(2)));
    expect(starters.map((s) => s.out[1]).sort()).toEqual(["locked", "refused SPOOL_LOCKED"]);
    const winner = starters.find((s) => s.out[1] === "locked")!;
    expect(readFileSync(`${spoolPath}.lock`, "utf8")).toBe(`${hostname()} ${winner.child.pid}`);
    expect(statSync(`${spoolPath}.lock`).mode & 0o777).toBe(0o600);
    winner.child.stdin!.end();
    await Promise.all(starters.map((s) => s.exited));
    expect(existsSync(`${spoolPath}.lock`)).toBe(false);
  });

  test("SIGKILL at random points, before and after batch closes: every call recorded once, sequences kept, redelivery idempotent", async () => {
    const seed = Number(process.env.METER_CRASH_SEED ?? Math.floor(Math.random() * 2 ** 31));
    let state = seed >>> 0;
    const rand = () => {
      state = (state + 0x6d2b79f5) >>> 0;
      let t = state;
      t = Math.imul(t ^ (t >>> 15), t | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
    };
    const why = (msg: string) => `${msg} (METER_CRASH_SEED=${seed})`;

    type Delivery = { pid: number; batchId: string; sequence: number; period: number; eventIds: string[] };
    const deliveries: Delivery[] = [];
    const committed = new Map<string, Delivery>();
    const ledger = createServer((req, res) => {
      let body = "";
      req.on("data", (d: Buffer) => {
        body += d.toString();
      });
      req.on("end", () => {
        const d = JSON.parse(body) as Delivery;
        deliveries.push(d);
        if (!committed.has(d.batchId)) committed.set(d.batchId, d);
        res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ txHash: `0x${d.batchId.slice(2)}` }));
      });
    });
    await new Promise<void>((resolve) => ledger.listen(0, "127.0.0.1", resolve));
    const ledgerUrl = `http://127.0.0.1:${(ledger.address() as AddressInfo).port}/submit`;
    cleanups.push(() => new Promise<void>((resolve) => ledger.close(() => resolve())));

    type Op = { name: string; args: Record<string, string>; provider: string; tool: string; outcome: CallRecord["outcome"] };
    const ops: Op[] = [
      { name: WEATHER, args: { city: "Paris" }, provider: "weather", tool: "getForecast", outcome: "ok" },
      { name: WEATHER, args: { city: "fail" }, provider: "weather", tool: "getForecast", outcome: "tool_error" },
      { name: NEWS, args: { topic: "ai" }, provider: "news", tool: LONG_NEWS_ROUTE, outcome: "ok" },
      { name: FINANCE, args: { symbol: "AAPL" }, provider: "finance", tool: "getQuote", outcome: "ok" },
      { name: FINANCE, args: { symbol: "FAIL" }, provider: "finance", tool: "getQuote", outcome: "exception" },
    ];
    const pick = () => ops[Math.floor(rand() * ops.length)];

    const spoolDir = tempDir();
    const spoolPath = spoolFile(spoolDir);
    const closes = new Map<number, CloseLine>();
    let recorded = 0;
    let killsWithOpenBatch = 0;
    let killsRightAfterClose = 0;
    const MAX_RECORDS = 4;

    for (let cycle = 0; cycle < 6; cycle++) {
      const hold = cycle % 2 === 1;
      const child = await startMeterChild({
        spoolDir,
        ledgerUrl,
        maxRecords: MAX_RECORDS,
        maxAgeMs: 600_000,
        holdAfterCommitMs: hold ? 600_000 : 0,
      });
      expect(child.report.calls, why(`cycle ${cycle}: recovered calls`)).toBe(recorded);
      expect(child.report.closedBatches, why(`cycle ${cycle}: recovered batches`)).toBe(closes.size);
      const client = await connectClient(child.url);
      const n = cycle === 0 ? 3 : cycle === 1 ? 6 : 1 + Math.floor(rand() * 9);
      const completed: Op[] = [];
      for (let i = 0; i < n; i++) {
        const op = pick();
        const result = await client.callTool({ name: op.name, arguments: op.args });
        expect(result.isError === true).toBe(op.outcome !== "ok");
        completed.push(op);
      }
      if (cycle === 1) {
        // Let the closed batch reach the ledger, then die before marking it submitted.
        for (let i = 0; i < 250 && !deliveries.some((d) => d.pid === child.child.pid); i++) await sleep(20);
        expect(deliveries.some((d) => d.pid === child.child.pid)).toBe(true);
      }
      const inflight = rand() < 0.5 ? pick() : null;
      if (inflight) {
        void client.callTool({ name: inflight.name, arguments: inflight.args }).catch(() => undefined);
        await sleep(rand() * 6);
      } else {
        await sleep(rand() * 15);
      }
      child.child.kill("SIGKILL");
      await child.exited;
      void client.close().catch(() => undefined);

      const lines = readSpool(spoolPath).lines;
      const records = callRecords(lines);
      const added = records.slice(recorded);
      expect(added.length, why(`cycle ${cycle}: records added`)).toBeGreaterThanOrEqual(completed.length);
      expect(added.length, why(`cycle ${cycle}: records added`)).toBeLessThanOrEqual(completed.length + (inflight ? 1 : 0));
      const expected = [...completed, ...(inflight ? [inflight] : [])].slice(0, added.length);
      expect(
        added.map((r) => [r.provider, r.tool, r.outcome]),
        why(`cycle ${cycle}`),
      ).toEqual(expected.map((o) => [o.provider, o.tool, o.outcome]));
      recorded = records.length;
      for (const c of closeLines(lines)) {
        if (closes.has(c.sequence)) expect(c, why("a closed batch keeps its sequence")).toEqual(closes.get(c.sequence));
        else closes.set(c.sequence, c);
      }
      const last = lines.at(-1);
      if (last?.type === "call") killsWithOpenBatch++;
      if (last?.type === "close") killsRightAfterClose++;
    }
    expect(killsWithOpenBatch + killsRightAfterClose, why("kill points")).toBeGreaterThan(0);
    expect(closes.size, why("batches closed before the final restart")).toBeGreaterThan(0);

    // Final restart: recover, submit everything, close the open batch, stop cleanly.
    const final = await startMeterChild({
      spoolDir,
      ledgerUrl,
      maxRecords: MAX_RECORDS,
      maxAgeMs: 600_000,
      holdAfterCommitMs: 0,
      flush: true,
    });
    await final.flushed;
    final.child.kill("SIGTERM");
    await final.exited;

    const lines = readSpool(spoolPath).lines;
    const records = callRecords(lines);
    expect(records).toHaveLength(recorded);
    expect(new Set(records.map((r) => r.eventId)).size, why("event ids unique")).toBe(records.length);
    expect(lines.at(-1)?.type).not.toBe("call");
    const finalCloses = closeLines(lines);
    expect(finalCloses.map((c) => c.sequence)).toEqual(finalCloses.map((_, i) => i + 1));
    for (const c of finalCloses) {
      expect(c.batchId).toBe(batchIdOf(SERVER_ADDRESS, c.sequence));
      if (closes.has(c.sequence)) expect(c).toEqual(closes.get(c.sequence));
    }
    const submitted = new Set(lines.flatMap((l) => (l.type === "submitted" ? [l.sequence] : [])));
    expect(
      [...submitted].sort((x, y) => x - y),
      why("every batch submitted"),
    ).toEqual(finalCloses.map((c) => c.sequence));

    // Batches handed over more than once carry the same id, sequence and records; the ledger holds each call once.
    for (const d of deliveries) {
      const first = committed.get(d.batchId)!;
      expect({ sequence: d.sequence, period: d.period, eventIds: d.eventIds }).toEqual({
        sequence: first.sequence,
        period: first.period,
        eventIds: first.eventIds,
      });
    }
    expect(deliveries.length, why("some batch was delivered twice")).toBeGreaterThan(committed.size);
    expect([...committed.keys()].sort()).toEqual(finalCloses.map((c) => c.batchId).sort());
    const ledgerEvents = [...committed.values()].flatMap((d) => d.eventIds);
    expect(ledgerEvents.sort(), why("ledger holds every call exactly once")).toEqual(records.map((r) => r.eventId).sort());
  });
});
