/**
 * AI agents paying per tool call with x402 on anvil: a metered FlowMCP server charges its tools
 * in test USDC (EIP-3009), the in-process facilitator verifies and settles each payment on chain,
 * and the revenue pool's balance is the reference for what the meter recorded as billed.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import type { PaymentPayload, PaymentRequirements } from "@x402/core/types";
import { type Address, type Hex, keccak256, type PrivateKeyAccount, parseEventLogs, toHex } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TestUSDCAbi } from "../abis/TestUSDCAbi.js";
import { type Anvil, startAnvil } from "../src/chain/anvil.js";
import { type ChainClients, connectChain } from "../src/chain/clients.js";
import { ANVIL_KEYS } from "../src/chain/local.js";
import { activateServerTools } from "../src/local/flowmcp.js";
import {
  createMeter,
  flowMcpAttribution,
  flowMcpFailed,
  flowMcpToolName,
  type Meter,
  readSpool,
  serveMcpOverHttp,
  type ToolPayment,
} from "../src/meter/index.js";
import { levyOf } from "../src/payout/settlement.js";
import { aggregateLines } from "../src/usage/batch.js";
import type { CallRecord } from "../src/usage/record.js";
import { providerIdOf } from "../src/usage/registry.js";
import {
  createInProcessFacilitator,
  createToolPayer,
  type InProcessFacilitator,
  type PaymentFacilitator,
  paymentRequiredOf,
  paymentResponseOf,
  X402_PAYMENT_META,
} from "../src/x402/index.js";
import { connectClient, flowMcpSchemas, PRICING, SERVER_ADDRESS, startUpstream, type Upstream } from "./meter-fixtures.js";
import { deployTestUsdc } from "./x402-fixtures.js";

const [deployer, agent, poorAgent, facilitatorKey, stranger, , , revenuePool] = ANVIL_KEYS.map((k) => privateKeyToAccount(k));
const WEATHER = flowMcpToolName("getForecast", "weather");
const FINANCE = flowMcpToolName("getQuote", "finance");
/** Platform surcharge on every paid call. */
const SURCHARGE = 100n;
/** finance: 2,500 per call, + 100 → 2,600 paid. weather: 2 free calls (the surcharge alone, 100), then 1,500 + 100 → 1,600. */
const FINANCE_PAID = 2_600n;
const WEATHER_FREE_PAID = 100n;
const WEATHER_PAID = 1_600n;

let upstream: Upstream;
let anvil: Anvil;
let chain: ChainClients;
let usdc: Address;
let facilitator: InProcessFacilitator;
const dirs: string[] = [];

const balanceOf = (who: Address) =>
  chain.publicClient.readContract({ address: usdc, abi: TestUSDCAbi, functionName: "balanceOf", args: [who] });

function paymentTerms(f: PaymentFacilitator): ToolPayment {
  return {
    facilitator: f,
    chainId: chain.chain.id,
    asset: usdc,
    payTo: revenuePool!.address,
    domain: { name: "Test USDC", version: "2" },
    surchargeMicro: SURCHARGE,
  };
}

type Served = { meter: Meter; url: string; spoolDir: string; close(): Promise<void> };

/** A metered FlowMCP server charging its tools through `f`, on its own spool (or `spoolDir`'s). */
async function serve(f: PaymentFacilitator, spoolDir = mkdtempSync(join(tmpdir(), "x402-"))): Promise<Served> {
  dirs.push(spoolDir);
  const meter = createMeter({
    spoolDir,
    serverAddress: SERVER_ADDRESS,
    pricing: PRICING,
    batch: { maxAgeMs: 600_000 },
    facilitator: f,
    retry: { minMs: 60_000, maxMs: 60_000 },
  });
  await meter.recover();
  const schemas = flowMcpSchemas(upstream.url);
  const http = await serveMcpOverHttp({
    createMcpServer: () => {
      const server = meter.instrument(new McpServer({ name: "flowmcp-paid", version: "1.0.0" }), {
        attribution: flowMcpAttribution(schemas),
        failed: flowMcpFailed,
        payment: paymentTerms(f),
      });
      for (const schema of schemas) activateServerTools({ server, schema });
      return server;
    },
  });
  return {
    meter,
    url: http.url,
    spoolDir,
    async close() {
      await http.close();
      await meter.close();
    },
  };
}

const payerFor = (account: PrivateKeyAccount) =>
  createToolPayer({ signer: account, assets: [{ network: `eip155:${chain.chain.id}`, asset: usdc, maxAmountMicro: 10_000n }] });

