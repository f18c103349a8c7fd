/**
 * Hostile requests against every HTTP route of the query API (a real indexer on Postgres with SQL
 * over HTTP on, a real anvil) and of the payout agent's app, each with the status and error field
 * it must be answered with. Then nothing may have changed: no block mined, no registry nonce or
 * UsageLedger commitment moved, no provider or usage commitment indexed, no cycle started.
 */

import { randomBytes } from "node:crypto";
import { request } from "node:http";
import { join } from "node:path";
import pg from "pg";
import { type Address, type Hex, keccak256, type TypedDataDefinition, toHex } from "viem";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ProviderRegistryAbi } from "../abis/ProviderRegistryAbi.js";
import { UsageLedgerAbi } from "../abis/UsageLedgerAbi.js";
import { GRAPHQL_LIMITS } from "../src/api/graphql-limits.js";
import { type Anvil, startAnvil } from "../src/chain/anvil.js";
import { type ChainClients, connectChain } from "../src/chain/clients.js";
import type { DeploymentManifest } from "../src/deployment/manifest.js";
import { Prover } from "../src/eerc/prover.js";
import { type RunningIndexer, startIndexer } from "../src/indexer/process.js";
import { IndexerClient } from "../src/indexer-client/client.js";
import { submitRequestBody } from "../src/meter/submit.js";
import { AgentMetrics } from "../src/payout/metrics.js";
import { agentIdOf, distributeTypedData, payoutApp } from "../src/payout/server.js";
import {
  batchTypedData,
  buildBatch,
  type CallRecord,
  fetchLineKeys,
  type LineKeys,
  nonceKeyOf,
  providerIdOf,
  registerProviderTypedData,
  setActiveTypedData,
  type UsageBatch,
} from "../src/usage/index.js";
import { perCall } from "../src/usage/pricing.js";
import { accounts, connectClient, deployForIndexer } from "./indexer-helpers.js";

const ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres";
const [operator, alphaPayout, unregistered, , , , server, rogue] = accounts;
const SQL_TIMEOUT_MS = 1_000;
const SQL_MAX_ROWS = 50;

type Answer = { status: number; field: string | null | undefined; text: string };
/** A hostile request and how it must be answered; `field: undefined` for a non-JSON answer (static files). */
type Case = { name: string; send: () => Promise<Answer>; status: number; field: string | null | undefined };

const unixNow = () => Math.floor(Date.now() / 1000);

async function asAnswer(res: Response): Promise<Answer> {
  const text = await res.text();
  let field: string | null | undefined;
  if ((res.headers.get("content-type") ?? "").includes("application/json"))
    field = (JSON.parse(text) as { error?: { field: string | null } }).error?.field;
  return { status: res.status, field, text };
}

/** Declares a body of `bytes` bytes and sends 64 KiB of it: the answer must come from the declared length. */
const declaringSize = (url: string, bytes: number): Promise<Answer> =>
  new Promise((resolve, reject) => {
    const req = request(url, { method: "POST", headers: { "content-type": "application/json", "content-length": String(bytes) } });
    req.on("response", (res) => {
      let text = "";
      res.on("data", (d) => (text += d));
      res.on("end", () => {
        req.destroy();
        resolve({ status: res.statusCode!, field: (JSON.parse(text) as { error: { field: string } }).error.field, text });
      });
    });
    req.on("error", reject);
    req.write(Buffer.alloc(64 * 1024, " "));
  });

