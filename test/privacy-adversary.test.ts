/**
 * The privacy promise played by an adversary against a real world: anvil, the indexer and its
 * API, a metered MCP server answering real MCP calls over Streamable HTTP, the payout agent with
 * real proofs, five providers (two of them free, sharing the revenue pool) and two cycles.
 *
 * - The outsider has an RPC endpoint and every public endpoint.
 * - The competitor is the free provider `wiki`: all the outsider has, plus its own key.
 *
 * Each known attack is run as an attacker would run it and must fail to recover the hidden
 * figure; the ground truth comes from the world's own records (the calls made, and the amounts
 * the operator's key reads), so every assertion can fail.
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { type Address, decodeEventLog, decodeFunctionData, type Hex } from "viem";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { EncryptedERCAbi } from "../abis/EncryptedERCAbi.js";
import { ProviderRegistryAbi } from "../abis/ProviderRegistryAbi.js";
import { RegistrarAbi } from "../abis/RegistrarAbi.js";
import { UsageLedgerAbi } from "../abis/UsageLedgerAbi.js";
import { decryptPCT } from "../src/eerc/pct.js";
import { IndexerClient } from "../src/indexer-client/client.js";
import { payPoolFee } from "../src/local/marketplace.js";
import {
  createBatchSubmitter,
  createMeter,
  flowMcpToolName,
  type McpHttpHost,
  type Meter,
  serveMcpOverHttp,
  staticPricing,
} from "../src/meter/index.js";
import { readSettlementFacts } from "../src/payout/facts.js";
import { decodeTag, operatorAmounts } from "../src/payout/tag.js";
import { feeMicro } from "../src/revenue/price.js";
import type { ProviderId } from "../src/revenue/types.js";
import { decryptLinesFor } from "../src/usage/lines.js";
import { providerIdOf } from "../src/usage/registry.js";
import { getJson } from "./indexer-helpers.js";
import { FEE_BPS, type PayoutWorld, PROVIDERS, payoutWorld } from "./payout-fixtures.js";

/**
 * Calls per cycle and namespace; news and tinyapi make none, wiki none in cycle 2. Cycle 1 makes
 * more than 64 calls, where a meter closing batches at 64 records would have closed one.
 */
const ROUNDS: Record<string, number>[] = [
  { weather: 30, wiki: 21, maps: 19 },
  { weather: 4, maps: 6 },
];
const POOL_FEES = [1_000_000n, 500_000n];
const TOOLS = ["weather", "wiki", "maps"];

let w: PayoutWorld;
let meter: Meter;
let host: McpHttpHost;
let mcp: Client;
/** Ground truth: the amount each provider received per cycle, as the operator's key reads the payouts. */
const received = new Map<string, bigint>();
/** Ground truth: per cycle, the committed batch's calls per namespace. */
const batchCalls: Map<string, number>[] = [];
/** Everything the payout agent logged. */
const agentLog: string[] = [];

const key = (cycle: number, ns: string) => `${cycle}:${ns}`;
const nsOf = new Map(PROVIDERS.map((p) => [providerIdOf(p.namespace) as ProviderId, p.namespace]));

