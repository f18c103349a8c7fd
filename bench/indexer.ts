import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { stripVTControlCharacters } from "node:util";
import pg from "pg";
import { type Address, encodeFunctionData, type Hex, maxUint256, parseEventLogs, toHex } from "viem";
import { generatePrivateKey, type PrivateKeyAccount, privateKeyToAccount } from "viem/accounts";
import { EncryptedERCAbi } from "../abis/EncryptedERCAbi.js";
import { RegistrarAbi } from "../abis/RegistrarAbi.js";
import { TestUSDCAbi } from "../abis/TestUSDCAbi.js";
import { type Anvil, freePort, startAnvil } from "../src/chain/anvil.js";
import { type ChainClients, connectChain } from "../src/chain/clients.js";
import { ANVIL_KEYS } from "../src/chain/local.js";
import { deploy } from "../src/deployment/deploy.js";
import type { DeploymentManifest } from "../src/deployment/manifest.js";
import { proofToCalldata } from "../src/eerc/calldata.js";
import { EercClient, type PreparedTransfer } from "../src/eerc/client.js";
import { withdrawInputs } from "../src/eerc/inputs.js";
import { encryptPCT } from "../src/eerc/pct.js";
import { Prover } from "../src/eerc/prover.js";
import { type RunningIndexer, startIndexer } from "../src/indexer/process.js";
import { IndexerClient } from "../src/indexer-client/client.js";
import { percentile, round, writeResults } from "./report.js";
import { rpc, rpcBatch } from "./rpc.js";

export type IndexerBenchOptions = {
  /** Private transfers whose visibility latency is measured (one per block). */
  transfers: number;
  /** eERC and Registrar events on the chain the backfill indexes (at least). */
  backfillEvents: number;
  log: (line: string) => void;
};

const BLOCK_TIME_S = 1;
const POLL_MS = 20;
const TOKEN_ID = 1n;
/** Accounts on the backfill chain; each registers with a real proof (~0.2 s). */
const BACKFILL_ACCOUNTS = 32;
/** Of those, how many spend once with a real proof in the middle of the deposits. */
const BACKFILL_TRANSFERS = 12;
const BACKFILL_WITHDRAWALS = 6;
/** Empty blocks mined after the last event, twice Ponder's 30-block finality window on anvil. */
const TRAILING_EMPTY_BLOCKS = 60;
/** Deposits before the spends are proven, per account. */
const DEPOSITS_BEFORE_PROVING = 4;
/** Deposit amounts cycle through 1..N micro-USDC, so each account encrypts N PCTs and reuses them. */
const DEPOSIT_AMOUNTS = 16;
const GAS_PRICE = 2_000_000_000n;
/** The events with indexing functions (src/EncryptedERC.ts, src/Registrar.ts). */
const INDEXED_EVENTS = new Set([
  "Register",
  "AuditorChanged",
  "Deposit",
  "Withdraw",
  "PrivateTransfer",
  "PrivateMint",
  "PrivateBurn",
  "PrivateMessage",
]);
/** The 1-minute load average a backfill run waits for (2 cores: half of one busy on average). */
const QUIET_LOAD = 0.5;
const ADMIN_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/postgres";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const now = () => performance.now();
const accountAt = (i: number) => privateKeyToAccount(ANVIL_KEYS[i]!);

/** Runs `fn` every `intervalMs` (measured from the start of each run) until stopped. */
function poller(intervalMs: number, fn: () => Promise<void>): { stop(): Promise<void> } {
  let running = true;
  const done = (async () => {
    while (running) {
      const next = now() + intervalMs;
      try {
        await fn();
      } catch {
        // a missed sample; the next one retries
      }
      await sleep(Math.max(0, next - now()));
    }
  })();
  return {
    async stop() {
      running = false;
      await done;
    },
  };
}

async function deployToTemp(rpcUrl: string, prover: Prover): Promise<{ manifest: DeploymentManifest; manifestPath: string; dir: string }> {
  const manifest = await deploy({ rpcUrl, network: "anvil-bench", deployer: accountAt(0), auditor: accountAt(9), prover, write: false });
  const dir = mkdtempSync(join(tmpdir(), "bs-bench-indexer-"));
  const manifestPath = join(dir, "deployment.json");
  writeFileSync(manifestPath, JSON.stringify(manifest, null, 2));
  return { manifest, manifestPath, dir };
}

function connectClient(chain: ChainClients, manifest: DeploymentManifest, prover: Prover, account: PrivateKeyAccount): Promise<EercClient> {
  return EercClient.connect({
    publicClient: chain.publicClient,
    wallet: chain.walletFor(account),
    contracts: { encryptedERC: manifest.contracts.encryptedERC, registrar: manifest.contracts.registrar },
    prover,
  });
}

const transferArgs = (p: PreparedTransfer) => [
  p.to,
  p.tokenId,
  { proofPoints: p.proof.proofPoints, publicSignals: p.proof.publicSignals },
  p.balancePCT,
];

