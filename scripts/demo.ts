import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { serve } from "@hono/node-server";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import type { Address, PrivateKeyAccount } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { freePort } from "../src/chain/anvil.js";
import { ANVIL_KEYS, LOCAL_ROLES } from "../src/chain/local.js";
import { DEFAULT_AGENT_NAME } from "../src/config/agent.js";
import { deploy } from "../src/deployment/deploy.js";
import type { EercClient } from "../src/eerc/client.js";
import { deriveKeyFromWallet } from "../src/eerc/keys.js";
import { decryptHistory } from "../src/history/index.js";
import { IndexerClient } from "../src/indexer-client/client.js";
import { newFundedAccount, payPoolFee } from "../src/local/marketplace.js";
import { type LocalWorld, localWorld } from "../src/local/world.js";
import {
  createBatchSubmitter,
  createMeter,
  flowMcpFailed,
  flowMcpToolName,
  registryPricing,
  serveMcpOverHttp,
} from "../src/meter/index.js";
import { formatUsdc, parseUsdc } from "../src/money/usdc.js";
import type { PayoutAgent } from "../src/payout/agent.js";
import { reconcile } from "../src/payout/reconcile.js";
import { agentIdOf, CycleRunner, payoutApp } from "../src/payout/server.js";
import { freePool, freeQuotaThenPerCall, type Pricing, perCall } from "../src/usage/pricing.js";
import { providerIdOf } from "../src/usage/registry.js";
import { createDemoMcpServer, DEMO_TOOLS, type DemoNamespace, startDemoApis } from "./demo-flowmcp.js";
import { reportStack, run } from "./run.js";

// The whole journey on a local chain: providers register, an MCP client calls a FlowMCP server
// whose meter commits usage on chain, users pay fees into the revenue pool, the payout agent runs
// two cycles of private transfers, providers check what they got and withdraw, and the auditor
// reconciles every cycle.

const FEE_BPS = 1000;

/** Commercial (per call), hybrid (a free quota, then per call) and free (a share of the pool). */
const PROVIDERS: { namespace: DemoNamespace; kind: string; pricing: Pricing }[] = [
  {
    namespace: "weather",
    kind: "commercial",
    pricing: perCall(2_000n),
  },
  {
    namespace: "finance",
    kind: "commercial",
    pricing: perCall(5_000n),
  },
  {
    namespace: "news",
    kind: "hybrid",
    pricing: freeQuotaThenPerCall(20n, 500n),
  },
  { namespace: "wiki", kind: "free", pricing: freePool(1) },
  { namespace: "maps", kind: "free", pricing: freePool(2) },
  // 0.000001 USDC a call: one call in the second round is a payout of exactly 1 micro-USDC.
  { namespace: "units", kind: "commercial", pricing: perCall(1n) },
];

/** Calls per provider in each round; every 17th call asks for a failing upstream. */
const ROUNDS: Record<DemoNamespace, number>[] = [
  { weather: 60, finance: 25, news: 45, wiki: 40, maps: 30, units: 3 },
  { weather: 35, finance: 20, news: 30, wiki: 10, maps: 25, units: 1 },
];
/** Fees users pay into the revenue pool before each cycle. */
const FEES = [["1.5", "2", "0.5"], ["1.25"]];

type Report = {
  chainId: number;
  decimals: number;
  mcp: { calls: number; failed: number };
  providers: {
    namespace: string;
    kind: string;
    account: Address;
    calls: number;
    earnedMicro: string;
    paidMicro: string;
    decryptedMicro: string;
    withdrawnMicro: string;
  }[];
  /**
   * Per cycle: the pool received, the reserve carried in, what was split, the reserve carried out,
   * what was deposited into the payer's encrypted balance in the cycle's blocks (the auditor's
   * figures), what was paid.
   */
  cycles: {
    id: number;
    poolMicro: string;
    depositedMicro: string;
    carriedInMicro: string;
    splitMicro: string;
    carriedOutMicro: string;
    paidMicro: string;
    transfers: number;
  }[];
  /** Every payout transfer, with the amount the operator paid (the demo holds every role's key). */
  transfers: { cycle: number; namespace: string; to: Address; payer: Address; txHash: string; amountMicro: string }[];
  /** Each provider's decrypted balance after the cycles, and on chain after its withdrawal. */
  balances: { namespace: string; account: Address; paidBalanceMicro: string; finalBalanceMicro: string }[];
  withdrawals: { namespace: string; account: Address; amountMicro: string; txHash: string }[];
  /** Each provider's balance history, decrypted with its own key from the API, withdrawal included. */
  history: { namespace: string; rows: { blockNumber: string; txHash: string; kind: string; balanceMicro: string; deltaMicro: string }[] }[];
  audit: { ok: boolean; totalMicro: string };
};

