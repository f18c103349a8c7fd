/**
 * The usage path end to end: a metered FlowMCP-style server over Streamable HTTP, real MCP calls to
 * three providers' loopback APIs, batches committed on anvil by the server's key, the indexer's
 * GraphQL, and each provider's CLI decrypting its own usage from the API and from the chain alone.
 */
import { execFile } from "node:child_process";
import { copyFileSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Client } from "@modelcontextprotocol/sdk/client/index.js";
import type { Address, Hex } from "viem";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ProviderRegistryAbi } from "../abis/ProviderRegistryAbi.js";
import { UsageLedgerAbi } from "../abis/UsageLedgerAbi.js";
import { type Anvil, startAnvil } from "../src/chain/anvil.js";
import { type ChainClients, connectChain } from "../src/chain/clients.js";
import { ANVIL_KEYS } from "../src/chain/local.js";
import type { DeploymentManifest } from "../src/deployment/manifest.js";
import { PROJECT_ROOT } from "../src/eerc/artifacts.js";
import type { EercClient } from "../src/eerc/client.js";
import { Prover } from "../src/eerc/prover.js";
import { type RunningIndexer, startIndexer } from "../src/indexer/process.js";
import { IndexerClient } from "../src/indexer-client/client.js";
import {
  type BatchSubmitter,
  type ClosedBatch,
  createBatchSubmitter,
  createMeter,
  flowMcpToolName,
  type McpHttpHost,
  type Meter,
  readSpool,
  serveMcpOverHttp,
  staticPricing,
  submitRequestBody,
} from "../src/meter/index.js";
import type { CloseLine } from "../src/meter/spool.js";
import {
  batchHash,
  batchTypedData,
  type CallRecord,
  decryptLinesFor,
  type Pricing,
  PricingModel,
  pricingFromChain,
  providerIdOf,
  recordProof,
  recordsTree,
} from "../src/usage/index.js";
import { freePool, perCall } from "../src/usage/pricing.js";
import { accounts, connectClient, deployForIndexer } from "./indexer-helpers.js";
import { connectClient as connectMcp, createProviderServer, LONG_NEWS_ROUTE, startUpstream, type Upstream } from "./meter-fixtures.js";

const TSX = join(PROJECT_ROOT, "node_modules", ".bin", "tsx");
const UINT64_MAX = (1n << 64n) - 1n;
const [, , WEATHER_KEY, NEWS_KEY, FINANCE_KEY, COMPETITOR_KEY] = ANVIL_KEYS;
const serverAccount = accounts[6]!;

/** weather: 2 free calls, then 1,500 µUSDC up to call 5, then 1,000; news: free pool; finance: 2,500 per call. */
const REGISTRY_PRICING: Record<string, Pricing> = {
  weather: {
    model: PricingModel.Tiered,
    pricePerCallMicro: 0n,
    poolWeight: 0,
    tiers: [
      { upToCalls: 2n, priceMicro: 0n },
      { upToCalls: 5n, priceMicro: 1_500n },
      { upToCalls: UINT64_MAX, priceMicro: 1_000n },
    ],
  },
  news: freePool(3),
  finance: perCall(2_500n),
};
const PAYOUT: Record<string, number> = { weather: 2, news: 3, finance: 4 };

const TOOLS = { weather: "get_forecast_weather", news: flowMcpToolName(LONG_NEWS_ROUTE, "news"), finance: "get_quote_finance" } as const;
type Namespace = keyof typeof TOOLS;
type Call = { namespace: Namespace; args: Record<string, string>; ok: boolean };

/** 42 calls: weather 14 (2 failing with an error result), news 12, finance 16 (4 throwing). */
function callPlan(): Call[] {
  const plan: Call[] = [];
  for (let i = 0; i < 14; i++) plan.push({ namespace: "weather", args: { city: i % 5 === 4 ? "fail" : `city${i}` }, ok: i % 5 !== 4 });
  for (let i = 0; i < 12; i++) plan.push({ namespace: "news", args: { topic: `topic${i}` }, ok: true });
  for (let i = 0; i < 16; i++) plan.push({ namespace: "finance", args: { symbol: i % 4 === 1 ? "FAIL" : `SYM${i}` }, ok: i % 4 !== 1 });
  // Interleave deterministically so batches mix providers.
  return plan
    .map((c, i) => ({ c, k: (i * 7919) % plan.length }))
    .sort((a, b) => a.k - b.k)
    .map((x) => x.c);
}

