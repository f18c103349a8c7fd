import type { Address } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { afterAll, beforeAll, describe, expect } from "vitest";
import { buildContracts, loadArtifact } from "../src/build/contracts.js";
import { connectChain } from "../src/chain/clients.js";
import { ANVIL_KEYS, LOCAL_ROLES } from "../src/chain/local.js";
import { deploy } from "../src/deployment/deploy.js";
import type { SettlementSettings } from "../src/deployment/settlement.js";
import { deriveKeyFromWallet } from "../src/eerc/keys.js";
import type { Prover } from "../src/eerc/prover.js";
import { IndexerClient } from "../src/indexer-client/client.js";
import { creditAttacker } from "../src/local/attacker.js";
import { callRecords, commitRecords } from "../src/local/marketplace.js";
import { type LocalWorld, localWorld } from "../src/local/world.js";
import { formatUsdc } from "../src/money/usdc.js";
import { WebhookSender } from "../src/notify/webhooks.js";
import type { CycleResult, PayoutAgent } from "../src/payout/agent.js";
import { indexedPendingCap } from "../src/payout/deferral.js";
import { readSettlementFacts } from "../src/payout/facts.js";
import { AgentMetrics } from "../src/payout/metrics.js";
import { type Reconciliation, reconcile, reconciliationHeadline } from "../src/payout/reconcile.js";
import { perCall } from "../src/usage/pricing.js";
import { providerIdOf } from "../src/usage/registry.js";
import { runScript } from "./run-script.js";
import { story } from "./story.js";
import { startWebhookReceiver, type WebhookReceiver } from "./webhook-receiver.js";

// A provider whose pending queue is full. On an eERC that caps each balance's pending amount PCTs
// (the reported 2026 hardening: 300, `PendingHistoryLimitReached`), anyone can fill a provider's
// queue with dust transfers, and every later credit to it reverts until it spends. Our
// `EncryptedERCCapped` with a cap of 3, so three real dust transfers fill it (300 would be 300
// transfer proofs). The agent defers that provider (notified), pays everyone else, and pays it once
// it has emptied its queue by withdrawing. The auditor's reconcile shows the deferral, checked
// against the queue the indexer replays and the cap read from the eERC, not as a short payout.
// Anvil, the indexer, real proofs.

/** Pending amount PCTs a balance may hold on this test's eERC. */
const CAP = 3;
const PRICE = 1000n;
/** 2 calls at 1000, less the 10% fee. */
const OWED = 1800n;
const PROVIDERS = ["alpha", "beta", "gamma"];
const SECRET = `whsec_${Buffer.from("the payout deferral test's webhook secret").toString("base64")}`;

/** The project's eERC with the pending cap (verifiers from the circuit build), then the rest as `deploy` does on an existing eERC. */
async function deployCapped(args: { rpcUrl: string; prover: Prover; settlement?: SettlementSettings }) {
  await buildContracts();
  const chain = await connectChain(args.rpcUrl);
  const owner = privateKeyToAccount(ANVIL_KEYS[LOCAL_ROLES.owner]);
  const startBlock = Number(await chain.publicClient.getBlockNumber());
  const create = async (name: string, params: readonly unknown[] = []): Promise<Address> => {
    const { abi, bytecode } = await loadArtifact(name);
    const hash = await chain.walletFor(owner).deployContract({ abi, bytecode, args: params });
    const receipt = await chain.publicClient.waitForTransactionReceipt({ hash });
    if (receipt.status !== "success" || !receipt.contractAddress) throw new Error(`deploying ${name} failed`);
    return receipt.contractAddress;
  };
  const registrar = await create("Registrar", [await create("RegistrationVerifier")]);
  const encryptedERC = await create("EncryptedERCCapped", [
    {
      registrar,
      isConverter: true,
      name: "Encrypted USDC",
      symbol: "eUSDC",
      decimals: 6,
      mintVerifier: await create("MintVerifier"),
      withdrawVerifier: await create("WithdrawVerifier"),
      transferVerifier: await create("TransferVerifier"),
      burnVerifier: await create("BurnVerifier"),
    },
    BigInt(CAP),
  ]);
  return deploy({
    rpcUrl: args.rpcUrl,
    network: "anvil-local",
    deployer: owner,
    auditor: privateKeyToAccount(ANVIL_KEYS[LOCAL_ROLES.auditor]),
    prover: args.prover,
    settlement: args.settlement,
    eerc: { encryptedERC, registrar, startBlock },
    circuits: args.prover.artifacts,
    write: false,
  });
}

