/**
 * The API's and the agent's OpenAPI documents, generated from the route schemas: each is a valid
 * OpenAPI 3.1 document, documents every route its Hono app mounts (a route added without its
 * schema fails here), and the schemas refuse bad input with the field and status the routes answer.
 * The API app is imported as Ponder loads it, with its database and GraphQL/SQL middleware stubbed.
 */
import { Validator } from "@seriousme/openapi-schema-validator";
import type { Hono } from "hono";
import { getAddress, type Hex, keccak256, toHex } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { ANVIL_KEYS } from "../src/chain/local.js";
import { ApiHttpError, ApiResponseError } from "../src/http/errors.js";
import { ApiInputError } from "../src/http/input.js";
import { type OpenApiDocument, openApiPath } from "../src/http/openapi.js";
import { parseRequest } from "../src/http/schema.js";
import { IndexerClient } from "../src/indexer-client/client.js";
import { providerParams, registerRequest, submitRequest, updateRequest } from "../src/indexer-client/schemas.js";
import { submitRequestBody } from "../src/meter/submit.js";
import { AgentClient } from "../src/payout/client.js";
import { AgentMetrics } from "../src/payout/metrics.js";
import { memoryRequestLog } from "../src/payout/requests.js";
import { agentIdOf, distributeTypedData, payoutApp } from "../src/payout/server.js";
import { buildBatch, type CallRecord } from "../src/usage/index.js";
import { recorded } from "./api-fixtures.js";
import { callRecord, randomLineKeys } from "./lines-helpers.js";

vi.mock("ponder:api", () => ({ db: {} }));
vi.mock("ponder:schema", async () => {
  const tables = await import("../ponder.schema.js");
  return { ...tables, default: tables };
});
vi.mock("ponder", async (original) => {
  const passThrough = () => async (_c: unknown, next: () => Promise<void>) => next();
  return { ...(await original<typeof import("ponder")>()), graphql: passThrough, client: passThrough };
});

/** Every operation a Hono app mounts must be in the document, and every documented one mounted. */
function expectRoutesDocumented(app: Hono, doc: OpenApiDocument) {
  const documented = Object.entries(doc.paths).flatMap(([path, ops]) =>
    Object.keys(ops).map((method) => `${method.toUpperCase()} ${path}`),
  );
  const missing: string[] = [];
  for (const route of app.routes) {
    const path = openApiPath(route.path);
    if (route.method !== "ALL") {
      if (!documented.includes(`${route.method} ${path}`)) missing.push(`${route.method} ${route.path}`);
    } else if (path.endsWith("/*")) {
      // A middleware over a prefix (Ponder's SQL client): something under it is documented.
      if (!documented.some((d) => d.split(" ")[1]!.startsWith(path.slice(0, -1)))) missing.push(`ALL ${route.path}`);
    } else if (!documented.some((d) => d.split(" ")[1] === path)) missing.push(`ALL ${route.path}`);
  }
  expect(missing, "mounted but not in the OpenAPI document").toEqual([]);
  const mounted = (d: string) => {
    const [method, path] = d.split(" ") as [string, string];
    return app.routes.some((r) => {
      const p = openApiPath(r.path);
      return (r.method === method || r.method === "ALL") && (p === path || (p.endsWith("/*") && path.startsWith(p.slice(0, -1))));
    });
  };
  expect(
    documented.filter((d) => !mounted(d)),
    "documented but not mounted",
  ).toEqual([]);
}

async function expectValidOpenApi31(doc: unknown) {
  const validator = new Validator();
  const result = await validator.validate(doc as never);
  expect(result.errors ?? [], JSON.stringify(result.errors, null, 1)).toEqual([]);
  expect(result.valid).toBe(true);
  expect(validator.version).toBe("3.1");
}