type Totals = { calls: bigint; billableCalls: bigint; amountMicro: bigint };

/** What each provider should see, priced from the plan with the registry's models. */
function expectedTotals(plan: Call[]): Record<Namespace, Totals> {
  const out = {} as Record<Namespace, Totals>;
  const billableSoFar: Record<string, number> = {};
  for (const c of plan) {
    const t = (out[c.namespace] ??= { calls: 0n, billableCalls: 0n, amountMicro: 0n });
    t.calls++;
    if (!c.ok) continue;
    t.billableCalls++;
    const n = (billableSoFar[c.namespace] = (billableSoFar[c.namespace] ?? 0) + 1);
    if (c.namespace === "finance") t.amountMicro += 2_500n;
    if (c.namespace === "weather") t.amountMicro += n <= 2 ? 0n : n <= 5 ? 1_500n : 1_000n;
  }
  return out;
}

type Run = { code: number; stdout: string; stderr: string };
function cli(args: string[], env: Record<string, string> = {}): Promise<Run> {
  const base = { ...process.env };
  for (const k of ["PRIVATE_KEY", "DEPLOYMENT_FILE", "NETWORK"]) delete base[k];
  return new Promise((resolve) => {
    execFile(TSX, ["src/cli/index.ts", ...args], { cwd: PROJECT_ROOT, env: { ...base, ...env }, timeout: 120_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? (typeof err.code === "number" ? err.code : -1) : 0, stdout, stderr }),
    );
  });
}

