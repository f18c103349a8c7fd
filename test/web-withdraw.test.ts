import { cpSync, existsSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { extname, join, normalize, sep } from "node:path";
import type { Browser, Page } from "playwright-core";
import * as snarkjs from "snarkjs";
import { erc20Abi } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WEB_BUILD_DIR } from "../src/api/app.js";
import { DEV_PTAU } from "../src/build/circuits.js";
import { ANVIL_KEYS } from "../src/chain/local.js";
import { circuitArtifacts } from "../src/eerc/artifacts.js";
import type { EercClient } from "../src/eerc/client.js";
import { deriveKeyFromWallet } from "../src/eerc/keys.js";
import { IndexerClient } from "../src/indexer-client/client.js";
import { callRecords, commitRecords, eercAccount, registerProvider } from "../src/local/marketplace.js";
import { type LocalWorld, localWorld } from "../src/local/world.js";
import { formatUsdc } from "../src/money/usdc.js";
import { perCall } from "../src/usage/pricing.js";
import { haveChromium, launchChromium, requireChromium, SHOTS } from "./browser-fixtures.js";

// "Withdraw to your wallet" in the dashboard, with the chain's RPC endpoint as the only service:
// the built page is served as static files by a plain HTTP server (not the API), the indexer is
// stopped and no payout agent runs. A provider paid in one cycle withdraws part of its encrypted
// balance to its wallet; the proof is made in Debian's Chromium with snarkjs, the transaction
// signed with the demo account's key in the page. Checked against the chain with the SDK.

requireChromium("web withdraw");

/** anvil's account #1: a demo account, the payout account of the provider "weather". */
const PROVIDER_INDEX = 1;
const providerKey = ANVIL_KEYS[PROVIDER_INDEX];
const provider = privateKeyToAccount(providerKey);
const usdc = (micro: bigint) => `${formatUsdc(micro)} USDC`;

const CONTENT_TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".json": "application/json",
  ".wasm": "application/wasm",
};

/** A plain static file server over `dir`: what any static host does, and nothing more. */
function staticServer(dir: string): Promise<{ server: Server; url: string }> {
  const server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? "/", "http://x").pathname);
    const file = normalize(join(dir, path.endsWith("/") ? `${path}index.html` : path));
    if (!file.startsWith(dir + sep) || !existsSync(file) || !statSync(file).isFile()) {
      res.writeHead(404).end("not found");
      return;
    }
    res.writeHead(200, { "content-type": CONTENT_TYPES[extname(file)] ?? "application/octet-stream" }).end(readFileSync(file));
  });
  return new Promise((done) =>
    server.listen(0, "127.0.0.1", () => {
      const address = server.address() as { port: number };
      done({ server, url: `http://127.0.0.1:${address.port}/` });
    }),
  );
}

let w: LocalWorld;
let client: EercClient;
let browser: Browser;
let page: Page;
let site: { server: Server; url: string };
let siteDir: string;
let apiUrl: string;
const requests: { url: string; body: string }[] = [];
const pageErrors: string[] = [];

const sent = () => requests.filter((r) => /"method":"eth_send(Raw)?Transaction"/.test(r.body));
const walletUsdc = () =>
  w.chain.publicClient.readContract({
    address: w.manifest.contracts.token,
    abi: erc20Abi,
    functionName: "balanceOf",
    args: [provider.address],
  });
const message = () => page.getByTestId("withdraw-message").textContent();

/**
 * Opens the static page with `query` in a fresh tab (the previous one closed, and the key with it).
 * With `wallet`, the page gets an injected EIP-1193 wallet for the provider's account: anvil itself
 * signs (`personal_sign`) and sends (`eth_sendTransaction`) for its well-known accounts, so the
 * stand-in only forwards requests to the node (setting `walletChainId` in the page switches its chain).
 */