/** An authorization the agent signs by hand, for the cases the client never produces. */
async function handSigned(
  requirements: PaymentRequirements,
  options: { signer?: PrivateKeyAccount; validBefore?: bigint },
): Promise<PaymentPayload> {
  const t = BigInt(Math.floor(Date.now() / 1000));
  const auth = {
    from: agent!.address,
    to: requirements.payTo as Address,
    value: BigInt(requirements.amount),
    validAfter: t - 600n,
    validBefore: options.validBefore ?? t + 60n,
    nonce: keccak256(toHex(`hand-signed ${Math.random()}`)),
  };
  const signature = await (options.signer ?? agent!).signTypedData({
    domain: { name: "Test USDC", version: "2", chainId: chain.chain.id, verifyingContract: usdc },
    types: {
      TransferWithAuthorization: [
        { name: "from", type: "address" },
        { name: "to", type: "address" },
        { name: "value", type: "uint256" },
        { name: "validAfter", type: "uint256" },
        { name: "validBefore", type: "uint256" },
        { name: "nonce", type: "bytes32" },
      ],
    },
    primaryType: "TransferWithAuthorization",
    message: auth,
  });
  return {
    x402Version: 2,
    accepted: requirements,
    payload: {
      signature,
      authorization: {
        ...auth,
        value: auth.value.toString(),
        validAfter: auth.validAfter.toString(),
        validBefore: auth.validBefore.toString(),
      },
    },
  };
}

const callWith = (client: Client, payload: PaymentPayload | undefined, name = FINANCE) =>
  client.callTool({
    name,
    arguments: { symbol: "ACME" },
    ...(payload ? { _meta: { [X402_PAYMENT_META]: payload } } : {}),
  }) as Promise<CallToolResult>;

/** Transfers on chain that spent this nonce of the agent's. */
async function usesOf(nonce: Hex): Promise<Hex[]> {
  const logs = await chain.publicClient.getContractEvents({
    address: usdc,
    abi: TestUSDCAbi,
    eventName: "AuthorizationUsed",
    args: { nonce },
    fromBlock: 0n,
  });
  return logs.map((l) => l.transactionHash);
}

beforeAll(async () => {
  upstream = await startUpstream();
  anvil = await startAnvil();
  chain = await connectChain(anvil.rpcUrl);
  usdc = await deployTestUsdc(chain, deployer!);
  const mint = await chain
    .walletFor(deployer!)
    .writeContract({ address: usdc, abi: TestUSDCAbi, functionName: "mint", args: [agent!.address, 1_000_000n] });
  await chain.publicClient.waitForTransactionReceipt({ hash: mint });
  facilitator = createInProcessFacilitator({ publicClient: chain.publicClient, wallet: chain.walletFor(facilitatorKey!) });
});