describe("the query API's OpenAPI document", () => {
  let app: Hono;
  let doc: OpenApiDocument;

  beforeAll(async () => {
    // Contracts from the environment (no manifest) on a chain without local keys: the payout
    // fields and the write routes are off, and every route is still mounted.
    for (const [name, n] of [
      ["EERC_ADDRESS", 1],
      ["REGISTRAR_ADDRESS", 2],
      ["PROVIDER_REGISTRY_ADDRESS", 3],
      ["USAGE_LEDGER_ADDRESS", 4],
      ["REVENUE_POOL_ADDRESS", 5],
    ] as const)
      vi.stubEnv(name, `0x${n.toString(16).padStart(40, "0")}`);
    vi.stubEnv("CHAIN_ID", "43113");
    vi.stubEnv("RPC_URL", "http://127.0.0.1:9");
    vi.spyOn(console, "warn").mockImplementation(() => {});
    app = (await import("../src/api/index.js")).default as unknown as Hono;
    const res = await app.request("/openapi.json");
    expect(res.status).toBe(200);
    doc = (await res.json()) as OpenApiDocument;
  });
  afterAll(() => {
    vi.unstubAllEnvs();
    vi.restoreAllMocks();
  });

  it("is a valid OpenAPI 3.1 document", async () => {
    await expectValidOpenApi31(doc);
  });

  it("documents every route the app mounts, and only those", () => {
    expectRoutesDocumented(app, doc);
    expect(Object.keys(doc.paths)).toEqual(
      expect.arrayContaining(["/accounts/{address}/earnings", "/providers/{providerId}/earnings", "/audit/totals", "/usage/submit"]),
    );
  });

  it("describes both earnings routes and the refusal shape", () => {
    const provider = doc.paths["/providers/{providerId}/earnings"]!.get as { description: string; parameters: { name: string }[] };
    expect(provider.description).toMatch(/provider id .* payout account/);
    expect(provider.description).toMatch(/account address is also accepted/);
    expect(provider.parameters.map((p) => p.name)).toEqual(["providerId", "tokenId"]);
    expect(doc.components.schemas.Error).toMatchObject({ required: ["error"] });
    expect(doc.components.schemas.Earnings).toBeDefined();
  });

  it("answers bad read input with the field it names", async () => {
    const bad = await app.request("/accounts/0x1234/earnings");
    expect({ status: bad.status, body: await bad.json() }).toEqual({
      status: 400,
      body: { error: { field: "address", message: "must be a 0x-prefixed 20-byte hex address" } },
    });
    const badRef = await app.request("/providers/0x1234/earnings");
    expect(((await badRef.json()) as { error: { field: string } }).error.field).toBe("providerId");
    const token = await app.request(`/accounts/${getAddress(`0x${"ab".repeat(20)}`)}/earnings?tokenId=1.5`);
    expect({ status: token.status, field: ((await token.json()) as { error: { field: string } }).error.field }).toEqual({
      status: 400,
      field: "tokenId",
    });
    const period = await app.request("/audit/totals?period=week");
    expect(await period.json()).toEqual({ error: { field: "period", message: 'must be "day" or "month"' } });
  });
});