beforeAll(async () => {
  w = await payoutWorld({ fundMicro: 20_000_000n });
  const m = w.manifest;
  const submitter = createBatchSubmitter({
    serverAccount: w.server,
    publicClient: w.chain.publicClient,
    walletClient: w.chain.walletFor(w.server),
    ledger: m.contracts.usageLedger,
    registry: m.contracts.providerRegistry,
    registrar: m.contracts.registrar,
    eerc: m.contracts.encryptedERC,
    mode: { kind: "direct" },
  });
  meter = createMeter({
    spoolDir: mkdtempSync(join(tmpdir(), "bs-adversary-")),
    serverAddress: w.server.address,
    pricing: staticPricing(Object.fromEntries(PROVIDERS.map((p) => [p.namespace, p.pricing]))),
    batch: { maxAgeMs: 600_000 },
    onBatch: (b) => submitter.onBatch(b),
  });
  await meter.recover();
  host = await serveMcpOverHttp({
    createMcpServer: () => {
      const server = new McpServer({ name: "adversary-world", version: "1.0.0" });
      for (const namespace of TOOLS) {
        meter.registerTool(
          server,
          { namespace, route: "lookup", description: `${namespace} lookup`, inputSchema: { q: z.string() } },
          async ({ q }) => ({
            content: [{ type: "text", text: `${namespace}: ${q}` }],
          }),
        );
      }
      return server;
    },
  });
  mcp = new Client({ name: "adversary-agent", version: "1.0.0" });
  await mcp.connect(new StreamableHTTPClientTransport(new URL(host.url)));

  for (const [round, plan] of ROUNDS.entries()) {
    for (const [ns, n] of Object.entries(plan)) {
      for (let i = 0; i < n; i++) {
        const result = await mcp.callTool({ name: flowMcpToolName("lookup", ns), arguments: { q: `${ns}-${round}-${i}` } });
        expect(result.isError).toBeFalsy();
      }
    }
    await meter.flush();
    batchCalls.push(new Map(Object.entries(plan)));
    await payPoolFee(w.chain, w.manifest, w.user, POOL_FEES[round]!);
    const result = await w.agent({ log: (line) => agentLog.push(line) }).runCycle();
    expect(result.status).toBe("paid");
  }

  await new IndexerClient(w.indexer.url).waitForBlock(await w.chain.publicClient.getBlockNumber({ cacheTime: 0 }));
  const facts = await readSettlementFacts(new IndexerClient(w.indexer.url), [w.operator.address]);
  const { amounts } = operatorAmounts(w.operator.exportPrivateKey(), facts);
  for (const p of facts.payouts) received.set(key(p.cycle, nsOf.get(p.providerId)!), amounts.get(p.txHash)!);
});

afterAll(async () => {
  await mcp?.close();
  await host?.close();
  await meter?.close();
  await w?.close();
});

type PublicTransfer = { txHash: Hex; to: Address; auditorPCT: string[]; receiverPCT: string[] | null; blockNumber: string };

/** What anyone reads from the indexer: every private transfer, and every fee paid into the pool. */
async function publicRecords() {
  const api = new IndexerClient(w.indexer.url);
  const transfers = await api.all<PublicTransfer>("privateTransfers", "txHash to auditorPCT receiverPCT blockNumber", "blockNumber");
  const fees = await api.all<{ amount: string; blockNumber: string }>("poolFees", "amount blockNumber", "blockNumber");
  const tagged = transfers.map((t) => ({ ...t, tag: decodeTag(BigInt(t.auditorPCT[6]!)) })).filter((t) => t.tag);
  const boundaries = [...new Map(tagged.map((t) => [t.tag!.cycle, t.tag!.throughBlock])).entries()].sort((a, b) => a[0] - b[0]);
  return { tagged, fees, boundaries };
}

