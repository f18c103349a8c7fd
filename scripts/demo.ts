import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { serve } from "@hono/node-server";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import { type Address, erc20Abi, type PrivateKeyAccount } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { freePort } from "../src/chain/anvil.js";
import { ANVIL_KEYS, LOCAL_ROLES } from "../src/chain/local.js";
import { DEFAULT_AGENT_NAME } from "../src/config/agent.js";
import { deploy } from "../src/deployment/deploy.js";
import type { EercClient } from "../src/eerc/client.js";
import { deriveKeyFromWallet } from "../src/eerc/keys.js";
import { decryptHistory } from "../src/history/index.js";
import { IndexerClient } from "../src/indexer-client/client.js";
import { mintUsdc, newFundedAccount } from "../src/local/marketplace.js";
import { type LocalWorld, localWorld } from "../src/local/world.js";
import {
  createBatchSubmitter,
  createInProcessFacilitator,
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
import { levyOf } from "../src/payout/settlement.js";
import { decryptLinesFor } from "../src/usage/lines.js";
import { freePool, freeQuotaThenPerCall, type Pricing, PricingModel, perCall } from "../src/usage/pricing.js";
import { providerIdOf } from "../src/usage/registry.js";
import { createToolPayer, type ToolPayer } from "../src/x402/index.js";
import { createDemoMcpServer, DEMO_TOOLS, type DemoNamespace, startDemoApis } from "./demo-flowmcp.js";
import { reportStack, run } from "./run.js";

// The whole journey on a local chain: providers register, AI agents call a FlowMCP server and pay
// for each call with x402 from their own wallets, the server's meter commits usage (with what the
// calls paid) on chain, the payout agent deposits the revenue into the payer's encrypted balance
// and runs two cycles of private transfers, providers check what they got and withdraw, and the
// auditor reconciles every cycle, money flow included: revenue in = paid out + platform fee + carry.

const FEE_BPS = 1000;
/** What every call pays on top of the provider's price: the levy that funds the free APIs (docs/revenue.md). */
const SURCHARGE_MICRO = 300n;
/** AI agents paying for calls, each from its own wallet, holding this much USDC. */
const AGENT_WALLETS = 3;
const AGENT_USDC = "5";

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

type Report = {
  chainId: number;
  decimals: number;
  /** Tool calls the agents made; `paid` were settled with x402, `failed` met a failing upstream (not charged, not billed). */
  mcp: { calls: number; paid: number; failed: number; agents: number; surchargeMicro: string };
  /**
   * Per provider, from the usage lines the operator decrypts: calls recorded (a first call to a
   * tool, unpaid, learns its price), paid calls, what they paid (`revenueMicro`), the part beyond
   * the price (`levyMicro`, to the free-API pool), the platform fee on the price (`feeMicro`), and
   * what the provider earned, was paid, decrypted and withdrew.
   */
  providers: {
    namespace: string;
    kind: string;
    account: Address;
    calls: number;
    paidCalls: number;
    revenueMicro: string;
    levyMicro: string;
    feeMicro: string;
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
    /** What the cycle's calls paid and the revenue pool received. */
    feesInMicro: string;
    poolMicro: string;
    levyMicro: string;
    depositedMicro: string;
    /** The platform fee the cycle kept. */
    keptMicro: string;
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
  /** Over the closed cycles: feesIn = paid + kept + carried (the pool reserve the last cycle carries), to the micro. */
  revenue: {
    feesInMicro: string;
    /** What left the agents' wallets on chain: equal to `feesInMicro`, the calls' revenue the auditor decrypts. */
    agentsSpentMicro: string;
    depositedMicro: string;
    paidMicro: string;
    keptMicro: string;
    carriedMicro: string;
    ok: boolean;
  };
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
 * The marketplace, with the operator (anvil's account #0) as the contracts' owner and the payer.
 * The calls' payments arrive in the payer's wallet (x402 `payTo`), and before each cycle the
 * agent deposits them into its encrypted balance (with anything in the revenue pool, anvil's
 * account #7). The operator's own 1 USDC deposit only opens the token in the eERC: payouts are
 * paid from revenue.
 */
function startWorld(step: Step, auditor: PrivateKeyAccount): Promise<LocalWorld> {
  return localWorld({
    rpcUrl: process.env.RPC_URL || undefined,
    providers: PROVIDERS,
    // anvil's accounts #1 to #6: the dashboard's demo accounts open each provider's view.
    payoutKeys: ANVIL_KEYS.slice(1, 1 + PROVIDERS.length),
    fundMicro: parseUsdc("1"),
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

/**
 * The FlowMCP server: its meter prices each call from the registry (live), charges it with x402
 * (price plus surcharge, paid to the payer, settled by an in-process facilitator), and commits
 * batches on the UsageLedger.
 */
async function startFlowMcp(world: LocalWorld) {
  const { chain, manifest, server } = world;
  const token = manifest.contracts.token;
  const [name, version] = await Promise.all([
    chain.publicClient.readContract({ address: token, abi: erc20Abi, functionName: "name" }),
    chain.publicClient.readContract({
      address: token,
      abi: [{ type: "function", name: "version", stateMutability: "view", inputs: [], outputs: [{ type: "string" }] }] as const,
      functionName: "version",
    }),
  ]);
  const facilitator = createInProcessFacilitator({
    publicClient: chain.publicClient,
    wallet: chain.walletFor(await newFundedAccount(chain)),
  });
  const payment = {
    facilitator,
    chainId: manifest.chainId,
    asset: token,
    payTo: world.operator.address,
    domain: { name, version },
    surchargeMicro: SURCHARGE_MICRO,
  };
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
  const host = await serveMcpOverHttp({ createMcpServer: () => createDemoMcpServer(meter, apis.url, payment) });
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

type Tally = { total: number; paid: number; failed: number };

/** The AI agents: each a wallet holding USDC, paying per call with x402 (at most 0.01 USDC a call). */
async function startAgents(world: LocalWorld): Promise<{ payers: ToolPayer[]; spentMicro: () => Promise<bigint> }> {
  const network = `eip155:${world.manifest.chainId}` as const;
  const token = world.manifest.contracts.token;
  const payers: ToolPayer[] = [];
  const wallets: Address[] = [];
  for (let i = 0; i < AGENT_WALLETS; i++) {
    const wallet = await newFundedAccount(world.chain);
    await mintUsdc(world.chain, world.manifest, wallet, wallet.address, parseUsdc(AGENT_USDC));
    payers.push(createToolPayer({ signer: wallet, assets: [{ network, asset: token, maxAmountMicro: 10_000n }] }));
    wallets.push(wallet.address);
  }
  // What left the agents' wallets, read from the chain: the public side of every paid call.
  const spentMicro = async () => {
    let left = 0n;
    for (const address of wallets)
      left += await world.chain.publicClient.readContract({ address: token, abi: erc20Abi, functionName: "balanceOf", args: [address] });
    return parseUsdc(AGENT_USDC) * BigInt(wallets.length) - left;
  };
  return { payers, spentMicro };
}

/** One round: the agents' calls, in turn (every 17th asks for a failing upstream), committed on chain. */
async function callTools(flowMcp: FlowMcp, agents: readonly ToolPayer[], round: number, tally: Tally) {
  const plan = ROUNDS[round]!;
  const queue = Object.entries(plan).flatMap(([ns, n]) => Array.from({ length: n }, (_, i) => ({ ns: ns as DemoNamespace, i })));
  queue.sort((a, b) => ((a.i * 31 + a.ns.length) % 7) - ((b.i * 31 + b.ns.length) % 7));
  for (const { ns, i } of queue) {
    const fail = (tally.total + 1) % 17 === 0;
    const { result, payment } = await agents[tally.total % agents.length]!.callTool(flowMcp.mcp, {
      name: flowMcpToolName(DEMO_TOOLS[ns].route, ns),
      arguments: { q: fail ? "fail" : `${ns}-${round}-${i}` },
    });
    if (flowMcpFailed(result as CallToolResult)) tally.failed += 1;
    if (payment?.success) tally.paid += 1;
    tally.total += 1;
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
      feesInMicro: "",
      poolMicro: result.poolMicro.toString(),
      levyMicro: "",
      depositedMicro: "",
      keptMicro: "",
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

/** Per provider, the committed usage lines summed, as the operator decrypts them. */
async function usageLines(world: LocalWorld): Promise<Map<string, { calls: bigint; billable: bigint; amount: bigint; revenue: bigint }>> {
  const sk = world.operator.exportPrivateKey();
  const out = new Map<string, { calls: bigint; billable: bigint; amount: bigint; revenue: bigint }>();
  for (const b of await new IndexerClient(world.indexer!.url).usageBatches()) {
    for (const l of decryptLinesFor(b.encryptedLines, sk, "operator")) {
      const t = out.get(l.providerId) ?? { calls: 0n, billable: 0n, amount: 0n, revenue: 0n };
      t.calls += l.calls;
      t.billable += l.billableCalls;
      t.amount += l.amountMicro;
      t.revenue += l.revenueMicro;
      out.set(l.providerId, t);
    }
  }
  return out;
}

function printReport(report: Report): void {
  const usdc = (v: string) => formatUsdc(BigInt(v));
  const m = report.mcp;
  console.log(
    [
      `\nchain ${report.chainId}; ${m.calls} MCP calls by ${m.agents} AI agents, ${m.paid} paid with x402 (${m.failed} failed upstream: not charged, not billed)`,
      `every call pays the provider's price + ${usdc(m.surchargeMicro)} USDC surcharge (the free-API levy); platform fee ${FEE_BPS / 100}% of prices and of the pool\n`,
    ].join("\n"),
  );
  console.log(
    table([
      ["provider", "kind", "calls", "paid calls", "revenue", "levy", "fee", "share", "paid out", "decrypted", "withdrawn", "ok"],
      ...report.providers.map((r) => [
        r.namespace,
        r.kind,
        String(r.calls),
        String(r.paidCalls),
        usdc(r.revenueMicro),
        usdc(r.levyMicro),
        usdc(r.feeMicro),
        usdc(r.earnedMicro),
        usdc(r.paidMicro),
        usdc(r.decryptedMicro),
        usdc(r.withdrawnMicro),
        r.earnedMicro === r.paidMicro && r.paidMicro === r.decryptedMicro ? "yes" : "NO",
      ]),
    ]),
  );
  console.log("");
  // Fees in and the deposits are public; the levy and what the pool carried in, split and carried out are the operator's and the auditor's.
  // Cycle 1's deposits include the operator's 1 USDC opening deposit.
  console.log(
    table([
      ["cycle", "", "fees in", "deposited", "levy", "carried in", "pool split", "carried out", "paid", "kept (fee)", "transfers"],
      ...report.cycles.map((c) => [
        String(c.id),
        "",
        usdc(c.feesInMicro),
        usdc(c.depositedMicro),
        usdc(c.levyMicro),
        usdc(c.carriedInMicro),
        usdc(c.splitMicro),
        usdc(c.carriedOutMicro),
        usdc(c.paidMicro),
        usdc(c.keptMicro),
        String(c.transfers),
      ]),
    ]),
  );
  const transfers = report.cycles.reduce((s, c) => s + c.transfers, 0);
  const r = report.revenue;
  console.log(
    [
      `\nrevenue: ${usdc(r.feesInMicro)} USDC in (${usdc(r.agentsSpentMicro)} left the agents' wallets) = ${usdc(r.paidMicro)} paid out + ${usdc(r.keptMicro)} platform fee + ${usdc(r.carriedMicro)} carried to the next cycle: ${r.ok ? "ok" : "MISMATCH"}`,
      `audit: ${report.audit.ok ? "ok" : "MISMATCH"}, ${usdc(report.audit.totalMicro)} USDC paid in ${transfers} private transfers`,
    ].join("\n"),
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
    const { manifest, operator, tokenId } = world;
    step(`operator ${operator.address} registered; its 1 USDC deposit opens the token in the eERC (token id ${tokenId})`);
    step(`registered ${PROVIDERS.length} providers: ${PROVIDERS.map((p) => `${p.namespace} (${p.kind})`).join(", ")}`);
    step(`indexer and API serving at ${world.indexer!.url} (GraphQL at ${world.indexer!.url}/graphql)`);
    const providers = world.payoutAccounts as Providers;
    flowMcp = await startFlowMcp(world);
    step(`FlowMCP server with the meter at ${flowMcp.url}; an MCP client connected`);

    const agent = world.agent({ log: (line) => step(`agent: ${line}`) });
    const { payers: agents, spentMicro } = await startAgents(world);
    step(`${agents.length} AI agents with ${AGENT_USDC} USDC each in their wallets`);
    const tally: Tally = { total: 0, paid: 0, failed: 0 };
    const cycles: Report["cycles"] = [];
    const transfers: Report["transfers"] = [];
    for (const round of ROUNDS.keys()) {
      const calls = await callTools(flowMcp, agents, round, tally);
      step(
        `round ${round + 1}: ${calls} MCP calls, ${tally.paid} paid with x402 so far, metered and committed on chain (${tally.failed} failed so far, not billed)`,
      );
      const paid = await payCycle(agent);
      cycles.push(paid.cycle);
      transfers.push(...paid.transfers);
      step(`cycle ${paid.cycle.id}: the calls' revenue deposited, ${paid.cycle.transfers} private transfers`);
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
        feesInMicro: `${a.moneyFlow.callRevenueMicro + a.moneyFlow.feesMicro}`,
        levyMicro: `${a.moneyFlow.levyMicro}`,
        keptMicro: `${a.moneyFlow.platformFeeMicro}`,
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
    const lines = await usageLines(world);
    const rows: Report["providers"] = PROVIDERS.map(({ namespace, kind, pricing }) => {
      const mine = audit.cycles.flatMap((c) => c.rows.filter((r) => r.providerId === providerIdOf(namespace)));
      const used = lines.get(providerIdOf(namespace)) ?? { calls: 0n, billable: 0n, amount: 0n, revenue: 0n };
      const earned = mine.reduce((s, r) => s + r.owedMicro, 0n);
      return {
        namespace,
        kind,
        account: providers.get(namespace)!.account.address,
        calls: Number(used.calls),
        paidCalls: Number(used.billable),
        revenueMicro: used.revenue.toString(),
        levyMicro: levyOf({ amountMicro: used.amount, revenueMicro: used.revenue }).toString(),
        // A free API's price is 0: its share is of the pool, whose fee is taken before the split.
        feeMicro: (pricing.model === PricingModel.FreePool ? 0n : used.amount - earned).toString(),
        earnedMicro: earned.toString(),
        paidMicro: mine.reduce((s, r) => s + r.paidMicro, 0n).toString(),
        decryptedMicro: (decrypted.get(namespace) ?? 0n).toString(),
        withdrawnMicro: withdrawals.find((w) => w.namespace === namespace)?.amountMicro ?? "0",
      };
    });
    const flow = audit.moneyFlow;
    const feesIn = flow.callRevenueMicro + flow.feesMicro;
    const kept = flow.platformFeeMicro;
    const paidOut = flow.paidMicro;
    const agentsSpent = await spentMicro();
    const revenue: Report["revenue"] = {
      feesInMicro: feesIn.toString(),
      agentsSpentMicro: agentsSpent.toString(),
      depositedMicro: flow.depositedMicro.toString(),
      paidMicro: paidOut.toString(),
      keptMicro: kept.toString(),
      carriedMicro: (flow.carriedOutMicro + flow.unsettledMicro).toString(),
      ok: feesIn === agentsSpent && feesIn === paidOut + kept + flow.carriedOutMicro + flow.unsettledMicro,
    };
    const report: Report = {
      chainId: manifest.chainId,
      decimals: manifest.decimals,
      mcp: {
        calls: tally.total,
        paid: tally.paid,
        failed: tally.failed,
        agents: agents.length,
        surchargeMicro: SURCHARGE_MICRO.toString(),
      },
      providers: rows,
      cycles,
      transfers,
      balances,
      withdrawals,
      history,
      audit: { ok: audit.ok, totalMicro: audit.totalMicro.toString() },
      revenue,
    };
    printReport(report);
    if (reportFile) {
      writeFileSync(reportFile, `${JSON.stringify(report, null, 2)}\n`);
      console.log(`report written to ${reportFile}`);
    }
    if (!audit.ok || !revenue.ok || rows.some((r) => r.earnedMicro !== r.paidMicro || r.paidMicro !== r.decryptedMicro))
      process.exitCode = 1;
    if (process.argv.includes("--keep")) await keepServing(world, agent, flowMcp.url);
  } finally {
    await flowMcp?.close();
    await world?.close();
  }
}

run(main, reportStack);