describe("the agent's OpenAPI document", () => {
  const operator = privateKeyToAccount(ANVIL_KEYS[0]);
  const agentId = agentIdOf("0x610178dA211FEF7D417bC0e6FeD39F05609AD788", "payout");
  const NOW = 1_800_000_000;
  let status: unknown = { state: "idle", progress: null, last: null };
  const app = payoutApp({
    runner: {
      busy: false,
      metrics: new AgentMetrics(),
      status: () => status as never,
      start: async () => ({ status: "nothing_owed" as const, throughBlock: 0n, lastCycle: null }),
    },
    operator: operator.address,
    chainId: 31337,
    agentId,
    requests: memoryRequestLog(),
    now: () => NOW,
  });
  const client = new AgentClient("http://agent.test/", { fetch: ((url: string, init?: RequestInit) => app.request(url, init)) as never });

  it("is a valid OpenAPI 3.1 document that documents every route the agent mounts", async () => {
    const doc = (await (await app.request("/openapi.json")).json()) as OpenApiDocument;
    await expectValidOpenApi31(doc);
    expectRoutesDocumented(app as unknown as Hono, doc);
  });

  it("is called through AgentClient, whose answers are parsed with the same schemas", async () => {
    expect(await client.chain()).toEqual({ chainId: 31337, operator: operator.address, agentId });
    const requestId = `0x${"c3".repeat(32)}` as Hex;
    const deadline = BigInt(NOW + 120);
    const signature = await operator.signTypedData(distributeTypedData(requestId, deadline, 31337, agentId));
    expect(await client.distribute({ requestId, deadline: deadline.toString(), signature })).toEqual({
      accepted: true,
      status: { state: "idle", progress: null, last: null },
    });
    // The same request again: the agent's refusal, with its field, as a typed error.
    const replay = await client.distribute({ requestId, deadline: deadline.toString(), signature }).catch((e: unknown) => e);
    expect(replay).toBeInstanceOf(ApiHttpError);
    expect(replay).toMatchObject({ status: 409, field: "requestId" });
    const late = await client.distribute({ requestId, deadline: String(NOW + 601), signature }).catch((e: unknown) => e);
    expect(late).toMatchObject({ status: 400, field: "deadline", serverMessage: "must be at most 600 s in the future" });
    const malformed = await client.distribute({ requestId: "0x12", deadline: "1", signature }).catch((e: unknown) => e);
    expect(malformed).toMatchObject({ status: 400, field: "requestId", serverMessage: "must be 0x-prefixed 32-byte hex" });
  });

  it("a malformed answer is an ApiResponseError naming the path", async () => {
    status = { state: "idle", progress: null, last: { status: "paid", cycle: "one" } };
    const err = await client.status().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiResponseError);
    expect((err as Error).message).toMatch(/last\.cycle/);
    status = { state: "idle", progress: null, last: null };
  });
});