let w: LocalWorld;
let receiver: WebhookReceiver;
let sequence = 0;
const logs: string[] = [];
const metrics = new AgentMetrics();

const commit = () =>
  commitRecords(
    w.chain,
    w.manifest,
    w.server,
    w.operator.address,
    ++sequence,
    PROVIDERS.flatMap((p) => callRecords(p, 2, { at: Date.now(), priceMicro: PRICE })),
  );

let sender: WebhookSender;
/** One agent for the whole story, as the agent process keeps one: it remembers which providers it deferred. */
let agent: PayoutAgent;

async function run(): Promise<Extract<CycleResult, { status: "paid" }>> {
  const result = await agent.runCycle();
  await sender.settled();
  if (result.status !== "paid") throw new Error(`expected a paid cycle, got ${result.status}`);
  metrics.recordCycle(result, 1);
  return result;
}

const balance = (ns: string) => w.payoutAccounts.get(ns)!.client.balance(w.tokenId);
const beta = providerIdOf("beta");
const auditorKey = ANVIL_KEYS[LOCAL_ROLES.auditor];

/**
 * The auditor's reconciliation once the indexer has caught up, with the eERC's pending cap read
 * from the chain as the dashboard reads it (`cap: null`: none known).
 */
async function audit(cap: "chain" | null = "chain"): Promise<Reconciliation> {
  const indexer = new IndexerClient(w.indexer!.url);
  await indexer.waitForBlock(await w.chain.publicClient.getBlockNumber({ cacheTime: 0 }));
  return reconcile({
    indexer,
    auditorSk: await deriveKeyFromWallet(privateKeyToAccount(auditorKey)),
    operatorPk: w.operator.publicKey,
    pendingCap: cap === "chain" ? await indexedPendingCap(indexer, w.chain.publicClient) : null,
  });
}

/** Per cycle, each provider's row as the auditor sees it, by namespace: [cycle, namespace, owed, paid, status, deferred in, paid in cycle]. */
const rowsOf = (r: Reconciliation) =>
  r.cycles.flatMap((c) =>
    c.rows
      .map((row) => [c.cycle, row.namespace, row.owedMicro, row.paidMicro, row.status, row.deferredInMicro, row.settledInCycle] as const)
      .sort((a, b) => a[1]!.localeCompare(b[1]!)),
  );
/** beta's row of a cycle. */
const betaRow = (r: Reconciliation, cycle: number) =>
  r.cycles.find((c) => c.cycle === cycle)!.rows.find((row) => row.namespace === "beta")!;

const cli = (args: string[]) =>
  runScript("src/cli/index.ts", ["reconcile", "--api", w.indexer!.url, "--operator", w.operator.address, ...args], {
    PRIVATE_KEY: auditorKey,
  });

beforeAll(async () => {
  receiver = await startWebhookReceiver(SECRET);
  w = await localWorld({
    providers: PROVIDERS.map((namespace) => ({ namespace, pricing: perCall(PRICE) })),
    fundMicro: 1_000_000n,
    indexer: true,
    settlement: { feeBps: 1000, periodUnit: "month" },
    deploy: deployCapped,
  });
  sender = new WebhookSender({ urls: [receiver.url], secret: SECRET, backoffMs: 50 });
  agent = w.agent({ depth: 3, notify: sender, log: (l) => logs.push(l) });
});

afterAll(async () => {
  await w?.close();
  await receiver?.close();
});

