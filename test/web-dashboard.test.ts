import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { Browser, BrowserContext, Page } from "playwright-core";
import type { Hex, TypedDataDefinition } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "../src/chain/anvil.js";
import { ANVIL_KEYS, LOCAL_ROLES } from "../src/chain/local.js";
import { deriveKeyFromWallet } from "../src/eerc/keys.js";
import { IndexerClient } from "../src/indexer-client/client.js";
import { callRecords, commitRecords, eercAccount, registerProvider } from "../src/local/marketplace.js";
import { type LocalWorld, localWorld } from "../src/local/world.js";
import { formatUsdc } from "../src/money/usdc.js";
import { perCall } from "../src/usage/pricing.js";
import { haveChromium, launchChromium, requireChromium, SHOTS } from "./browser-fixtures.js";
import { type PayoutWorld, spawnAgent } from "./payout-fixtures.js";
import { runScript } from "./run-script.js";

// The dashboard (web/) in Debian's Chromium, served by the API at /app/ on a local world: a
// provider paid in two cycles and owed a third, the eERC's auditor and the operator, each picked
// from the demo accounts, and the payout agent as its own process. What the page shows must be
// what the CLI decrypts for the same account, and no key may leave the page.

requireChromium("web dashboard");

/** anvil's account #1: a demo account, registered as the payout account of the provider "weather". */
const PROVIDER_INDEX = 1;
const providerKey = ANVIL_KEYS[PROVIDER_INDEX];
const provider = privateKeyToAccount(providerKey);
const usdc = (micro: bigint) => `${formatUsdc(micro)} USDC`;
const auditorKey = ANVIL_KEYS[LOCAL_ROLES.auditor];
const operatorKey = ANVIL_KEYS[LOCAL_ROLES.operator];
const operator = privateKeyToAccount(operatorKey);

type CliHistory = {
  tokens: {
    tokenId: string;
    balanceMicro: string | null;
    received: { txHash: string; amountMicro: string }[];
    receivedTotalMicro: string;
  }[];
  pending: { amountMicro: string; throughBlock: string } | null;
};

let w: LocalWorld;
let browser: Browser;
let page: Page;
let apiUrl: string;
let agentUrl: string;
let agent: ReturnType<typeof spawnAgent> | undefined;
const requests: { url: string; body: string }[] = [];
const pageErrors: string[] = [];

type CliFlow = Record<
  | "feesMicro"
  | "callRevenueMicro"
  | "usageMicro"
  | "levyMicro"
  | "depositedMicro"
  | "paidMicro"
  | "platformFeeMicro"
  | "carriedInMicro"
  | "carriedOutMicro"
  | "deferredInMicro"
  | "deferredOutMicro"
  | "unsettledMicro",
  string
>;

type CliReconciliation = {
  ok: boolean;
  totalMicro: string;
  moneyFlow: CliFlow;
  cycles: (Record<
    "throughBlock" | "poolMicro" | "carriedInMicro" | "splitMicro" | "carriedOutMicro" | "owedMicro" | "paidMicro",
    string
  > & {
    cycle: number;
    transfers: number;
    moneyFlow: CliFlow;
  })[];
};

type CliTotals = { entries: number; decrypted: number; undecryptable: number; amountMicro: string };

type CliAudit = {
  keyIsCurrentAuditor: boolean;
  periods: (CliTotals & { period: string; tokenId: string | null; byKind: Record<"transfer" | "withdraw" | "mint" | "burn", CliTotals> })[];
  tokens: (CliTotals & { tokenId: string | null })[];
};

/** Cells of each body row of the table `testId`, the full value of shortened hex cells included (their title). */
async function tableCells(testId: string, on: Page = page): Promise<string[][]> {
  return on
    .getByTestId(testId)
    .locator("tbody tr")
    .evaluateAll((rows) => rows.map((r) => [...r.querySelectorAll("td")].map((td) => td.getAttribute("title") ?? "")));
}