describe("request schemas: the field and status of each refusal", () => {
  const refusal = (fn: () => unknown) => {
    try {
      fn();
    } catch (e) {
      if (e instanceof ApiInputError) return { field: e.field, status: e.status, message: e.message };
      throw e;
    }
    throw new Error("not refused");
  };

  const keys = randomLineKeys();

  it("the meter's submission body is what the API's schema accepts", () => {
    const records = [callRecord(1), callRecord(2)];
    const server = privateKeyToAccount(ANVIL_KEYS[3]).address;
    const built = buildBatch({ server, sequence: 1, periodStart: 1_000, periodEnd: 2_000, records, keys });
    const body = JSON.parse(JSON.stringify(submitRequestBody(built.batch, 123n, `0x${"11".repeat(65)}`, records)));
    const parsed = parseRequest(submitRequest, body);
    expect(parsed.records).toEqual(records);
    expect(parsed.batch).toEqual({ ...built.batch, encryptedLines: built.batch.encryptedLines.toLowerCase() });
  });

  const built = buildBatch({
    server: privateKeyToAccount(ANVIL_KEYS[3]).address,
    sequence: 2,
    periodStart: 1_000,
    periodEnd: 2_000,
    records: [callRecord(1)],
    keys,
  });
  const batch = {
    ...built.batch,
    periodStart: built.batch.periodStart.toString(),
    periodEnd: built.batch.periodEnd.toString(),
  };
  const submit = { batch, deadline: "123", signature: `0x${"11".repeat(65)}` };

  it("POST /usage/submit", () => {
    expect(refusal(() => parseRequest(submitRequest, { ...submit, extra: 1 }))).toEqual({
      field: "extra",
      status: 400,
      message: "is not an accepted field",
    });
    expect(refusal(() => parseRequest(submitRequest, { ...submit, batch: { ...batch, periodStart: "-1" } }))).toMatchObject({
      field: "batch.periodStart",
      message: "must be a non-negative integer below 2^64 (a decimal string)",
    });
    expect(refusal(() => parseRequest(submitRequest, { ...submit, batch: { ...batch, periodEnd: "999" } }))).toEqual({
      field: "batch.periodEnd",
      status: 400,
      message: "is before periodStart",
    });
    expect(refusal(() => parseRequest(submitRequest, { ...submit, batch: { ...batch, encryptedLines: "0x1234" } }))).toMatchObject({
      field: "batch.encryptedLines",
      message: expect.stringMatching(/^is not in the encrypted lines format/),
    });
    expect(refusal(() => parseRequest(submitRequest, { ...submit, signature: "0x1234" }))).toMatchObject({ field: "signature" });
    expect(refusal(() => parseRequest(submitRequest, { ...submit, deadline: 1.5 }))).toMatchObject({ field: "deadline" });
    expect(refusal(() => parseRequest(submitRequest, []))).toEqual({ field: "body", status: 400, message: "must be a JSON object" });
    const { batch: _b, ...noBatch } = submit;
    expect(refusal(() => parseRequest(submitRequest, noBatch))).toMatchObject({ field: "batch", message: "must be a JSON object" });
  });

  it("call records: the record rule names the field; too many records is a 413", () => {
    const json = (r: CallRecord) => ({ ...r, priceMicro: r.priceMicro.toString() });
    const withRecords = (records: unknown[]) => ({ ...submit, records });
    const first = (patch: Record<string, unknown>) => withRecords([{ ...json(callRecord(1)), ...patch }]);
    expect(refusal(() => parseRequest(submitRequest, first({ priceMicro: "-5" })))).toMatchObject({ field: "records[0].priceMicro" });
    expect(refusal(() => parseRequest(submitRequest, first({ durationMs: -1 })))).toMatchObject({ field: "records[0].durationMs" });
    expect(refusal(() => parseRequest(submitRequest, first({ billable: false })))).toEqual({
      field: "records[0].priceMicro",
      status: 400,
      message: "must be 0 for a non-billable call",
    });
    expect(refusal(() => parseRequest(submitRequest, first({ endedAt: 1 })))).toMatchObject({
      field: "records[0].endedAt",
      message: "is before startedAt",
    });
    expect(refusal(() => parseRequest(submitRequest, first({ color: "red" })))).toEqual({
      field: "records[0].color",
      status: 400,
      message: "is not a call record field",
    });
    expect(refusal(() => parseRequest(submitRequest, withRecords("all" as never)))).toMatchObject({ field: "records" });
    expect(refusal(() => parseRequest(submitRequest, withRecords([])))).toMatchObject({ field: "records" });
    expect(refusal(() => parseRequest(submitRequest, withRecords([json(callRecord(1)), json(callRecord(1))])))).toEqual({
      field: "records[1].eventId",
      status: 400,
      message: "e1 appears more than once",
    });
    expect(refusal(() => parseRequest(submitRequest, first({ startedAt: 1, endedAt: 2 })))).toMatchObject({ field: "records[0]" });
    const many = Array.from({ length: 10_001 }, (_, i) => json(callRecord(i, { eventId: `bulk-${i}`, startedAt: 1_000, endedAt: 1_001 })));
    expect(refusal(() => parseRequest(submitRequest, withRecords(many)))).toEqual({
      field: "records",
      status: 413,
      message: "must hold at most 10000 records",
    });
  });

  it("POST /providers/register and /providers/update", () => {
    const register = {
      namespace: "weather",
      payoutAccount: "0x00000000000000000000000000000000000000b2",
      pricing: { model: "PerCall", pricePerCallMicro: "1500" },
      deadline: "123",
      signature: `0x${"11".repeat(65)}`,
    };
    expect(parseRequest(registerRequest, register).pricing).toEqual({ model: 0, pricePerCallMicro: 1_500n, poolWeight: 0, tiers: [] });
    expect(refusal(() => parseRequest(registerRequest, { ...register, namespace: "coin-gecko" }))).toMatchObject({ field: "namespace" });
    expect(refusal(() => parseRequest(registerRequest, { ...register, pricing: { model: "Flat" } }))).toMatchObject({
      field: "pricing.model",
      message: 'must be "PerCall", "FreePool" or "Tiered" (or 0, 1, 2)',
    });
    expect(
      refusal(() =>
        parseRequest(registerRequest, {
          ...register,
          pricing: {
            model: "Tiered",
            tiers: [
              { upToCalls: "10", priceMicro: "1" },
              { upToCalls: "10", priceMicro: "2" },
            ],
          },
        }),
      ),
    ).toMatchObject({ field: "pricing.tiers[1].upToCalls" });
    expect(
      refusal(() => parseRequest(registerRequest, { ...register, pricing: { model: "FreePool", poolWeight: 1, pricePerCallMicro: "5" } })),
    ).toMatchObject({ field: "pricing.pricePerCallMicro" });
    const update = { providerId: `0x${"03".repeat(32)}`, active: false, deadline: "123", signature: `0x${"11".repeat(65)}` };
    expect(parseRequest(updateRequest, update).active).toBe(false);
    expect(refusal(() => parseRequest(updateRequest, { ...update, pricing: register.pricing }))).toEqual({
      field: "body",
      status: 400,
      message: "must set exactly one of pricing, active, payoutAccount",
    });
    expect(refusal(() => parseRequest(updateRequest, { ...update, providerId: "0x12" }))).toMatchObject({ field: "providerId" });
  });

  it("providerId of the earnings route: a provider id or an account address", () => {
    const id = keccak256(toHex("weather"));
    expect(parseRequest(providerParams, { providerId: id.toUpperCase().replace("0X", "0x") }).providerId).toEqual({
      kind: "provider",
      providerId: id,
    });
    const account = getAddress(`0x${"ab".repeat(20)}`);
    expect(parseRequest(providerParams, { providerId: account.toLowerCase() }).providerId).toEqual({ kind: "account", account });
    expect(refusal(() => parseRequest(providerParams, { providerId: "0x1234" }))).toEqual({
      field: "providerId",
      status: 400,
      message: "must be a 32-byte provider id or a 0x-prefixed 20-byte hex address",
    });
  });
});

