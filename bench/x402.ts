import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import { getAddress } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { z } from "zod";
import { TestUSDCAbi } from "../abis/TestUSDCAbi.js";
import { loadArtifact } from "../src/build/contracts.js";
import { startAnvil } from "../src/chain/anvil.js";
import { connectChain } from "../src/chain/clients.js";
import { ANVIL_KEYS } from "../src/chain/local.js";
import { createMeter, perCall, serveMcpOverHttp, staticPricing } from "../src/meter/index.js";
import { createInProcessFacilitator, createToolPayer, paymentRequiredOf, X402_PAYMENT_META } from "../src/x402/index.js";
import { percentile, RESULTS_DIR, round, writeResults } from "./report.js";

export type X402BenchOptions = { calls: number; log: (line: string) => void };

export type X402BenchResult = {
  calls: number;
  /** A metered call of an unpaid tool: the baseline. */
  unpaidP50Ms: number;
  /** The paid request alone (payload signed beforehand): verify, tool, settle on chain. */
  paidRequestP50Ms: number;
  /** The agent's whole paid call once the tool has quoted its terms: signing and the paid request. */
  paidCallP50Ms: number;
  addedP50Ms: number;
  paidCallP95Ms: number;
};

const WARMUP = 20;

/**
 * Latency of a paid MCP tool call (x402 exact, EIP-3009 on anvil, the in-process facilitator
 * verifying and settling on chain) against the same tool metered and unpaid, over Streamable
 * HTTP on loopback; one client alternates between the two.
 */
export async function benchX402({ calls, log }: X402BenchOptions): Promise<X402BenchResult> {
  const [deployer, agent, facilitatorKey, , , , , pool] = ANVIL_KEYS.map((k) => privateKeyToAccount(k));
  const anvil = await startAnvil();
  const spoolDir = mkdtempSync(join(tmpdir(), "bench-x402-"));
  try {
    // Receipts are polled: a short interval keeps the poll from dominating a call on an automining chain.
    const chain = await connectChain(anvil.rpcUrl, { pollingInterval: 4 });
    const { abi, bytecode } = await loadArtifact("TestUSDC");
    const deployed = await chain.publicClient.waitForTransactionReceipt({
      hash: await chain.walletFor(deployer!).deployContract({ abi, bytecode, args: [] }),
    });
    const usdc = getAddress(deployed.contractAddress!);
    await chain.publicClient.waitForTransactionReceipt({
      hash: await chain
        .walletFor(deployer!)
        .writeContract({ address: usdc, abi: TestUSDCAbi, functionName: "mint", args: [agent!.address, 10n ** 12n] }),
    });
    const facilitator = createInProcessFacilitator({ publicClient: chain.publicClient, wallet: chain.walletFor(facilitatorKey!) });
    const meter = createMeter({
      spoolDir,
      serverAddress: "0x000000000000000000000000000000000000bEEF",
      pricing: staticPricing({ bench: perCall(1_000n) }),
      batch: { maxAgeMs: 5_000 },
      facilitator,
    });
    await meter.recover();
    const payment = {
      facilitator,
      chainId: chain.chain.id,
      asset: usdc,
      payTo: pool!.address,
      domain: { name: "Test USDC", version: "2" },
    };
    const handler = async ({ q }: { q: string }): Promise<CallToolResult> => ({ content: [{ type: "text", text: `result for ${q}` }] });
    const inputSchema = { q: z.string() };
    const host = await serveMcpOverHttp({
      createMcpServer: () => {
        const server = new McpServer({ name: "bench", version: "1.0.0" });
        meter.registerTool(server, { namespace: "bench", route: "echo", name: "echo_unpaid", description: "echo", inputSchema }, handler);
        meter.registerTool(
          server,
          { namespace: "bench", route: "echo", name: "echo_paid", description: "echo", inputSchema, payment },
          handler,
        );
        return server;
      },
    });
    const client = new Client({ name: "bench", version: "1.0.0" });
    await client.connect(new StreamableHTTPClientTransport(new URL(host.url)));
    const payer = createToolPayer({
      signer: agent!,
      assets: [{ network: `eip155:${chain.chain.id}`, asset: usdc, maxAmountMicro: 1_000n }],
    });
    const timed = async (f: () => Promise<unknown>) => {
      const t0 = performance.now();
      await f();
      return performance.now() - t0;
    };
    const unpaid = (i: number) =>
      timed(async () => {
        const r = await client.callTool({ name: "echo_unpaid", arguments: { q: `q${i}` } });
        if (r.isError) throw new Error("unpaid call failed");
      });
    const paidCall = (i: number) =>
      timed(async () => {
        const r = await payer.callTool(client, { name: "echo_paid", arguments: { q: `q${i}` } });
        if (!r.payment?.success) throw new Error("paid call not settled");
      });
    const required = paymentRequiredOf((await client.callTool({ name: "echo_paid", arguments: { q: "ask" } })) as CallToolResult)!;
    const paidRequest = async (i: number) => {
      const payload = await payer.createPayment(required);
      return timed(async () => {
        const r = await client.callTool({ name: "echo_paid", arguments: { q: `q${i}` }, _meta: { [X402_PAYMENT_META]: payload } });
        if (r.isError) throw new Error(`paid request refused: ${JSON.stringify(r.content)}`);
      });
    };
    try {
      log(`x402: ${WARMUP} warm-up rounds, then ${calls} rounds of unpaid call, paid request, whole paid call`);
      for (let i = 0; i < WARMUP; i++) {
        await unpaid(i);
        await paidRequest(i);
        await paidCall(i);
      }
      const u: number[] = [];
      const pr: number[] = [];
      const pc: number[] = [];
      for (let i = 0; i < calls; i++) {
        u.push(await unpaid(i));
        pr.push(await paidRequest(i));
        pc.push(await paidCall(i));
      }
      const p50 = (s: number[]) => round(percentile(s, 50), 3);
      const result: X402BenchResult = {
        calls,
        unpaidP50Ms: p50(u),
        paidRequestP50Ms: p50(pr),
        paidCallP50Ms: p50(pc),
        addedP50Ms: round(percentile(pc, 50) - percentile(u, 50), 3),
        paidCallP95Ms: round(percentile(pc, 95), 3),
      };
      log(
        `x402: p50 ${result.unpaidP50Ms} ms unpaid metered, ${result.paidRequestP50Ms} ms paid request, ` +
          `${result.paidCallP50Ms} ms whole paid call (+${result.addedP50Ms} ms); paid call p95 ${result.paidCallP95Ms} ms`,
      );
      const file = join(RESULTS_DIR, "usage.json");
      const previous = existsSync(file) ? (JSON.parse(readFileSync(file, "utf8")) as Record<string, unknown>) : {};
      const { machine: _machine, measuredAt: _measuredAt, ...kept } = previous;
      log(`x402: results in ${writeResults("usage.json", { ...kept, x402: result })}`);
      return result;
    } finally {
      await client.close();
      await host.close();
      await meter.close();
    }
  } finally {
    await anvil.stop();
    rmSync(spoolDir, { recursive: true, force: true });
  }
}
