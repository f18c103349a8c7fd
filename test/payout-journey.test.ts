import type { ChildProcess } from "node:child_process";
import { existsSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import type { Hex } from "viem";
import { afterAll, beforeAll, describe, expect } from "vitest";
import { TestUSDCAbi } from "../abis/TestUSDCAbi.js";
import { freePort } from "../src/chain/anvil.js";
import { ANVIL_KEYS } from "../src/chain/local.js";
import { deriveKeyFromWallet } from "../src/eerc/keys.js";
import { auditTotals, decryptHistory } from "../src/history/decrypt.js";
import { UnknownAccountError } from "../src/history/errors.js";
import { ApiHttpError } from "../src/http/errors.js";
import { startIndexer } from "../src/indexer/process.js";
import { IndexerClient } from "../src/indexer-client/client.js";
import { callRecords, commitRecords, payPoolFee } from "../src/local/marketplace.js";
import { formatUsdc } from "../src/money/usdc.js";
import { agentIdOf, distributeTypedData } from "../src/payout/server.js";
import { poolReserve, poolSecret } from "../src/payout/settlement.js";
import { encodeTag, payoutPCTOptions } from "../src/payout/tag.js";
import { providerIdOf } from "../src/usage/registry.js";
import { accounts } from "./indexer-helpers.js";
import { type PayoutWorld, payoutWorld, spawnAgent } from "./payout-fixtures.js";
import { runScript } from "./run-script.js";
import { story } from "./story.js";

// The provider journey around the payout agent as separate processes: the agent serving
// POST /revenue/distribute, the query API with pending amounts and cycle totals, the auditor's
// reconcile, and a provider's withdraw with everything but the chain stopped.

const cli = (args: string[], env: Record<string, string>) => runScript("src/cli/index.ts", args, env);

let w: PayoutWorld;
let agent: ChildProcess;
let agentUrl: string;
let agentOutput: () => string = () => "";

const operatorKey = ANVIL_KEYS[0];
const auditorKey = ANVIL_KEYS[9];

/** Cycle 1's pool reserve, as the operator and the auditor derive it. */
async function reserve1(): Promise<bigint> {
  return poolReserve(poolSecret(w.operator.exportPrivateKey(), await w.operator.auditorPublicKey()), 1, 900n);
}

/** The pending amount the API at `url` serves `ns`, or why it serves none. */
async function servedPending(ns: string, url = w.indexer.url): Promise<bigint | string> {
  const { client, account } = w.payoutAccounts.get(ns)!;
  let response: Awaited<ReturnType<IndexerClient["earnings"]>>;
  try {
    response = await new IndexerClient(url).earnings(account.address);
  } catch (e) {
    if (e instanceof ApiHttpError || e instanceof UnknownAccountError) return e.message;
    throw e;
  }
  const history = decryptHistory(response, client.exportPrivateKey());
  return history.pending ? history.pending.amountMicro : `no pending amount: ${response.pending === null ? "null" : "?"}`;
}

async function pendingOf(ns: string): Promise<bigint> {
  await new IndexerClient(w.indexer.url).waitForBlock(await w.chain.publicClient.getBlockNumber({ cacheTime: 0 }));
  const served = await servedPending(ns);
  if (typeof served === "string") throw new Error(`the API served no pending amount: ${served}`);
  return served;
}

async function postDistribute(body: unknown): Promise<{ status: number; body: any }> {
  const res = await fetch(`${agentUrl}/revenue/distribute`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: await res.json() };
}

beforeAll(async () => {
  w = await payoutWorld({ fundMicro: 1_000_000n });
  const now = Date.now();
  await commitRecords(w.chain, w.manifest, w.server, w.operator.address, 1, [
    ...callRecords("weather", 3, { at: now, priceMicro: 1000n }),
    ...callRecords("wiki", 2, { at: now }),
  ]);
  await payPoolFee(w.chain, w.manifest, w.user, 1000n);
  await new IndexerClient(w.indexer.url).waitForBlock(await w.chain.publicClient.getBlockNumber({ cacheTime: 0 }));
  const port = await freePort();
  agentUrl = `http://127.0.0.1:${port}`;
  const started = spawnAgent(w, [], { PAYOUT_PORT: String(port) });
  agent = started.child;
  agentOutput = started.output;
  const deadline = Date.now() + 60_000;
  while (!/listening on/.test(agentOutput())) {
    if (Date.now() > deadline || agent.exitCode !== null) throw new Error(`the agent did not start:\n${agentOutput()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
});

afterAll(async () => {
  agent?.kill("SIGKILL");
  // The API restarted by a step is not the world's own.
  await w?.indexer.stop();
  await w?.close();
});

describe("payout journey", () => {
  const step = story();

  step("the API tells each provider, encrypted to its key, what it is owed and not yet paid", async () => {
    expect(await pendingOf("weather")).toBe(2700n);
    // A free-pool share is pending only once its cycle has a boundary (it would show how the others' usage moves).
    expect(await pendingOf("wiki")).toBe(0n);
    expect(await pendingOf("news")).toBe(0n);
  });

  step("POST /revenue/distribute refuses bad, foreign and replayed requests with a JSON error naming the field", async () => {
    const requestId = `0x${"ab".repeat(32)}` as Hex;
    const deadline = BigInt(Math.floor(Date.now() / 1000) + 120);
    const { agentId } = (await (await fetch(`${agentUrl}/revenue/chain`)).json()) as { agentId: Hex };
    expect(agentId).toBe(agentIdOf(w.manifest.contracts.usageLedger, "payout"));
    const typed = distributeTypedData(requestId, deadline, w.chain.chain.id, agentId);
    expect((await postDistribute({ requestId: "0x12", deadline: "1", signature: "0x" })).body.error.field).toBe("requestId");
    expect((await postDistribute({ requestId, deadline: "1", signature: "0x" })).body.error.field).toBe("deadline");
    // The operator's signature for another agent of the same deployment recovers to someone else here.
    const forOther = await accounts[0]!.signTypedData(
      distributeTypedData(requestId, deadline, w.chain.chain.id, agentIdOf(w.manifest.contracts.usageLedger, "other")),
    );
    expect((await postDistribute({ requestId, deadline: deadline.toString(), signature: forOther })).status).toBe(403);
    const stranger = await accounts[4]!.signTypedData(typed);
    const foreign = await postDistribute({ requestId, deadline: deadline.toString(), signature: stranger });
    expect(foreign.status).toBe(403);
    expect(foreign.body.error.field).toBe("signature");
    const status = (await (await fetch(`${agentUrl}/revenue/status`)).json()) as { last: unknown };
    expect(status.last).toBeNull();
  });

  step("the operator's signed request runs a cycle; the CLI follows it to the end", async () => {
    const run = await cli(["distribute", "--agent", agentUrl], { PRIVATE_KEY: operatorKey });
    expect(run.code, run.stderr).toBe(0);
    // weather and wiki, and zero-amount transfers to the three providers without usage.
    expect(run.stdout).toMatch(/cycle 1: 5 transfer\(s\) paid/);
    expect(agentOutput()).toMatch(/cycle 1 \[5\/5\] paid transfer/);
    const metrics = await (await fetch(`${agentUrl}/metrics`)).text();
    expect(metrics).toContain('backendshield_agent_cycles_total{status="paid"} 1');
    expect(metrics).toContain("backendshield_agent_transfers_total 5");
    expect(metrics).toContain("backendshield_agent_prove_seconds_count 5");
    expect(await (await fetch(`${agentUrl}/health`)).json()).toEqual({ ok: true, state: "idle" });
    expect(await pendingOf("weather")).toBe(0n);
    expect(await w.payoutAccounts.get("weather")!.client.balance(w.tokenId)).toBe(2700n);
  });

  step("a replayed request is refused", async () => {
    const requestId = `0x${"cd".repeat(32)}` as Hex;
    const deadline = BigInt(Math.floor(Date.now() / 1000) + 120);
    const agentId = agentIdOf(w.manifest.contracts.usageLedger, "payout");
    const signature = await accounts[0]!.signTypedData(distributeTypedData(requestId, deadline, w.chain.chain.id, agentId));
    const status = async () => (await (await fetch(`${agentUrl}/revenue/status`)).json()) as { state: string; last: unknown };
    const before = JSON.stringify((await status()).last);
    const first = await postDistribute({ requestId, deadline: deadline.toString(), signature });
    expect(first.status).toBe(202);
    const again = await postDistribute({ requestId, deadline: deadline.toString(), signature });
    expect(again.status).toBe(409);
    expect(again.body.error.field).toBe("requestId");
    // The accepted request runs a cycle: it ends before the next step commits usage, which it would otherwise pay.
    const until = Date.now() + 120_000;
    for (let s = await status(); s.state !== "idle" || JSON.stringify(s.last) === before; s = await status()) {
      if (Date.now() > until) throw new Error(`the accepted cycle did not end: ${JSON.stringify(s)}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  });

  step("restarted, the API reads on from its payout ledger checkpoint and serves the same pending amounts", async () => {
    await commitRecords(
      w.chain,
      w.manifest,
      w.server,
      w.operator.address,
      2,
      callRecords("weather", 2, { at: Date.now(), priceMicro: 1000n }),
    );
    const before = await pendingOf("weather");
    expect(before).toBe(1800n);
    // Cycle 1 is settled in the API's ledger: it saved a checkpoint next to its database.
    const checkpoint = join(w.dir, `api-checkpoint-${w.manifest.chainId}.bin`);
    const deadline = Date.now() + 30_000;
    while (!existsSync(checkpoint) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(existsSync(checkpoint)).toBe(true);
    expect(statSync(checkpoint).mode & 0o777).toBe(0o600);
    await w.indexer.stop();
    // Ponder indexes its last blocks again after a restart, under the head of before it, and says
    // /ready meanwhile: the API holds its reads back until they are back (503), and never answers
    // from the rows it has so far. Asked from the moment Ponder says /ready.
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const starting = startIndexer({
      port,
      manifestPath: w.manifestPath,
      env: { RPC_URL: w.rpcUrl },
      pgliteDir: join(w.dir, "pglite"),
      logFile: join(w.dir, "ponder-restarted.log"),
    });
    let started = false;
    const done = () => {
      started = true;
    };
    starting.then(done, done);
    const answers: (bigint | string)[] = [];
    while (!started) {
      const ready = await fetch(`${url}/ready`).then(
        (r) => r.status === 200,
        () => false,
      );
      if (ready) answers.push(await servedPending("weather", url));
      await new Promise((r) => setTimeout(r, 20));
    }
    w.indexer = await starting;
    expect(
      answers.filter((a) => a !== before && !/HTTP 503 .*has not yet indexed, since it started, through block \d+/.test(String(a))),
    ).toEqual([]);
    expect(await pendingOf("weather")).toBe(before);
    expect(w.indexer.recentOutput()).toMatch(/payout ledger: read on from the checkpoint at block \d+ \(.*; cycle \d+ settled/);
    // The API decrypted in its worker thread: no fallback to the indexer's thread was logged.
    expect(readFileSync(join(w.dir, "ponder-restarted.log"), "utf8")).not.toMatch(/line decryption (worker|runs on the API's thread)/);
  });

  step("the audit totals carry each cycle's total, encrypted to the auditor", async () => {
    const response = await new IndexerClient(w.indexer.url).auditTotals();
    const report = auditTotals(response, await deriveKeyFromWallet(accounts[9]!));
    // weather 2700; wiki the pool's 1000 − 10%, less cycle 1's reserve.
    expect(report.cycles).toEqual([
      { cycle: 1, throughBlock: expect.any(BigInt), transfers: 5, totalMicro: 2700n + 900n - (await reserve1()) },
    ]);
  });

  step("the auditor reconciles every cycle; a payout the usage does not justify makes it exit 1", async () => {
    const ok = await cli(["reconcile", "--api", w.indexer.url, "--operator", w.operator.address], { PRIVATE_KEY: auditorKey });
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(/every cycle paid what it owed/);
    expect(ok.stdout).toContain(`total paid: ${formatUsdc(2700n + 900n - (await reserve1()))} USDC`);

    // A second transfer to weather labelled as cycle 1, as a buggy or dishonest payer would send.
    const throughBlock = (await new IndexerClient(w.indexer.url).auditTotals()).cycles![0]!.throughBlock;
    const tag = encodeTag({ cycle: 1, throughBlock: BigInt(throughBlock), providerId: providerIdOf("weather") });
    const extra = await w.operator.prepareTransfer({
      to: w.payoutAccounts.get("weather")!.account.address,
      amount: 5n,
      tokenId: w.tokenId,
      pct: payoutPCTOptions(w.operator.exportPrivateKey(), tag),
    });
    const receipt = await w.operator.sendTransfer(extra);
    await new IndexerClient(w.indexer.url).waitForBlock(receipt.blockNumber);
    const bad = await cli(["reconcile", "--api", w.indexer.url, "--operator", w.operator.address, "--json"], { PRIVATE_KEY: auditorKey });
    expect(bad.code).toBe(1);
    const report = JSON.parse(bad.stdout);
    expect(report.ok).toBe(false);
    expect(report.unattributed).toEqual([]);
    const row = report.cycles[0].rows.find((r: { namespace: string }) => r.namespace === "weather");
    expect(row).toMatchObject({ owedMicro: "2700", paidMicro: "2705", transfers: 2, ok: false });
  });

  step("a payer transfer that is not a payout fails the reconciliation, named, even when every cycle adds up", async () => {
    const stray = await w.operator.transfer({ to: w.payoutAccounts.get("news")!.account.address, amount: 1n, tokenId: w.tokenId });
    await new IndexerClient(w.indexer.url).waitForBlock(stray.blockNumber);
    const run = await cli(["reconcile", "--api", w.indexer.url, "--operator", w.operator.address, "--payers", w.operator.address], {
      PRIVATE_KEY: auditorKey,
    });
    expect(run.code).toBe(1);
    expect(run.stdout).toMatch(/not accountable payouts/);
    expect(run.stdout).toContain(stray.transactionHash);
    expect(run.stdout).toContain("its auditor PCT nonce is not a payout tag");
    expect(run.stderr).toMatch(/1 payer transfer\(s\) are not accountable payouts/);
  });

  step("a provider withdraws with only an RPC endpoint and its key: indexer, API and agent stopped", async () => {
    agent.kill("SIGTERM");
    await w.indexer.stop();
    const weather = w.payoutAccounts.get("weather")!;
    const usdc = () =>
      w.chain.publicClient.readContract({
        address: w.manifest.contracts.token,
        abi: TestUSDCAbi,
        functionName: "balanceOf",
        args: [weather.account.address],
      });
    const before = await usdc();
    const env = { PRIVATE_KEY: weather.account.privateKey };
    const base = ["withdraw", "--rpc", w.rpcUrl, "--manifest", w.manifestPath];
    const malformed = await cli([...base, "--amount", "1.0000001"], env);
    expect(malformed.code).toBe(2);
    expect(malformed.stderr).toMatch(/^error: --amount/);
    const tooMuch = await cli([...base, "--amount", "1"], env);
    expect(tooMuch.code).toBe(1);
    expect(tooMuch.stderr.trim().split("\n")).toHaveLength(1);
    expect(tooMuch.stderr).toMatch(/your balance is 0\.0027\d* USDC, less than the 1(\.0+)? USDC asked: withdraw at most 0\.0027/);
    expect(await usdc()).toBe(before);
    const run = await cli(["withdraw", "--rpc", w.rpcUrl, "--manifest", w.manifestPath, "--amount", "0.0027"], {
      PRIVATE_KEY: weather.account.privateKey,
    });
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/withdrew 0\.002700 USDC/);
    expect((await usdc()) - before).toBe(2700n);
    // The 5 micro-USDC of the extra transfer is what is left.
    expect(await weather.client.balance(w.tokenId)).toBe(5n);
  });
});