describe("the competitor (a free provider with its own key)", () => {
  it("cannot subtract its way to the other free provider's pool share or usage", async () => {
    const { tagged, fees, boundaries } = await publicRecords();
    const wiki = w.payoutAccounts.get("wiki")!;
    let after = -1n;
    for (const [cycle, through] of boundaries) {
      // The pool is public: the fees paid into it in the cycle's blocks, less the platform fee.
      const pool = fees
        .filter((f) => BigInt(f.blockNumber) > after && BigInt(f.blockNumber) <= through)
        .reduce((s, f) => s + BigInt(f.amount), 0n);
      after = through;
      const poolAfterFee = pool - feeMicro(pool, BigInt(FEE_BPS));
      // Its own share, read with its own key from the transfer it received.
      const mine = tagged.find((t) => t.tag!.cycle === cycle && t.to.toLowerCase() === wiki.account.address.toLowerCase())!;
      const own = decryptPCT(mine.receiverPCT!.map(BigInt), wiki.client.exportPrivateKey());
      expect(own, `cycle ${cycle}: the competitor's own share`).toBe(received.get(key(cycle, "wiki")));
      // The attack: the other free provider got the rest.
      const estimate = poolAfterFee - own;
      expect(estimate, `cycle ${cycle}: the pool arithmetic must not give maps' share`).not.toBe(received.get(key(cycle, "maps")));
      if (own > 0n) {
        // And its usage: own share per own call, weights public (wiki 1, maps 3).
        const ownCalls = BigInt(batchCalls[cycle - 1]!.get("wiki")!);
        const mapsCalls = BigInt(batchCalls[cycle - 1]!.get("maps")!);
        expect(estimate * ownCalls, `cycle ${cycle}: the usage arithmetic must not give maps' calls`).not.toBe(mapsCalls * 3n * own);
      }
    }
    // Across both cycles combined too.
    const total = POOL_FEES.reduce((s, f) => s + f - feeMicro(f, BigInt(FEE_BPS)), 0n);
    const ownTotal = received.get(key(1, "wiki"))! + received.get(key(2, "wiki"))!;
    expect(total - ownTotal).not.toBe(received.get(key(1, "maps"))! + received.get(key(2, "maps"))!);
  });

  it("cannot count the others' calls in a batch from its own line", async () => {
    const api = new IndexerClient(w.indexer.url);
    const batches = await api.all<{ encryptedLines: Hex; blockNumber: string }>(
      "usageCommitments",
      "encryptedLines blockNumber",
      "blockNumber",
    );
    expect(batches).toHaveLength(ROUNDS.length);
    const wiki = w.payoutAccounts.get("wiki")!;
    for (const [i, b] of batches.entries()) {
      const own = decryptLinesFor(b.encryptedLines, wiki.client.exportPrivateKey(), "provider").reduce((s, l) => s + Number(l.calls), 0);
      expect(own).toBe(batchCalls[i]!.get("wiki") ?? 0);
      const others = [...batchCalls[i]!].filter(([ns]) => ns !== "wiki").reduce((s, [, n]) => s + n, 0);
      // The attack on batches closed at a fixed size (64 records): the others made the rest.
      expect(64 - own, `batch ${i + 1}`).not.toBe(others);
    }
  });
});

