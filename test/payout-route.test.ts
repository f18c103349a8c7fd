import { mkdtempSync, readFileSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Hex } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { describe, expect, it } from "vitest";
import { ANVIL_KEYS } from "../src/chain/local.js";
import { AgentMetrics } from "../src/payout/metrics.js";
import { fileRequestLog } from "../src/payout/requests.js";
import { agentIdOf, distributeTypedData, MAX_AGENT_BODY_BYTES, payoutApp } from "../src/payout/server.js";

// The agent's HTTP route in process, with a runner that only counts the cycles it is asked for.

const operator = privateKeyToAccount(ANVIL_KEYS[0]);
const LEDGER = "0x610178dA211FEF7D417bC0e6FeD39F05609AD788";
const CHAIN = 31337;
const NOW = 1_800_000_000;
const agentId = agentIdOf(LEDGER, "payout");

function agent(requestsFile: string, corsOrigins?: string[]) {
  const started: string[] = [];
  const runner = {
    busy: false,
    metrics: new AgentMetrics(),
    status: () => ({ state: "idle" as const, progress: null, last: null }),
    start: async (trigger: string) => {
      started.push(trigger);
      return { status: "nothing_owed" as const, throughBlock: 0n, lastCycle: null };
    },
  };
  const app = payoutApp({
    runner,
    operator: operator.address,
    chainId: CHAIN,
    agentId,
    requests: fileRequestLog(requestsFile, BigInt(NOW)),
    now: () => NOW,
    corsOrigins,
  });
  const post = async (body: unknown, headers: Record<string, string> = { "content-type": "application/json" }) => {
    const res = await app.request("/revenue/distribute", {
      method: "POST",
      headers,
      body: typeof body === "string" ? body : JSON.stringify(body),
    });
    return { status: res.status, body: (await res.json()) as { error?: { field: string | null; message: string } } };
  };
  return { app, post, started };
}

async function signed(id: string, forAgent: Hex = agentId) {
  const requestId = `0x${id.repeat(64 / id.length)}` as Hex;
  const deadline = BigInt(NOW + 120);
  const signature = await operator.signTypedData(distributeTypedData(requestId, deadline, CHAIN, forAgent));
  return { requestId, deadline: deadline.toString(), signature };
}

describe("POST /revenue/distribute", () => {
  it("names its agent: the chain answer carries the id, and a request signed for another agent is refused", async () => {
    const { app, post, started } = agent(join(mkdtempSync(join(tmpdir(), "agent-")), "requests.jsonl"));
    expect(await (await app.request("/revenue/chain")).json()).toEqual({ chainId: CHAIN, operator: operator.address, agentId });
    const other = await post(await signed("a1", agentIdOf(LEDGER, "other")));
    expect(other.status).toBe(403);
    expect(other.body.error?.field).toBe("signature");
    expect((await post(await signed("a2"))).status).toBe(202);
    expect(started).toHaveLength(1);
  });

  it("refuses a request replayed after the agent restarts, from the file it keeps (mode 0600)", async () => {
    const file = join(mkdtempSync(join(tmpdir(), "agent-")), "requests.jsonl");
    const request = await signed("b1");
    expect((await agent(file).post(request)).status).toBe(202);
    const restarted = agent(file);
    const replay = await restarted.post(request);
    expect(replay.status).toBe(409);
    expect(replay.body.error?.field).toBe("requestId");
    expect(restarted.started).toHaveLength(0);
    expect(readFileSync(file, "utf8").trim().split("\n")).toHaveLength(1);
    expect(statSync(file).mode & 0o777).toBe(0o600);
  });

  it("reads no body over its limit and only JSON", async () => {
    const { post, started } = agent(join(mkdtempSync(join(tmpdir(), "agent-")), "requests.jsonl"));
    const big = await post({ ...(await signed("c1")), padding: "x".repeat(MAX_AGENT_BODY_BYTES) });
    expect({ status: big.status, field: big.body.error?.field }).toEqual({ status: 413, field: "body" });
    const text = await post(JSON.stringify(await signed("c2")), { "content-type": "text/plain" });
    expect({ status: text.status, field: text.body.error?.field }).toEqual({ status: 415, field: "body" });
    expect(started).toHaveLength(0);
  });
});

