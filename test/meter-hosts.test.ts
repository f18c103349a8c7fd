/**
 * The metered MCP endpoint mounted in hosts an operator already runs: an Express app (as
 * FlowMCP's RemoteServer is) and a Hono app. Real MCP clients call FlowMCP-registered tools
 * through each; the records are metered per namespace and the batch is committed on anvil,
 * where the operator's decryption of the committed lines is the reference.
 */
import { mkdtempSync, rmSync } from "node:fs";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { serve } from "@hono/node-server";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import express from "express";
import { Hono } from "hono";
import { type Hex, type PrivateKeyAccount, parseEventLogs } from "viem";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { ProviderRegistryAbi } from "../abis/ProviderRegistryAbi.js";
import { UsageLedgerAbi } from "../abis/UsageLedgerAbi.js";
import { type Anvil, startAnvil } from "../src/chain/anvil.js";
import { type ChainClients, connectChain } from "../src/chain/clients.js";
import type { DeploymentManifest } from "../src/deployment/manifest.js";
import { Prover } from "../src/eerc/prover.js";
import { activateServerTools } from "../src/local/flowmcp.js";
import {
  createBatchSubmitter,
  createMeter,
  flowMcpAttribution,
  flowMcpFailed,
  flowMcpToolName,
  type McpSessions,
  type Meter,
  mcpHonoHandler,
  mcpRequestHandler,
  readSpool,
  registryPricing,
  serveMcpOverHttp,
} from "../src/meter/index.js";
import { decryptLinesFor, providerIdOf } from "../src/usage/index.js";
import { accounts, connectClient as connectEerc, deployForTests } from "./indexer-helpers.js";
import { connectClient, flowMcpSchemas, LONG_NEWS_ROUTE, PRICES, PRICING, startUpstream, type Upstream } from "./meter-fixtures.js";

const OPERATOR = 0;
const PAYOUT: Record<string, number> = { weather: 2, news: 3, finance: 4 };
const WEATHER = flowMcpToolName("getForecast", "weather");
const NEWS = flowMcpToolName(LONG_NEWS_ROUTE, "news");
const FINANCE = flowMcpToolName("getQuote", "finance");

/** Per host: weather 4 calls (one failing), news 2, finance 2 (one failing). */
const PLAN: [tool: string, args: Record<string, string>][] = [
  [WEATHER, { city: "Paris" }],
  [NEWS, { topic: "economy" }],
  [WEATHER, { city: "Oslo" }],
  [FINANCE, { symbol: "AAPL" }],
  [WEATHER, { city: "fail" }],
  [WEATHER, { city: "Rome" }],
  [FINANCE, { symbol: "FAIL" }],
  [NEWS, { topic: "sports" }],
];

/**
 * weather: calls 1 and 2 free, the failure neither billed nor counted against the quota, Rome the
 * third billable call at 1,500. news: free pool, 0. finance: AAPL at 2,500, the failure not billed.
 */
const EXPECTED = {
  weather: { calls: 4n, billableCalls: 3n, amountMicro: 1_500n, revenueMicro: 0n },
  news: { calls: 2n, billableCalls: 2n, amountMicro: 0n, revenueMicro: 0n },
  finance: { calls: 2n, billableCalls: 1n, amountMicro: 2_500n, revenueMicro: 0n },
};

type Host = McpSessions & { url: string; stop(): Promise<void> };
type Answer = { status: number; contentType: string | null; body: string };

/** Requests no session can serve: GET and DELETE without a session id, a POST naming an unknown one. */
const BAD_REQUESTS: { what: string; init: RequestInit; status: number; error: string }[] = [
  {
    what: "GET without session",
    init: { method: "GET", headers: { accept: "text/event-stream" } },
    status: 400,
    error: "missing mcp-session-id",
  },
  { what: "DELETE without session", init: { method: "DELETE" }, status: 400, error: "missing mcp-session-id" },
  {
    what: "POST to an unknown session",
    init: {
      method: "POST",
      headers: { "content-type": "application/json", accept: "application/json, text/event-stream", "mcp-session-id": "no-such-session" },
      body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/list" }),
    },
    status: 404,
    error: "unknown session",
  },
];

const answerOf = async (res: Response): Promise<Answer> => ({
  status: res.status,
  contentType: res.headers.get("content-type"),
  body: await res.text(),
});

let upstream: Upstream;
let anvil: Anvil;
let chain: ChainClients;
let manifest: DeploymentManifest;
let operatorKey: bigint;
const prover = new Prover();
const dirs: string[] = [];

/** A FlowMCP server as FlowMCP builds one, instrumented by `meter` before its tools are activated. */
function createFlowMcpServer(meter: Meter): McpServer {
  const schemas = flowMcpSchemas(upstream.url);
  const server = meter.instrument(new McpServer({ name: "flowmcp-hosted", version: "1.0.0" }), {
    attribution: flowMcpAttribution(schemas),
    failed: flowMcpFailed,
  });
  for (const schema of schemas) activateServerTools({ server, schema });
  return server;
}