describe("usage end to end: real MCP traffic, commitments on anvil, indexer and provider CLI", () => {
  let anvil: Anvil;
  let chain: ChainClients;
  const prover = new Prover();
  let manifest: DeploymentManifest;
  let manifestPath: string;
  let dir: string;
  let indexer: RunningIndexer;
  let upstream: Upstream;
  let meter: Meter;
  let host: McpHttpHost;
  let submitter: BatchSubmitter;
  let relay: BatchSubmitter;
  const mcpClients: Client[] = [];
  const eerc: Record<string, EercClient> = {};
  const submitErrors: unknown[] = [];
  const plan = callPlan();
  const expected = expectedTotals(plan);
  let closes: CloseLine[] = [];
  let records: CallRecord[] = [];

  const auditorKey = async () => (eerc.auditor ??= await connectClient(chain, manifest, prover, 9)).exportPrivateKey();

  const send = async (from: number, address: Address, abi: readonly unknown[], functionName: string, args: readonly unknown[]) => {
    const hash = await chain.walletFor(accounts[from]!).writeContract({ address, abi, functionName, args } as never);
    const receipt = await chain.publicClient.waitForTransactionReceipt({ hash });
    expect(receipt.status, functionName).toBe("success");
  };

  beforeAll(async () => {
    anvil = await startAnvil();
    chain = await connectChain(anvil.rpcUrl);
    ({ manifest, manifestPath, dir } = await deployForIndexer({ rpcUrl: anvil.rpcUrl, prover }));
    // The operator (owner) and every payout account register their eERC keys with real proofs;
    // the competitor is a registered account that no provider pays out to.
    for (const [name, i] of Object.entries({ operator: 0, weather: 2, news: 3, finance: 4, competitor: 5 })) {
      eerc[name] = await connectClient(chain, manifest, prover, i);
      await eerc[name]!.register();
    }
    const { providerRegistry, usageLedger } = manifest.contracts;
    for (const [namespace, pricing] of Object.entries(REGISTRY_PRICING)) {
      await send(0, providerRegistry, ProviderRegistryAbi, "registerProvider", [namespace, accounts[PAYOUT[namespace]!]!.address, pricing]);
    }
    await send(0, usageLedger, UsageLedgerAbi, "setServer", [serverAccount.address, true]);

    indexer = await startIndexer({
      manifestPath,
      env: { RPC_URL: anvil.rpcUrl },
      pgliteDir: join(dir, "pglite"),
      logFile: join(dir, "ponder.log"),
    });

    // The meter prices from the registry entries as the chain holds them.
    const table: Record<string, Pricing> = {};
    for (const namespace of Object.keys(REGISTRY_PRICING)) {
      const entry = await chain.publicClient.readContract({
        address: providerRegistry,
        abi: ProviderRegistryAbi,
        functionName: "getProvider",
        args: [providerIdOf(namespace)],
      });
      table[namespace] = pricingFromChain(entry.pricing);
    }
    const submitterOptions = {
      serverAccount,
      publicClient: chain.publicClient,
      ledger: usageLedger,
      registry: providerRegistry,
      registrar: manifest.contracts.registrar,
      eerc: manifest.contracts.encryptedERC,
    };
    // Relayed through the API's POST /usage/submit (with the records, so the API checks the
    // root); every third batch the server sends itself, as it would with the API down.
    relay = createBatchSubmitter({ ...submitterOptions, mode: { kind: "relay", apiUrl: indexer.url }, sendRecords: true });
    submitter = createBatchSubmitter({ ...submitterOptions, mode: { kind: "direct" } });
    meter = createMeter({
      spoolDir: join(dir, "spool"),
      serverAddress: serverAccount.address,
      pricing: staticPricing(table),
      batch: { maxRecords: 8, maxAgeMs: 60_000 },
      onBatch: (batch) => (batch.sequence % 3 === 0 ? submitter : relay).onBatch(batch),
      retry: { minMs: 100, maxMs: 1_000 },
      onSubmitError: (err) => submitErrors.push(err),
    });
    await meter.recover();
    upstream = await startUpstream();
    host = await serveMcpOverHttp({ createMcpServer: () => createProviderServer(meter, upstream.url) });
    mcpClients.push(await connectMcp(host.url), await connectMcp(host.url));
  });

  afterAll(async () => {
    for (const c of mcpClients) await c.close().catch(() => undefined);
    await host?.close();
    await meter?.close();
    await upstream?.close();
    await indexer?.stop();
    await prover.close();
    await anvil?.stop();
  });

  it("meters a few dozen real MCP calls, failing ones included, and commits every batch on the UsageLedger", async () => {
    for (const [i, call] of plan.entries()) {
      const result = await mcpClients[i % 2]!.callTool({ name: TOOLS[call.namespace], arguments: call.args });
      expect(result.isError === true, `${call.namespace} ${JSON.stringify(call.args)}`).toBe(!call.ok);
    }
    await meter.flush();
    expect(submitErrors).toEqual([]);
    const lines = readSpool(meter.spoolPath).lines;
    closes = lines.flatMap((l) => (l.type === "close" ? [l] : []));
    records = lines.flatMap((l) => (l.type === "call" ? [l.record] : []));
    expect(records).toHaveLength(plan.length);
    expect(closes.map((c) => c.count)).toEqual([8, 8, 8, 8, 8, 2]);
    const submitted = lines.flatMap((l) => (l.type === "submitted" ? [l] : []));
    expect(submitted.map((s) => s.sequence)).toEqual([1, 2, 3, 4, 5, 6]);
    const relayer = accounts[8]!.address;
    for (const s of submitted) {
      const receipt = await chain.publicClient.getTransactionReceipt({ hash: s.txHash as Hex });
      expect(receipt.status).toBe("success");
      expect(receipt.from.toLowerCase(), `batch ${s.sequence}`).toBe(
        (s.sequence % 3 === 0 ? serverAccount.address : relayer).toLowerCase(),
      );
    }
    for (const c of closes) {
      expect(
        await chain.publicClient.readContract({
          address: manifest.contracts.usageLedger,
          abi: UsageLedgerAbi,
          functionName: "isCommitted",
          args: [serverAccount.address, c.batchId as Hex],
        }),
      ).toBe(true);
    }
    expect(upstream.hits.get("/weather/forecast")).toBe(14);
    expect(upstream.hits.get("/finance/quote")).toBe(16);

    // Handing a committed batch over again (as after a crash) is success and sends nothing.
    const again = meter.pendingBatches();
    expect(again).toEqual([]);
    const first: ClosedBatch = {
      server: serverAccount.address,
      sequence: 1,
      batchId: closes[0]!.batchId as Hex,
      period: closes[0]!.period,
      periodStart: Math.min(...records.slice(0, 8).map((r) => r.startedAt)),
      periodEnd: Math.max(...records.slice(0, 8).map((r) => r.endedAt)),
      closedAt: closes[0]!.closedAt,
      records: records.slice(0, 8),
    };
    expect(await submitter.submit(first)).toEqual({ batchId: first.batchId, txHash: null, alreadyCommitted: true });
    // Past the submitter's own check, the API answers a rebuilt batch (fresh encryption, another
    // hash) with 409; the ledger holds the id, so that is success too.
    const { batch } = await relay.build(first);
    const deadline = BigInt(Math.floor(Date.now() / 1000) + 600);
    const signature = await serverAccount.signTypedData(
      batchTypedData(batch, deadline, { chainId: chain.chain.id, ledger: manifest.contracts.usageLedger }),
    );
    const res = await fetch(`${indexer.url}/usage/submit`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(submitRequestBody(batch, deadline, signature)),
    });
    expect(res.status).toBe(409);
  });

  it("the indexer serves the committed batches and the registrations over GraphQL; operator and auditor read every line", async () => {
    await new IndexerClient(indexer.url).waitForBlock(await chain.publicClient.getBlockNumber());
    const data = await new IndexerClient(indexer.url).query<any>(
      `{ usageCommitments(orderBy: "blockNumber", limit: 100) { items { server batchId merkleRoot encryptedLines batchHash periodStart periodEnd } }
         providers(limit: 10) { items { namespace payoutAccount active pricingModel } } }`,
    );
    const rows = data.usageCommitments.items as {
      server: Hex;
      batchId: Hex;
      merkleRoot: Hex;
      encryptedLines: Hex;
      batchHash: Hex;
      periodStart: string;
      periodEnd: string;
    }[];
    expect(rows.map((r) => r.batchId)).toEqual(closes.map((c) => c.batchId));
    let offset = 0;
    const totals: Record<string, Totals> = {};
    for (const [i, row] of rows.entries()) {
      const batchRecords = records.slice(offset, (offset += closes[i]!.count));
      expect(row.server.toLowerCase()).toBe(serverAccount.address.toLowerCase());
      expect(row.merkleRoot).toBe(recordsTree(batchRecords).root);
      expect(row.batchHash).toBe(
        batchHash({
          server: serverAccount.address,
          batchId: row.batchId,
          periodStart: BigInt(row.periodStart),
          periodEnd: BigInt(row.periodEnd),
          merkleRoot: row.merkleRoot,
          encryptedLines: row.encryptedLines,
        }),
      );
      const operatorLines = decryptLinesFor(row.encryptedLines, eerc.operator!.exportPrivateKey(), "operator");
      expect(decryptLinesFor(row.encryptedLines, await auditorKey(), "auditor")).toEqual(operatorLines);
      for (const l of operatorLines) {
        const ns = Object.keys(REGISTRY_PRICING).find((n) => providerIdOf(n) === l.providerId)!;
        const t = (totals[ns] ??= { calls: 0n, billableCalls: 0n, amountMicro: 0n });
        t.calls += l.calls;
        t.billableCalls += l.billableCalls;
        t.amountMicro += l.amountMicro;
      }
    }
    expect(totals).toEqual(expected);
    const providers = (data.providers.items as { namespace: string; payoutAccount: string; pricingModel: string }[]).sort((a, b) =>
      a.namespace.localeCompare(b.namespace),
    );
    expect(providers.map((p) => [p.namespace, p.payoutAccount.toLowerCase(), p.pricingModel])).toEqual([
      ["finance", accounts[4]!.address.toLowerCase(), "PerCall"],
      ["news", accounts[3]!.address.toLowerCase(), "FreePool"],
      ["weather", accounts[2]!.address.toLowerCase(), "Tiered"],
    ]);
  });

  it("each provider's CLI shows exactly its own calls, billable calls and amounts, from the API and from the chain alone", async () => {
    const keys: Record<Namespace, string> = { weather: WEATHER_KEY!, news: NEWS_KEY!, finance: FINANCE_KEY! };
    const namespaces = Object.keys(keys) as Namespace[];
    const runs = await Promise.all(
      namespaces.flatMap((ns) => [
        cli(["usage", "--api", indexer.url, "--json"], { PRIVATE_KEY: keys[ns] }),
        cli(["usage", "--rpc", anvil.rpcUrl, "--manifest", manifestPath, "--json"], { PRIVATE_KEY: keys[ns] }),
      ]),
    );
    for (const [i, run] of runs.entries()) {
      const ns = namespaces[i >> 1]!;
      expect(run.code, run.stderr).toBe(0);
      const report = JSON.parse(run.stdout);
      expect(report.namespaces.map((p: { namespace: string }) => p.namespace)).toEqual([ns]);
      expect(report.batchesScanned).toBe(closes.length);
      const e = expected[ns];
      expect(report.byProvider).toEqual([
        {
          providerId: providerIdOf(ns),
          namespace: ns,
          calls: `${e.calls}`,
          billableCalls: `${e.billableCalls}`,
          amountMicro: `${e.amountMicro}`,
          revenueMicro: "0",
        },
      ]);
      expect(report.total).toEqual({
        calls: `${e.calls}`,
        billableCalls: `${e.billableCalls}`,
        amountMicro: `${e.amountMicro}`,
        revenueMicro: "0",
      });
      // Per batch: exactly the batches holding this provider's calls, with their counts.
      let offset = 0;
      const perBatch = closes.flatMap((c) => {
        const mine = records.slice(offset, (offset += c.count)).filter((r) => r.provider === ns);
        return mine.length === 0
          ? []
          : [{ batchId: c.batchId, calls: `${mine.length}`, billableCalls: `${mine.filter((r) => r.billable).length}` }];
      });
      expect(
        report.batches.map((b: any) => ({ batchId: b.batchId, calls: b.lines[0].calls, billableCalls: b.lines[0].billableCalls })),
      ).toEqual(perBatch);
    }
    // API and RPC agree batch for batch.
    for (let i = 0; i < runs.length; i += 2) {
      const [api, rpc] = [JSON.parse(runs[i]!.stdout), JSON.parse(runs[i + 1]!.stdout)];
      expect(api.batches).toEqual(rpc.batches);
    }
    const table = await cli(["usage", "--rpc", anvil.rpcUrl, "--manifest", manifestPath], { PRIVATE_KEY: WEATHER_KEY! });
    expect(table.code, table.stderr).toBe(0);
    expect(table.stdout).toContain("namespaces paying out to this account: weather");
    expect(table.stdout).toMatch(new RegExp(`weather\\s+${expected.weather.calls}\\s+${expected.weather.billableCalls}\\s+0\\.011500`));
    expect(expected.weather.amountMicro).toBe(11_500n);
  });

  it("--records checks the spool and proof-carrying records against the committed roots and lines, and fails on a tampered record", async () => {
    const spool = join(dir, "records-spool.jsonl");
    copyFileSync(meter.spoolPath, spool);
    // The weather provider's own records with their batch ids and Merkle proofs (nothing of the others).
    const own: unknown[] = [];
    let offset = 0;
    for (const c of closes) {
      const batchRecords = records.slice(offset, (offset += c.count));
      const tree = recordsTree(batchRecords);
      for (const r of batchRecords.filter((r) => r.provider === "weather")) {
        own.push({ ...r, priceMicro: r.priceMicro.toString(), batchId: c.batchId, proof: recordProof(tree, r) });
      }
    }
    const ownFile = join(dir, "weather-records.json");
    writeFileSync(ownFile, JSON.stringify(own));

    const text = readFileSync(spool, "utf8").split("\n");
    const victim = text.findIndex((l) => l.includes('"provider":"weather"') && l.includes('"priceMicro":"1000"'));
    expect(victim).toBeGreaterThan(-1);
    const tamperedSpool = join(dir, "tampered-spool.jsonl");
    writeFileSync(
      tamperedSpool,
      text.map((l, i) => (i === victim ? l.replace('"priceMicro":"1000"', '"priceMicro":"100"') : l)).join("\n"),
    );
    const dropped = join(dir, "weather-records-dropped.json");
    writeFileSync(dropped, JSON.stringify(own.slice(1)));

    const rpc = ["--rpc", anvil.rpcUrl, "--manifest", manifestPath];
    const [spoolApi, spoolRpc, ownRpc, tampered, missing, otherProvider] = await Promise.all([
      cli(["usage", "--api", indexer.url, "--records", spool], { PRIVATE_KEY: WEATHER_KEY! }),
      cli(["usage", ...rpc, "--records", spool, "--json"], { PRIVATE_KEY: FINANCE_KEY! }),
      cli(["usage", ...rpc, "--records", ownFile, "--json"], { PRIVATE_KEY: WEATHER_KEY! }),
      cli(["usage", ...rpc, "--records", tamperedSpool], { PRIVATE_KEY: WEATHER_KEY! }),
      cli(["usage", "--api", indexer.url, "--records", dropped], { PRIVATE_KEY: WEATHER_KEY! }),
      cli(["usage", ...rpc, "--records", ownFile, "--json"], { PRIVATE_KEY: NEWS_KEY! }),
    ]);
    expect(spoolApi.code, spoolApi.stderr).toBe(0);
    expect(spoolApi.stdout).toContain(`records  ${spool}: ${plan.length} records; ${plan.length} in ${closes.length} committed batch(es)`);
    expect(spoolApi.stdout).toContain("records  OK");
    expect(spoolRpc.code, spoolRpc.stderr).toBe(0);
    expect(JSON.parse(spoolRpc.stdout).records).toMatchObject({
      records: plan.length,
      verifiedRecords: plan.length,
      pendingRecords: 0,
      mismatches: [],
      ok: true,
    });
    expect(ownRpc.code, ownRpc.stderr).toBe(0);
    expect(JSON.parse(ownRpc.stdout).records).toMatchObject({
      records: Number(expected.weather.calls),
      verifiedRecords: Number(expected.weather.calls),
      ok: true,
    });
    // Another provider's key, given the weather records: they verify against the roots, and this
    // key's own lines (news) are not accounted for by them.
    expect(otherProvider.code).toBe(1);
    expect(
      JSON.parse(otherProvider.stdout).records.mismatches.every(
        (m: { kind: string; message: string }) => m.kind === "line" && m.message.includes("news"),
      ),
    ).toBe(true);

    expect(tampered.code).toBe(1);
    expect(tampered.stdout).toMatch(
      /records {2}MISMATCH \(1\):\n {2}merkle_root: batch 0x[0-9a-f]{64}: the \d+ records do not hash to the committed Merkle root/,
    );
    expect(tampered.stderr.trim()).toMatch(
      /^error: 1 record check\(s\) failed; first: batch 0x[0-9a-f]{64}: the \d+ records do not hash to the committed Merkle root 0x[0-9a-f]{64}$/,
    );
    expect(missing.code).toBe(1);
    expect(missing.stdout).toMatch(
      /line: batch 0x[0-9a-f]{64}, weather: records give \d+ calls, \d+ billable, \d+ µUSDC billed, \d+ µUSDC paid; the committed line says/,
    );
  });

  it("a competitor's key decrypts nothing", async () => {
    const [api, rpc] = await Promise.all([
      cli(["usage", "--api", indexer.url, "--json"], { PRIVATE_KEY: COMPETITOR_KEY! }),
      cli(["usage", "--rpc", anvil.rpcUrl, "--manifest", manifestPath], { PRIVATE_KEY: COMPETITOR_KEY! }),
    ]);
    expect(api.code, api.stderr).toBe(0);
    expect(JSON.parse(api.stdout)).toMatchObject({
      namespaces: [],
      batchesScanned: closes.length,
      batches: [],
      byProvider: [],
      total: { calls: "0", billableCalls: "0", amountMicro: "0" },
    });
    expect(rpc.code, rpc.stderr).toBe(0);
    expect(rpc.stdout).toContain(`batches: ${closes.length} committed, 0 with lines for this account`);
    expect(rpc.stdout).toContain("no usage decrypts under this key");
    const logs = await chain.publicClient.getContractEvents({
      address: manifest.contracts.usageLedger,
      abi: UsageLedgerAbi,
      eventName: "UsageCommitted",
      fromBlock: BigInt(manifest.startBlock),
    });
    expect(logs).toHaveLength(closes.length);
    const sk = eerc.competitor!.exportPrivateKey();
    for (const log of logs)
      for (const role of ["provider", "operator", "auditor"] as const)
        expect(decryptLinesFor(log.args.encryptedLines!, sk, role)).toEqual([]);
  });
});