describe("a provider whose pending queue is full", () => {
  const step = story();

  step("is deferred and notified; everyone else is paid", async () => {
    // Three 1-micro transfers from a stranger fill beta's queue.
    const dust = await creditAttacker({
      chain: w.chain,
      manifest: w.manifest,
      prover: w.prover,
      target: w.payoutAccounts.get("beta")!.account.address,
      tokenId: w.tokenId,
      amount: 1n,
      credits: CAP,
    });
    for (let i = 0; i < CAP; i++) await w.chain.publicClient.waitForTransactionReceipt({ hash: await dust.credit() });
    const view = await w.payoutAccounts.get("beta")!.client.balanceView(w.tokenId);
    expect(view.amountPCTs).toHaveLength(CAP);

    await commit();
    const result = await run();
    expect(result.cycle).toBe(1);
    expect(result.transfers.map((t) => t.providerId).sort()).toEqual([providerIdOf("alpha"), providerIdOf("gamma")].sort());
    expect(result.deferred).toHaveLength(1);
    expect(result.deferred[0]).toMatchObject({ providerId: beta, reason: "receiver_queue_full", error: "PendingHistoryLimitReached" });
    // A deferral is not a moved balance: no recovery counted.
    expect(result.recoveries).toBe(0);
    expect({ alpha: await balance("alpha"), beta: await balance("beta"), gamma: await balance("gamma") }).toEqual({
      alpha: OWED,
      beta: BigInt(CAP),
      gamma: OWED,
    });
    const event = await receiver.waitFor("payout.deferred", (e) => e.data.cycle === 1);
    expect(event.id).toBe(`payout.deferred:1:${beta}`);
    expect(event.data).toMatchObject({
      cycle: 1,
      providerId: beta,
      payoutAccount: w.payoutAccounts.get("beta")!.account.address,
      reason: "receiver_queue_full",
    });
    expect(JSON.stringify(event.data)).not.toContain(OWED.toString());
    expect(logs.some((l) => l.includes("deferred: its pending queue is full"))).toBe(true);
    expect(metrics.render(false)).toContain("backendshield_agent_deferred_total 1");
  });

  step(
    "the auditor sees cycle 1 defer beta (its queue held the eERC's cap when the cycle's last transfer was mined), not pay it short",
    async () => {
      const r = await audit();
      expect(r.pendingCap).toBe(BigInt(CAP));
      expect(rowsOf(r)).toEqual([
        [1, "alpha", OWED, OWED, "ok", 0n, null],
        [1, "beta", OWED, 0n, "deferred", 0n, null],
        [1, "gamma", OWED, OWED, "ok", 0n, null],
      ]);
      const lastTransfer = (await readSettlementFacts(new IndexerClient(w.indexer!.url), [w.operator.address])).payouts.at(-1)!;
      expect(betaRow(r, 1).queue).toEqual({
        account: w.payoutAccounts.get("beta")!.account.address,
        tokenId: w.tokenId,
        pendingPCTs: BigInt(CAP),
        blockNumber: lastTransfer.blockNumber,
        logIndex: lastTransfer.logIndex,
        txHash: lastTransfer.txHash,
      });
      // 3 providers × 2 calls × 1000 = 6000 billed = 3600 paid + 600 fee + 1800 deferred to a later cycle.
      expect(r.cycles[0]!.moneyFlow).toMatchObject({
        usageMicro: 6000n,
        paidMicro: 2n * OWED,
        platformFeeMicro: 600n,
        deferredInMicro: 0n,
        deferredOutMicro: OWED,
        differenceMicro: 0n,
      });
      expect({ ok: r.ok, cycleOk: r.cycles[0]!.ok, deferred: r.deferredMicro, total: r.moneyFlow.ok }).toEqual({
        ok: true,
        cycleOk: true,
        deferred: OWED,
        total: true,
      });
      expect(reconciliationHeadline(r)).toBe(
        `every cycle paid what it owed, or deferred a provider whose pending queue was full; ${formatUsdc(OWED)} USDC deferred, still owed`,
      );
      // Without the cap nothing verifies the deferral: beta is short, with the queue the auditor read.
      const blind = await audit(null);
      expect(blind.ok).toBe(false);
      expect(betaRow(blind, 1)).toMatchObject({ status: "short", ok: false, queue: { pendingPCTs: BigInt(CAP) } });
      expect(blind.cycles[0]!.moneyFlow).toMatchObject({ deferredOutMicro: 0n, differenceMicro: OWED, ok: false });
    },
  );

  step("while its queue stays full it holds nobody up: retried alone under its cycle, passed over once others are owed", async () => {
    const retry = await run();
    expect({ cycle: retry.cycle, resumed: retry.resumed, transfers: retry.transfers.length }).toEqual({
      cycle: 1,
      resumed: true,
      transfers: 0,
    });
    expect(retry.deferred.map((d) => d.providerId)).toEqual([beta]);
    // Everyone else's later payouts are not held up: a new cycle, with beta deferred again.
    await commit();
    const next = await run();
    expect({ cycle: next.cycle, resumed: next.resumed }).toEqual({ cycle: 2, resumed: false });
    expect(next.transfers.map((t) => t.providerId).sort()).toEqual([providerIdOf("alpha"), providerIdOf("gamma")].sort());
    expect(next.deferred.map((d) => d.providerId)).toEqual([beta]);
    expect(logs.some((l) => l.includes("cycle 1 owes only 1 provider(s) whose pending queue is full: starting cycle 2"))).toBe(true);
    expect(await balance("alpha")).toBe(2n * OWED);

    // Cycle 2 defers beta again: what cycle 1 carried (1800) and what beta earned since (1800).
    const r = await audit();
    expect(rowsOf(r).filter(([, ns]) => ns === "beta")).toEqual([
      [1, "beta", OWED, 0n, "deferred", 0n, null],
      [2, "beta", 2n * OWED, 0n, "deferred", OWED, null],
    ]);
    expect(r.cycles[1]!.moneyFlow).toMatchObject({ paidMicro: 2n * OWED, deferredInMicro: OWED, deferredOutMicro: 2n * OWED, ok: true });
    expect({ ok: r.ok, deferred: r.deferredMicro }).toEqual({ ok: true, deferred: 2n * OWED });
  });

  step("once it has withdrawn (emptying its queue), the next run pays it what it is owed, once", async () => {
    const betaClient = w.payoutAccounts.get("beta")!.client;
    await betaClient.withdraw({ amount: BigInt(CAP), tokenId: w.tokenId });
    expect((await betaClient.balanceView(w.tokenId)).amountPCTs).toHaveLength(0);
    const result = await run();
    expect({ cycle: result.cycle, resumed: result.resumed, deferred: result.deferred.length }).toEqual({
      cycle: 2,
      resumed: true,
      deferred: 0,
    });
    expect(result.transfers.map((t) => [t.providerId, t.amount])).toEqual([[beta, 2n * OWED]]);
    expect(await balance("beta")).toBe(2n * OWED);
    const indexer = new IndexerClient(w.indexer!.url);
    await indexer.waitForBlock(await w.chain.publicClient.getBlockNumber({ cacheTime: 0 }));
    const facts = await readSettlementFacts(indexer, [w.operator.address]);
    expect(facts.payouts.filter((p) => p.providerId === beta)).toHaveLength(1);
    expect(await w.agent().runCycle()).toMatchObject({ status: "nothing_owed" });
  });

  step("the auditor sees cycle 2 settle what cycle 1 deferred; every cycle balances and nothing stays deferred", async () => {
    const r = await audit();
    expect(rowsOf(r)).toEqual([
      [1, "alpha", OWED, OWED, "ok", 0n, null],
      [1, "beta", OWED, 0n, "deferred", 0n, 2],
      [1, "gamma", OWED, OWED, "ok", 0n, null],
      [2, "alpha", OWED, OWED, "ok", 0n, null],
      [2, "beta", 2n * OWED, 2n * OWED, "ok", OWED, null],
      [2, "gamma", OWED, OWED, "ok", 0n, null],
    ]);
    // Cycle 2: 6000 billed + 1800 carried in = 7200 paid + 600 fee.
    expect(r.cycles[1]!.moneyFlow).toMatchObject({
      paidMicro: 4n * OWED,
      deferredInMicro: OWED,
      deferredOutMicro: 0n,
      differenceMicro: 0n,
    });
    expect(r.moneyFlow).toMatchObject({ usageMicro: 12_000n, paidMicro: 6n * OWED, deferredOutMicro: 0n, differenceMicro: 0n });
    expect({ ok: r.ok, deferred: r.deferredMicro }).toEqual({ ok: true, deferred: 0n });

    // The CLI prints the same: exit 0 with the cap given, each cycle's status and the deferral paid in cycle 2.
    const [given, blind] = await Promise.all([cli(["--pending-cap", String(CAP)]), cli([])]);
    expect(given.code, given.stderr).toBe(0);
    expect(given.stdout).toContain("every cycle paid what it owed, or deferred a provider whose pending queue was full\n");
    const line = (...cells: string[]) => new RegExp(`^\\s*${cells.join("\\s+")}$`, "m");
    // Cycle 1 paid alpha and gamma; cycle 2 all three (beta in the run after its withdrawal).
    expect(given.stdout).toMatch(line("1", ".*", "2", `ok; defers ${formatUsdc(OWED)}`));
    expect(given.stdout).toMatch(line("2", ".*", "3", `ok; settles ${formatUsdc(OWED)} deferred`));
    expect(given.stdout).toMatch(line("1", "beta", formatUsdc(OWED), w.payoutAccounts.get("beta")!.account.address, "3 of 3", "\\d+", "2"));
    // Without it, beta's cycle 1 is short (exit 1), and the output says what to check.
    expect(blind.code).toBe(1);
    expect(blind.stdout).toMatch(new RegExp(`SHORT by ${formatUsdc(OWED)} \\(3 pending PCT\\(s\\) at block \\d+; no pending cap known\\)`));
    expect(blind.stdout).toContain("give --pending-cap N");
  });
});
