import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { type Browser, chromium, type Page } from "playwright-core";
import { privateKeyToAccount } from "viem/accounts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildWeb } from "../src/api/app.js";
import { ANVIL_KEYS } from "../src/chain/local.js";
import { PROJECT_ROOT } from "../src/eerc/artifacts.js";
import { deriveKeyFromWallet } from "../src/eerc/keys.js";
import { IndexerClient } from "../src/indexer-client/client.js";
import { callRecords, commitRecords, eercAccount, registerProvider } from "../src/local/marketplace.js";
import { type LocalWorld, localWorld } from "../src/local/world.js";
import { formatUsdc } from "../src/money/usdc.js";
import { perCall } from "../src/usage/pricing.js";
import { runScript } from "./run-script.js";

// The provider dashboard (web/) in Debian's Chromium, served by the API at /app/ on a local world:
// a provider paid in two cycles and owed a third, picked from the demo accounts. What the page
// shows must be what the CLI decrypts for the same account, and no key may leave the page.

const CHROMIUM = "/usr/bin/chromium";
const INSTALL = "apt-get install -y chromium";
const haveChromium = existsSync(CHROMIUM);
const SHOTS = join(PROJECT_ROOT, "test-results");

if (!haveChromium && process.env.CI !== "true") console.log(`web dashboard test skipped: ${CHROMIUM} is missing (${INSTALL})`);

describe.runIf(!haveChromium && process.env.CI === "true")("web dashboard without Chromium", () => {
  it("fails under CI, which installs Chromium", () => {
    throw new Error(`${CHROMIUM} is missing: ${INSTALL}`);
  });
});

/** anvil's account #1: a demo account, registered as the payout account of the provider "weather". */
const PROVIDER_INDEX = 1;
const providerKey = ANVIL_KEYS[PROVIDER_INDEX];
const provider = privateKeyToAccount(providerKey);
const usdc = (micro: bigint) => `${formatUsdc(micro)} USDC`;

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
const requests: { url: string; body: string }[] = [];
const pageErrors: string[] = [];

/** Cells of each body row of the table `testId`, the full value of shortened hex cells included (their title). */
async function tableCells(testId: string): Promise<string[][]> {
  return page
    .getByTestId(testId)
    .locator("tbody tr")
    .evaluateAll((rows) => rows.map((r) => [...r.querySelectorAll("td")].map((td) => td.getAttribute("title") ?? "")));
}

describe.runIf(haveChromium)("web dashboard", () => {
  beforeAll(async () => {
    const built = buildWeb();
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
    await built;
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox"] });
    page = await browser.newPage({ viewport: { width: 1280, height: 900 }, acceptDownloads: true });
    page.on("request", (r) => requests.push({ url: r.url(), body: r.postData() ?? "" }));
    page.on("pageerror", (e) => pageErrors.push(e.message));
    mkdirSync(SHOTS, { recursive: true });
  });

  afterAll(async () => {
    await browser?.close();
    await w?.close();
  });

  it("shows, for a demo account, the balance, pending amount and payouts per cycle the CLI decrypts", async () => {
    await page.goto(`${apiUrl}/app/?rpc=${encodeURIComponent(w.rpcUrl)}`);
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
    const saved = async (testId: string) => {
      const [download] = await Promise.all([page.waitForEvent("download"), page.getByTestId(testId).click()]);
      return readFileSync((await download.path())!, "utf8");
    };
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

  it("sends neither the wallet key nor the eERC key in any request", async () => {
    const sk = await deriveKeyFromWallet(provider);
    const secrets = [providerKey.slice(2), sk.toString(16), sk.toString(10)].map((s) => s.toLowerCase());
    expect(requests.some((r) => r.url.includes("/graphql")) && requests.some((r) => r.url.includes("/earnings"))).toBe(true);
    for (const r of requests) {
      const text = `${r.url}\n${r.body}`.toLowerCase();
      for (const s of secrets) expect(text.includes(s), `a key in the request to ${r.url}`).toBe(false);
    }
  });

  it("lays out at 360 px and 1280 px wide (screenshots in test-results/)", async () => {
    for (const width of [1280, 360]) {
      await page.setViewportSize({ width, height: 900 });
      await page.waitForTimeout(300);
      // Nothing but the tables' own scroll areas may be wider than the page.
      const overflow = await page.evaluate<number>("document.documentElement.scrollWidth - document.documentElement.clientWidth");
      expect(overflow, `horizontal overflow at ${width} px`).toBe(0);
      await page.screenshot({ path: join(SHOTS, `web-dashboard-${width}.png`), fullPage: true });
    }
  });
});