describe("hostile requests on every route: refused with the right status and field, nothing written", () => {
  let anvil: Anvil;
  let chain: ChainClients;
  const prover = new Prover();
  let manifest: DeploymentManifest;
  let indexer: RunningIndexer;
  let keys: LineKeys;
  const database = `bs_badinput_${randomBytes(6).toString("hex")}`;

  const admin = async (query: string) => {
    const c = new pg.Client({ connectionString: ADMIN_URL });
    await c.connect();
    try {
      await c.query(query);
    } finally {
      await c.end();
    }
  };
  const registryTarget = () => ({ chainId: chain.chain.id, registry: manifest.contracts.providerRegistry });
  const ledgerTarget = () => ({ chainId: chain.chain.id, ledger: manifest.contracts.usageLedger });
  const laneNonce = (namespace: string) =>
    chain.publicClient.readContract({
      address: manifest.contracts.providerRegistry,
      abi: ProviderRegistryAbi,
      functionName: "nonces",
      args: [operator!.address, nonceKeyOf(providerIdOf(namespace))],
    } as never) as Promise<bigint>;

  const http = async (method: string, path: string, body?: string, headers: Record<string, string> = {}) =>
    asAnswer(await fetch(`${indexer.url}${path}`, { method, body, headers: { "content-type": "application/json", ...headers } }));
  const postJson = (path: string, body: unknown) => http("POST", path, JSON.stringify(body));
  const graphqlData = async (query: string) => {
    const res = await fetch(`${indexer.url}/graphql`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ query }),
    });
    const body = (await res.json()) as { data?: Record<string, { totalCount: number }>; errors?: unknown };
    expect(body.errors, JSON.stringify(body.errors)).toBeUndefined();
    return body.data!;
  };
  const sqlParam = (sql: string) => encodeURIComponent(JSON.stringify({ json: { sql, params: [] } }));
  const sqlGet = (sql: string) => http("GET", `/sql/db?sql=${sqlParam(sql)}`);

  // ------------------------------------------------------------- signed bodies

  const registration = async (
    namespace: string,
    payoutAccount: Address,
    o: { signer?: (typeof accounts)[number]; deadline?: bigint; chainId?: number; nonce?: bigint } = {},
  ) => {
    const deadline = o.deadline ?? BigInt(unixNow() + 600);
    const nonce = o.nonce ?? (await laneNonce(namespace));
    const typed = registerProviderTypedData(
      { namespace, payoutAccount, pricing: perCall(1_000n), nonce, deadline },
      { ...registryTarget(), ...(o.chainId ? { chainId: o.chainId } : {}) },
    );
    const signature = await (o.signer ?? operator)!.signTypedData(typed as TypedDataDefinition);
    return { namespace, payoutAccount, pricing: { model: "PerCall", pricePerCallMicro: "1000" }, deadline: deadline.toString(), signature };
  };

  let eventCounter = 0;
  const call = (provider: string, priceMicro = 1_000n): CallRecord => {
    eventCounter += 1;
    const t = 1_700_000_000_000 + eventCounter * 1_000;
    return {
      eventId: `hostile-${eventCounter}`,
      provider,
      tool: "quote",
      startedAt: t,
      endedAt: t + 3,
      durationMs: 3,
      outcome: "ok",
      requestBytes: 10,
      responseBytes: 20,
      billable: true,
      priceMicro,
    };
  };
  const batchOf = (sequence: number, from: Address = server!.address) =>
    buildBatch({ server: from, sequence, periodStart: 1_700_000_000_000, periodEnd: 1_700_000_100_000, records: [call("alpha")], keys })
      .batch;
  const submission = async (
    batch: UsageBatch,
    o: { signer?: (typeof accounts)[number]; deadline?: bigint; target?: { chainId: number; ledger: Address } } = {},
  ) => {
    const deadline = o.deadline ?? BigInt(unixNow() + 600);
    const signature = await (o.signer ?? server)!.signTypedData(
      batchTypedData(batch, deadline, o.target ?? ledgerTarget()) as TypedDataDefinition,
    );
    return submitRequestBody(batch, deadline, signature);
  };

  /** What must not move: the chain and the indexed rows. */
  const snapshot = async (hostileBatchIds: Hex[]) => {
    const counts = await graphqlData(`{ providers { totalCount } usageCommitments { totalCount } providerChanges { totalCount } }`);
    return {
      block: await chain.publicClient.getBlockNumber({ cacheTime: 0 }),
      nonces: { alpha: await laneNonce("alpha"), beta: await laneNonce("beta"), nobody: await laneNonce("nobody") },
      commitments: await Promise.all(
        hostileBatchIds.map((id) =>
          chain.publicClient.readContract({
            address: manifest.contracts.usageLedger,
            abi: UsageLedgerAbi,
            functionName: "batchHashOf",
            args: [server!.address, id],
          } as never),
        ),
      ),
      committedLogs: (
        await chain.publicClient.getContractEvents({
          address: manifest.contracts.usageLedger,
          abi: UsageLedgerAbi,
          eventName: "UsageCommitted",
          fromBlock: 0n,
        } as never)
      ).length,
      providers: counts.providers!.totalCount,
      usageCommitments: counts.usageCommitments!.totalCount,
      providerChanges: counts.providerChanges!.totalCount,
    };
  };

  let committed: UsageBatch;
  let registeredAlpha: Awaited<ReturnType<typeof registration>>;
  const settle = async (hash: Hex) => {
    const receipt = await chain.publicClient.waitForTransactionReceipt({ hash });
    expect(receipt.status).toBe("success");
    await new IndexerClient(indexer.url).waitForBlock(receipt.blockNumber);
  };

  beforeAll(async () => {
    await admin(`CREATE DATABASE ${database}`);
    anvil = await startAnvil();
    chain = await connectChain(anvil.rpcUrl);
    const deployed = await deployForIndexer({ rpcUrl: anvil.rpcUrl, prover });
    manifest = deployed.manifest;
    for (const i of [0, 1]) await (await connectClient(chain, manifest, prover, i)).register();
    indexer = await startIndexer({
      manifestPath: deployed.manifestPath,
      databaseUrl: `postgresql://postgres@127.0.0.1:5432/${database}`,
      schema: "bs_hostile",
      env: {
        RPC_URL: anvil.rpcUrl,
        RELAYER_PRIVATE_KEY: undefined,
        API_SQL: "1",
        API_SQL_TIMEOUT_MS: String(SQL_TIMEOUT_MS),
        API_SQL_MAX_ROWS: String(SQL_MAX_ROWS),
      },
      logFile: join(deployed.dir, "ponder.log"),
    });
    // The blocks mined here are this test's own: a provider registered through the API, a server
    // authorised, one batch committed through the API.
    registeredAlpha = await registration("alpha", alphaPayout!.address);
    const registered = await postJson("/providers/register", registeredAlpha);
    expect(registered.status, registered.text).toBe(201);
    await settle(JSON.parse(registered.text).txHash);
    await settle(
      await chain.walletFor(operator!).writeContract({
        address: manifest.contracts.usageLedger,
        abi: UsageLedgerAbi,
        functionName: "setServer",
        args: [server!.address, true],
      } as never),
    );
    keys = await fetchLineKeys(chain.publicClient, manifest.contracts, operator!.address, [providerIdOf("alpha")]);
    committed = batchOf(1);
    const sent = await postJson("/usage/submit", await submission(committed));
    expect(sent.status, sent.text).toBe(200);
    await settle(JSON.parse(sent.text).txHash);
  });

  afterAll(async () => {
    await indexer?.stop();
    await prover.close();
    await anvil?.stop();
    await admin(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
  });

  it("refuses every hostile request with its status and field, and nothing is written", async () => {
    const provider = providerIdOf("alpha");
    const unknownProvider = providerIdOf("nobody");
    const past = BigInt(unixNow() - 30);
    const fresh = batchOf(2);
    const valid = await submission(fresh);
    const reusedId: UsageBatch = { ...batchOf(3), batchId: committed.batchId };
    const rogueBatch = batchOf(1, rogue!.address);
    const flipped =
      `${valid.signature.slice(0, -4)}${valid.signature.slice(-4, -2) === "00" ? "01" : "00"}${valid.signature.slice(-2)}` as Hex;
    const alphaAgainNonce = (await laneNonce("alpha")) - 1n;
    const alphaAgain = await registration("alpha", alphaPayout!.address, { nonce: alphaAgainNonce });
    const beta = await registration("beta", alphaPayout!.address);
    const nonceNow = await laneNonce("alpha");
    const deadline = BigInt(unixNow() + 600);
    const setActive = (providerId: Hex, active: boolean, nonce: bigint) =>
      operator!.signTypedData(setActiveTypedData({ providerId, active, nonce, deadline }, registryTarget()) as TypedDataDefinition);
    const update = (body: Record<string, unknown>) => postJson("/providers/update", { deadline: deadline.toString(), ...body });
    const withBatch = (patch: Record<string, unknown>) => postJson("/usage/submit", { ...valid, batch: { ...valid.batch, ...patch } });
    const values = (n: number) => `(VALUES ${Array.from({ length: n }, (_, i) => `(${i})`).join(", ")})`;
    const get = (path: string) => http("GET", path);

    const cases: Case[] = [
      // ---- reads
      { name: "earnings: short address", send: () => get("/accounts/0x12/earnings"), status: 400, field: "address" },
      { name: "earnings: not an address", send: () => get("/accounts/alice/earnings"), status: 400, field: "address" },
      {
        name: "earnings: unregistered account",
        send: () => get(`/accounts/${unregistered!.address}/earnings`),
        status: 404,
        field: "address",
      },
      {
        name: "earnings: negative tokenId",
        send: () => get(`/accounts/${alphaPayout!.address}/earnings?tokenId=-1`),
        status: 400,
        field: "tokenId",
      },
      {
        name: "earnings: fractional tokenId",
        send: () => get(`/accounts/${alphaPayout!.address}/earnings?tokenId=1.5`),
        status: 400,
        field: "tokenId",
      },
      {
        name: "provider: encoded path traversal",
        send: () => get("/providers/..%2f..%2fpackage.json/earnings"),
        status: 400,
        field: "providerId",
      },
      { name: "provider: unknown id", send: () => get(`/providers/${unknownProvider}/earnings`), status: 404, field: "providerId" },
      { name: "provider: bad hex", send: () => get(`/providers/0x${"zz".repeat(32)}/earnings`), status: 400, field: "providerId" },
      { name: "audit: unknown period", send: () => get("/audit/totals?period=year"), status: 400, field: "period" },
      // ---- dashboard files: nothing outside build/web
      { name: "app: encoded dot-dot", send: () => get("/app/%2e%2e/package.json"), status: 404, field: undefined },
      { name: "app: double-encoded dot-dot", send: () => get("/app/%252e%252e/package.json"), status: 404, field: undefined },
      { name: "app: encoded slash", send: () => get("/app/..%2f..%2fpackage.json"), status: 404, field: undefined },
      // ---- usage submission: malformed, wrong types, amounts
      { name: "submit: malformed JSON", send: () => http("POST", "/usage/submit", "{"), status: 400, field: "body" },
      { name: "submit: JSON array", send: () => http("POST", "/usage/submit", "[]"), status: 400, field: "body" },
      { name: "submit: JSON null", send: () => http("POST", "/usage/submit", "null"), status: 400, field: "body" },
      {
        name: "submit: text/plain",
        send: () => http("POST", "/usage/submit", JSON.stringify(valid), { "content-type": "text/plain" }),
        status: 415,
        field: "body",
      },
      { name: "submit: 9 MiB body", send: () => declaringSize(`${indexer.url}/usage/submit`, 9 * 1024 * 1024), status: 413, field: "body" },
      { name: "submit: batch a number", send: () => postJson("/usage/submit", { ...valid, batch: 5 }), status: 400, field: "batch" },
      { name: "submit: server not an address", send: () => withBatch({ server: "0x12" }), status: 400, field: "batch.server" },
      { name: "submit: short batch id", send: () => withBatch({ batchId: "0x00" }), status: 400, field: "batch.batchId" },
      { name: "submit: negative periodStart", send: () => withBatch({ periodStart: "-1" }), status: 400, field: "batch.periodStart" },
      { name: "submit: fractional periodStart", send: () => withBatch({ periodStart: 1.5 }), status: 400, field: "batch.periodStart" },
      { name: "submit: huge periodEnd", send: () => withBatch({ periodEnd: `1${"0".repeat(80)}` }), status: 400, field: "batch.periodEnd" },
      { name: "submit: lines not hex", send: () => withBatch({ encryptedLines: "0xzz" }), status: 400, field: "batch.encryptedLines" },
      {
        name: "submit: deadline text",
        send: () => postJson("/usage/submit", { ...valid, deadline: "soon" }),
        status: 400,
        field: "deadline",
      },
      {
        name: "submit: deadline negative",
        send: () => postJson("/usage/submit", { ...valid, deadline: -1 }),
        status: 400,
        field: "deadline",
      },
      {
        name: "submit: deadline 1e30",
        send: () => postJson("/usage/submit", { ...valid, deadline: 1e30 }),
        status: 400,
        field: "deadline",
      },
      {
        name: "submit: signature a number",
        send: () => postJson("/usage/submit", { ...valid, signature: 5 }),
        status: 400,
        field: "signature",
      },
      {
        name: "submit: negative record price",
        send: () => postJson("/usage/submit", { ...valid, records: [{ ...call("alpha"), priceMicro: "-5" }] }),
        status: 400,
        field: "records[0].priceMicro",
      },
      {
        name: "submit: fractional record price",
        send: () => postJson("/usage/submit", { ...valid, records: [{ ...call("alpha"), priceMicro: "0.5" }] }),
        status: 400,
        field: "records[0].priceMicro",
      },
      {
        name: "submit: huge record price",
        send: () => postJson("/usage/submit", { ...valid, records: [{ ...call("alpha"), priceMicro: `9${"9".repeat(40)}` }] }),
        status: 400,
        field: "records[0].priceMicro",
      },
      // ---- usage submission: signatures, deadlines, domains, replays
      {
        name: "submit: altered signature",
        send: () => postJson("/usage/submit", { ...valid, signature: flipped }),
        status: 401,
        field: "signature",
      },
      {
        name: "submit: signature replayed on an altered batch",
        send: () => withBatch({ periodEnd: (fresh.periodEnd + 1n).toString() }),
        status: 401,
        field: "signature",
      },
      {
        name: "submit: signature replayed with another deadline",
        send: () => postJson("/usage/submit", { ...valid, deadline: (BigInt(valid.deadline) + 1n).toString() }),
        status: 401,
        field: "signature",
      },
      {
        name: "submit: wrong signer",
        send: async () => postJson("/usage/submit", await submission(fresh, { signer: rogue })),
        status: 401,
        field: "signature",
      },
      {
        name: "submit: domain of another chain",
        send: async () =>
          postJson("/usage/submit", await submission(fresh, { target: { chainId: 43113, ledger: manifest.contracts.usageLedger } })),
        status: 401,
        field: "signature",
      },
      {
        name: "submit: domain of another contract",
        send: async () =>
          postJson(
            "/usage/submit",
            await submission(fresh, { target: { chainId: chain.chain.id, ledger: manifest.contracts.providerRegistry } }),
          ),
        status: 401,
        field: "signature",
      },
      {
        name: "submit: expired deadline",
        send: async () => postJson("/usage/submit", await submission(fresh, { deadline: past })),
        status: 400,
        field: "deadline",
      },
      {
        name: "submit: unauthorised server",
        send: async () => postJson("/usage/submit", await submission(rogueBatch, { signer: rogue })),
        status: 403,
        field: "batch.server",
      },
      {
        name: "submit: used batch id, other content",
        send: async () => postJson("/usage/submit", await submission(reusedId)),
        status: 409,
        field: "batch.batchId",
      },
      // ---- provider registration
      { name: "register: malformed JSON", send: () => http("POST", "/providers/register", '{"namespace":'), status: 400, field: "body" },
      {
        name: "register: namespace a number",
        send: () => postJson("/providers/register", { ...beta, namespace: 5 }),
        status: 400,
        field: "namespace",
      },
      {
        name: "register: negative price",
        send: () => postJson("/providers/register", { ...beta, pricing: { model: "PerCall", pricePerCallMicro: "-1" } }),
        status: 400,
        field: "pricing.pricePerCallMicro",
      },
      {
        name: "register: fractional price",
        send: () => postJson("/providers/register", { ...beta, pricing: { model: "PerCall", pricePerCallMicro: "0.5" } }),
        status: 400,
        field: "pricing.pricePerCallMicro",
      },
      {
        name: "register: huge price",
        send: () => postJson("/providers/register", { ...beta, pricing: { model: "PerCall", pricePerCallMicro: `1${"0".repeat(40)}` } }),
        status: 400,
        field: "pricing.pricePerCallMicro",
      },
      {
        name: "register: payout account not an address",
        send: () => postJson("/providers/register", { ...beta, payoutAccount: "0x12" }),
        status: 400,
        field: "payoutAccount",
      },
      {
        name: "register: signature for another payout account",
        send: () => postJson("/providers/register", { ...beta, payoutAccount: unregistered!.address }),
        status: 401,
        field: "signature",
      },
      {
        name: "register: wrong signer",
        send: async () => postJson("/providers/register", await registration("beta", alphaPayout!.address, { signer: rogue })),
        status: 401,
        field: "signature",
      },
      {
        name: "register: domain of another chain",
        send: async () => postJson("/providers/register", await registration("beta", alphaPayout!.address, { chainId: 43113 })),
        status: 401,
        field: "signature",
      },
      {
        name: "register: expired deadline",
        send: async () => postJson("/providers/register", await registration("beta", alphaPayout!.address, { deadline: past })),
        status: 400,
        field: "deadline",
      },
      {
        name: "register: payout account without eERC key",
        send: async () => postJson("/providers/register", await registration("beta", unregistered!.address)),
        status: 422,
        field: "payoutAccount",
      },
      // The nonce it was signed with is used: against the lane's next nonce, the signature fails.
      {
        name: "register: replayed registration",
        send: () => postJson("/providers/register", registeredAlpha),
        status: 401,
        field: "signature",
      },
      {
        name: "register: replayed with its used nonce named",
        send: () => postJson("/providers/register", { ...alphaAgain, nonce: alphaAgainNonce.toString() }),
        status: 409,
        field: "nonce",
      },
      // ---- provider update
      {
        name: "update: unknown provider",
        send: async () =>
          update({
            providerId: unknownProvider,
            active: false,
            signature: await setActive(unknownProvider, false, await laneNonce("nobody")),
          }),
        status: 404,
        field: "providerId",
      },
      {
        name: "update: path-like provider id",
        send: async () => update({ providerId: "../../etc/passwd", active: false, signature: await setActive(provider, false, nonceNow) }),
        status: 400,
        field: "providerId",
      },
      {
        name: "update: active a string",
        send: async () => update({ providerId: provider, active: "yes", signature: await setActive(provider, false, nonceNow) }),
        status: 400,
        field: "active",
      },
      {
        name: "update: signed false, sent true",
        send: async () => update({ providerId: provider, active: true, signature: await setActive(provider, false, nonceNow) }),
        status: 401,
        field: "signature",
      },
      {
        name: "update: nonce ahead of the lane",
        send: async () =>
          update({
            providerId: provider,
            active: false,
            nonce: (nonceNow + 1n).toString(),
            signature: await setActive(provider, false, nonceNow + 1n),
          }),
        status: 409,
        field: "nonce",
      },
      // ---- GraphQL
      { name: "graphql: malformed JSON", send: () => http("POST", "/graphql", "{"), status: 400, field: "body" },
      { name: "graphql at /: malformed JSON", send: () => http("POST", "/", "{"), status: 400, field: "body" },
      {
        name: "graphql: text/plain",
        send: () => http("POST", "/graphql", '{"query":"{ __typename }"}', { "content-type": "text/plain" }),
        status: 415,
        field: "body",
      },
      { name: "graphql: no query", send: () => postJson("/graphql", {}), status: 400, field: "query" },
      { name: "graphql: query a number", send: () => postJson("/graphql", { query: 5 }), status: 400, field: "query" },
      { name: "graphql: batched array", send: () => postJson("/graphql", [{ query: "{ __typename }" }]), status: 400, field: "body" },
      { name: "graphql: syntax error", send: () => postJson("/graphql", { query: "{ providers { items " }), status: 400, field: "query" },
      {
        name: "graphql: variables an array",
        send: () => postJson("/graphql", { query: "{ __typename }", variables: [1] }),
        status: 400,
        field: "variables",
      },
      {
        name: "graphql: deep query",
        send: () =>
          postJson("/graphql", {
            query: `{ providers { items { changes { items { provider { changes { items { provider { namespace } } } } } } } } }`,
          }),
        status: 400,
        field: "query",
      },
      {
        name: "graphql: alias bomb",
        send: () => postJson("/", { query: `{ ${Array.from({ length: 200 }, (_, i) => `a${i}: providers { totalCount }`).join(" ")} }` }),
        status: 400,
        field: "query",
      },
      {
        name: "graphql: nested lists over the row limit",
        send: () => postJson("/graphql", { query: `{ providers(limit: 1000) { items { changes(limit: 1000) { items { kind } } } } }` }),
        status: 400,
        field: "query",
      },
      {
        name: "graphql: 100 KiB body",
        send: () => http("POST", "/graphql", JSON.stringify({ query: "{ __typename }", variables: { pad: "x".repeat(100 * 1024) } })),
        status: 413,
        field: "body",
      },
      // ---- SQL over HTTP
      { name: "sql: no query", send: () => get("/sql/db"), status: 400, field: "sql" },
      { name: "sql: not JSON", send: () => get("/sql/db?sql=select%201"), status: 400, field: "sql" },
      {
        name: "sql: no sql in the envelope",
        send: () => get(`/sql/db?sql=${encodeURIComponent('{"json":{}}')}`),
        status: 400,
        field: "sql",
      },
      { name: "sql: POST", send: () => http("POST", `/sql/db?sql=${sqlParam("select 1")}`), status: 405, field: null },
      { name: "sql: live queries", send: () => get(`/sql/live?sql=${sqlParam("select 1")}`), status: 404, field: null },
      { name: "sql: insert", send: () => sqlGet(`INSERT INTO provider (provider_id) VALUES ('0x00')`), status: 400, field: "sql" },
      { name: "sql: update", send: () => sqlGet("UPDATE provider SET active = false"), status: 400, field: "sql" },
      { name: "sql: delete", send: () => sqlGet("DELETE FROM usage_commitment"), status: 400, field: "sql" },
      { name: "sql: drop", send: () => sqlGet("DROP TABLE provider"), status: 400, field: "sql" },
      { name: "sql: multi-statement", send: () => sqlGet("SELECT 1; DELETE FROM provider"), status: 400, field: "sql" },
      { name: "sql: syntax error", send: () => sqlGet("SELEC * FROM provider"), status: 400, field: "sql" },
      { name: "sql: unknown table", send: () => sqlGet("SELECT * FROM secrets"), status: 400, field: "sql" },
      { name: "sql: Ponder's meta table", send: () => sqlGet("SELECT * FROM _ponder_meta"), status: 403, field: "sql" },
      { name: "sql: meta table, quoted upper case", send: () => sqlGet(`SELECT * FROM "_PONDER_META"`), status: 403, field: "sql" },
      { name: "sql: meta table, unicode escapes", send: () => sqlGet(`SELECT * FROM U&"\\005fponder_meta"`), status: 403, field: "sql" },
      { name: "sql: checkpoint table", send: () => sqlGet("SELECT * FROM _ponder_checkpoint"), status: 403, field: "sql" },
      { name: "sql: reorg table", send: () => sqlGet("SELECT * FROM _reorg__provider"), status: 403, field: "sql" },
      { name: "sql: system catalogue", send: () => sqlGet("SELECT * FROM pg_catalog.pg_tables"), status: 400, field: "sql" },
      { name: "sql: pg_sleep", send: () => sqlGet("SELECT pg_sleep(5)"), status: 400, field: "sql" },
      { name: "sql: pg_read_file", send: () => sqlGet("SELECT pg_read_file('/etc/passwd')"), status: 400, field: "sql" },
      {
        name: "sql: over the row cap",
        send: () => sqlGet(`SELECT * FROM ${values(SQL_MAX_ROWS + 10)} AS v(x)`),
        status: 400,
        field: "sql",
      },
      {
        name: "sql: expensive cross join",
        send: () => sqlGet(`SELECT count(*) FROM ${Array.from({ length: 8 }, (_, i) => `${values(25)} AS t${i}(x)`).join(", ")}`),
        status: 400,
        field: "sql",
      },
      { name: "sql: longer than 5000 characters", send: () => sqlGet(`SELECT ${"1 + ".repeat(1_500)}1`), status: 400, field: "sql" },
    ];

    const before = await snapshot([fresh.batchId, reusedId.batchId, rogueBatch.batchId]);
    const outcomes: { name: string; status: number; field: string | null | undefined }[] = [];
    for (const c of cases) {
      const answer = await c.send();
      outcomes.push({ name: c.name, status: answer.status, field: answer.field });
      // No refusal names a file of the project or echoes one.
      expect(answer.text, c.name).not.toMatch(/\/work\/|node_modules|"name": ?"backendshield"|root:x:0/);
    }
    expect(outcomes).toEqual(cases.map((c) => ({ name: c.name, status: c.status, field: c.field })));
    expect(cases.length).toBeGreaterThanOrEqual(60);

    // Nothing written: no block mined since, no nonce or commitment moved, no row indexed.
    expect(await snapshot([fresh.batchId, reusedId.batchId, rogueBatch.batchId])).toEqual(before);
    expect(before.commitments).toEqual([`0x${"0".repeat(64)}`, expect.stringMatching(/^0x[0-9a-f]{64}$/), `0x${"0".repeat(64)}`]);
    expect({ providers: before.providers, usageCommitments: before.usageCommitments }).toEqual({ providers: 1, usageCommitments: 1 });
  });

  it("serves the queries the limits allow: an SQL read of indexed rows, the widest GraphQL request", async () => {
    const rows = await sqlGet(`SELECT namespace FROM provider`);
    expect(rows.status, rows.text).toBe(200);
    expect(JSON.parse(rows.text).rows).toEqual([{ namespace: "alpha" }]);
    const widest = `{ ${Array.from({ length: GRAPHQL_LIMITS.maxAliases }, (_, i) => `p${i}: providerChanges(limit: 1000) { items { kind } }`).join(" ")} }`;
    const data = await graphqlData(widest);
    expect(Object.keys(data)).toHaveLength(GRAPHQL_LIMITS.maxAliases);
  });

  it("the expensive query was stopped by the statement timeout, not left to run", async () => {
    const started = performance.now();
    const answer = await sqlGet(
      `SELECT count(*) FROM ${Array.from({ length: 8 }, (_, i) => `(VALUES (1),(2),(3),(4),(5),(6),(7),(8),(9),(10),(11),(12),(13),(14),(15),(16),(17),(18),(19),(20)) AS t${i}(x)`).join(", ")}`,
    );
    expect(answer.status).toBe(400);
    expect(JSON.parse(answer.text).error.message).toBe(`ran longer than ${SQL_TIMEOUT_MS} ms and was canceled`);
    expect(performance.now() - started).toBeLessThan(SQL_TIMEOUT_MS + 4_000);
  });

  it("the payout agent's routes refuse hostile requests, and no cycle starts", async () => {
    const chainId = chain.chain.id;
    const agentId = agentIdOf(manifest.contracts.usageLedger, "hostile");
    let started = 0;
    const app = payoutApp({
      runner: {
        status: () => ({ state: "idle", progress: null, last: null }),
        busy: false,
        start: () => {
          started += 1;
          return new Promise(() => {});
        },
        metrics: new AgentMetrics(),
      },
      operator: operator!.address,
      chainId,
      agentId,
    });
    const send = async (body: string, headers: Record<string, string> = {}) =>
      asAnswer(
        await app.request("/revenue/distribute", { method: "POST", body, headers: { "content-type": "application/json", ...headers } }),
      );
    const requestId = () => keccak256(toHex(randomBytes(16)));
    const signed = async (o: { signer?: (typeof accounts)[number]; deadline?: bigint; chainId?: number; agentId?: Hex; id?: Hex } = {}) => {
      const id = o.id ?? requestId();
      const deadline = o.deadline ?? BigInt(unixNow() + 300);
      const signature = await (o.signer ?? operator)!.signTypedData(
        distributeTypedData(id, deadline, o.chainId ?? chainId, o.agentId ?? agentId) as TypedDataDefinition,
      );
      return { requestId: id, deadline: deadline.toString(), signature };
    };
    const used = await signed();
    expect((await send(JSON.stringify(used))).status).toBe(202);
    expect(started).toBe(1);

    const cases: Case[] = [
      { name: "agent: malformed JSON", send: () => send("{"), status: 400, field: "body" },
      {
        name: "agent: text/plain",
        send: async () => send(JSON.stringify(await signed()), { "content-type": "text/plain" }),
        status: 415,
        field: "body",
      },
      { name: "agent: 32 KiB body", send: () => send(JSON.stringify({ pad: "x".repeat(32 * 1024) })), status: 413, field: "body" },
      {
        name: "agent: short request id",
        send: async () => send(JSON.stringify({ ...(await signed()), requestId: "0x12" })),
        status: 400,
        field: "requestId",
      },
      {
        name: "agent: fractional deadline",
        send: async () => send(JSON.stringify({ ...(await signed()), deadline: 1.5 })),
        status: 400,
        field: "deadline",
      },
      {
        name: "agent: expired deadline",
        send: async () => send(JSON.stringify(await signed({ deadline: BigInt(unixNow() - 1) }))),
        status: 400,
        field: "deadline",
      },
      {
        name: "agent: deadline too far",
        send: async () => send(JSON.stringify(await signed({ deadline: BigInt(unixNow() + 86_400) }))),
        status: 400,
        field: "deadline",
      },
      {
        name: "agent: wrong signer",
        send: async () => send(JSON.stringify(await signed({ signer: rogue }))),
        status: 403,
        field: "signature",
      },
      {
        name: "agent: domain of another chain",
        send: async () => send(JSON.stringify(await signed({ chainId: 43113 }))),
        status: 403,
        field: "signature",
      },
      {
        name: "agent: domain of another agent",
        send: async () => send(JSON.stringify(await signed({ agentId: agentIdOf(manifest.contracts.usageLedger, "other") }))),
        status: 403,
        field: "signature",
      },
      {
        name: "agent: signature replayed with another deadline",
        send: () => send(JSON.stringify({ ...used, deadline: (BigInt(used.deadline) - 1n).toString() })),
        status: 403,
        field: "signature",
      },
      { name: "agent: replayed request", send: () => send(JSON.stringify(used)), status: 409, field: "requestId" },
    ];
    const outcomes: { name: string; status: number; field: string | null | undefined }[] = [];
    for (const c of cases) {
      const answer = await c.send();
      outcomes.push({ name: c.name, status: answer.status, field: answer.field });
    }
    expect(outcomes).toEqual(cases.map((c) => ({ name: c.name, status: c.status, field: c.field })));
    expect(started).toBe(1);
  });
});