afterAll(async () => {
  await upstream?.close();
  await anvil?.stop();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe("paid tool calls", () => {
  let served: Served;
  let client: Client;

  beforeAll(async () => {
    served = await serve(facilitator);
    client = await connectClient(served.url);
  });

  afterAll(async () => {
    await client?.close();
    await served?.close();
  });

  /** Records of this meter from `from` on, by their position. */
  const recordsSince = (from: number): CallRecord[] => served.meter.openRecords().slice(from);

  it("an agent pays per call: the pool receives exactly the prices, each record names its settlement transaction", async () => {
    const payer = payerFor(agent!);
    const pool0 = await balanceOf(revenuePool!.address);
    const agent0 = await balanceOf(agent!.address);
    const start = served.meter.openRecords().length;
    const calls = [
      await payer.callTool(client, { name: FINANCE, arguments: { symbol: "AAPL" } }),
      await payer.callTool(client, { name: WEATHER, arguments: { city: "Paris" } }), // free quota call 1: surcharge only
      await payer.callTool(client, { name: WEATHER, arguments: { city: "Oslo" } }), // free quota call 2: surcharge only
      await payer.callTool(client, { name: WEATHER, arguments: { city: "Rome" } }), // 1,500 + 100
      await payer.callTool(client, { name: FINANCE, arguments: { symbol: "MSFT" } }),
    ];
    // 2 × 2,600 (finance) + 2 × 100 (weather's free calls, surcharge only) + 1,600 (weather's third call) = 7,000.
    const total = 2n * FINANCE_PAID + 2n * WEATHER_FREE_PAID + WEATHER_PAID;
    expect(total).toBe(7_000n);
    expect(await balanceOf(revenuePool!.address)).toBe(pool0 + total);
    expect(await balanceOf(agent!.address)).toBe(agent0 - total);
    expect(calls.map((c) => c.result.isError ?? false)).toEqual([false, false, false, false, false]);
    expect(calls.map((c) => c.payment?.success)).toEqual([true, true, true, true, true]);

    // The first call of each tool learns its terms (one unpaid attempt); later calls pay up front. Weather's
    // third call, past its free quota, is refused once at the old terms and paid at the new. None of those is billed.
    const all = recordsSince(start);
    expect(all.map((r) => r.payment?.status)).toEqual([
      "unpaid",
      "settled",
      "unpaid",
      "settled",
      "settled",
      "refused",
      "settled",
      "settled",
    ]);
    expect(all.filter((r) => r.payment?.status !== "settled").map((r) => [r.billable, r.priceMicro])).toEqual(Array(3).fill([false, 0n]));
    const records = all.filter((r) => r.payment?.status === "settled");
    expect(
      records.map((r) => [r.provider, r.outcome, r.billable, r.priceMicro, r.payment?.status ?? null, r.payment?.amountMicro ?? null]),
    ).toEqual([
      ["finance", "ok", true, 2_500n, "settled", FINANCE_PAID],
      ["weather", "ok", true, 0n, "settled", WEATHER_FREE_PAID],
      ["weather", "ok", true, 0n, "settled", WEATHER_FREE_PAID],
      ["weather", "ok", true, 1_500n, "settled", WEATHER_PAID],
      ["finance", "ok", true, 2_500n, "settled", FINANCE_PAID],
    ]);
    // Each settled record names the transaction the agent was told about, and that transaction moved the amount to the pool.
    for (const [i, r] of records.entries()) {
      if (!r.payment) throw new Error("a paid call without payment");
      const told = calls[i]!.payment!;
      expect(told.success).toBe(true);
      expect(r.payment.txHash).toBe(told.transaction.toLowerCase());
      expect(r.payment.payer).toBe(agent!.address);
      const receipt = await chain.publicClient.getTransactionReceipt({ hash: r.payment.txHash! });
      const transfers = parseEventLogs({ abi: TestUSDCAbi, logs: receipt.logs, eventName: "Transfer" }).map((l) => l.args);
      expect(transfers).toEqual([{ from: agent!.address, to: revenuePool!.address, value: r.payment.amountMicro }]);
      expect(await usesOf(r.payment.nonce!)).toEqual([r.payment.txHash]);
    }
    // The batch's lines carry what the calls paid next to what they billed: the levy (paid beyond the price) is the surcharge.
    const lines = aggregateLines(all);
    expect(lines.map((l) => [l.providerId, l.billableCalls, l.amountMicro, l.revenueMicro])).toEqual(
      [
        [providerIdOf("finance"), 2n, 5_000n, 2n * FINANCE_PAID],
        [providerIdOf("weather"), 3n, 1_500n, 2n * WEATHER_FREE_PAID + WEATHER_PAID],
      ].sort((a, b) => ((a[0] as string) < (b[0] as string) ? -1 : 1)),
    );
    expect(lines.reduce((s, l) => s + l.revenueMicro, 0n)).toBe(total);
    expect(lines.reduce((s, l) => s + levyOf(l), 0n)).toBe(5n * 100n);
  });

  it("a call without payment gets the requirement and is recorded unpaid, not billed, the tool not run", async () => {
    const hits = upstream.hits.get("/finance/quote") ?? 0;
    const start = served.meter.openRecords().length;
    const result = await callWith(client, undefined);
    const required = paymentRequiredOf(result)!;
    expect(required.error).toBe("payment required");
    expect(required.accepts).toEqual([
      {
        scheme: "exact",
        network: "eip155:31337",
        asset: usdc,
        amount: "2600",
        payTo: revenuePool!.address,
        maxTimeoutSeconds: 60,
        extra: { name: "Test USDC", version: "2" },
      },
    ]);
    expect(upstream.hits.get("/finance/quote") ?? 0).toBe(hits);
    expect(recordsSince(start).map((r) => [r.outcome, r.billable, r.priceMicro, r.payment])).toEqual([
      ["tool_error", false, 0n, { payer: null, amountMicro: FINANCE_PAID, nonce: null, txHash: null, status: "unpaid" }],
    ]);
  });

  it("refused payments are recorded refused and move nothing: no funds, a wrong signer, an expired authorization", async () => {
    const pool0 = await balanceOf(revenuePool!.address);
    const start = served.meter.openRecords().length;
    const poor = payerFor(poorAgent!);
    await expect(poor.callTool(client, { name: FINANCE, arguments: { symbol: "AAPL" } })).rejects.toMatchObject({
      name: "PaymentFailedError",
      reason: "invalid_exact_evm_insufficient_balance",
    });
    const requirements = paymentRequiredOf(await callWith(client, undefined))!.accepts[0]!;
    const wrongSigner = paymentRequiredOf(await callWith(client, await handSigned(requirements, { signer: stranger })));
    expect(wrongSigner?.error).toBe("invalid_exact_evm_signature");
    const expired = paymentRequiredOf(
      await callWith(client, await handSigned(requirements, { validBefore: BigInt(Math.floor(Date.now() / 1000)) - 1n })),
    );
    expect(expired?.error).toBe("invalid_exact_evm_payload_authorization_valid_before");
    expect(await balanceOf(revenuePool!.address)).toBe(pool0);
    expect(recordsSince(start).map((r) => [r.payment?.status, r.payment?.payer, r.billable, r.priceMicro])).toEqual([
      ["unpaid", null, false, 0n],
      ["refused", poorAgent!.address, false, 0n],
      ["unpaid", null, false, 0n],
      ["refused", agent!.address, false, 0n],
      ["refused", agent!.address, false, 0n],
    ]);
  });

  it("a replayed payment is refused: the same payload twice pays and bills once", async () => {
    const pool0 = await balanceOf(revenuePool!.address);
    const start = served.meter.openRecords().length;
    const payload = await payerFor(agent!).createPayment(paymentRequiredOf(await callWith(client, undefined))!);
    const first = await callWith(client, payload);
    expect(paymentResponseOf(first)?.success).toBe(true);
    const second = await callWith(client, payload);
    expect(paymentRequiredOf(second)?.error).toMatch(/nonce_already_used|already presented/);
    expect(await balanceOf(revenuePool!.address)).toBe(pool0 + FINANCE_PAID);
    const nonce = (payload.payload as { authorization: { nonce: Hex } }).authorization.nonce;
    expect(await usesOf(nonce)).toHaveLength(1);
    const records = recordsSince(start);
    expect(records.map((r) => [r.payment?.status, r.billable])).toEqual([
      ["unpaid", false],
      ["settled", true],
      ["refused", false],
    ]);
    expect(records.filter((r) => r.billable && r.payment?.nonce === nonce)).toHaveLength(1);
  });
});

describe("a crash between the tool result and settlement", () => {
  it("leaves the payment pending in the spool; the restarted meter settles it exactly once and bills it once", async () => {
    // The first settlement goes through on chain, then the facilitator dies before answering.
    let crashes = 1;
    const crashing: PaymentFacilitator = {
      verify: (p, r) => facilitator.verify(p, r),
      async settle(p, r) {
        const response = await facilitator.settle(p, r);
        if (crashes-- > 0) throw new Error("facilitator crashed after broadcasting");
        return response;
      },
    };
    const pool0 = await balanceOf(revenuePool!.address);
    const first = await serve(crashing);
    const client = await connectClient(first.url);
    const paid = await payerFor(agent!).callTool(client, { name: FINANCE, arguments: { symbol: "AAPL" } });
    // The agent got its result; settlement is reported pending.
    expect(paid.result.content).toEqual([{ type: "text", text: expect.stringContaining("Result:") }]);
    expect(paid.payment).toMatchObject({ success: false, errorReason: "settlement_pending" });
    expect(first.meter.pendingSettlements().map((r) => [r.payment?.status, r.billable])).toEqual([["settle_pending", false]]);
    expect(first.meter.openRecords().map((r) => [r.payment?.status, r.billable])).toEqual([["unpaid", false]]);
    await client.close();
    await first.close();

    // Restart on the same spool with a facilitator that works.
    const second = await serve(facilitator, first.spoolDir);
    try {
      await second.meter.settlePending();
      expect(second.meter.pendingSettlements()).toEqual([]);
      const nonce = (paid.paymentPayload!.payload as { authorization: { nonce: Hex } }).authorization.nonce;
      const onChain = await usesOf(nonce);
      expect(onChain).toHaveLength(1);
      expect(await balanceOf(revenuePool!.address)).toBe(pool0 + FINANCE_PAID);
      const spool = readSpool(join(first.spoolDir, `${SERVER_ADDRESS.toLowerCase()}.jsonl`));
      expect(spool.lines.map((l) => l.type)).toEqual(["call", "settle", "call"]);
      const calls = spool.lines.flatMap((l) => (l.type === "call" && l.record.payment?.status !== "unpaid" ? [l.record] : []));
      expect(calls.map((r) => [r.billable, r.priceMicro, r.payment?.status, r.payment?.txHash])).toEqual([
        [true, 2_500n, "settled", onChain[0]],
      ]);
      // A third start finds nothing left to settle.
      await second.close();
      const third = await serve(facilitator, first.spoolDir);
      expect(third.meter.pendingSettlements()).toEqual([]);
      await third.close();
    } finally {
      await second.close();
    }
  });
});
