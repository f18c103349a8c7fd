import { execFile } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PROJECT_ROOT } from "../src/eerc/artifacts.js";
import { SERVER_ADDRESS, startUpstream, type Upstream } from "./meter-fixtures.js";

// The meter as an operator gets it: `npm pack`, installed into a fresh project, running the
// README's example against a FlowMCP stand-in that registers tools as FlowMCP does.

const run = promisify(execFile);
const dir = mkdtempSync(join(tmpdir(), "bs-package-"));
const app = join(dir, "app");
let upstream: Upstream;

/** FlowMCP is not on npm: this registers a schema's routes as its `activateServerTools` does. */
const FLOWMCP_STAND_IN = `import { z } from "zod";
const snake = (s) => s.replace(/([a-z0-9])([A-Z])/g, "$1_$2").toLowerCase();
export const FlowMCP = {
  activateServerTools({ server, schema }) {
    for (const [routeName, route] of Object.entries(schema.routes)) {
      const name = \`\${snake(routeName)}_\${snake(schema.namespace)}\`.substring(0, 63).replaceAll(":", "").replaceAll("-", "_").replaceAll("/", "_");
      const shape = Object.fromEntries(route.parameters.map((p) => [p.position.key, z.string()]));
      server.tool(name, route.description, shape, async (userParams) => {
        const res = await fetch(\`\${schema.root}\${route.route}?\${new URLSearchParams(userParams)}\`);
        return { content: [{ type: "text", text: res.ok ? \`Result: \${await res.text()}\` : \`Error: \${res.status}\` }] };
      });
    }
  },
};
export const schemas = [
  { namespace: "weather", root: process.env.UPSTREAM_URL + "/weather", routes: {
    getForecast: { requestMethod: "GET", description: "forecast", route: "/forecast", parameters: [{ position: { key: "city", location: "query" } }] } } },
  { namespace: "wiki", root: process.env.UPSTREAM_URL + "/wiki", routes: {} },
];
`;

/** An MCP client calls the instrumented server; prints what the meter recorded. */
const DRIVER = `import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { InMemoryTransport } from "@modelcontextprotocol/sdk/inMemory.js";
import { meter, server } from "./meter.mjs";
const client = new Client({ name: "agent", version: "1.0.0" });
const [a, b] = InMemoryTransport.createLinkedPair();
await server.connect(b);
await client.connect(a);
for (const city of ["Berlin", "Paris", "fail"]) await client.callTool({ name: "get_forecast_weather", arguments: { city } });
console.log(JSON.stringify(meter.openRecords().map((r) => [r.provider, r.tool, r.outcome, r.billable, String(r.priceMicro)])));
await client.close();
await meter.close();
`;

const readmeExample = (): string => {
  const readme = readFileSync(join(PROJECT_ROOT, "README.md"), "utf8");
  const match = /<!-- meter-example -->\n```js\n([\s\S]*?)```/.exec(readme);
  if (!match) throw new Error("README.md has no meter example");
  return match[1]!;
};

beforeAll(async () => {
  upstream = await startUpstream();
  const packed = await run("npm", ["pack", "--pack-destination", dir, "--json"], { cwd: PROJECT_ROOT, maxBuffer: 64 * 1024 * 1024 });
  const [{ filename }] = JSON.parse(packed.stdout.slice(packed.stdout.indexOf("["))) as { filename: string }[];
  mkdirSync(app);
  writeFileSync(
    join(app, "package.json"),
    JSON.stringify({ name: "app", private: true, type: "module", dependencies: { backendshield: `file:../${filename}` } }),
  );
  await run("npm", ["install", "--no-audit", "--no-fund", "--prefer-offline"], { cwd: app, maxBuffer: 64 * 1024 * 1024 });
  writeFileSync(join(app, "flowmcp.mjs"), FLOWMCP_STAND_IN);
  writeFileSync(join(app, "meter.mjs"), readmeExample());
  writeFileSync(join(app, "drive.mjs"), DRIVER);
});

afterAll(async () => {
  await upstream?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe("the packed meter in a fresh project", () => {
  it("installs without the indexer, the prover, anvil or the pinned Node.js", () => {
    expect(existsSync(join(app, "node_modules/backendshield/dist/src/meter/index.d.ts"))).toBe(true);
    for (const heavy of ["ponder", "snarkjs", "@foundry-rs/anvil", "node", "circom2", "solc", "pg"]) {
      expect(existsSync(join(app, "node_modules", heavy)), heavy).toBe(false);
    }
  });

  it("runs the README's example, at most 15 lines: every FlowMCP tool call recorded, priced, a failure not billed", async () => {
    expect(
      readmeExample()
        .split("\n")
        .filter((l) => l.trim() !== "").length,
    ).toBeLessThanOrEqual(15);
    const { stdout } = await run(process.execPath, ["drive.mjs"], {
      cwd: app,
      env: { ...process.env, SERVER_ADDRESS, UPSTREAM_URL: upstream.url },
    });
    expect(JSON.parse(stdout)).toEqual([
      ["weather", "getForecast", "ok", true, "1500"],
      ["weather", "getForecast", "ok", true, "1500"],
      ["weather", "getForecast", "tool_error", false, "0"],
    ]);
  });
});