// ---------------------------------------------------------------------------------------------
// Visibility: how long after a transfer's block appears does GraphQL serve the transfer?
// ---------------------------------------------------------------------------------------------

export type VisibilityResult = {
  transfers: number;
  blockTimeMs: number;
  p50Ms: number;
  p95Ms: number;
  maxMs: number;
  p50Blocks: number;
  p95Blocks: number;
  rpcBaselineP50Ms: number;
  rpcBaselineP95Ms: number;
  statusP50Ms: number;
  statusP95Ms: number;
  statusLagBlocksMax: number;
};

async function measureVisibility(transfers: number, prover: Prover, log: (line: string) => void): Promise<VisibilityResult> {
  const anvil = await startAnvil({ blockTime: BLOCK_TIME_S });
  let indexer: RunningIndexer | undefined;
  let dir: string | undefined;
  try {
    const chain = await connectChain(anvil.rpcUrl);
    const t0 = now();
    const deployed = await deployToTemp(anvil.rpcUrl, prover);
    dir = deployed.dir;
    const { manifest } = deployed;
    // Senders only spend and receivers only receive, so each sender's proofs can be chained
    // from the balance its previous transfer leaves.
    const [s1, s2, r1, r2] = await Promise.all([1, 2, 3, 4].map((i) => connectClient(chain, manifest, prover, accountAt(i))));
    const senders = [s1!, s2!];
    const receivers = [r1!, r2!];
    for (const c of [...senders, ...receivers]) await c.register();
    const depositEach = 1_000_000n;
    for (const s of senders) {
      const hash = await chain.walletFor(accountAt(0)).writeContract({
        address: manifest.contracts.token,
        abi: TestUSDCAbi,
        functionName: "mint",
        args: [s.address, depositEach],
      } as never);
      await chain.publicClient.waitForTransactionReceipt({ hash });
    }
    await Promise.all(senders.map((s) => s.deposit({ token: manifest.contracts.token, amount: depositEach })));
    log(`  chain with ${BLOCK_TIME_S} s blocks: deployed, 4 accounts registered, 2 deposits (${round((now() - t0) / 1000)} s)`);

    const port = await freePort();
    const indexerStarting = startIndexer({
      manifestPath: deployed.manifestPath,
      env: { RPC_URL: anvil.rpcUrl },
      port,
      pgliteDir: join(dir, "pglite-live"),
      logFile: join(dir, "ponder-live.log"),
    });
    indexerStarting.catch(() => {});

    // Prove every transfer ahead, chained per sender, so sending is not bound by proving.
    const t1 = now();
    const prepared: { sender: EercClient; transfer: PreparedTransfer }[] = [];
    const next = senders.map(() => undefined as PreparedTransfer["nextBalance"] | undefined);
    for (let i = 0; i < transfers; i++) {
      const k = i % senders.length;
      const sender = senders[k]!;
      const transfer = await sender.prepareTransfer({
        to: receivers[i % receivers.length]!.address,
        amount: BigInt(i + 1),
        tokenId: TOKEN_ID,
        from: next[k],
      });
      next[k] = transfer.nextBalance;
      prepared.push({ sender, transfer });
    }
    log(`  ${transfers} transfers proven ahead (${round((now() - t1) / 1000)} s)`);
    indexer = await indexerStarting;
    await new IndexerClient(indexer.url).waitForBlock(await chain.publicClient.getBlockNumber());

    const url = anvil.rpcUrl;
    const indexerUrl = indexer.url;
    const blockSeen = new Map<number, number>();
    const statusSeen = new Map<number, number>();
    let head = Number(await chain.publicClient.getBlockNumber());
    let statusHead = head;
    let maxStatusLag = 0;
    type Sent = { hash: Hex; block?: number; receiptAt?: number; visibleAt?: number };
    const sent: Sent[] = [];

    const pollers = [
      poller(POLL_MS, async () => {
        const n = Number(BigInt(await rpc<Hex>(url, "eth_blockNumber")));
        const t = now();
        for (let b = head + 1; b <= n; b++) blockSeen.set(b, t);
        head = Math.max(head, n);
      }),
      poller(POLL_MS, async () => {
        const waiting = sent.filter((s) => s.receiptAt === undefined);
        const receipts = (await rpcBatch(
          url,
          waiting.map((s) => ({ method: "eth_getTransactionReceipt", params: [s.hash] })),
        )) as ({ blockNumber: Hex } | null)[];
        const t = now();
        receipts.forEach((r, i) => {
          if (r) Object.assign(waiting[i]!, { receiptAt: t, block: Number(BigInt(r.blockNumber)) });
        });
      }),
      poller(POLL_MS, async () => {
        const waiting = sent.filter((s) => s.visibleAt === undefined);
        if (waiting.length === 0) return;
        const list = waiting.map((s) => JSON.stringify(s.hash)).join(",");
        const data = await new IndexerClient(indexerUrl).query<{ privateTransfers: { items: { txHash: string }[] } }>(
          // As many rows as transfers waiting: a page of private transfers costs 3,262 bytes a row (the API's byte limit).
          `{ privateTransfers(where: { txHash_in: [${list}] }, limit: ${waiting.length}) { items { txHash } } }`,
        );
        const t = now();
        const seen = new Set(data.privateTransfers.items.map((i) => i.txHash.toLowerCase()));
        for (const s of waiting) if (seen.has(s.hash.toLowerCase())) s.visibleAt = t;
      }),
      poller(POLL_MS, async () => {
        const n = Object.values(await new IndexerClient(indexerUrl).indexedBlocks())[0] ?? -1;
        const t = now();
        for (let b = statusHead + 1; b <= n; b++) statusSeen.set(b, t);
        statusHead = Math.max(statusHead, n);
        maxStatusLag = Math.max(maxStatusLag, head - statusHead);
      }),
    ];

    // One transfer right after each new block, so each lands alone in the following block.
    const t2 = now();
    let lastBlock = head;
    for (const { sender, transfer } of prepared) {
      while (head <= lastBlock) await sleep(2);
      lastBlock = head;
      const hash = await sender.wallet.writeContract({
        address: manifest.contracts.encryptedERC,
        abi: EncryptedERCAbi,
        functionName: "transfer",
        args: transferArgs(transfer),
      } as never);
      sent.push({ hash });
    }
    const deadline = now() + 60_000;
    while (sent.some((s) => s.visibleAt === undefined || s.receiptAt === undefined)) {
      if (now() > deadline) throw new Error(`transfers not visible through GraphQL after 60 s:\n${indexer.recentOutput()}`);
      await sleep(POLL_MS);
    }
    for (const p of pollers) await p.stop();
    log(`  ${transfers} transfers sent one per block and seen through GraphQL (${round((now() - t2) / 1000)} s)`);

    const latency: number[] = [];
    const rpcBaseline: number[] = [];
    const statusLatency: number[] = [];
    for (const s of sent) {
      const seen = blockSeen.get(s.block!);
      if (seen === undefined) throw new Error(`block ${s.block} of ${s.hash} was never seen by the block poller`);
      latency.push(s.visibleAt! - seen);
      rpcBaseline.push(s.receiptAt! - seen);
      const status = statusSeen.get(s.block!);
      if (status !== undefined) statusLatency.push(status - seen);
    }
    const blockTimeMs = BLOCK_TIME_S * 1000;
    return {
      transfers,
      blockTimeMs,
      p50Ms: round(percentile(latency, 50)),
      p95Ms: round(percentile(latency, 95)),
      maxMs: round(Math.max(...latency)),
      p50Blocks: round(percentile(latency, 50) / blockTimeMs, 2),
      p95Blocks: round(percentile(latency, 95) / blockTimeMs, 2),
      rpcBaselineP50Ms: round(percentile(rpcBaseline, 50)),
      rpcBaselineP95Ms: round(percentile(rpcBaseline, 95)),
      statusP50Ms: round(percentile(statusLatency, 50)),
      statusP95Ms: round(percentile(statusLatency, 95)),
      statusLagBlocksMax: maxStatusLag,
    };
  } finally {
    await indexer?.stop();
    await anvil.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------
// Backfill: a finished chain with many events, indexed from scratch.
// ---------------------------------------------------------------------------------------------

type BackfillChain = {
  anvil: Anvil;
  chain: ChainClients;
  manifest: DeploymentManifest;
  manifestPath: string;
  dir: string;
  head: bigint;
  events: number;
  eventCounts: Record<string, number>;
  blocks: number;
  blocksWithEvents: number;
};

type SignedTx = { raw: Hex; gas: bigint };

/**
 * Mines `txs` in order, as many per block as their gas limits fit, with automine off: each
 * block's transactions are sent in JSON-RPC batches, then one `evm_mine`. The base fee stays at
 * 1 wei so that full blocks do not price the later transactions out.
 */
async function mineInBlocks(url: string, txs: readonly SignedTx[], blockGasLimit: bigint): Promise<number> {
  let blocks = 0;
  let batch: Hex[] = [];
  let gas = 0n;
  const flush = async () => {
    for (let i = 0; i < batch.length; i += 250) {
      await rpcBatch(
        url,
        batch.slice(i, i + 250).map((tx) => ({ method: "eth_sendRawTransaction", params: [tx] })),
      );
    }
    await rpcBatch(url, [{ method: "anvil_setNextBlockBaseFeePerGas", params: ["0x1"] }, { method: "evm_mine" }]);
    const status = await rpc<{ pending: Hex; queued: Hex }>(url, "txpool_status");
    if (BigInt(status.pending) + BigInt(status.queued) !== 0n)
      throw new Error(`block ${blocks}: ${BigInt(status.pending) + BigInt(status.queued)} transactions left out`);
    blocks++;
    batch = [];
    gas = 0n;
  };
  for (const tx of txs) {
    if (batch.length > 0 && gas + tx.gas > blockGasLimit) await flush();
    batch.push(tx.raw);
    gas += tx.gas;
  }
  if (batch.length > 0) await flush();
  return blocks;
}

async function buildBackfillChain(targetEvents: number, prover: Prover, log: (line: string) => void): Promise<BackfillChain> {
  const anvil = await startAnvil();
  try {
    const url = anvil.rpcUrl;
    const chain = await connectChain(url);
    const chainId = chain.chain.id;
    const t0 = now();
    const { manifest, manifestPath, dir } = await deployToTemp(url, prover);
    const eerc = manifest.contracts.encryptedERC;
    const usdc = manifest.contracts.token;

    const wallets = Array.from({ length: BACKFILL_ACCOUNTS }, () => privateKeyToAccount(generatePrivateKey()));
    await rpcBatch(
      url,
      wallets.map((w) => ({ method: "anvil_setBalance", params: [w.address, toHex(10n ** 21n)] })),
    );
    const clients: EercClient[] = [];
    for (const w of wallets) {
      const c = await connectClient(chain, manifest, prover, w);
      await c.register();
      clients.push(c);
    }
    log(`  backfill chain: deployed, ${clients.length} accounts registered with real proofs (${round((now() - t0) / 1000)} s)`);

    const spends = BACKFILL_TRANSFERS + BACKFILL_WITHDRAWALS;
    // Register events (accounts and the auditor) and AuditorChanged come on top of these.
    const depositTotal = Math.max(0, targetEvents - spends - (BACKFILL_ACCOUNTS + 2));
    const perAccount = Math.max(DEPOSITS_BEFORE_PROVING + 2, Math.ceil(depositTotal / BACKFILL_ACCOUNTS));
    const amountOf = (j: number) => BigInt((j % DEPOSIT_AMOUNTS) + 1);
    const funds = Array.from({ length: perAccount }, (_, j) => amountOf(j)).reduce((a, b) => a + b, 0n);

    // Each account encrypts one PCT per deposit amount and reuses it: the PCT still decrypts to
    // the deposited amount, and the indexer does the same work for it.
    const pcts = clients.map((c) => Array.from({ length: DEPOSIT_AMOUNTS }, (_, j) => encryptPCT(BigInt(j + 1), c.publicKey).pct));
    const nonces = (
      await rpcBatch(
        url,
        wallets.map((w) => ({ method: "eth_getTransactionCount", params: [w.address, "pending"] })),
      )
    ).map((n) => Number(BigInt(n as Hex)));
    const sign = async (i: number, to: Address, data: Hex, gas: bigint): Promise<SignedTx> => ({
      raw: await wallets[i]!.signTransaction({ chainId, type: "legacy", nonce: nonces[i]!++, to, data, gas, gasPrice: GAS_PRICE }),
      gas,
    });
    const blockGasLimit = (await chain.publicClient.getBlock()).gasLimit;
    const depositData = (i: number, j: number) =>
      encodeFunctionData({
        abi: EncryptedERCAbi,
        functionName: "deposit",
        args: [amountOf(j), usdc, pcts[i]![j % DEPOSIT_AMOUNTS] as never],
      });

    await rpc(url, "evm_setAutomine", [false]);
    let blocks = 0;
    // Faucet and approval, then the first deposits: mined before the spends are proven.
    const setup: SignedTx[] = [];
    for (let i = 0; i < wallets.length; i++) {
      setup.push(
        await sign(i, usdc, encodeFunctionData({ abi: TestUSDCAbi, functionName: "mint", args: [wallets[i]!.address, funds] }), 100_000n),
      );
      setup.push(
        await sign(i, usdc, encodeFunctionData({ abi: TestUSDCAbi, functionName: "approve", args: [eerc, maxUint256] }), 100_000n),
      );
    }
    blocks += await mineInBlocks(url, setup, blockGasLimit);
    // The costliest deposit: the largest amount (the contract multiplies Base8 by it) into an empty balance.
    const depositGas =
      ((await chain.publicClient.estimateGas({ account: wallets[0]!, to: eerc, data: depositData(0, DEPOSIT_AMOUNTS - 1) })) * 5n) / 4n;
    const first: SignedTx[] = [];
    for (let j = 0; j < DEPOSITS_BEFORE_PROVING; j++)
      for (let i = 0; i < wallets.length; i++) first.push(await sign(i, eerc, depositData(i, j), depositGas));
    blocks += await mineInBlocks(url, first, blockGasLimit);

    // Spends proven against the balances so far; later deposits land between the snapshot and
    // the spend, so the indexer has to find the snapshot among the credits since.
    const t1 = now();
    const spendTxs = new Map<number, { data: Hex }>();
    for (let i = 0; i < spends; i++) {
      const c = clients[i]!;
      if (i < BACKFILL_TRANSFERS) {
        const p = await c.prepareTransfer({ to: clients[(i + 1) % clients.length]!.address, amount: 1n, tokenId: TOKEN_ID });
        spendTxs.set(i, { data: encodeFunctionData({ abi: EncryptedERCAbi, functionName: "transfer", args: transferArgs(p) as never }) });
      } else {
        const view = await c.balanceView(TOKEN_ID);
        const balance = await c.balance(TOKEN_ID);
        const { input } = withdrawInputs({
          sk: c.exportPrivateKey(),
          value: 1n,
          balance,
          balanceCT: view.eGCT,
          auditorPk: await c.auditorPublicKey(),
        });
        const proof = proofToCalldata("withdraw", await prover.prove("withdraw", input));
        spendTxs.set(i, {
          data: encodeFunctionData({
            abi: EncryptedERCAbi,
            functionName: "withdraw",
            args: [
              TOKEN_ID,
              { proofPoints: proof.proofPoints, publicSignals: proof.publicSignals },
              encryptPCT(balance - 1n, c.publicKey).pct,
            ] as never,
          }),
        });
      }
    }
    log(`  ${BACKFILL_TRANSFERS} transfers and ${BACKFILL_WITHDRAWALS} withdrawals proven (${round((now() - t1) / 1000)} s)`);

    // The rest of the deposits, round-robin over the accounts, each spend halfway through them.
    const t2 = now();
    const rest: SignedTx[] = [];
    const middle = Math.floor((DEPOSITS_BEFORE_PROVING + perAccount) / 2);
    for (let j = DEPOSITS_BEFORE_PROVING; j < perAccount; j++) {
      for (let i = 0; i < wallets.length; i++) {
        if (j === middle && spendTxs.has(i)) rest.push(await sign(i, eerc, spendTxs.get(i)!.data, 2_000_000n));
        rest.push(await sign(i, eerc, depositData(i, j), depositGas));
      }
    }
    blocks += await mineInBlocks(url, rest, blockGasLimit);
    // The chain goes on without eERC activity, so the events lie beyond Ponder's finality window
    // (the last 30 blocks on anvil, indexed block by block as live blocks), as history does.
    await rpc(url, "anvil_mine", [toHex(TRAILING_EMPTY_BLOCKS)]);
    await rpc(url, "evm_setAutomine", [true]);
    const head = await chain.publicClient.getBlockNumber();

    const logs = await chain.publicClient.getLogs({
      address: [eerc, manifest.contracts.registrar],
      fromBlock: BigInt(manifest.startBlock),
      toBlock: head,
    });
    const parsed = parseEventLogs({ abi: [...EncryptedERCAbi, ...RegistrarAbi], logs }).filter((l) => INDEXED_EVENTS.has(l.eventName));
    const eventCounts: Record<string, number> = {};
    for (const l of parsed) eventCounts[l.eventName] = (eventCounts[l.eventName] ?? 0) + 1;
    const expectedDeposits = perAccount * BACKFILL_ACCOUNTS;
    if (
      eventCounts.Deposit !== expectedDeposits ||
      (eventCounts.PrivateTransfer ?? 0) !== BACKFILL_TRANSFERS ||
      (eventCounts.Withdraw ?? 0) !== BACKFILL_WITHDRAWALS
    ) {
      throw new Error(`backfill chain is missing transactions: ${JSON.stringify(eventCounts)}`);
    }
    log(
      `  ${rest.length + first.length + setup.length} transactions in ${blocks} blocks (${round((now() - t2) / 1000)} s); ` +
        `chain built in ${round((now() - t0) / 1000)} s: ${JSON.stringify(eventCounts)}`,
    );
    return {
      anvil,
      chain,
      manifest,
      manifestPath,
      dir,
      head,
      events: parsed.length,
      eventCounts,
      blocks: Number(head) - manifest.startBlock + 1,
      blocksWithEvents: new Set(parsed.map((l) => l.blockNumber)).size,
    };
  } catch (err) {
    await anvil.stop();
    throw err;
  }
}

/** The rows the indexer wrote for each event table, via GraphQL. */
async function indexedEventCount(url: string): Promise<number> {
  const tables = [
    "accounts",
    "auditorChanges",
    "deposits",
    "withdrawals",
    "privateTransfers",
    "privateMints",
    "privateBurns",
    "privateMessages",
  ];
  const data = await new IndexerClient(url).query<Record<string, { totalCount: number }>>(
    `{ ${tables.map((t) => `${t}(limit: 1) { totalCount }`).join(" ")} }`,
  );
  return Object.values(data).reduce((a, t) => a + t.totalCount, 0);
}

/** Sums of a Prometheus metric from `/metrics`, grouped by one label. */
function metricSums(text: string, name: string, label: string): Record<string, number> {
  const out: Record<string, number> = {};
  const re = new RegExp(`^${name}\\{([^}]*)\\} ([0-9.eE+-]+)$`, "gm");
  for (const m of text.matchAll(re)) {
    const key = new RegExp(`(?:^|,)${label}="([^"]*)"`).exec(m[1]!)?.[1] ?? "";
    out[key] = (out[key] ?? 0) + Number(m[2]);
  }
  return out;
}

/** Milliseconds since midnight, local time, as Ponder stamps its log lines. */
const msOfDay = (d: Date) => ((d.getHours() * 60 + d.getMinutes()) * 60 + d.getSeconds()) * 1000 + d.getMilliseconds();

/** When Ponder logged each milestone, in seconds after `startedAt`. */
function ponderMilestones(logFile: string, startedAt: Date): Record<string, number | undefined> {
  const lines = stripVTControlCharacters(readFileSync(logFile, "utf8")).split("\n");
  const at = (pattern: RegExp) => {
    const line = lines.find((l) => pattern.test(l));
    const m = line && /^(\d\d):(\d\d):(\d\d)\.(\d\d\d) /.exec(line);
    if (!m) return undefined;
    const ms = ((Number(m[1]) * 60 + Number(m[2])) * 60 + Number(m[3])) * 1000 + Number(m[4]);
    return round((ms - msOfDay(startedAt)) / 1000, 2);
  };
  return {
    serverUp: at(/Started returning 200 responses endpoint=\/health/),
    backfillStarted: at(/Started backfill indexing/),
    rpcFetchFinished: at(/Finished fetching backfill JSON-RPC data/),
    backfillCompleted: at(/Completed backfill indexing across all chains/),
    ready: at(/Started returning 200 responses endpoint=\/ready/),
  };
}

type BackfillRun = {
  seconds: number;
  eventsPerSecond: number;
  indexedEvents: number;
  /** Seconds after the process was spawned. */
  milestones: Record<string, number | undefined>;
  /** Ponder's own counters at the end: RPC requests by method, indexing-function and database time. */
  rpcRequests: Record<string, number>;
  indexingFunctionSeconds: Record<string, number>;
};

/** The events of the eERC and the Registrar a run indexed, by Ponder's own count (`/metrics`). */
function completedEvents(metrics: string): number {
  const byEvent = metricSums(metrics, "ponder_indexing_completed_events", "event");
  return Object.entries(byEvent)
    .filter(([name]) => /^(EncryptedERC|Registrar):/.test(name) && INDEXED_EVENTS.has(name.split(":")[1]!))
    .reduce((a, [, n]) => a + n, 0);
}

/** A Ponder app with the indexer's configuration and handlers that do nothing: Ponder's own cost. */
const PONDER_FLOOR_ROOT = join(import.meta.dirname, "ponder-floor");

async function timeBackfill(
  bc: BackfillChain,
  database: { pgliteDir: string } | { databaseUrl: string },
  logFile: string,
  options: { schema?: string; root?: string } = {},
): Promise<BackfillRun> {
  const startedAt = new Date();
  const t0 = now();
  let indexer: RunningIndexer | undefined;
  try {
    indexer = await startIndexer({
      manifestPath: bc.manifestPath,
      env: { RPC_URL: bc.anvil.rpcUrl },
      logFile,
      schema: options.schema,
      root: options.root,
      readyTimeoutMs: 600_000,
      ...database,
    });
    await new IndexerClient(indexer.url).waitForBlock(bc.head, 600_000);
    const seconds = (now() - t0) / 1000;
    const metrics = await (await fetch(`${indexer.url}/metrics`)).text();
    // The floor stores nothing: Ponder's count says what it dispatched.
    const indexedEvents = options.root ? completedEvents(metrics) : await indexedEventCount(indexer.url);
    if (indexedEvents !== bc.events) throw new Error(`indexed ${indexedEvents} events, the chain has ${bc.events}`);
    const fnMs = metricSums(metrics, "ponder_indexing_function_duration_sum", "event");
    return {
      seconds: round(seconds, 2),
      eventsPerSecond: Math.round(bc.events / seconds),
      indexedEvents,
      milestones: { ...ponderMilestones(logFile, startedAt), head: round(seconds, 2) },
      rpcRequests: metricSums(metrics, "ponder_rpc_request_duration_count", "method"),
      indexingFunctionSeconds: Object.fromEntries(Object.entries(fnMs).map(([k, v]) => [k, round(v / 1000, 2)])),
    };
  } finally {
    await indexer?.stop();
  }
}

/** The same logs fetched straight from the RPC in 2,000-block chunks, and with their blocks. */
async function rpcBaseline(bc: BackfillChain): Promise<{ getLogsEventsPerSecond: number; getLogsWithBlocksEventsPerSecond: number }> {
  const address = [bc.manifest.contracts.encryptedERC, bc.manifest.contracts.registrar];
  const events = [...EncryptedERCAbi, ...RegistrarAbi].filter((item) => item.type === "event" && INDEXED_EVENTS.has(item.name));
  const t0 = now();
  const logs: { blockNumber: bigint | null }[] = [];
  for (let from = BigInt(bc.manifest.startBlock); from <= bc.head; from += 2000n) {
    const to = from + 1999n < bc.head ? from + 1999n : bc.head;
    logs.push(...(await bc.chain.publicClient.getLogs({ address, events: events as never, fromBlock: from, toBlock: to })));
  }
  const logsSeconds = (now() - t0) / 1000;
  if (logs.length !== bc.events) throw new Error(`getLogs returned ${logs.length} logs, expected ${bc.events}`);
  const numbers = [...new Set(logs.map((l) => l.blockNumber!))];
  for (let i = 0; i < numbers.length; i += 10) {
    await Promise.all(numbers.slice(i, i + 10).map((n) => rpc(bc.anvil.rpcUrl, "eth_getBlockByNumber", [toHex(n), true])));
  }
  const withBlocksSeconds = (now() - t0) / 1000;
  return {
    getLogsEventsPerSecond: Math.round(bc.events / logsSeconds),
    getLogsWithBlocksEventsPerSecond: Math.round(bc.events / withBlocksSeconds),
  };
}

async function adminQuery(sql: string): Promise<void> {
  const c = new pg.Client({ connectionString: ADMIN_DATABASE_URL });
  await c.connect();
  try {
    await c.query(sql);
  } finally {
    await c.end();
  }
}

function describeRun(name: string, events: number, r: BackfillRun): string {
  const m = r.milestones;
  const span = (a?: number, b?: number) => (a === undefined || b === undefined ? "?" : round(b - a, 2));
  const rpc = Object.entries(r.rpcRequests)
    .filter(([k]) => k === "eth_getBlockByNumber" || k === "eth_getLogs")
    .map(([k, v]) => `${v} ${k}`)
    .join(" + ");
  const fetched =
    m.rpcFetchFinished === undefined ? "RPC data from Ponder's cache" : `RPC data fetched ${span(m.backfillStarted, m.rpcFetchFinished)} s`;
  const fn = Object.values(r.indexingFunctionSeconds).reduce((a, b) => a + b, 0);
  return (
    `  ${name}: ${events} events in ${r.seconds} s = ${r.eventsPerSecond} events/s | start-up ${m.serverUp} s, ` +
    `backfill ${span(m.backfillStarted, m.backfillCompleted)} s (${fetched}), live catch-up ${span(m.ready, m.head)} s | ` +
    `indexing functions ${round(fn, 2)} s | RPC requests ${rpc}`
  );
}

/** Events per second of the backfill phase alone (Ponder's own start and end of backfill). */
const backfillRate = (events: number, r: BackfillRun) =>
  r.milestones.backfillStarted !== undefined && r.milestones.backfillCompleted !== undefined
    ? Math.round(events / (r.milestones.backfillCompleted - r.milestones.backfillStarted))
    : undefined;

/**
 * Waits until the work before (building the chain, the last run) has left the cores, as the
 * 1-minute load average shows it, for at most two minutes; returns that load average.
 */
async function settled(): Promise<number> {
  const until = now() + 120_000;
  while (loadavg()[0]! > QUIET_LOAD && now() < until) await sleep(2_000);
  return round(loadavg()[0]!, 2);
}

async function measureBackfill(targetEvents: number, prover: Prover, log: (line: string) => void) {
  const bc = await buildBackfillChain(targetEvents, prover, log);
  const database = `bs_bench_${randomBytes(6).toString("hex")}`;
  try {
    const baseline = await rpcBaseline(bc);
    log(
      `  RPC baseline: getLogs ${baseline.getLogsEventsPerSecond} events/s, getLogs + full blocks ${baseline.getLogsWithBlocksEventsPerSecond} events/s`,
    );
    const runs: Record<string, BackfillRun & { backfillEventsPerSecond?: number; loadAverage1m: number }> = {};
    const run = async (name: string, db: { pgliteDir: string } | { databaseUrl: string }, options?: { schema?: string; root?: string }) => {
      const loadAverage1m = await settled();
      const r = await timeBackfill(bc, db, join(bc.dir, `ponder-${name}.log`), options);
      runs[name] = { ...r, backfillEventsPerSecond: backfillRate(bc.events, r), loadAverage1m };
      log(describeRun(name, bc.events, r));
    };
    const pgliteDir = join(bc.dir, "pglite");
    await run("pglite", { pgliteDir });
    await adminQuery(`CREATE DATABASE ${database}`);
    const databaseUrl = `postgresql://postgres@127.0.0.1:5432/${database}`;
    await run("postgres", { databaseUrl });
    // The floor: Ponder alone on fresh databases (no RPC cache), fetching and dispatching the
    // same events to handlers that do nothing. The difference to the runs above is ours.
    await run("floorPglite", { pgliteDir: join(bc.dir, "pglite-floor") }, { root: PONDER_FLOOR_ROOT });
    await adminQuery(`CREATE DATABASE ${database}_floor`);
    await run("floorPostgres", { databaseUrl: `${databaseUrl}_floor` }, { root: PONDER_FLOOR_ROOT });
    // A second build on the same database finds every RPC response in Ponder's cache
    // (ponder_sync): what is left is start-up and indexing.
    await run("pgliteRpcCached", { pgliteDir }, { schema: "rerun" });
    await run("postgresRpcCached", { databaseUrl }, { schema: "rerun" });
    return {
      events: bc.events,
      eventCounts: bc.eventCounts,
      blocks: bc.blocks,
      blocksWithEvents: bc.blocksWithEvents,
      trailingEmptyBlocks: TRAILING_EMPTY_BLOCKS,
      pglite: runs.pglite!,
      postgres: runs.postgres!,
      ...baseline,
      rpcCached: { pglite: runs.pgliteRpcCached!, postgres: runs.postgresRpcCached! },
      ponderFloor: { pglite: runs.floorPglite!, postgres: runs.floorPostgres! },
    };
  } finally {
    await adminQuery(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`).catch(() => {});
    await adminQuery(`DROP DATABASE IF EXISTS ${database}_floor WITH (FORCE)`).catch(() => {});
    await bc.anvil.stop();
    rmSync(bc.dir, { recursive: true, force: true });
  }
}

/**
 * Indexer benchmark, written to `bench/results/indexer.json`.
 * - Visibility: on a chain with 1 s blocks, private transfers (real proofs, proven ahead) are sent
 *   one per block while the indexer (PGlite) runs live. Pollers at 20 ms record when each block
 *   number is first answered by the RPC, when the receipt answers (the RPC baseline), when `/status`
 *   reaches the block and when GraphQL first returns the transfer by its hash.
 * - Backfill: a chain of at least `backfillEvents` events (mostly deposits, which need no proof,
 *   plus transfers and withdrawals with real proofs, so calldata decoding and balance replay run),
 *   then a fresh indexer from spawn to `/status` at the head, on PGlite and on a fresh Postgres
 *   database; then once more on each database with Ponder's RPC cache warm. The same-run baseline
 *   is the raw `getLogs` rate (2,000-block chunks), alone and with the full blocks Ponder fetches.
 */
export async function benchIndexer({ transfers, backfillEvents, log }: IndexerBenchOptions) {
  const prover = new Prover();
  try {
    log(`visibility: ${transfers} private transfers on a chain with ${BLOCK_TIME_S} s blocks, indexer on PGlite`);
    // Other processes on the machine skew every figure here: the load is recorded with them.
    const visibilityLoad = round(loadavg()[0]!, 2);
    const visibility = { ...(await measureVisibility(transfers, prover, log)), loadAverage1mAtStart: visibilityLoad };
    log(
      `  block seen → transfer in GraphQL: p50 ${visibility.p50Ms} ms (${visibility.p50Blocks} blocks), p95 ${visibility.p95Ms} ms ` +
        `(${visibility.p95Blocks} blocks), max ${visibility.maxMs} ms; eth_getTransactionReceipt p50 ${visibility.rpcBaselineP50Ms} ms; ` +
        `/status p50 ${visibility.statusP50Ms} ms, p95 ${visibility.statusP95Ms} ms`,
    );
    log(`backfill: at least ${backfillEvents} events, indexed from scratch on PGlite and on Postgres`);
    const backfillLoad = round(loadavg()[0]!, 2);
    const backfill = { ...(await measureBackfill(backfillEvents, prover, log)), loadAverage1mAtStart: backfillLoad };
    const targets = { visibilityP95Blocks: 2, backfillEventsPerSecond: 1000 };
    const path = writeResults("indexer.json", { visibility, backfill, targets });
    const verdict = (ok: boolean) => (ok ? "met" : "MISSED");
    log(
      `target visibility p95 ≤ ${targets.visibilityP95Blocks} blocks: ${verdict(visibility.p95Blocks <= targets.visibilityP95Blocks)} (${visibility.p95Blocks})`,
    );
    log(
      `target backfill ≥ ${targets.backfillEventsPerSecond} events/s: PGlite ${verdict(backfill.pglite.eventsPerSecond >= targets.backfillEventsPerSecond)} ` +
        `(${backfill.pglite.eventsPerSecond}), Postgres ${verdict(backfill.postgres.eventsPerSecond >= targets.backfillEventsPerSecond)} (${backfill.postgres.eventsPerSecond})`,
    );
    const floor = backfill.ponderFloor;
    for (const [name, ours, alone] of [
      ["PGlite", backfill.pglite, floor.pglite],
      ["Postgres", backfill.postgres, floor.postgres],
    ] as const) {
      log(
        `  ${name}, Ponder alone (no-op handlers): ${alone.eventsPerSecond} events/s from start, backfill ${alone.backfillEventsPerSecond} events/s; ` +
          `the indexer adds ${round(ours.seconds - alone.seconds, 2)} s, of which start-up ${round((ours.milestones.serverUp ?? 0) - (alone.milestones.serverUp ?? 0), 2)} s`,
      );
    }
    log(`wrote ${path}`);
    return { visibility, backfill };
  } finally {
    await prover.close();
  }
}