describe("the outsider (an RPC endpoint and every public endpoint)", () => {
  it("cannot tell from the transfers which providers had usage in a cycle", async () => {
    const { tagged, boundaries } = await publicRecords();
    for (const [cycle] of boundaries) {
      const paid = new Set(tagged.filter((t) => t.tag!.cycle === cycle).map((t) => t.to.toLowerCase()));
      for (const p of PROVIDERS) {
        const account = w.payoutAccounts.get(p.namespace)!.account.address.toLowerCase();
        const hadUsage = (ROUNDS[cycle - 1]![p.namespace] ?? 0) > 0;
        // The attack "a transfer means usage" is right only by chance: every provider got one.
        expect(paid.has(account), `cycle ${cycle}, ${p.namespace} (usage: ${hadUsage})`).toBe(true);
      }
    }
    // And it is wrong here: news and tinyapi made no call at all, wiki none in cycle 2.
    expect(received.get(key(1, "tinyapi"))).toBe(0n);
    expect(received.get(key(2, "wiki"))).toBe(0n);
  });

  it("finds no plaintext usage count or private amount in the GraphQL schema or another provider's REST answer", async () => {
    const res = await fetch(`${w.indexer.url}/graphql`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ query: "{ __schema { types { name fields { name } } } }" }),
    });
    const { data } = (await res.json()) as { data: { __schema: { types: { name: string; fields: { name: string }[] | null }[] } } };
    const fields = data.__schema.types
      .filter((t) => !t.name.startsWith("__"))
      .flatMap((t) => (t.fields ?? []).map((f) => `${t.name}.${f.name}`));
    // Tier thresholds (`tierUpToCalls`) are public pricing, and a server's caps (`serverBinding.maxCalls…`)
    // public settings, not usage.
    expect(
      fields.filter((f) => /calls|billable|earned|owed|balanceMicro|amountMicro/i.test(f) && !/\.tier|^serverBinding\.maxCalls/.test(f)),
    ).toEqual([]);
    // Amounts in clear are only the public ones: deposits, withdrawals and fees paid into the pool.
    const amounts = fields.filter((f) => /\.(amount|credited|dust|tokenAmount)$/.test(f)).map((f) => f.split(".")[0]);
    expect(new Set(amounts)).toEqual(new Set(["deposit", "withdrawal", "poolFee"]));

    const maps = w.payoutAccounts.get("maps")!.account.address;
    const { status, body } = await getJson(`${w.indexer.url}/providers/${maps}/earnings`);
    expect(status).toBe(200);
    const keys = new Set<string>();
    const walk = (v: unknown) => {
      if (Array.isArray(v)) v.forEach(walk);
      else if (v && typeof v === "object") {
        for (const [k, x] of Object.entries(v)) {
          keys.add(k);
          walk(x);
        }
      }
    };
    walk(body);
    expect([...keys].filter((k) => /micro|calls|earned|owed/i.test(k))).toEqual([]);
    // What it serves about amounts is ciphertext: a received transfer's PCT does not open with the competitor's key.
    const transfer = body.receivedTransfers[0] as { amountPCT: string[] };
    expect(() => decryptPCT(transfer.amountPCT.map(BigInt), w.payoutAccounts.get("wiki")!.client.exportPrivateKey())).toThrow();
  });

  it("finds no payout amount in any event or in the calldata of any transaction to the contracts", async () => {
    const c = w.manifest.contracts;
    const abi = [...EncryptedERCAbi, ...RegistrarAbi, ...UsageLedgerAbi, ...ProviderRegistryAbi];
    const logs = await w.chain.publicClient.getLogs({
      address: [c.encryptedERC, c.registrar, c.usageLedger, c.providerRegistry],
      fromBlock: BigInt(w.manifest.startBlock),
    });
    const hidden = [...received.values()].filter((v) => v >= 1000n);
    expect(hidden.length).toBeGreaterThan(0);
    const values: bigint[] = [];
    const collect = (v: unknown) => {
      if (typeof v === "bigint") values.push(v);
      else if (Array.isArray(v)) v.forEach(collect);
      else if (v && typeof v === "object") Object.values(v).forEach(collect);
    };
    let decoded = 0;
    for (const log of logs) {
      const event = decodeEventLog({ abi, data: log.data, topics: log.topics, strict: false });
      collect(event.args);
      decoded += 1;
      const tx = await w.chain.publicClient.getTransaction({ hash: log.transactionHash! });
      try {
        collect(decodeFunctionData({ abi, data: tx.input }).args);
      } catch {
        // Not a call to one of these contracts (a deployment, say).
      }
    }
    expect(decoded).toBeGreaterThan(20);
    expect(values.filter((v) => hidden.includes(v))).toEqual([]);
  });

  it("reads no payout amount in the agent's log", () => {
    expect(agentLog.length).toBeGreaterThan(0);
    // Amounts of four digits or more: smaller numbers stand in log lines for counts and blocks.
    const amounts = [...received.values()].filter((v) => v >= 1000n).map(String);
    expect(amounts.length).toBeGreaterThan(0);
    // Durations ("in 3600 ms", "ms=3600") are timings: a proof that took as many milliseconds as an amount is no leak.
    const withoutTimings = (line: string) => line.replace(/\b\d+ ms\b(?!=)|\bms=\d+\b/g, "");
    for (const line of agentLog) for (const a of amounts) expect(withoutTimings(line), line).not.toContain(a);
  });
});