async function openPage(query: string, wallet = false): Promise<void> {
  await page?.close();
  page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  page.on("request", (r) => requests.push({ url: r.url(), body: r.postData() ?? "" }));
  page.on("pageerror", (e) => pageErrors.push(e.message));
  if (wallet) {
    await page.addInitScript(
      ({ rpc, account }) => {
        (globalThis as unknown as { ethereum: unknown }).ethereum = {
          async request({ method, params }: { method: string; params?: unknown[] }) {
            if (method === "eth_requestAccounts" || method === "eth_accounts") return [account];
            // The chain the wallet is on: the node's, unless the test has switched it (after connecting).
            const switched = (globalThis as unknown as { walletChainId?: string }).walletChainId;
            if (method === "eth_chainId" && switched) return switched;
            const res = await fetch(rpc, {
              method: "POST",
              headers: { "content-type": "application/json" },
              body: JSON.stringify({ jsonrpc: "2.0", id: 1, method, params: params ?? [] }),
            });
            const body = (await res.json()) as { result?: unknown; error?: { message: string } };
            if (body.error) throw new Error(body.error.message);
            return body.result;
          },
        };
      },
      { rpc: w.rpcUrl, account: provider.address },
    );
  }
  await page.goto(`${site.url}?api=${encodeURIComponent(apiUrl)}&rpc=${encodeURIComponent(w.rpcUrl)}${query}`);
  await expect.poll(() => page.getByTestId("chain-id").textContent(), { timeout: 15_000 }).toContain("31337");
  if (wallet) await page.getByTestId("connect-wallet").click();
  else {
    await page.getByTestId("demo-account").selectOption(String(PROVIDER_INDEX));
    await page.getByTestId("demo-connect").click();
  }
  await page.getByTestId("withdraw-balance").or(page.getByTestId("withdraw-balance-error")).waitFor({ timeout: 60_000 });
  expect(await page.getByTestId("account").textContent()).toBe(provider.address);
}

/** Types `amount`, clicks Withdraw and waits for the panel's final message (not a progress line). */
async function withdrawInPage(amount: string, timeout = 30_000): Promise<string> {
  await page.getByTestId("withdraw-amount").fill(amount);
  await page.getByTestId("withdraw-submit").click();
  await page.locator('[data-testid="withdraw-message"]:is(.ok, .bad)').waitFor({ timeout });
  return (await message())!.trim();
}

/** Runs `attempt` and checks that it changed nothing on chain: no transaction sent, the same balances. */
async function changesNothing(attempt: () => Promise<void>): Promise<void> {
  const before = { sent: sent().length, usdc: await walletUsdc(), eerc: await client.balance(w.tokenId) };
  const nonce = await w.chain.publicClient.getTransactionCount({ address: provider.address });
  await attempt();
  expect(sent().length).toBe(before.sent);
  expect(await w.chain.publicClient.getTransactionCount({ address: provider.address })).toBe(nonce);
  expect(await walletUsdc()).toBe(before.usdc);
  expect(await client.balance(w.tokenId)).toBe(before.eerc);
}

const WITHDREW = (amount: string, from: string, to: string) =>
  new RegExp(
    `^Withdrew ${amount.replace(".", "\\.")} USDC to ${provider.address} \\(tx 0x[0-9a-f]{64}, block \\d+\\); encrypted balance ${from.replace(".", "\\.")} USDC → ${to.replace(".", "\\.")} USDC; proof made in this page in [\\d.]+ s$`,
  );