describe("CORS (AGENT_CORS_ORIGIN)", () => {
  const DASHBOARD = "http://127.0.0.1:42069";
  const preflight = (app: ReturnType<typeof agent>["app"], origin: string) =>
    app.request("/revenue/distribute", {
      method: "OPTIONS",
      headers: { origin, "access-control-request-method": "POST", "access-control-request-headers": "content-type" },
    });

  it("sends no CORS header unless an origin is configured", async () => {
    const { app } = agent(join(mkdtempSync(join(tmpdir(), "agent-")), "requests.jsonl"));
    const res = await app.request("/revenue/status", { headers: { origin: DASHBOARD } });
    expect(res.headers.get("access-control-allow-origin")).toBeNull();
    expect((await preflight(app, DASHBOARD)).headers.get("access-control-allow-origin")).toBeNull();
  });

  it("allows the configured origin to read and to send a JSON distribute request, and no other origin", async () => {
    const { app, post, started } = agent(join(mkdtempSync(join(tmpdir(), "agent-")), "requests.jsonl"), [DASHBOARD]);
    const read = await app.request("/revenue/status", { headers: { origin: DASHBOARD } });
    expect(read.headers.get("access-control-allow-origin")).toBe(DASHBOARD);
    const allowed = await preflight(app, DASHBOARD);
    expect(allowed.headers.get("access-control-allow-origin")).toBe(DASHBOARD);
    expect(allowed.headers.get("access-control-allow-methods")).toBe("GET,POST");
    expect(allowed.headers.get("access-control-allow-headers")).toBe("content-type");
    const other = await app.request("/revenue/status", { headers: { origin: "https://elsewhere.example" } });
    expect(other.headers.get("access-control-allow-origin")).toBeNull();
    // Still JSON only: a form-encoded body, which a page could send without a preflight, is refused.
    const form = await post("requestId=0x", { "content-type": "application/x-www-form-urlencoded", origin: DASHBOARD });
    expect({ status: form.status, field: form.body.error?.field }).toEqual({ status: 415, field: "body" });
    expect((await post(await signed("d1"), { "content-type": "application/json", origin: DASHBOARD })).status).toBe(202);
    expect(started).toHaveLength(1);
  });
});

describe("GET /health and /metrics", () => {
  it("answer for a supervisor and Prometheus: counts and timings of cycles, never an amount", async () => {
    const { app } = agent(join(mkdtempSync(join(tmpdir(), "agent-")), "requests.jsonl"));
    expect(await (await app.request("/health")).json()).toEqual({ ok: true, state: "idle" });
    const metrics = new AgentMetrics();
    const paid = (proveMs: number[]) =>
      ({
        status: "paid",
        cycle: 1,
        throughBlock: 10n,
        resumed: false,
        poolMicro: 123_456n,
        paidMicro: 654_321n,
        recoveries: 1,
        reverted: 3,
        transfers: proveMs.map((ms, i) => ({ seq: i + 1, amount: 777_777n, proveMs: ms })),
        deferred: [{ seq: 3, amount: 777_777n, reason: "receiver_queue_full" }],
      }) as never;
    metrics.recordCycle(paid([1500, 3000]), 12.5);
    metrics.recordCycle({ status: "nothing_owed", throughBlock: 11n, lastCycle: 1 }, 0.2);
    metrics.recordFailure(3);
    const text = metrics.render(false);
    expect(text).toContain('backendshield_agent_cycles_total{status="paid"} 1');
    expect(text).toContain('backendshield_agent_cycles_total{status="nothing_owed"} 1');
    expect(text).toContain('backendshield_agent_cycles_total{status="failed"} 1');
    expect(text).toContain("backendshield_agent_transfers_total 2");
    expect(text).toContain("backendshield_agent_recoveries_total 1");
    expect(text).toContain("backendshield_agent_reverted_transfers_total 3");
    expect(text).toContain("backendshield_agent_deferred_total 1");
    expect(text).toContain('backendshield_agent_prove_seconds_bucket{le="2"} 1');
    expect(text).toContain('backendshield_agent_prove_seconds_bucket{le="4"} 2');
    expect(text).toContain("backendshield_agent_prove_seconds_sum 4.5");
    expect(text).toContain("backendshield_agent_last_cycle_seconds 3");
    for (const amount of ["123456", "654321", "777777"]) expect(text).not.toContain(amount);
    const served = await app.request("/metrics");
    expect(served.headers.get("content-type")).toMatch(/^text\/plain/);
    expect(await served.text()).toContain("backendshield_agent_cycle_running 0");
  });
});
