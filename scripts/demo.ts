import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import type { Address, PrivateKeyAccount } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { ProviderRegistryAbi } from "../abis/ProviderRegistryAbi.js";
import { ANVIL_KEYS, LOCAL_ROLES } from "../src/chain/local.js";
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
  flowMcpToolName,
  type McpHttpHost,
  type Meter,
  serveMcpOverHttp,
  staticPricing,
} from "../src/meter/index.js";
import { formatUsdc, parseUsdc } from "../src/money/usdc.js";
import { reconcile } from "../src/payout/reconcile.js";
import { freePool, freeQuotaThenPerCall, type Pricing, perCall, pricingFromChain } from "../src/usage/pricing.js";
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
];

/** Calls per provider in each round; every 17th call asks for a failing upstream. */
const ROUNDS: Record<DemoNamespace, number>[] = [
  { weather: 60, finance: 25, news: 45, wiki: 40, maps: 30 },
  { weather: 35, finance: 20, news: 30, wiki: 10, maps: 25 },
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
  /** Per cycle: the pool received, the reserve carried in, what was split, the reserve carried out (the auditor's figures), what was paid. */
  cycles: {
    id: number;
    poolMicro: string;
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

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  return rows.map((r) => r.map((cell, c) => (c < 2 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join("  ")).join("\n");
}

async function main(): Promise<void> {
  const report = reportPath(process.argv.slice(2));
  const started = Date.now();
  const step = (line: string) => console.log(`[${((Date.now() - started) / 1000).toFixed(1)}s] ${line}`);

  const auditorAccount = privateKeyToAccount(ANVIL_KEYS[LOCAL_ROLES.auditor]);
  const spool = mkdtempSync(join(tmpdir(), "backendshield-demo-"));
  let world: LocalWorld | undefined;
  let meter: Meter | undefined;
  let host: McpHttpHost | undefined;
  let apis: Awaited<ReturnType<typeof startDemoApis>> | undefined;
  let mcp: Client | undefined;
  try {
    // The operator (anvil's account #0) owns the contracts and pays; its eERC account is funded from the USDC it holds.
    world = await localWorld({
      rpcUrl: process.env.RPC_URL,
      providers: PROVIDERS,
      fundMicro: parseUsdc("50"),
      indexer: true,
      feeBps: FEE_BPS,
      deploy: ({ rpcUrl, prover }) => {
        step(process.env.RPC_URL ? `using RPC ${rpcUrl}` : `started anvil at ${rpcUrl}`);
        return deploy({
          rpcUrl,
          network: process.env.NETWORK ?? "anvil",
          deployer: privateKeyToAccount(ANVIL_KEYS[LOCAL_ROLES.owner]),
          auditor: auditorAccount,
          prover,
          log: step,
        });
      },
    });
    const { chain, manifest, operator, server, tokenId } = world;
    const indexer = world.indexer!;
    step(`operator ${operator.address} registered and funded with 50 USDC of encrypted balance (token id ${tokenId})`);
    step(`registered ${PROVIDERS.length} providers: ${PROVIDERS.map((p) => `${p.namespace} (${p.kind})`).join(", ")}`);
    step(`indexer and API serving at ${indexer.url} (GraphQL at ${indexer.url}/graphql)`);
    const providers = world.payoutAccounts as Map<DemoNamespace, { account: PrivateKeyAccount; client: EercClient }>;

    // The FlowMCP server: the meter prices each call from the registry and commits batches on the UsageLedger.
    const pricing: Record<string, Pricing> = {};
    for (const p of PROVIDERS) {
      const entry = await chain.publicClient.readContract({
        address: manifest.contracts.providerRegistry,
        abi: ProviderRegistryAbi,
        functionName: "getProvider",
        args: [providerIdOf(p.namespace)],
      });
      pricing[p.namespace] = pricingFromChain(entry.pricing);
    }
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
    const m = createMeter({
      spoolDir: spool,
      serverAddress: server.address,
      pricing: staticPricing(pricing),
      batch: { maxAgeMs: 60_000 },
      onBatch: (batch) => submitter.onBatch(batch),
    });
    meter = m;
    await m.recover();
    apis = await startDemoApis();
    host = await serveMcpOverHttp({ createMcpServer: () => createDemoMcpServer(m, apis!.url) });
    mcp = new Client({ name: "demo-agent", version: "1.0.0" });
    await mcp.connect(new StreamableHTTPClientTransport(new URL(host.url)));
    step(`FlowMCP server with the meter at ${host.url}; an MCP client connected`);

    const agent = world.agent({ log: (line) => step(`agent: ${line}`) });
    const users = [world.user, await newFundedAccount(chain), await newFundedAccount(chain)];
    const calls = new Map<DemoNamespace, number>();
    let totalCalls = 0;
    let failed = 0;
    const cycles: Report["cycles"] = [];
    const transfers: Report["transfers"] = [];
    const namespaceOf = new Map(PROVIDERS.map((p) => [providerIdOf(p.namespace), p.namespace]));

    for (const [round, plan] of ROUNDS.entries()) {
      const queue = Object.entries(plan).flatMap(([ns, n]) => Array.from({ length: n }, (_, i) => ({ ns: ns as DemoNamespace, i })));
      queue.sort((a, b) => ((a.i * 31 + a.ns.length) % 7) - ((b.i * 31 + b.ns.length) % 7));
      for (const { ns, i } of queue) {
        const fail = (totalCalls + 1) % 17 === 0;
        const result = await mcp.callTool({
          name: flowMcpToolName(DEMO_TOOLS[ns].route, ns),
          arguments: { q: fail ? "fail" : `${ns}-${round}-${i}` },
        });
        if (result.isError) failed += 1;
        totalCalls += 1;
        calls.set(ns, (calls.get(ns) ?? 0) + 1);
      }
      await m.flush();
      step(
        `round ${round + 1}: ${queue.length} MCP calls metered and committed on chain (${failed} failed so far, counted but not billed)`,
      );

      for (const [i, fee] of FEES[round]!.entries()) await payPoolFee(chain, manifest, users[i]!, parseUsdc(fee));
      step(`users paid ${FEES[round]!.join(" + ")} USDC of fees into the revenue pool`);

      const result = await agent.runCycle();
      if (result.status !== "paid") throw new Error(`cycle ${round + 1} paid nothing`);
      // The reserve columns are filled from the auditor's reconciliation below.
      cycles.push({
        id: result.cycle,
        poolMicro: result.poolMicro.toString(),
        carriedInMicro: "",
        splitMicro: "",
        carriedOutMicro: "",
        paidMicro: result.paidMicro.toString(),
        transfers: result.transfers.length,
      });
      for (const t of result.transfers) {
        transfers.push({
          cycle: result.cycle,
          namespace: namespaceOf.get(t.providerId) ?? t.providerId,
          to: t.to,
          payer: t.payer,
          txHash: t.txHash,
          amountMicro: t.amount.toString(),
        });
      }
      step(`cycle ${result.cycle}: ${result.transfers.length} private transfers, pool ${formatUsdc(result.poolMicro)} USDC`);
    }

    // Every provider checks, with its own key: its balance history through the API, and nothing pending.
    await new IndexerClient(indexer.url).waitForBlock(await chain.publicClient.getBlockNumber({ cacheTime: 0 }));
    const api = new IndexerClient(indexer.url);
    const decrypted = new Map<DemoNamespace, bigint>();
    for (const [ns, p] of providers) {
      const history = decryptHistory(await api.earnings(p.account.address), p.client.exportPrivateKey());
      const balance = history.tokens.find((t) => t.tokenId === tokenId)?.balanceMicro ?? 0n;
      if (balance !== (await p.client.balance(tokenId))) throw new Error(`${ns}: the indexed balance differs from the chain's`);
      if (history.pending?.amountMicro !== 0n) throw new Error(`${ns}: the API shows a pending amount after the cycles`);
      decrypted.set(ns, balance);
    }
    step("each provider decrypted its balance history through the API with its own key; nothing is pending");

    const auditorSk = await deriveKeyFromWallet(auditorAccount);
    const audit = await reconcile({
      indexer: new IndexerClient(indexer.url),
      auditorSk,
      operatorPk: operator.publicKey,
      settlement: { feeBps: FEE_BPS, periodUnit: "month" },
    });
    step(
      `auditor reconciled ${audit.cycles.length} cycles independently: ${audit.ok ? "every provider paid exactly what it was owed" : "MISMATCH"}`,
    );
    for (const c of cycles) {
      const a = audit.cycles.find((x) => x.cycle === c.id);
      if (!a) throw new Error(`the auditor's reconciliation has no cycle ${c.id}`);
      Object.assign(c, {
        carriedInMicro: a.carriedInMicro.toString(),
        splitMicro: a.splitMicro.toString(),
        carriedOutMicro: a.carriedOutMicro.toString(),
      });
    }

    // Claims: each provider withdraws what it was paid to its own wallet (the public amount is all a withdrawal shows).
    const withdrawn = new Map<DemoNamespace, bigint>();
    const withdrawals: Report["withdrawals"] = [];
    for (const [ns, p] of providers) {
      const amount = decrypted.get(ns)!;
      if (amount === 0n) continue;
      const receipt = await p.client.withdraw({ amount, tokenId });
      withdrawn.set(ns, amount);
      withdrawals.push({ namespace: ns, account: p.account.address, amountMicro: amount.toString(), txHash: receipt.transactionHash });
    }
    step(`${withdrawn.size} providers withdrew their balances to their wallets`);

    await api.waitForBlock(await chain.publicClient.getBlockNumber({ cacheTime: 0 }));
    const balances: Report["balances"] = [];
    const history: Report["history"] = [];
    for (const [ns, p] of providers) {
      const mine = decryptHistory(await api.earnings(p.account.address), p.client.exportPrivateKey());
      const rows = mine.tokens.find((t) => t.tokenId === tokenId)?.rows ?? [];
      history.push({
        namespace: ns,
        rows: rows.map((r) => ({
          blockNumber: r.blockNumber.toString(),
          txHash: r.txHash,
          kind: r.kind,
          balanceMicro: r.balanceMicro.toString(),
          deltaMicro: r.deltaMicro.toString(),
        })),
      });
      balances.push({
        namespace: ns,
        account: p.account.address,
        paidBalanceMicro: decrypted.get(ns)!.toString(),
        finalBalanceMicro: (await p.client.balance(tokenId)).toString(),
      });
    }

    const rows: Report["providers"] = PROVIDERS.map(({ namespace, kind }) => {
      const id = providerIdOf(namespace);
      const mine = audit.cycles.flatMap((c) => c.rows.filter((r) => r.providerId === id));
      return {
        namespace,
        kind,
        account: providers.get(namespace)!.account.address,
        calls: calls.get(namespace) ?? 0,
        earnedMicro: mine.reduce((s, r) => s + r.owedMicro, 0n).toString(),
        paidMicro: mine.reduce((s, r) => s + r.paidMicro, 0n).toString(),
        decryptedMicro: (decrypted.get(namespace) ?? 0n).toString(),
        withdrawnMicro: (withdrawn.get(namespace) ?? 0n).toString(),
      };
    });

    console.log(`\nchain ${manifest.chainId}; ${totalCalls} MCP calls (${failed} failed, not billed); platform fee ${FEE_BPS / 100}%\n`);
    console.log(
      table([
        ["provider", "kind", "calls", "earned USDC", "paid USDC", "decrypted USDC", "withdrawn USDC", "ok"],
        ...rows.map((r) => [
          r.namespace,
          r.kind,
          String(r.calls),
          formatUsdc(BigInt(r.earnedMicro)),
          formatUsdc(BigInt(r.paidMicro)),
          formatUsdc(BigInt(r.decryptedMicro)),
          formatUsdc(BigInt(r.withdrawnMicro)),
          r.earnedMicro === r.paidMicro && r.paidMicro === r.decryptedMicro ? "yes" : "NO",
        ]),
      ]),
    );
    console.log("");
    // The pool received is public; what it carried in, split and carried out is the operator's and the auditor's.
    const usdc = (v: string) => formatUsdc(BigInt(v));
    console.log(
      table([
        ["cycle", "", "pool USDC", "carried in", "pool split", "carried out", "paid USDC", "transfers"],
        ...cycles.map((c) => [
          String(c.id),
          "",
          usdc(c.poolMicro),
          usdc(c.carriedInMicro),
          usdc(c.splitMicro),
          usdc(c.carriedOutMicro),
          usdc(c.paidMicro),
          String(c.transfers),
        ]),
      ]),
    );
    console.log(
      `\naudit: ${audit.ok ? "ok" : "MISMATCH"}, ${formatUsdc(audit.totalMicro)} USDC paid in ${audit.cycles.reduce((s, c) => s + c.transfers, 0)} private transfers`,
    );

    const out: Report = {
      chainId: manifest.chainId,
      decimals: manifest.decimals,
      mcp: { calls: totalCalls, failed },
      providers: rows,
      cycles,
      transfers,
      balances,
      withdrawals,
      history,
      audit: { ok: audit.ok, totalMicro: audit.totalMicro.toString() },
    };
    if (report) {
      writeFileSync(report, `${JSON.stringify(out, null, 2)}\n`);
      console.log(`report written to ${report}`);
    }
    if (!audit.ok || rows.some((r) => r.earnedMicro !== r.paidMicro || r.paidMicro !== r.decryptedMicro)) process.exitCode = 1;
  } finally {
    await mcp?.close().catch(() => {});
    await host?.close();
    await meter?.close();
    await apis?.close();
    await world?.close();
  }
}

run(main, reportStack);
