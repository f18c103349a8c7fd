import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { activateServerTools, type FlowMcpSchema } from "../src/local/flowmcp.js";
import { flowMcpAttribution, flowMcpFailed, type Meter, type ToolPayment } from "../src/meter/index.js";

// The demo's FlowMCP-style server: six providers' APIs on one loopback HTTP server, and an MCP
// server whose tools call them through the meter.

export type DemoApis = { url: string; close(): Promise<void> };

/** Six small provider APIs. `q=fail` makes an API answer 500 (the call is counted, not billed). */
export async function startDemoApis(): Promise<DemoApis> {
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://apis");
    const q = url.searchParams.get("q") ?? "";
    const json = (status: number, body: unknown) => res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body));
    if (q === "fail") return json(500, { error: "upstream unavailable" });
    switch (url.pathname) {
      case "/weather":
        return json(200, { city: q, tempC: 12 + (q.length % 10) });
      case "/finance":
        return json(200, { symbol: q, priceCents: 10_000 + q.length * 17 });
      case "/news":
        return json(200, { topic: q, headlines: [`${q} today`, `${q} explained`] });
      case "/wiki":
        return json(200, { title: q, summary: `${q} is a topic of the free encyclopedia.` });
      case "/maps":
        return json(200, { place: q, lat: 48.2, lon: 16.37 });
      case "/units":
        return json(200, { query: q, metres: q.length * 1000 });
      default:
        return json(404, { error: "not found" });
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export const DEMO_TOOLS = {
  weather: { route: "getCurrentWeather", path: "/weather" },
  finance: { route: "getStockQuote", path: "/finance" },
  news: { route: "searchHeadlines", path: "/news" },
  wiki: { route: "getArticleSummary", path: "/wiki" },
  maps: { route: "geocodePlace", path: "/maps" },
  units: { route: "convertUnits", path: "/units" },
} as const;

export type DemoNamespace = keyof typeof DEMO_TOOLS;

/** The FlowMCP schemas of the demo's providers: one GET route each, on the demo APIs. */
export function demoSchemas(apisUrl: string): FlowMcpSchema[] {
  return Object.entries(DEMO_TOOLS).map(([namespace, t]) => ({
    namespace,
    root: apisUrl,
    routes: {
      [t.route]: {
        requestMethod: "GET",
        description: `${namespace}: ${t.route}`,
        route: t.path,
        parameters: [{ position: { key: "q", location: "query" } }],
      },
    },
  }));
}

/**
 * One MCP server (per session) serving the providers' schemas as FlowMCP does, its tool
 * registrations metered by `meter.instrument`; a failing API answers "Error: …", not billed.
 * With `payment`, every call is charged with x402 (the provider's price plus the surcharge).
 */
export function createDemoMcpServer(meter: Meter, apisUrl: string, payment?: ToolPayment): McpServer {
  const schemas = demoSchemas(apisUrl);
  const server = meter.instrument(new McpServer({ name: "flowmcp-demo", version: "1.0.0" }), {
    attribution: flowMcpAttribution(schemas),
    failed: flowMcpFailed,
    ...(payment && { payment }),
  });
  for (const schema of schemas) activateServerTools({ server, schema });
  return server;
}