/** The file the page hands to the browser when the button `testId` is clicked. */
async function saved(testId: string): Promise<string> {
  const [download] = await Promise.all([page.waitForEvent("download"), page.getByTestId(testId).click()]);
  return readFileSync((await download.path())!, "utf8");
}

/** Disconnects, connects anvil's account `index` from the demo picker and waits for `ready` (or an error). */
async function connectDemo(index: number, ready: string): Promise<void> {
  const disconnect = page.getByRole("button", { name: /^Disconnect/ });
  if (await disconnect.count()) await disconnect.click();
  await page.getByTestId("demo-account").selectOption(String(index));
  await page.getByTestId("demo-connect").click();
  await page.getByTestId(ready).or(page.getByTestId("error")).waitFor({ timeout: 120_000 });
  expect(await page.getByTestId("error").count(), (await page.getByTestId("error").allTextContents()).join()).toBe(0);
}

type WalletCall = { method: string; params: unknown[]; result?: unknown };
const walletContexts: BrowserContext[] = [];

/** EIP-712 typed data as `eth_signTypedData_v4` carries it (integers as decimal strings), as viem signs it. */
function typedDataOf(json: string): TypedDataDefinition {
  const { types, domain, primaryType, message } = JSON.parse(json) as {
    types: Record<string, { name: string; type: string }[]>;
    domain: Record<string, unknown>;
    primaryType: string;
    message: Record<string, unknown>;
  };
  const { EIP712Domain: _domainFields, ...rest } = types;
  const ints = (fields: { name: string; type: string }[], values: Record<string, unknown>) =>
    Object.fromEntries(
      Object.entries(values).map(([k, v]) => [
        k,
        /^u?int\d*$/.test(fields.find((f) => f.name === k)?.type ?? "") ? BigInt(v as string) : v,
      ]),
    );
  return {
    domain: { ...domain, chainId: BigInt(domain.chainId as string) },
    types: rest,
    primaryType,
    message: ints(rest[primaryType] ?? [], message),
  } as unknown as TypedDataDefinition;
}

/**
 * A fresh page of the dashboard with an injected EIP-1193 wallet (`window.ethereum`) whose every
 * request is answered here, in the test, by a viem local account holding `key`: the key stays in
 * the test process. `reject` lists the methods the wallet declines (EIP-1193 code 4001); `chainId`
 * is the chain the wallet says it is on. Its requests are recorded with the other pages'.
 */
async function walletPage(key: Hex, options: { reject?: string[]; chainId?: number } = {}) {
  const account = privateKeyToAccount(key);
  const calls: WalletCall[] = [];
  const reject = new Set(options.reject ?? []);
  const own: { url: string; body: string }[] = [];
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  walletContexts.push(context);
  await context.exposeFunction("__walletRequest", async (method: string, params: unknown[] = []) => {
    const call: WalletCall = { method, params };
    calls.push(call);
    if (reject.has(method)) return { error: { code: 4001, message: "User rejected the request." } };
    switch (method) {
      case "eth_requestAccounts":
      case "eth_accounts":
        call.result = [account.address];
        break;
      case "eth_chainId":
        call.result = `0x${(options.chainId ?? 31337).toString(16)}`;
        break;
      case "personal_sign": {
        const [message, from] = params as [Hex, string];
        if (from.toLowerCase() !== account.address.toLowerCase()) return { error: { code: 4100, message: "unknown account" } };
        call.result = await account.signMessage({ message: { raw: message } });
        break;
      }
      case "eth_signTypedData_v4": {
        const [from, json] = params as [string, string];
        if (from.toLowerCase() !== account.address.toLowerCase()) return { error: { code: 4100, message: "unknown account" } };
        call.result = await account.signTypedData(typedDataOf(json));
        break;
      }
      default:
        return { error: { code: 4200, message: `unsupported method ${method}` } };
    }
    return { result: call.result };
  });
  await context.addInitScript(() => {
    const bridge = (
      globalThis as unknown as {
        __walletRequest: (m: string, p?: unknown[]) => Promise<{ result?: unknown; error?: { code: number; message: string } }>;
      }
    ).__walletRequest;
    (globalThis as unknown as { ethereum: unknown }).ethereum = {
      async request({ method, params }: { method: string; params?: unknown[] }) {
        const answer = await bridge(method, params ?? []);
        if (answer.error) throw Object.assign(new Error(answer.error.message), { code: answer.error.code });
        return answer.result;
      },
    };
  });
  const p = await context.newPage();
  p.on("request", (r) => {
    const entry = { url: r.url(), body: r.postData() ?? "" };
    requests.push(entry);
    own.push(entry);
  });
  p.on("pageerror", (e) => pageErrors.push(e.message));
  await p.goto(`${apiUrl}/app/?rpc=${encodeURIComponent(w.rpcUrl)}&agent=${encodeURIComponent(agentUrl)}`);
  await expect.poll(() => p.getByTestId("chain-id").textContent(), { timeout: 15_000 }).toContain("31337");
  return { page: p, calls, reject, requests: own };
}