describe("IndexerClient parses answers with the API's schemas", () => {
  const earnings = recorded("provider-earnings.json") as { account: string };
  const answer = (body: unknown, status = 200) =>
    (async () => new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json" } })) as never;

  it("calls the canonical route and types the recorded answer", async () => {
    const seen: string[] = [];
    const fetch = (async (url: string) => {
      seen.push(url);
      return new Response(JSON.stringify(earnings), { status: 200 });
    }) as never;
    const e = await new IndexerClient("http://api.test/base", { fetch }).earnings(earnings.account as Hex, { tokenId: 1n });
    expect(seen).toEqual([`http://api.test/base/accounts/${earnings.account}/earnings?tokenId=1`]);
    expect(typeof e.balanceHistory[0]!.blockNumber).toBe("bigint");
    const id = keccak256(toHex("weather"));
    seen.length = 0;
    await new IndexerClient("http://api.test", { fetch }).providerEarnings(id);
    expect(seen).toEqual([`http://api.test/providers/${id}/earnings`]);
  });

  it("a malformed answer is an ApiResponseError naming the path; a refusal an ApiHttpError with its field", async () => {
    const bad = structuredClone(earnings) as unknown as Record<string, unknown> & { tokens: Record<string, unknown>[] };
    bad.tokens[0]!.tokenId = "one";
    const err = await new IndexerClient("http://api.test", { fetch: answer(bad) })
      .earnings(earnings.account as Hex)
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiResponseError);
    expect((err as Error).message).toMatch(/tokens\[0\]\.tokenId must be a non-negative integer/);
    const refused = await new IndexerClient("http://api.test", {
      fetch: answer({ error: { field: "batch.server", message: "is not an authorised server on the UsageLedger" } }, 403),
    })
      .submitUsage(submitShape())
      .catch((e: unknown) => e);
    expect(refused).toMatchObject({ status: 403, field: "batch.server" });
  });
});

function submitShape() {
  return {
    batch: {
      server: "0x00000000000000000000000000000000000000b1",
      batchId: `0x${"01".repeat(32)}`,
      periodStart: "1",
      periodEnd: "2",
      merkleRoot: `0x${"02".repeat(32)}`,
      encryptedLines: "0x00",
    },
    deadline: "1",
    signature: `0x${"11".repeat(65)}`,
  };
}