/** A meter signing as `server`, priced from the ProviderRegistry, committing each batch itself on the UsageLedger. */
async function chainMeter(server: PrivateKeyAccount) {
  const spoolDir = mkdtempSync(join(tmpdir(), "meter-hosts-"));
  dirs.push(spoolDir);
  const { providerRegistry: registry, usageLedger: ledger, registrar, encryptedERC: eerc } = manifest.contracts;
  const pricing = await registryPricing({ publicClient: chain.publicClient, registry, namespaces: Object.keys(PRICES) });
  const submitter = createBatchSubmitter({
    serverAccount: server,
    publicClient: chain.publicClient,
    ledger,
    registry,
    registrar,
    eerc,
    mode: { kind: "direct" },
  });
  const submitErrors: unknown[] = [];
  const meter = createMeter({
    spoolDir,
    serverAddress: server.address,
    pricing,
    batch: { maxAgeMs: 600_000 },
    submitter,
    retry: { minMs: 100, maxMs: 1_000 },
    onSubmitError: (err) => submitErrors.push(err),
  });
  await meter.recover();
  return {
    meter,
    submitErrors,
    close: async () => {
      await meter.close();
      pricing.close();
    },
  };
}

async function startExpress(meter: Meter): Promise<Host> {
  const handler = mcpRequestHandler({ createMcpServer: () => createFlowMcpServer(meter) });
  const app = express();
  // As FlowMCP's RemoteServer does: the body is parsed, and the request stream spent, before the handler runs.
  app.use(express.json());
  app.all("/mcp", handler);
  const http = await new Promise<Server>((resolve, reject) => {
    const s = app.listen(0, "127.0.0.1", (err?: Error) => (err ? reject(err) : resolve(s)));
  });
  return {
    url: `http://127.0.0.1:${(http.address() as AddressInfo).port}/mcp`,
    sessions: handler.sessions,
    close: handler.close,
    async stop() {
      await handler.close();
      http.closeAllConnections();
      await new Promise<void>((resolve) => http.close(() => resolve()));
    },
  };
}

async function startHono(meter: Meter): Promise<Host & { app: Hono }> {
  const handler = mcpHonoHandler({ createMcpServer: () => createFlowMcpServer(meter) });
  const app = new Hono();
  app.all("/mcp", handler);
  const http = await new Promise<Server>((resolve) => {
    const s = serve({ fetch: app.fetch, port: 0, hostname: "127.0.0.1" }, () => resolve(s as Server));
  });
  return {
    app,
    url: `http://127.0.0.1:${(http.address() as AddressInfo).port}/mcp`,
    sessions: handler.sessions,
    close: handler.close,
    async stop() {
      await handler.close();
      http.closeAllConnections();
      await new Promise<void>((resolve) => http.close(() => resolve()));
    },
  };
}

beforeAll(async () => {
  upstream = await startUpstream();
  anvil = await startAnvil();
  chain = await connectChain(anvil.rpcUrl);
  manifest = (await deployForTests({ rpcUrl: anvil.rpcUrl, prover })) as DeploymentManifest;
  const send = async (functionName: string, address: Hex, abi: readonly unknown[], args: readonly unknown[]) => {
    const hash = await chain.walletFor(accounts[OPERATOR]!).writeContract({ address, abi, functionName, args } as never);
    expect((await chain.publicClient.waitForTransactionReceipt({ hash })).status, functionName).toBe("success");
  };
  // Lines are encrypted to the operator's and each payout account's eERC key: all registered, with real proofs.
  const operator = await connectEerc(chain, manifest, prover, OPERATOR);
  await operator.register();
  operatorKey = operator.exportPrivateKey();
  for (const [namespace, i] of Object.entries(PAYOUT)) {
    await (await connectEerc(chain, manifest, prover, i)).register();
    await send("registerProvider", manifest.contracts.providerRegistry, ProviderRegistryAbi, [
      namespace,
      accounts[i]!.address,
      PRICES[namespace],
    ]);
  }
  for (const server of [accounts[6]!, accounts[7]!]) {
    await send("setServer", manifest.contracts.usageLedger, UsageLedgerAbi, [server.address, true]);
  }
});