describe.runIf(haveChromium)("web withdraw, RPC only", () => {
  beforeAll(async () => {
    w = await localWorld({ indexer: true, fundMicro: 1_000_000n });
    client = await eercAccount(w.chain, w.manifest, w.prover, provider);
    await registerProvider(w.chain, w.manifest, w.owner, {
      namespace: "weather",
      payoutAccount: provider.address,
      pricing: perCall(1000n),
    });
    // One cycle pays 5 calls at 1000 micro, less the 10% fee: 4500.
    await commitRecords(
      w.chain,
      w.manifest,
      w.server,
      w.operator.address,
      1,
      callRecords("weather", 5, { at: Date.now(), priceMicro: 1000n }),
    );
    await new IndexerClient(w.indexer!.url).waitForBlock(await w.chain.publicClient.getBlockNumber({ cacheTime: 0 }));
    expect((await w.agent().runCycle()).status).toBe("paid");
    expect(await client.balance(w.tokenId)).toBe(4500n);

    // Everything but the chain goes down: the indexer and its API stop; the agent ran in-process and is done.
    apiUrl = w.indexer!.url;
    await w.indexer!.stop();
    expect(
      await fetch(apiUrl).then(
        () => "up",
        () => "down",
      ),
    ).toBe("down");

    // A static copy of the build, with the deployment's manifest next to index.html, as an operator would publish it.
    siteDir = mkdtempSync(join(tmpdir(), "bs-web-static-"));
    cpSync(WEB_BUILD_DIR, siteDir, { recursive: true });
    writeFileSync(join(siteDir, "deployment.json"), JSON.stringify(w.manifest, null, 2));
    writeFileSync(join(siteDir, "other-chain.json"), JSON.stringify({ ...w.manifest, chainId: 43113 }));
    site = await staticServer(siteDir);

    browser = await launchChromium();
  });

  afterAll(async () => {
    await browser?.close();
    await new Promise((r) => (site ? site.server.close(r) : r(undefined)));
    if (siteDir) rmSync(siteDir, { recursive: true, force: true });
    await w?.close();
  });

  it("reads a demo account's encrypted balance from the chain, with the API down", async () => {
    await openPage("");
    expect(
      await page.getByTestId("withdraw-balance-error").count(),
      (await page.getByTestId("withdraw-balance-error").allTextContents()).join(),
    ).toBe(0);
    expect(await page.getByTestId("withdraw-balance").textContent()).toBe(usdc(4500n));
    // The API-backed figures say the API is unreachable; the withdraw panel does not need it.
    expect(await page.getByTestId("error").textContent()).toContain("unreachable");
    await page.screenshot({ path: join(SHOTS, "web-withdraw-ready.png"), fullPage: true });
  });

  it("refuses a zero, malformed or over-balance amount, naming the field and showing the balance, and sends nothing", async () => {
    await changesNothing(async () => {
      expect(await withdrawInPage("0")).toBe("Amount: enter more than 0 USDC (got 0)");
      expect(await withdrawInPage("1.2345678")).toBe(
        'Amount: "1.2345678" is not a USDC amount; give one with at most 6 decimals, e.g. 0.5',
      );
      expect(await withdrawInPage("")).toBe("Amount: nothing is not a USDC amount; give one with at most 6 decimals, e.g. 0.5");
      expect(await withdrawInPage("1")).toBe(
        "Amount: 1.000000 USDC is more than your encrypted balance, 0.004500 USDC: withdraw at most 0.004500",
      );
      expect(await page.getByTestId("withdraw-amount").getAttribute("aria-invalid")).toBe("true");
      await page.screenshot({ path: join(SHOTS, "web-withdraw-over-balance.png"), fullPage: true });
    });
    expect(sent()).toEqual([]);
    // Nothing of the prover has been loaded yet: neither snarkjs nor the circuit.
    expect(requests.filter((r) => /browser\.esm|circuits\//.test(r.url))).toEqual([]);
  });

  it("withdraws 0.001234 USDC to the demo account's wallet, proved in the page and signed there", async () => {
    const usdcBefore = await walletUsdc();
    const started = Date.now();
    const text = await withdrawInPage("0.001234", 240_000);
    console.log(`withdraw from the page (demo account): ${((Date.now() - started) / 1000).toFixed(1)} s in all; ${text}`);
    expect(text).toMatch(WITHDREW("0.001234", "0.004500", "0.003266"));
    await page.screenshot({ path: join(SHOTS, "web-withdraw-done.png"), fullPage: true });
    await page.setViewportSize({ width: 360, height: 900 });
    await page.waitForTimeout(300);
    await page.screenshot({ path: join(SHOTS, "web-withdraw-done-360.png"), fullPage: true });
    expect(await page.evaluate<number>("document.documentElement.scrollWidth - document.documentElement.clientWidth")).toBe(0);

    // Against the chain, with the SDK: the wallet's USDC rose by exactly the amount, the encrypted balance fell by it.
    expect((await walletUsdc()) - usdcBefore).toBe(1234n);
    expect(await client.balance(w.tokenId)).toBe(4500n - 1234n);
    expect(await page.getByTestId("withdraw-balance").textContent()).toBe(usdc(3266n));
    // One transaction, signed in the page and sent raw to the RPC; snarkjs and the circuit loaded for it, from the page's folder.
    expect(sent().map((r) => [new URL(r.url).host, JSON.parse(r.body).method])).toEqual([
      [new URL(w.rpcUrl).host, "eth_sendRawTransaction"],
    ]);
    expect(requests.some((r) => /\/assets\/browser\.esm-[^/]+\.js$/.test(r.url))).toBe(true);
    expect(
      requests
        .filter((r) => /\/circuits\/withdraw\.(wasm|zkey)$/.test(r.url))
        .map((r) => new URL(r.url).pathname)
        .sort(),
    ).toEqual(["/circuits/withdraw.wasm", "/circuits/withdraw.zkey"]);
    expect(pageErrors).toEqual([]);
  });

  it("names a deployment on another chain than the RPC's, and sends nothing", async () => {
    await changesNothing(async () => {
      await openPage("&deployment=other-chain.json");
      const wrong = "Wrong chain: the deployment is on chain 43113, the RPC URL serves chain 31337";
      expect(await page.getByTestId("withdraw-balance-error").textContent()).toBe(wrong);
      expect(await withdrawInPage("0.000100")).toBe(wrong);
    });
  });

  it("tells an injected wallet that switched to another chain to switch back, and sends nothing", async () => {
    await changesNothing(async () => {
      await openPage("", true);
      expect(await page.getByTestId("withdraw-balance").textContent()).toBe(usdc(3266n));
      // The wallet connected on the deployment's chain, then switched to another one.
      await page.evaluate("globalThis.walletChainId = '0x1'");
      expect(await withdrawInPage("0.000100")).toBe(
        "Wrong chain: your wallet is on chain 1; switch it to chain 31337 (the deployment's) and withdraw again",
      );
    });
  });

  it("withdraws through an injected wallet's eth_sendTransaction", async () => {
    await openPage("", true);
    const usdcBefore = await walletUsdc();
    const count = sent().length;
    const text = await withdrawInPage("0.000266", 240_000);
    console.log(`withdraw from the page (injected wallet): ${text}`);
    expect(text).toMatch(WITHDREW("0.000266", "0.003266", "0.003000"));
    expect((await walletUsdc()) - usdcBefore).toBe(266n);
    expect(await client.balance(w.tokenId)).toBe(3000n);
    expect(
      sent()
        .slice(count)
        .map((r) => JSON.parse(r.body).method),
    ).toEqual(["eth_sendTransaction"]);
  });

  it("says so when the proof cannot be made (no proving key next to the page), and sends nothing", async () => {
    const zkey = join(siteDir, "circuits", "withdraw.zkey");
    renameSync(zkey, `${zkey}.away`);
    try {
      await changesNothing(async () => {
        await openPage("");
        const text = await withdrawInPage("0.000100", 120_000);
        expect(text).toMatch(
          /^The withdraw proof could not be made in this page: http:\/\/127\.0\.0\.1:\d+\/circuits\/withdraw\.zkey: HTTP 404 /,
        );
        await page.screenshot({ path: join(SHOTS, "web-withdraw-no-zkey.png"), fullPage: true });
      });
    } finally {
      renameSync(`${zkey}.away`, zkey);
    }
  });

  it("has the eERC refuse a proof made with another proving key before anything is signed", async () => {
    // A proving key of the same circuit from another setup: proofs verify under it, not under the deployment's verifier.
    const zkey = join(siteDir, "circuits", "withdraw.zkey");
    renameSync(zkey, `${zkey}.away`);
    try {
      await snarkjs.zKey.newZKey(circuitArtifacts("withdraw").r1cs, DEV_PTAU, zkey);
      await changesNothing(async () => {
        await openPage("");
        const text = await withdrawInPage("0.000100", 120_000);
        expect(text).toBe(
          "The eERC would revert this withdraw, so nothing was sent: InvalidProof: the proof does not verify on the deployment's verifier (circuits/withdraw.zkey next to the page is not the deployment's proving key)",
        );
        await page.screenshot({ path: join(SHOTS, "web-withdraw-wrong-zkey.png"), fullPage: true });
      });
    } finally {
      rmSync(zkey, { force: true });
      renameSync(`${zkey}.away`, zkey);
    }
  }, 300_000);

  it("sends neither the wallet key nor the eERC key in any request", async () => {
    const sk = await deriveKeyFromWallet(provider);
    const secrets = [providerKey.slice(2), sk.toString(16), sk.toString(10)];
    expect(requests.length).toBeGreaterThan(0);
    for (const r of requests) {
      const text = `${r.url}\n${r.body}`.toLowerCase();
      for (const s of secrets) expect(text.includes(s.toLowerCase()), `a key in the request to ${r.url}`).toBe(false);
    }
    expect(pageErrors).toEqual([]);
  });
});