function reportPath(argv: string[]): string | undefined {
  const i = argv.indexOf("--report");
  if (i === -1) return undefined;
  const path = argv[i + 1];
  if (!path || path.startsWith("--")) throw new Error("--report needs a file path");
  return path;
}

/**
 * `--keep`: after the journey, everything stays up (chain, indexer and API with the dashboard,
 * the agent's HTTP API, the MCP server) until Ctrl-C, which stops all of it.
 */
async function keepServing(world: LocalWorld, agent: PayoutAgent, mcpUrl: string): Promise<void> {
  const api = world.indexer!.url.replace(/\/$/, "");
  const runner = new CycleRunner(agent);
  const agentPort = await freePort();
  const agentUrl = `http://127.0.0.1:${agentPort}`;
  const app = payoutApp({
    runner,
    operator: world.operator.address,
    chainId: world.manifest.chainId,
    agentId: agentIdOf(world.manifest.contracts.usageLedger, DEFAULT_AGENT_NAME),
    corsOrigins: [new URL(api).origin],
  });
  const server = serve({ fetch: app.fetch, port: agentPort, hostname: "127.0.0.1" });
  const query = new URLSearchParams({ api, rpc: world.rpcUrl, agent: agentUrl });
  const accounts = [
    ["#0", world.operator.address, "operator: owner and payer (operator view)"],
    ...[...world.payoutAccounts].map(([ns, p], i) => [`#${i + 1}`, p.account.address, `provider ${ns} (provider view)`]),
    [`#${LOCAL_ROLES.auditor}`, privateKeyToAccount(ANVIL_KEYS[LOCAL_ROLES.auditor]).address, "auditor (auditor view)"],
  ];
  console.log(
    [
      "",
      "still running (--keep):",
      `  dashboard  ${api}/app/?${query}`,
      `  API        ${api} (GraphQL ${api}/graphql, OpenAPI ${api}/openapi.json)`,
      `  RPC        ${world.rpcUrl} (anvil, chain ${world.manifest.chainId})`,
      `  agent      ${agentUrl} (npm run cli -- distribute --agent ${agentUrl}, with the operator's key)`,
      `  MCP        ${mcpUrl}`,
      'demo accounts (anvil\'s well-known keys; pick them under "Demo accounts" in the dashboard):',
      ...accounts.map(([index, address, role]) => `  ${index!.padEnd(3)} ${address}  ${role}`),
      "Ctrl-C stops every process the demo started.",
    ].join("\n"),
  );
  await new Promise<void>((resolve) => {
    process.once("SIGINT", () => resolve());
    process.once("SIGTERM", () => resolve());
  });
  console.log("stopping");
  await runner.stop();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  return rows.map((r) => r.map((cell, c) => (c < 2 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join("  ")).join("\n");
}

type Step = (line: string) => void;
type Providers = Map<DemoNamespace, { account: PrivateKeyAccount; client: EercClient }>;
const namespaceOf = new Map(PROVIDERS.map((p) => [providerIdOf(p.namespace), p.namespace]));

/**
 * The marketplace, with the operator (anvil's account #0) as the contracts' owner and the payer:
 * funded from the USDC it holds for the per-call usage it bills, and by the agent from the fees
 * in the revenue pool (anvil's account #7) before each cycle.
 */
function startWorld(step: Step, auditor: PrivateKeyAccount): Promise<LocalWorld> {
  return localWorld({
    rpcUrl: process.env.RPC_URL || undefined,
    providers: PROVIDERS,
    // anvil's accounts #1 to #6: the dashboard's demo accounts open each provider's view.
    payoutKeys: ANVIL_KEYS.slice(1, 1 + PROVIDERS.length),
    fundMicro: parseUsdc("50"),
    fundFromPool: true,
    indexer: true,
    settlement: { feeBps: FEE_BPS, periodUnit: "month" },
    deploy: ({ rpcUrl, prover, settlement }) => {
      step(process.env.RPC_URL ? `using RPC ${rpcUrl}` : `started anvil at ${rpcUrl}`);
      return deploy({
        rpcUrl,
        network: process.env.NETWORK ?? "anvil",
        deployer: privateKeyToAccount(ANVIL_KEYS[LOCAL_ROLES.owner]),
        auditor,
        prover,
        settlement,
        log: step,
      });
    },
  });
}

/** The FlowMCP server: its meter prices each call from the registry (live) and commits batches on the UsageLedger. */
async function startFlowMcp(world: LocalWorld) {
  const { chain, manifest, server } = world;
  const pricing = await registryPricing({
    publicClient: chain.publicClient,
    registry: manifest.contracts.providerRegistry,
    namespaces: PROVIDERS.map((p) => p.namespace),
  });
  const submitter = createBatchSubmitter({
    serverAccount: server,
    publicClient: chain.publicClient,
    walletClient: chain.walletFor(server),
    ledger: manifest.contracts.usageLedger,
    registry: manifest.contracts.providerRegistry,
    registrar: manifest.contracts.registrar,
    eerc: manifest.contracts.encryptedERC,
    mode: { kind: "direct" },
  });
  const meter = createMeter({
    spoolDir: mkdtempSync(join(tmpdir(), "backendshield-demo-")),
    serverAddress: server.address,
    pricing,
    batch: { maxAgeMs: 60_000 },
    submitter,
  });
  await meter.recover();
  const apis = await startDemoApis();
  const host = await serveMcpOverHttp({ createMcpServer: () => createDemoMcpServer(meter, apis.url) });
  const mcp = new Client({ name: "demo-agent", version: "1.0.0" });
  await mcp.connect(new StreamableHTTPClientTransport(new URL(host.url)));
  return {
    url: host.url,
    meter,
    mcp,
    close: async () => {
      pricing.close();
      await mcp.close().catch(() => {});
      await host.close();
      await meter.close();
      await apis.close();
    },
  };
}

type FlowMcp = Awaited<ReturnType<typeof startFlowMcp>>;

/** One round: the MCP client's calls (every 17th asks for a failing upstream), committed on chain. */
async function callTools(flowMcp: FlowMcp, round: number, tally: { calls: Map<DemoNamespace, number>; total: number; failed: number }) {
  const plan = ROUNDS[round]!;
  const queue = Object.entries(plan).flatMap(([ns, n]) => Array.from({ length: n }, (_, i) => ({ ns: ns as DemoNamespace, i })));
  queue.sort((a, b) => ((a.i * 31 + a.ns.length) % 7) - ((b.i * 31 + b.ns.length) % 7));
  for (const { ns, i } of queue) {
    const fail = (tally.total + 1) % 17 === 0;
    const result = await flowMcp.mcp.callTool({
      name: flowMcpToolName(DEMO_TOOLS[ns].route, ns),
      arguments: { q: fail ? "fail" : `${ns}-${round}-${i}` },
    });
    if (flowMcpFailed(result as CallToolResult)) tally.failed += 1;
    tally.total += 1;
    tally.calls.set(ns, (tally.calls.get(ns) ?? 0) + 1);
  }
  await flowMcp.meter.flush();
  return queue.length;
}

/** The agent's cycle, as the demo reports it; the reserve columns are filled from the auditor's reconciliation. */
async function payCycle(agent: PayoutAgent): Promise<{ cycle: Report["cycles"][number]; transfers: Report["transfers"] }> {
  const result = await agent.runCycle();
  if (result.status !== "paid") throw new Error("a cycle paid nothing");
  return {
    cycle: {
      id: result.cycle,
      poolMicro: result.poolMicro.toString(),
      depositedMicro: "",
      carriedInMicro: "",
      splitMicro: "",
      carriedOutMicro: "",
      paidMicro: result.paidMicro.toString(),
      transfers: result.transfers.length,
    },
    transfers: result.transfers.map((t) => ({
      cycle: result.cycle,
      namespace: namespaceOf.get(t.providerId) ?? t.providerId,
      to: t.to,
      payer: t.payer,
      txHash: t.txHash,
      amountMicro: t.amount.toString(),
    })),
  };
}

/** Every provider, with its own key: its balance through the API equals the chain's, and nothing is pending. */
async function decryptedBalances(world: LocalWorld, providers: Providers): Promise<Map<DemoNamespace, bigint>> {
  const api = new IndexerClient(world.indexer!.url);
  await api.waitForBlock(await world.chain.publicClient.getBlockNumber({ cacheTime: 0 }));
  const decrypted = new Map<DemoNamespace, bigint>();
  for (const [ns, p] of providers) {
    const history = decryptHistory(await api.earnings(p.account.address), p.client.exportPrivateKey());
    const balance = history.tokens.find((t) => t.tokenId === world.tokenId)?.balanceMicro ?? 0n;
    if (balance !== (await p.client.balance(world.tokenId))) throw new Error(`${ns}: the indexed balance differs from the chain's`);
    if (history.pending?.amountMicro !== 0n) throw new Error(`${ns}: the API shows a pending amount after the cycles`);
    decrypted.set(ns, balance);
  }
  return decrypted;
}

/** Claims: each provider withdraws what it was paid to its own wallet (the public amount is all a withdrawal shows). */
async function withdrawAll(world: LocalWorld, providers: Providers, decrypted: Map<DemoNamespace, bigint>): Promise<Report["withdrawals"]> {
  const withdrawals: Report["withdrawals"] = [];
  for (const [ns, p] of providers) {
    const amount = decrypted.get(ns)!;
    if (amount === 0n) continue;
    const receipt = await p.client.withdraw({ amount, tokenId: world.tokenId });
    withdrawals.push({ namespace: ns, account: p.account.address, amountMicro: amount.toString(), txHash: receipt.transactionHash });
  }
  return withdrawals;
}

/** Each provider's balance history through the API after the withdrawals, decrypted with its own key. */
async function histories(world: LocalWorld, providers: Providers): Promise<Report["history"]> {
  const api = new IndexerClient(world.indexer!.url);
  await api.waitForBlock(await world.chain.publicClient.getBlockNumber({ cacheTime: 0 }));
  const out: Report["history"] = [];
  for (const [ns, p] of providers) {
    const mine = decryptHistory(await api.earnings(p.account.address), p.client.exportPrivateKey());
    const rows = mine.tokens.find((t) => t.tokenId === world.tokenId)?.rows ?? [];
    out.push({
      namespace: ns,
      rows: rows.map((r) => ({
        blockNumber: r.blockNumber.toString(),
        txHash: r.txHash,
        kind: r.kind,
        balanceMicro: r.balanceMicro.toString(),
        deltaMicro: r.deltaMicro.toString(),
      })),
    });
  }
  return out;
}

function printReport(report: Report): void {
  const usdc = (v: string) => formatUsdc(BigInt(v));
  console.log(
    `\nchain ${report.chainId}; ${report.mcp.calls} MCP calls (${report.mcp.failed} failed, not billed); platform fee ${FEE_BPS / 100}%\n`,
  );
  console.log(
    table([
      ["provider", "kind", "calls", "earned USDC", "paid USDC", "decrypted USDC", "withdrawn USDC", "ok"],
      ...report.providers.map((r) => [
        r.namespace,
        r.kind,
        String(r.calls),
        usdc(r.earnedMicro),
        usdc(r.paidMicro),
        usdc(r.decryptedMicro),
        usdc(r.withdrawnMicro),
        r.earnedMicro === r.paidMicro && r.paidMicro === r.decryptedMicro ? "yes" : "NO",
      ]),
    ]),
  );
  console.log("");
  // The pool received and the deposits are public; what it carried in, split and carried out is the operator's and the auditor's.
  console.log(
    table([
      ["cycle", "", "pool USDC", "deposited", "carried in", "pool split", "carried out", "paid USDC", "transfers"],
      ...report.cycles.map((c) => [
        String(c.id),
        "",
        usdc(c.poolMicro),
        usdc(c.depositedMicro),
        usdc(c.carriedInMicro),
        usdc(c.splitMicro),
        usdc(c.carriedOutMicro),
        usdc(c.paidMicro),
        String(c.transfers),
      ]),
    ]),
  );
  const transfers = report.cycles.reduce((s, c) => s + c.transfers, 0);
  console.log(
    `\naudit: ${report.audit.ok ? "ok" : "MISMATCH"}, ${usdc(report.audit.totalMicro)} USDC paid in ${transfers} private transfers`,
  );
}

async function main(): Promise<void> {
  const reportFile = reportPath(process.argv.slice(2));
  const started = Date.now();
  const step: Step = (line) => console.log(`[${((Date.now() - started) / 1000).toFixed(1)}s] ${line}`);
  const auditorAccount = privateKeyToAccount(ANVIL_KEYS[LOCAL_ROLES.auditor]);
  let world: LocalWorld | undefined;
  let flowMcp: FlowMcp | undefined;
  try {
    world = await startWorld(step, auditorAccount);
    const { chain, manifest, operator, tokenId } = world;
    step(`operator ${operator.address} registered and funded with 50 USDC of encrypted balance (token id ${tokenId})`);
    step(`registered ${PROVIDERS.length} providers: ${PROVIDERS.map((p) => `${p.namespace} (${p.kind})`).join(", ")}`);
    step(`indexer and API serving at ${world.indexer!.url} (GraphQL at ${world.indexer!.url}/graphql)`);
    const providers = world.payoutAccounts as Providers;
    flowMcp = await startFlowMcp(world);
    step(`FlowMCP server with the meter at ${flowMcp.url}; an MCP client connected`);

    const agent = world.agent({ log: (line) => step(`agent: ${line}`) });
    const users = [world.user, await newFundedAccount(chain), await newFundedAccount(chain)];
    const tally = { calls: new Map<DemoNamespace, number>(), total: 0, failed: 0 };
    const cycles: Report["cycles"] = [];
    const transfers: Report["transfers"] = [];
    for (const round of ROUNDS.keys()) {
      const calls = await callTools(flowMcp, round, tally);
      step(`round ${round + 1}: ${calls} MCP calls metered and committed on chain (${tally.failed} failed so far, counted but not billed)`);
      for (const [i, fee] of FEES[round]!.entries()) await payPoolFee(chain, manifest, users[i]!, parseUsdc(fee));
      step(`users paid ${FEES[round]!.join(" + ")} USDC of fees into the revenue pool`);
      const paid = await payCycle(agent);
      cycles.push(paid.cycle);
      transfers.push(...paid.transfers);
      step(`cycle ${paid.cycle.id}: ${paid.cycle.transfers} private transfers, pool ${formatUsdc(BigInt(paid.cycle.poolMicro))} USDC`);
    }

    const decrypted = await decryptedBalances(world, providers);
    step("each provider decrypted its balance history through the API with its own key; nothing is pending");
    const audit = await reconcile({
      indexer: new IndexerClient(world.indexer!.url),
      auditorSk: await deriveKeyFromWallet(auditorAccount),
      operatorPk: operator.publicKey,
    });
    step(
      `auditor reconciled ${audit.cycles.length} cycles independently: ${audit.ok ? "every provider paid exactly what it was owed" : "MISMATCH"}`,
    );
    for (const c of cycles) {
      const a = audit.cycles.find((x) => x.cycle === c.id);
      if (!a) throw new Error(`the auditor's reconciliation has no cycle ${c.id}`);
      Object.assign(c, {
        depositedMicro: `${a.moneyFlow.depositedMicro}`,
        carriedInMicro: `${a.carriedInMicro}`,
        splitMicro: `${a.splitMicro}`,
        carriedOutMicro: `${a.carriedOutMicro}`,
      });
    }
    const withdrawals = await withdrawAll(world, providers, decrypted);
    step(`${withdrawals.length} providers withdrew their balances to their wallets`);

    const history = await histories(world, providers);
    const balances: Report["balances"] = [];
    for (const [ns, p] of providers) {
      const finalBalanceMicro = (await p.client.balance(tokenId)).toString();
      balances.push({ namespace: ns, account: p.account.address, paidBalanceMicro: decrypted.get(ns)!.toString(), finalBalanceMicro });
    }
    const rows: Report["providers"] = PROVIDERS.map(({ namespace, kind }) => {
      const mine = audit.cycles.flatMap((c) => c.rows.filter((r) => r.providerId === providerIdOf(namespace)));
      return {
        namespace,
        kind,
        account: providers.get(namespace)!.account.address,
        calls: tally.calls.get(namespace) ?? 0,
        earnedMicro: mine.reduce((s, r) => s + r.owedMicro, 0n).toString(),
        paidMicro: mine.reduce((s, r) => s + r.paidMicro, 0n).toString(),
        decryptedMicro: (decrypted.get(namespace) ?? 0n).toString(),
        withdrawnMicro: withdrawals.find((w) => w.namespace === namespace)?.amountMicro ?? "0",
      };
    });
    const report: Report = {
      chainId: manifest.chainId,
      decimals: manifest.decimals,
      mcp: { calls: tally.total, failed: tally.failed },
      providers: rows,
      cycles,
      transfers,
      balances,
      withdrawals,
      history,
      audit: { ok: audit.ok, totalMicro: audit.totalMicro.toString() },
    };
    printReport(report);
    if (reportFile) {
      writeFileSync(reportFile, `${JSON.stringify(report, null, 2)}\n`);
      console.log(`report written to ${reportFile}`);
    }
    if (!audit.ok || rows.some((r) => r.earnedMicro !== r.paidMicro || r.paidMicro !== r.decryptedMicro)) process.exitCode = 1;
    if (process.argv.includes("--keep")) await keepServing(world, agent, flowMcp.url);
  } finally {
    await flowMcp?.close();
    await world?.close();
  }
}

run(main, reportStack);