afterAll(async () => {
  await upstream?.close();
  await prover.close();
  await anvil?.stop();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

// Each host meters as its own server, so the two meters' batch ids never meet on the ledger.
describe.each([
  { name: "Express", start: startExpress, server: accounts[6]! },
  { name: "Hono", start: startHono, server: accounts[7]! },
])("mounted in $name", ({ start, server }) => {
  let metered: Awaited<ReturnType<typeof chainMeter>>;
  let host: Host;
  let reference: Awaited<ReturnType<typeof serveMcpOverHttp>>;

  beforeAll(async () => {
    metered = await chainMeter(server);
    host = await start(metered.meter);
    reference = await serveMcpOverHttp({ createMcpServer: () => createFlowMcpServer(metered.meter) });
  });

  afterAll(async () => {
    await host?.stop();
    await reference?.close();
    await metered?.close();
  });

  test("FlowMCP tools called through the host are metered per namespace and the batch is committed on the UsageLedger", async () => {
    const client: Client = await connectClient(host.url);
    expect(host.sessions()).toBe(1);
    expect((await client.listTools()).tools.map((t) => t.name).sort()).toEqual([WEATHER, NEWS, FINANCE].sort());
    for (const [tool, args] of PLAN) {
      const result = await client.callTool({ name: tool, arguments: args });
      const failing = args.city === "fail" || args.symbol === "FAIL";
      expect(
        (result.content as { text: string }[])[0]!.text.startsWith(failing ? "Error: 500" : "Result: "),
        `${tool} ${JSON.stringify(args)}`,
      ).toBe(true);
    }
    // Ending the session is a DELETE through the host.
    await (client.transport as StreamableHTTPClientTransport).terminateSession();
    await client.close();
    expect(host.sessions()).toBe(0);

    const { meter } = metered;
    expect(meter.openRecords().map((r) => [r.provider, r.tool, r.outcome, r.priceMicro])).toEqual([
      ["weather", "getForecast", "ok", 0n],
      ["news", LONG_NEWS_ROUTE, "ok", 0n],
      ["weather", "getForecast", "ok", 0n],
      ["finance", "getQuote", "ok", 2_500n],
      ["weather", "getForecast", "tool_error", 0n],
      ["weather", "getForecast", "ok", 1_500n],
      ["finance", "getQuote", "tool_error", 0n],
      ["news", LONG_NEWS_ROUTE, "ok", 0n],
    ]);

    await meter.flush();
    expect(metered.submitErrors).toEqual([]);
    const lines = readSpool(meter.spoolPath).lines;
    const submitted = lines.flatMap((l) => (l.type === "submitted" ? [l] : []));
    expect(submitted.map((s) => s.sequence)).toEqual([1]);
    const receipt = await chain.publicClient.getTransactionReceipt({ hash: submitted[0]!.txHash as Hex });
    expect(receipt.status).toBe("success");
    const [commit] = parseEventLogs({ abi: UsageLedgerAbi, logs: receipt.logs, eventName: "UsageCommitted" });
    expect(commit!.args.server).toBe(server.address);
    expect(commit!.args.batchId).toBe(lines.find((l) => l.type === "close")!.batchId);

    // What the chain holds, read with the operator's key, is what the host metered.
    const onChain = decryptLinesFor(commit!.args.encryptedLines, operatorKey, "operator");
    expect(onChain).toEqual(
      Object.entries(EXPECTED)
        .map(([namespace, totals]) => ({ providerId: providerIdOf(namespace), ...totals }))
        .sort((a, b) => (a.providerId < b.providerId ? -1 : 1)),
    );
  });

  test("requests no session can serve get the same JSON answer as serveMcpOverHttp", async () => {
    for (const { what, init, status, error } of BAD_REQUESTS) {
      const mounted = await answerOf(await fetch(host.url, init));
      expect(mounted, what).toEqual({ status, contentType: "application/json", body: JSON.stringify({ error }) });
      expect(mounted, what).toEqual(await answerOf(await fetch(reference.url, init)));
    }
    expect(host.sessions()).toBe(0);
  });
});

test("the Hono handler serves a metered session with no Node server in front, as on any other Hono runtime", async () => {
  const spoolDir = mkdtempSync(join(tmpdir(), "meter-hosts-"));
  dirs.push(spoolDir);
  const meter = createMeter({ spoolDir, serverAddress: accounts[8]!.address, pricing: PRICING, batch: { maxAgeMs: 600_000 } });
  await meter.recover();
  const handler = mcpHonoHandler({ createMcpServer: () => createFlowMcpServer(meter) });
  const app = new Hono().all("/mcp", handler);
  // app.request hands the Request straight to the app: no socket, no @hono/node-server.
  const client = new Client({ name: "in-process", version: "1.0.0" });
  await client.connect(
    new StreamableHTTPClientTransport(new URL("http://hono.invalid/mcp"), { fetch: async (url, init) => app.request(String(url), init) }),
  );
  try {
    await client.callTool({ name: FINANCE, arguments: { symbol: "ACME" } });
    expect(meter.openRecords().map((r) => [r.provider, r.tool, r.outcome, r.priceMicro])).toEqual([["finance", "getQuote", "ok", 2_500n]]);
    for (const { what, init, status, error } of BAD_REQUESTS) {
      expect(await answerOf(await app.request("/mcp", init)), what).toEqual({
        status,
        contentType: "application/json",
        body: JSON.stringify({ error }),
      });
    }
  } finally {
    await client.close();
    await handler.close();
    await meter.close();
  }
});