/** No horizontal overflow at 360 px and 1280 px wide (only the tables' own scroll areas may be wider); screenshots of both. */
async function layout(view: string): Promise<void> {
  for (const width of [1280, 360]) {
    await page.setViewportSize({ width, height: 900 });
    await page.waitForTimeout(300);
    const overflow = await page.evaluate<number>("document.documentElement.scrollWidth - document.documentElement.clientWidth");
    expect(overflow, `horizontal overflow of the ${view} view at ${width} px`).toBe(0);
    await page.screenshot({ path: join(SHOTS, `web-${view}-${width}.png`), fullPage: true });
  }
  await page.setViewportSize({ width: 1280, height: 900 });
}

describe.runIf(haveChromium)("web dashboard", () => {
  beforeAll(async () => {
    w = await localWorld({ indexer: true, fundMicro: 1_000_000n });
    apiUrl = w.indexer!.url;
    await eercAccount(w.chain, w.manifest, w.prover, provider);
    await registerProvider(w.chain, w.manifest, w.owner, {
      namespace: "weather",
      payoutAccount: provider.address,
      pricing: perCall(1000n),
    });
    const now = Date.now();
    const commit = (sequence: number, calls: number, at: number) =>
      commitRecords(w.chain, w.manifest, w.server, w.operator.address, sequence, callRecords("weather", calls, { at, priceMicro: 1000n }));
    await commit(1, 3, now);
    expect((await w.agent().runCycle()).status).toBe("paid");
    await commit(2, 2, now + 1000);
    expect((await w.agent().runCycle()).status).toBe("paid");
    await commit(3, 4, now + 2000);
    await new IndexerClient(apiUrl).waitForBlock(await w.chain.publicClient.getBlockNumber({ cacheTime: 0 }));
    const port = await freePort();
    agentUrl = `http://127.0.0.1:${port}`;
    // The page is served by the API: the agent allows that origin, and no other.
    agent = spawnAgent({ ...w, indexer: w.indexer! } as PayoutWorld, [], {
      PAYOUT_PORT: String(port),
      PAYOUT_INTERVAL_S: "0",
      AGENT_CORS_ORIGIN: new URL(apiUrl).origin,
    });
    for (
      let i = 0;
      i < 400 &&
      !(await fetch(`${agentUrl}/health`).then(
        (r) => r.ok,
        () => false,
      ));
      i++
    )
      await new Promise((r) => setTimeout(r, 250));
    expect(agent.child.exitCode, agent.output()).toBeNull();
    browser = await launchChromium();
    page = await browser.newPage({ viewport: { width: 1280, height: 900 }, acceptDownloads: true });
    page.on("request", (r) => requests.push({ url: r.url(), body: r.postData() ?? "" }));
    page.on("pageerror", (e) => pageErrors.push(e.message));
  });

  afterAll(async () => {
    agent?.child.kill("SIGTERM");
    await agent?.done;
    await browser?.close();
    await w?.close();
  });

  it("shows, for a demo account, the balance, pending amount and payouts per cycle the CLI decrypts", async () => {
    await page.goto(`${apiUrl}/app/?rpc=${encodeURIComponent(w.rpcUrl)}&agent=${encodeURIComponent(agentUrl)}`);
    await expect.poll(() => page.getByTestId("chain-id").textContent(), { timeout: 15_000 }).toContain("31337");
    await page.getByTestId("demo-account").selectOption(String(PROVIDER_INDEX));
    await page.getByTestId("demo-connect").click();
    await page.getByTestId("balance").or(page.getByTestId("error")).waitFor({ timeout: 60_000 });
    expect(await page.getByTestId("error").count(), (await page.getByTestId("error").allTextContents()).join()).toBe(0);
    await page.getByTestId("chart").locator("canvas").waitFor();
    expect(await page.getByTestId("account").textContent()).toBe(provider.address);

    const run = await runScript("src/cli/index.ts", ["history", "--api", apiUrl, "--json"], { PRIVATE_KEY: providerKey });
    expect(run.code, run.stderr).toBe(0);
    const cli = JSON.parse(run.stdout) as CliHistory;
    const token = cli.tokens.find((t) => t.balanceMicro !== null)!;

    // Each cycle pays the calls committed before it at 1000 micro each, less the 10% fee:
    // cycle 1: 3 × 1000 − 10% = 2700; cycle 2: 2 × 1000 − 10% = 1800; balance 4500; pending 4 × 1000 − 10% = 3600.
    expect(BigInt(token.balanceMicro!)).toBe(4500n);
    expect(BigInt(cli.pending!.amountMicro)).toBe(3600n);
    expect(await page.getByTestId("balance").textContent()).toBe(usdc(BigInt(token.balanceMicro!)));
    expect(await page.getByTestId("pending").textContent()).toBe(usdc(BigInt(cli.pending!.amountMicro)));
    expect(await page.getByTestId("paid").textContent()).toBe(usdc(BigInt(token.receivedTotalMicro)));

    // Every payout the page lists is one the CLI decrypted, with the same amount, and the other way round.
    const payouts = await tableCells("payouts");
    const pagePayouts = payouts.map(([, , , tx, amount]) => [tx, amount]).sort();
    const cliPayouts = token.received.map((r) => [r.txHash, formatUsdc(BigInt(r.amountMicro))]).sort();
    expect(pagePayouts).toEqual(cliPayouts);
    expect(payouts.map((r) => r[1]).sort()).toEqual(["1", "2"]);
    // Per cycle: what each paid, and the running total ending at the CLI's received total.
    const cycles = await tableCells("cycles");
    expect(cycles.map(([cycle, , transfers, earned, cumulative]) => [cycle, transfers, earned, cumulative])).toEqual([
      ["1", "1", "0.002700", "0.002700"],
      ["2", "1", "0.001800", formatUsdc(BigInt(token.receivedTotalMicro))],
    ]);
    // Usage: the three batches' lines, 9 billable calls in all.
    expect(await page.getByTestId("usage-total").textContent()).toBe(usdc(9000n));
    expect((await tableCells("usage")).map((r) => [r[3], r[4], r[6]])).toEqual([
      ["weather", "3", "0.003000"],
      ["weather", "2", "0.002000"],
      ["weather", "4", "0.004000"],
    ]);
    expect(pageErrors).toEqual([]);
  });

  it("exports each table as CSV and JSON, built in the page", async () => {
    expect(await saved("cycles-csv")).toBe(
      "cycle,through block,transfers,earned (USDC),cumulative paid (USDC)\r\n" +
        (await tableCells("cycles")).map((r) => `${r.join(",")}\r\n`).join(""),
    );
    const json = JSON.parse(await saved("cycles-json")) as { cycle: number; amountMicro: string; cumulativeMicro: string }[];
    expect(json.map((c) => [c.cycle, c.amountMicro, c.cumulativeMicro])).toEqual([
      [1, "2700", "2700"],
      [2, "1800", "4500"],
    ]);
  });

  it("lays out the provider view at 360 px and 1280 px wide (screenshots in test-results/)", async () => {
    await layout("provider");
  });

  it("shows the auditor the reconciliation and audit totals the CLI's reconcile and audit print, with each cycle's transfers", async () => {
    await connectDemo(LOCAL_ROLES.auditor, "reconcile-status");
    expect(await page.getByTestId("view-auditor").getAttribute("aria-selected")).toBe("true");
    // The operator defaults to the UsageLedger's operator, read from the RPC.
    expect(await page.getByTestId("operator-address").inputValue()).toBe(operator.address);

    const rec = await runScript("src/cli/index.ts", ["reconcile", "--api", apiUrl, "--operator", operator.address, "--json"], {
      PRIVATE_KEY: auditorKey,
    });
    expect(rec.code, rec.stderr).toBe(0);
    const cli = JSON.parse(rec.stdout) as CliReconciliation;
    const aud = await runScript("src/cli/index.ts", ["audit", "--api", apiUrl, "--json"], { PRIVATE_KEY: auditorKey });
    expect(aud.code, aud.stderr).toBe(0);
    const audit = JSON.parse(aud.stdout) as CliAudit;

    // Two cycles, each paying the provider what it was owed: 2700, then 1800.
    expect(cli.ok).toBe(true);
    expect(cli.cycles.map((c) => [c.cycle, c.owedMicro, c.paidMicro])).toEqual([
      [1, "2700", "2700"],
      [2, "1800", "1800"],
    ]);
    expect(await page.getByTestId("reconcile-status").textContent()).toBe("every cycle paid what it owed");
    expect(await page.getByTestId("reconcile-total").textContent()).toBe(usdc(BigInt(cli.totalMicro)));
    expect(await tableCells("reconcile-cycles")).toEqual(
      cli.cycles.map((c) => [
        String(c.cycle),
        c.throughBlock,
        ...[c.poolMicro, c.carriedInMicro, c.splitMicro, c.carriedOutMicro, c.owedMicro, c.paidMicro].map((m) => formatUsdc(BigInt(m))),
        String(c.transfers),
        "ok",
        "",
      ]),
    );
    const flow = (f: CliFlow) => [
      ...[
        f.feesMicro,
        f.callRevenueMicro,
        f.usageMicro,
        f.levyMicro,
        f.depositedMicro,
        f.paidMicro,
        f.platformFeeMicro,
        f.carriedInMicro,
        f.carriedOutMicro,
        f.deferredInMicro,
        f.deferredOutMicro,
        f.unsettledMicro,
      ].map((m) => formatUsdc(BigInt(m))),
      "ok",
    ];
    expect(await tableCells("money-flow")).toEqual([
      ...cli.cycles.map((c) => [String(c.cycle), ...flow(c.moneyFlow)]),
      ["total", ...flow(cli.moneyFlow)],
    ]);
    // The JSON export of the reconciliation is the CLI's --json, to the byte once parsed.
    expect(JSON.parse(await saved("reconcile-cycles-json"))).toEqual(cli);

    // Audit totals per period and token, as audit --api (UTC days by default).
    expect(audit.keyIsCurrentAuditor).toBe(true);
    expect(await tableCells("audit-periods")).toEqual(
      audit.periods.map((p) => [
        p.period,
        p.tokenId ?? "?",
        String(p.entries),
        String(p.decrypted),
        String(p.undecryptable),
        ...(["transfer", "withdraw", "mint", "burn"] as const).map((k) => formatUsdc(BigInt(p.byKind[k].amountMicro))),
        formatUsdc(BigInt(p.amountMicro)),
      ]),
    );
    expect((await tableCells("audit-tokens")).map((r) => [r[0], r[4]])).toEqual(
      audit.tokens.map((t) => [t.tokenId ?? "?", formatUsdc(BigInt(t.amountMicro))]),
    );

    // Drill-down: cycle 1 paid the provider once, 2700, to its payout account.
    await page.getByTestId("drill-1").click();
    expect((await tableCells("cycle-providers")).map((r) => r.slice(0, 5))).toEqual([["weather", "0.002700", "0.002700", "1", "ok"]]);
    const transfers = await tableCells("cycle-transfers");
    expect(transfers.map(([, ns, from, to, , amount]) => [ns, from, to, amount])).toEqual([
      ["weather", operator.address, provider.address, "0.002700"],
    ]);
    expect(await saved("cycle-transfers-csv")).toBe(
      `block,provider,from,to,tx,amount (USDC)\r\n${transfers.map((r) => `${r.join(",")}\r\n`).join("")}`,
    );
    expect(pageErrors).toEqual([]);
    await layout("auditor");
  });

  it("shows the operator the agent, the payer against what is owed next and ingestion, and runs a cycle signed in the page", async () => {
    await connectDemo(LOCAL_ROLES.operator, "agent-state");
    expect(await page.getByTestId("view-operator").getAttribute("aria-selected")).toBe("true");
    expect(await page.getByTestId("agent-state").textContent()).toBe("idle");
    expect(await page.getByTestId("agent-last").textContent()).toBe("no cycle since the agent started");

    const hist = await runScript("src/cli/index.ts", ["history", "--api", apiUrl, "--json"], { PRIVATE_KEY: operatorKey });
    expect(hist.code, hist.stderr).toBe(0);
    const payer = (JSON.parse(hist.stdout) as CliHistory).tokens.find((t) => t.balanceMicro !== null)!;
    expect(await page.getByTestId("payer-balance").textContent()).toBe(usdc(BigInt(payer.balanceMicro!)));
    // Owed next: the third batch, 4 × 1000 − 10% = 3600, to the provider's payout account.
    expect(await page.getByTestId("owed-next-total").textContent()).toBe(usdc(3600n));
    expect(await tableCells("owed-next")).toEqual([[provider.address, "0.003600"]]);
    expect((await tableCells("operator-cycles")).map((r) => [r[0], r[2], r[3]])).toEqual([
      ["1", "1", "0.002700"],
      ["2", "1", "0.001800"],
    ]);
    // Ingestion: one usage server, three batches, the last committed at the last batch's block.
    const batches = await new IndexerClient(apiUrl).usageBatches();
    const last = batches.at(-1)!;
    expect((await tableCells("ingestion")).map((r) => [r[0], r[1], r[3]])).toEqual([[last.server, "3", String(last.blockNumber)]]);
    expect(await page.getByTestId("indexer-lag").textContent()).toMatch(/^\d+ block\(s\)$/);

    await page.getByTestId("run-cycle").click();
    await expect
      .poll(() => page.getByTestId("cycle-progress").textContent(), { timeout: 180_000, interval: 500 })
      .toMatch(/^cycle 3: 1 transfer\(s\) paid in|failed|refused|not /);
    expect(await page.getByTestId("cycle-progress").textContent()).toMatch(/^cycle 3: 1 transfer\(s\) paid in [\d.]+ s$/);
    expect(await page.getByTestId("agent-last").textContent()).toMatch(/^cycle 3: 1 transfer\(s\) in [\d.]+ s$/);
    expect((await tableCells("operator-cycles")).map((r) => [r[0], r[2], r[3]])).toEqual([
      ["1", "1", "0.002700"],
      ["2", "1", "0.001800"],
      ["3", "1", "0.003600"],
    ]);
    expect(await page.getByTestId("owed-next-total").textContent()).toBe(usdc(0n));
    // The request went from the page to the agent, across origins.
    expect(requests.some((r) => r.url === `${agentUrl}/revenue/distribute` && r.body.includes('"signature"'))).toBe(true);
    expect(pageErrors).toEqual([]);
    await layout("operator");
  });

  it("connects through an injected EIP-1193 wallet: the same key and figures as the demo account, run a cycle signed with eth_signTypedData_v4, refusals and a wrong chain told", async () => {
    // What the demo account shows for the provider: the wallet must show the same, so its eERC key is the same.
    await connectDemo(PROVIDER_INDEX, "balance");
    await page.getByTestId("usage-progress").waitFor({ state: "detached" });
    const figures = async (p: Page) => ({
      balance: await p.getByTestId("balance").textContent(),
      pending: await p.getByTestId("pending").textContent(),
      paid: await p.getByTestId("paid").textContent(),
      usage: await p.getByTestId("usage-total").textContent(),
      cycles: await p.getByTestId("cycles").locator("tbody tr").allTextContents(),
      payouts: await p.getByTestId("payouts").locator("tbody tr").allTextContents(),
    });
    const demo = await figures(page);
    expect(demo.cycles.length).toBeGreaterThanOrEqual(3);

    const provider = await walletPage(providerKey);
    await provider.page.getByTestId("connect-wallet").click();
    await provider.page.getByTestId("balance").or(provider.page.getByTestId("error")).waitFor({ timeout: 60_000 });
    expect(await provider.page.getByTestId("error").count(), (await provider.page.getByTestId("error").allTextContents()).join()).toBe(0);
    await provider.page.getByTestId("usage-progress").waitFor({ state: "detached" });
    expect(await provider.page.getByTestId("account").textContent()).toBe(privateKeyToAccount(providerKey).address);
    expect(await provider.page.locator(".connected .tag").textContent()).toBe("wallet");
    expect(await figures(provider.page)).toEqual(demo);
    expect(provider.calls.filter((c) => c.method === "personal_sign")).toHaveLength(1);

    // The wallet declines the registration signature: the page says so and stays as it was, nothing connected.
    const declining = await walletPage(providerKey, { reject: ["personal_sign"] });
    await declining.page.getByTestId("connect-wallet").click();
    await declining.page.getByTestId("error").waitFor({ timeout: 30_000 });
    expect(await declining.page.getByTestId("error").textContent()).toBe(
      "The wallet declined to sign the eERC registration message (the eERC key is derived from that signature): nothing was signed or changed.",
    );
    expect(await declining.page.getByTestId("account").count()).toBe(0);
    expect(await declining.page.getByTestId("connect-wallet").isEnabled()).toBe(true);

    // A wallet on another chain than the RPC's is told so before anything is signed.
    const elsewhere = await walletPage(providerKey, { chainId: 1 });
    await elsewhere.page.getByTestId("connect-wallet").click();
    await elsewhere.page.getByTestId("error").waitFor({ timeout: 30_000 });
    expect(await elsewhere.page.getByTestId("error").textContent()).toBe(
      "The wallet is on chain 1, the RPC URL serves chain 31337: switch the wallet to chain 31337 (or change the RPC URL) and connect again.",
    );
    expect(elsewhere.calls.map((c) => c.method)).toEqual(["eth_requestAccounts", "eth_chainId"]);
    expect(await elsewhere.page.getByTestId("account").count()).toBe(0);

    // The operator's wallet: a fourth batch is owed; declining the Distribute signature changes nothing, signing it runs cycle 4.
    await commitRecords(
      w.chain,
      w.manifest,
      w.server,
      w.operator.address,
      4,
      callRecords("weather", 2, { at: Date.now(), priceMicro: 1000n }),
    );
    await new IndexerClient(apiUrl).waitForBlock(await w.chain.publicClient.getBlockNumber({ cacheTime: 0 }));
    const op = await walletPage(operatorKey, { reject: ["eth_signTypedData_v4"] });
    await op.page.getByTestId("connect-wallet").click();
    await op.page.getByTestId("agent-state").or(op.page.getByTestId("error")).waitFor({ timeout: 120_000 });
    expect(await op.page.getByTestId("error").count(), (await op.page.getByTestId("error").allTextContents()).join()).toBe(0);
    expect(await op.page.getByTestId("owed-next-total").textContent()).toBe(usdc(1800n));
    const cyclesBefore = await tableCells("operator-cycles", op.page);
    const lastBefore = await op.page.getByTestId("agent-last").textContent();
    await op.page.getByTestId("run-cycle").click();
    await expect.poll(() => op.page.getByTestId("cycle-progress").getAttribute("class")).toBe("bad");
    expect(await op.page.getByTestId("cycle-progress").textContent()).toBe(
      "The wallet declined to sign the request: nothing was signed or changed.",
    );
    expect(op.calls.filter((c) => c.method === "eth_signTypedData_v4")).toHaveLength(1);
    expect(op.requests.some((r) => r.url.endsWith("/revenue/distribute"))).toBe(false);
    await op.page.getByRole("button", { name: "Refresh" }).click();
    await op.page.getByTestId("agent-state").waitFor();
    await expect.poll(() => op.page.locator('[role="status"]').count()).toBe(0);
    expect(await op.page.getByTestId("agent-last").textContent()).toBe(lastBefore);
    expect(await tableCells("operator-cycles", op.page)).toEqual(cyclesBefore);
    expect(await op.page.getByTestId("owed-next-total").textContent()).toBe(usdc(1800n));

    op.reject.clear();
    await op.page.getByTestId("run-cycle").click();
    await expect
      .poll(() => op.page.getByTestId("cycle-progress").textContent(), { timeout: 180_000, interval: 500 })
      .toMatch(/^cycle 4: 1 transfer\(s\) paid in|failed|refused|not |declined|could not/);
    expect(await op.page.getByTestId("cycle-progress").textContent()).toMatch(/^cycle 4: 1 transfer\(s\) paid in [\d.]+ s$/);
    const signed = op.calls.filter((c) => c.method === "eth_signTypedData_v4");
    expect(signed).toHaveLength(2);
    const typed = JSON.parse(signed[1]!.params[1] as string) as { primaryType: string; domain: { chainId: string } };
    expect([typed.primaryType, typed.domain.chainId]).toEqual(["Distribute", "31337"]);
    expect(op.requests.some((r) => r.url === `${agentUrl}/revenue/distribute` && r.body.includes(signed[1]!.result as string))).toBe(true);
    expect((await tableCells("operator-cycles", op.page)).map((r) => [r[0], r[2], r[3]]).at(-1)).toEqual(["4", "1", "0.001800"]);
    expect(await op.page.getByTestId("owed-next-total").textContent()).toBe(usdc(0n));
    expect(pageErrors).toEqual([]);
    for (const c of walletContexts) await c.close();
  });

  it("sends neither a wallet key nor an eERC key in any request", async () => {
    const secrets: string[] = [];
    for (const key of [providerKey, auditorKey, operatorKey]) {
      const sk = await deriveKeyFromWallet(privateKeyToAccount(key));
      secrets.push(key.slice(2), sk.toString(16), sk.toString(10));
    }
    expect(requests.some((r) => r.url.includes("/graphql")) && requests.some((r) => r.url.includes("/earnings"))).toBe(true);
    expect(requests.some((r) => r.url.includes("/audit/totals")) && requests.some((r) => r.url.startsWith(agentUrl))).toBe(true);
    for (const r of requests) {
      const text = `${r.url}\n${r.body}`.toLowerCase();
      for (const s of secrets) expect(text.includes(s.toLowerCase()), `a key in the request to ${r.url}`).toBe(false);
    }
  });
});
