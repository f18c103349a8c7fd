import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { loadavg } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import pg from "pg";
import { type Address, encodeFunctionData, type Hex, keccak256, numberToHex, toHex } from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { ProviderRegistryAbi } from "../abis/ProviderRegistryAbi.js";
import { UsageLedgerAbi } from "../abis/UsageLedgerAbi.js";
import { loadArtifact } from "../src/build/contracts.js";
import type { ChainClients } from "../src/chain/clients.js";
import { usdcTokenId } from "../src/deployment/manifest.js";
import type { CircuitName } from "../src/eerc/artifacts.js";
import { EercClient } from "../src/eerc/client.js";
import type { CircuitInputs } from "../src/eerc/inputs.js";
import type { ProofResult, Prover } from "../src/eerc/prover.js";
import { type RunningIndexer, startIndexer } from "../src/indexer/process.js";
import { IndexerClient } from "../src/indexer-client/client.js";
import { fundPayer, payPoolFee } from "../src/local/marketplace.js";
import { type LocalWorld, localWorld } from "../src/local/world.js";
import { NO_CAP } from "../src/payout/admission.js";
import { fileCheckpointStore } from "../src/payout/checkpoint.js";
import { indexedHead } from "../src/payout/facts.js";
import { type CheckpointEvent, IndexedLedger } from "../src/payout/indexed-ledger.js";
import { encodeTag, payoutPCTOptions } from "../src/payout/tag.js";
import type { ProviderId } from "../src/revenue/types.js";
import { batchIdOf } from "../src/usage/batch.js";
import { encryptLines, type UsageLine } from "../src/usage/lines.js";
import { freePool, freeQuotaThenPerCall, perCall } from "../src/usage/pricing.js";
import { providerIdOf } from "../src/usage/registry.js";
import { prng } from "./prng.js";
import { percentile, round, writeResults } from "./report.js";
import { type RpcCall, rpc, rpcBatch } from "./rpc.js";

export type ScaleBenchOptions = {
  /** Committed batches of the full history; `fractions` of it are measured too. */
  batches: number;
  providers: number;
  /** Paid cycles in the history. */
  cycles: number;
  /** Batches committed after the last paid cycle: what planning the next one settles (the same at every size). */
  tailBatches: number;
  linesPerBatch: number;
  /** Sizes measured, as fractions of `batches` (1 is the full history). */
  fractions: number[];
  /** Postgres admin URL: the history is also indexed into a fresh database there. */
  postgresAdminUrl?: string;
  /** Requests of `GET /accounts/:address/earnings` per database. */
  requests: number;
  log: (line: string) => void;
};

/** Distinct encrypted line sets; batches reuse them (decrypting one costs the same however often it was committed). */
const LINE_SETS = 1000;
/** Commits per mined block while the history is generated. */
const COMMITS_PER_BLOCK = 100;
const TRANSFERS_PER_BLOCK = 100;
const SERVERS = 8;
const HALF_YEAR_MS = 182 * 86_400_000;
const START_MS = Date.UTC(2026, 0, 1);

// ---------------------------------------------------------------------------------------------
// Proofs stand-in: the registration and transfer verifiers are swapped for FixedResultVerifier
// while the history is generated, so the public signals are computed from the circuit inputs.
// ---------------------------------------------------------------------------------------------

const PUBLIC_INPUTS: Partial<Record<CircuitName, string[]>> = {
  registration: ["SenderPublicKey", "SenderAddress", "ChainID", "RegistrationHash"],
  transfer: [
    "SenderPublicKey",
    "SenderBalanceC1",
    "SenderBalanceC2",
    "SenderVTTC1",
    "SenderVTTC2",
    "ReceiverPublicKey",
    "ReceiverVTTC1",
    "ReceiverVTTC2",
    "ReceiverPCT",
    "ReceiverPCTAuthKey",
    "ReceiverPCTNonce",
    "AuditorPublicKey",
    "AuditorPCT",
    "AuditorPCTAuthKey",
    "AuditorPCTNonce",
  ],
};

/** The circuit's public signals in its declared order, with an empty proof (accepted only by FixedResultVerifier). */
const signalsOnly = {
  async prove(name: CircuitName, input: CircuitInputs): Promise<ProofResult> {
    const names = PUBLIC_INPUTS[name];
    if (!names) throw new Error(`the scale benchmark makes no ${name} signals`);
    return {
      proof: {
        pi_a: ["0", "0", "1"],
        pi_b: [
          ["0", "0"],
          ["0", "0"],
          ["1", "0"],
        ],
        pi_c: ["0", "0", "1"],
        protocol: "groth16",
        curve: "bn128",
      },
      publicSignals: names.flatMap((n) => [input[n]!].flat()),
    } as ProofResult;
  },
  async close() {},
} as unknown as Prover;

/** Mines the pending transactions into one block and checks that every one of them succeeded. */
async function mineChecked(url: string, expected: number): Promise<bigint> {
  await rpc(url, "evm_mine");
  const block = await rpc<string>(url, "eth_blockNumber");
  const receipts = await rpc<{ status: string; transactionHash: Hex }[]>(url, "eth_getBlockReceipts", [block]);
  if (receipts.length !== expected) throw new Error(`block ${BigInt(block)} holds ${receipts.length} transactions, not ${expected}`);
  const failed = receipts.find((r) => r.status !== "0x1");
  if (failed) throw new Error(`transaction ${failed.transactionHash} reverted`);
  return BigInt(block);
}

const rssOf = (pid: number): number => {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) / 1024 : Number.NaN;
};
const duMB = (dir: string): number => Number(execFileSync("du", ["-sk", dir], { encoding: "utf8" }).split("\t")[0]) / 1024;

async function waitIndexed(status: IndexerClient, chain: ChainClients, timeoutMs = 3_600_000): Promise<number> {
  const target = await chain.publicClient.getBlockNumber();
  const started = performance.now();
  for (;;) {
    try {
      if ((await indexedHead(status)).number >= target) return performance.now() - started;
    } catch {
      // not ready yet
    }
    if (performance.now() - started > timeoutMs) throw new Error(`the indexer did not reach block ${target}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

// ---------------------------------------------------------------------------------------------
// The history
// ---------------------------------------------------------------------------------------------

type History = {
  w: LocalWorld;
  operator: EercClient;
  payer: Address;
  operatorSk: bigint;
  servers: Address[];
  sequences: Map<Address, number>;
  lineSets: Hex[];
  payoutAccounts: Map<ProviderId, Address>;
  committed: number;
  transfers: number;
  /** Planning each cycle while the history grew: the live agent's cost, cycle by cycle. */
  planningPerCycleMs: number[];
  generationMs: number;
  /** The PGlite indexer that followed the history as it was generated. */
  indexer: RunningIndexer;
  pgliteDir: string;
};

/**
 * The indexer's and API's settings. Every API of one history keeps its ledger checkpoint in one
 * file: an API started on another database of the same chain reads on from it, as a restarted one does.
 */
const indexerEnv = (rpcUrl: string, operatorSk: bigint, payer: Address, dir: string) => ({
  RPC_URL: rpcUrl,
  OPERATOR_EERC_KEY: `0x${operatorSk.toString(16).padStart(64, "0")}`,
  PAYER_ADDRESSES: payer,
  API_CHECKPOINT_FILE: join(dir, "api-checkpoint.bin"),
});

async function commitBatches(h: History, count: number, totalPlanned: number): Promise<void> {
  const { rpcUrl, manifest } = h.w;
  for (let done = 0; done < count; ) {
    const n = Math.min(COMMITS_PER_BLOCK, count - done);
    const calls: RpcCall[] = [];
    for (let i = 0; i < n; i++) {
      const k = h.committed + i;
      const server = h.servers[k % h.servers.length]!;
      const sequence = h.sequences.get(server) ?? 0;
      h.sequences.set(server, sequence + 1);
      const at = BigInt(START_MS + Math.floor((HALF_YEAR_MS * k) / totalPlanned));
      const batch = {
        server,
        batchId: batchIdOf(server, sequence),
        periodStart: at,
        periodEnd: at,
        merkleRoot: keccak256(toHex(k)),
        encryptedLines: h.lineSets[k % h.lineSets.length]!,
      };
      calls.push({
        method: "eth_sendTransaction",
        params: [
          {
            from: server,
            // A server sends nothing but its commits: its nonce is its sequence.
            nonce: numberToHex(sequence),
            to: manifest.contracts.usageLedger,
            gas: numberToHex(1_500_000),
            data: encodeFunctionData({ abi: UsageLedgerAbi, functionName: "commit", args: [batch] }),
          },
        ],
      });
    }
    await rpcBatch(rpcUrl, calls);
    await mineChecked(rpcUrl, n);
    h.committed += n;
    done += n;
  }
}

async function generate(o: ScaleBenchOptions, batches: number): Promise<History> {
  const started = performance.now();
  const w = await localWorld({});
  let indexer: RunningIndexer | undefined;
  try {
    const { chain, manifest, rpcUrl } = w;
    await rpc(rpcUrl, "evm_setBlockGasLimit", [numberToHex(2_000_000_000)]);
    // Registration and transfer proofs are not what is measured: their verifiers accept anything
    // while the history is generated (the code of FixedResultVerifier, swapped in with anvil's
    // cheat code), and are restored before anything is measured.
    const fixed = await loadArtifact("FixedResultVerifier");
    const hash = await chain.walletFor(w.owner).deployContract({ abi: fixed.abi, bytecode: fixed.bytecode, args: [true] });
    const fixedAddress = (await chain.publicClient.waitForTransactionReceipt({ hash })).contractAddress!;
    const fixedCode = await rpc<Hex>(rpcUrl, "eth_getCode", [fixedAddress, "latest"]);
    const swapped = [manifest.contracts.verifiers.registration, manifest.contracts.verifiers.transfer];
    const realCode = await Promise.all(swapped.map((a) => rpc<Hex>(rpcUrl, "eth_getCode", [a, "latest"])));
    for (const a of swapped) await rpc(rpcUrl, "anvil_setCode", [a, fixedCode]);

    const below = prng(7);
    o.log(`  ${o.providers} providers, each paying out to its own registered account`);
    const payoutAccounts = new Map<ProviderId, Address>();
    const payoutPks = new Map<string, [bigint, bigint]>();
    const ids: ProviderId[] = [];
    for (let start = 0; start < o.providers; start += 50) {
      await Promise.all(
        Array.from({ length: Math.min(50, o.providers - start) }, async (_, j) => {
          const i = start + j;
          const account = privateKeyToAccount(generatePrivateKey());
          await rpc(rpcUrl, "anvil_setBalance", [account.address, numberToHex(10n ** 20n)]);
          const client = await EercClient.connect({
            publicClient: chain.publicClient,
            wallet: chain.walletFor(account),
            contracts: manifest.contracts,
            prover: signalsOnly,
          });
          await client.register();
          const id = providerIdOf(`scale${i}`) as ProviderId;
          ids[i] = id;
          payoutAccounts.set(id, account.address);
          payoutPks.set(id, client.publicKey);
        }),
      );
    }
    await rpc(rpcUrl, "evm_setAutomine", [false]);
    const owner = w.owner.address;
    let ownerNonce = await chain.publicClient.getTransactionCount({ address: owner, blockTag: "pending" });
    const ownerCalls = (calls: { to: Address; data: Hex }[]) =>
      rpcBatch(
        rpcUrl,
        calls.map((c) => ({
          method: "eth_sendTransaction",
          params: [{ from: owner, nonce: numberToHex(ownerNonce++), to: c.to, data: c.data, gas: numberToHex(500_000_000) }],
        })),
      );
    for (let start = 0; start < o.providers; start += 200) {
      const chunk = ids.slice(start, start + 200);
      await ownerCalls(
        chunk.map((id, j) => {
          const i = start + j;
          const pricing =
            i % 3 === 0
              ? perCall(BigInt(1 + below(500)))
              : i % 3 === 1
                ? freeQuotaThenPerCall(below(2000), BigInt(1 + below(200)))
                : freePool(1 + below(5));
          return {
            to: manifest.contracts.providerRegistry,
            data: encodeFunctionData({
              abi: ProviderRegistryAbi,
              functionName: "registerProvider",
              args: [`scale${i}`, payoutAccounts.get(id)!, pricing],
            }),
          };
        }),
      );
      await mineChecked(rpcUrl, chunk.length);
    }
    const servers = Array.from({ length: SERVERS }, () => privateKeyToAccount(generatePrivateKey()).address);
    for (const s of servers) {
      await rpc(rpcUrl, "anvil_impersonateAccount", [s]);
      await rpc(rpcUrl, "anvil_setBalance", [s, numberToHex(10n ** 22n)]);
    }
    await ownerCalls(
      servers.map((s) => ({
        to: manifest.contracts.usageLedger,
        data: encodeFunctionData({ abi: UsageLedgerAbi, functionName: "setServer", args: [s, true] }),
      })),
    );
    await mineChecked(rpcUrl, servers.length);
    // Every server serves every provider; a tenth of the bindings cap calls per batch, a tenth per period.
    for (const [si, s] of servers.entries()) {
      // UsageLedger binds at most MAX_BINDINGS_PER_CALL (64) providers a call.
      for (let start = 0; start < ids.length; start += 60) {
        const chunk = ids.slice(start, start + 60);
        const capped = (d: number) => chunk.filter((_, j) => (start + j + si) % 10 === d);
        const groups: [ProviderId[], bigint, bigint][] = [
          [chunk.filter((_, j) => (start + j + si) % 10 > 1), NO_CAP, NO_CAP],
          [capped(0), 200n, NO_CAP],
          [capped(1), NO_CAP, 5_000n],
        ];
        const sent = groups.filter(([g]) => g.length > 0);
        await ownerCalls(
          sent.map(([g, perBatch, perPeriod]) => ({
            to: manifest.contracts.usageLedger,
            data: encodeFunctionData({ abi: UsageLedgerAbi, functionName: "setServerProviders", args: [s, g, true, perBatch, perPeriod] }),
          })),
        );
        await mineChecked(rpcUrl, sent.length);
      }
    }
    await rpc(rpcUrl, "evm_setAutomine", [true]);

    const operator = await EercClient.connect({
      publicClient: chain.publicClient,
      wallet: chain.walletFor(w.owner),
      contracts: manifest.contracts,
      prover: signalsOnly,
    });
    const operatorSk = operator.exportPrivateKey();
    await fundPayer(chain, manifest, w.operator, w.owner, 10n ** 15n);

    o.log(`  up to ${LINE_SETS} distinct encrypted line sets of ${o.linesPerBatch} lines`);
    const keys = {
      operatorPk: operator.publicKey,
      auditorPk: (await w.operator.registeredPublicKey(manifest.auditor))!,
      providerPk: (id: Hex) => payoutPks.get(id.toLowerCase())!,
    };
    const lineSets: Hex[] = [];
    for (let s = 0; s < Math.min(LINE_SETS, batches + o.tailBatches * 12); s++) {
      const chosen = new Set<ProviderId>();
      while (chosen.size < o.linesPerBatch) chosen.add(ids[below(ids.length)]!);
      const lines: UsageLine[] = [...chosen].map((providerId) => {
        const billableCalls = BigInt(below(100));
        return {
          providerId,
          calls: billableCalls + BigInt(below(3)),
          billableCalls,
          amountMicro: billableCalls * 10n,
          revenueMicro: billableCalls * 11n,
        };
      });
      lineSets.push(encryptLines(lines, keys));
    }

    // The indexer follows the history as it is generated, as it would live.
    const pgliteDir = join(w.dir, "pglite");
    indexer = await startIndexer({
      manifestPath: w.manifestPath,
      env: indexerEnv(rpcUrl, operatorSk, operator.address, w.dir),
      pgliteDir,
      logFile: join(w.dir, "ponder.log"),
    });
    const status = new IndexerClient(indexer.url);
    const h: History = {
      indexer,
      pgliteDir,
      w,
      operator,
      payer: operator.address,
      operatorSk,
      servers,
      sequences: new Map(),
      lineSets,
      payoutAccounts,
      committed: 0,
      transfers: 0,
      planningPerCycleMs: [],
      generationMs: 0,
    };
    const tokenId = await usdcTokenId(chain, manifest);
    const ledger = new IndexedLedger({ indexer: status, operatorSk: () => operatorSk });
    const perCycle = Math.floor(batches / o.cycles);
    let balance: { eGCT: import("../src/eerc/elgamal.js").EGCT; plain: bigint } | undefined;
    await rpc(rpcUrl, "evm_setAutomine", [false]);
    for (let c = 1; c <= o.cycles; c++) {
      await commitBatches(h, perCycle, batches + o.tailBatches);
      await rpc(rpcUrl, "evm_setAutomine", [true]);
      await payPoolFee(chain, manifest, w.user, BigInt(1 + below(1_000_000)));
      await rpc(rpcUrl, "evm_setAutomine", [false]);
      await waitIndexed(status, chain);
      const t0 = performance.now();
      const read = await ledger.read([h.payer]);
      const state = read.state(read.indexedBlock);
      h.planningPerCycleMs.push(performance.now() - t0);
      // Every cycle before was paid in full, as the agent pays: the history is a real one.
      if (state.unfinished)
        throw new Error(`cycle ${state.unfinished.cycle} is unfinished: the generated payouts do not match the settlement`);
      const plan = state.next;
      if (!plan) continue;
      const due = [...plan.due].filter(([, v]) => v > 0n);
      let nonce = await chain.publicClient.getTransactionCount({ address: h.payer, blockTag: "pending" });
      for (let start = 0; start < due.length; start += TRANSFERS_PER_BLOCK) {
        const chunk = due.slice(start, start + TRANSFERS_PER_BLOCK);
        for (const [providerId, amount] of chunk) {
          const prepared = await operator.prepareTransfer({
            to: payoutAccounts.get(providerId)!,
            amount,
            tokenId,
            from: balance,
            pct: payoutPCTOptions(operatorSk, encodeTag({ cycle: plan.cycle, throughBlock: plan.throughBlock, providerId })),
          });
          await operator.broadcastTransfer(prepared, { nonce: nonce++, gas: 5_000_000n });
          balance = prepared.nextBalance;
        }
        await mineChecked(rpcUrl, chunk.length);
        h.transfers += chunk.length;
      }
      if (c % 10 === 0 || c === o.cycles)
        o.log(`  cycle ${c}: ${h.committed} batches, ${h.transfers} transfers, planned in ${Math.round(h.planningPerCycleMs.at(-1)!)} ms`);
    }
    await rpc(rpcUrl, "evm_setAutomine", [true]);
    for (const [i, a] of swapped.entries()) await rpc(rpcUrl, "anvil_setCode", [a, realCode[i]!]);
    h.generationMs = performance.now() - started;
    return h;
  } catch (e) {
    await indexer?.stop();
    await w.close();
    throw e;
  }
}

// ---------------------------------------------------------------------------------------------
// Measuring one database
// ---------------------------------------------------------------------------------------------

type DatabaseFigures = {
  database: "pglite" | "postgres";
  /** Indexing the whole history from block 0 (Postgres; PGlite indexed it live). */
  backfillMs?: number;
  /** A process's first read: the projection rebuilt from every indexed fact (a restart). */
  rebuildMs: number;
  /** Planning the next cycle after `tailBatches` were indexed since the last read (an agent that does not follow the indexer). */
  planningTailAtOnceMs: number;
  /** Planning the next cycle as a served agent does: it followed the indexer while the next `tailBatches` came in. */
  planningMs: number;
  /** Each follow read while the tail came in (a tenth of it each). */
  followReadP50Ms: number;
  /**
   * From the head being indexed until the API served a pending amount through it: for the API
   * that followed the history, its last read; for a fresh API process, its start from the ledger
   * checkpoint the other API saved.
   */
  pendingReadyMs: number;
  /** A restarted agent's first plan: its ledger read on from the last checkpoint (`restartDecrypted` batches after it). */
  restartMs: number;
  restartDecrypted: number;
  /** The agent's ledger checkpoint: its size, and the longest save (sealing included). */
  checkpointMB: number;
  checkpointSaveMaxMs: number;
  pendingP50Ms: number;
  pendingP95Ms: number;
  indexerRssMB: number;
  databaseMB: number;
};

/** Waits until the API serves a pending amount through the indexed head; returns how long it took. */
async function pendingThroughHead(client: IndexerClient, account: Address, timeoutMs = 3_600_000): Promise<number> {
  const started = performance.now();
  const head = (await indexedHead(client)).number;
  for (;;) {
    const answer = await client.earnings(account).catch(() => null);
    if (answer?.pending && BigInt(answer.pending.throughBlock) >= head) return performance.now() - started;
    if (performance.now() - started > timeoutMs)
      throw new Error(`the API served no pending amount through block ${head}: ${JSON.stringify(answer).slice(0, 300)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function measure(
  o: ScaleBenchOptions,
  h: History,
  indexer: RunningIndexer,
  database: DatabaseFigures["database"],
  size: () => Promise<number>,
): Promise<Omit<DatabaseFigures, "backfillMs">> {
  // A fresh API reads its own ledger as it starts (costly pages): a read that finds it busy waits its turn.
  const client = new IndexerClient(indexer.url, { busyRetryMs: Array.from({ length: 60 }, () => 2_000) });
  const accounts = [...h.payoutAccounts.values()];
  await waitIndexed(client, h.w.chain);
  const pendingReadyMs = await pendingThroughHead(client, accounts[0]!);

  const saves: { bytes: number; ms: number }[] = [];
  const checkpoint = {
    store: fileCheckpointStore(join(h.w.dir, `agent-checkpoint-${database}.bin`)),
    scope: `bench:${database}`,
    onEvent: (e: CheckpointEvent) =>
      e.kind === "saved" ? saves.push(e) : e.kind === "failed" ? o.log(`  checkpoint: ${e.kind}`) : undefined,
  };
  const rebuildStart = performance.now();
  const ledger = new IndexedLedger({ indexer: client, operatorSk: () => h.operatorSk, checkpoint });
  const rebuilt = await ledger.read([h.payer]);
  if (rebuilt.state(rebuilt.indexedBlock).unfinished) throw new Error("the indexed history has an unfinished cycle");
  const rebuildMs = performance.now() - rebuildStart;

  const commitTail = async (count: number) => {
    await rpc(h.w.rpcUrl, "evm_setAutomine", [false]);
    await commitBatches(h, count, h.committed + count);
    await rpc(h.w.rpcUrl, "evm_setAutomine", [true]);
    await waitIndexed(client, h.w.chain);
  };
  const plan = async () => {
    const started = performance.now();
    const read = await ledger.read([h.payer]);
    read.state(read.indexedBlock);
    return performance.now() - started;
  };
  // Without following: the whole tail is read and decrypted when the cycle is planned.
  await commitTail(o.tailBatches);
  const planningTailAtOnceMs = await plan();
  // Following: a read after each tenth of the tail, then the plan.
  const follows: number[] = [];
  for (let i = 0; i < 10; i++) {
    await commitTail(Math.ceil(o.tailBatches / 10));
    const started = performance.now();
    await ledger.read([h.payer]);
    follows.push(performance.now() - started);
  }
  const planningMs = await plan();

  // A restart: another process's ledger reads on from the checkpoint the first one saved last.
  await ledger.flushed();
  const restartStart = performance.now();
  const restarted = await new IndexedLedger({ indexer: client, operatorSk: () => h.operatorSk, checkpoint }).read([h.payer]);
  restarted.state(restarted.indexedBlock);
  const restartMs = performance.now() - restartStart;
  if (restarted.cost.restoredAt === null) throw new Error("the restarted ledger did not read on from its checkpoint");

  await pendingThroughHead(client, accounts[0]!);
  const samples: number[] = [];
  for (let i = 0; i < o.requests; i++) {
    const t = performance.now();
    await client.earnings(accounts[(i * 7919) % accounts.length]!);
    samples.push(performance.now() - t);
  }
  const figures = {
    database,
    rebuildMs: round(rebuildMs),
    planningTailAtOnceMs: round(planningTailAtOnceMs),
    planningMs: round(planningMs),
    followReadP50Ms: round(percentile(follows, 50)),
    pendingReadyMs: round(pendingReadyMs),
    restartMs: round(restartMs),
    restartDecrypted: restarted.cost.decrypted,
    checkpointMB: round(saves.at(-1)!.bytes / 2 ** 20, 2),
    checkpointSaveMaxMs: round(Math.max(...saves.map((x) => x.ms))),
    pendingP50Ms: round(percentile(samples, 50), 2),
    pendingP95Ms: round(percentile(samples, 95), 2),
    indexerRssMB: round(rssOf(indexer.pid)),
    databaseMB: round(await size()),
  };
  o.log(`  ${database}: ${JSON.stringify(figures)}`);
  return figures;
}

/** A database whose measurement failed: the run goes on, and the file says why. */
type DatabaseFailure = { database: DatabaseFigures["database"]; error: string };

/**
 * Generates a history of `fraction` of the full size and measures it on PGlite, then on a fresh
 * Postgres database. `report` is called with the run so far after each step, so that the figures
 * of one database are kept when a later one fails.
 */
async function sized(o: ScaleBenchOptions, fraction: number, report: (run: Record<string, unknown>) => void) {
  const batches = Math.round(o.batches * fraction);
  o.log(`- ${batches} batches (${round(fraction * 100)}%), ${o.providers} providers, ${o.cycles} cycles`);
  const h = await generate(o, batches);
  try {
    const history = { batches: h.committed, transfers: h.transfers, cycles: o.cycles, generationS: round(h.generationMs / 1000) };
    const perCycle = h.planningPerCycleMs;
    const planningWhileGrowing = {
      firstCyclesMs: round(perCycle.slice(0, 5).reduce((a, b) => a + b, 0) / Math.min(5, perCycle.length)),
      lastCyclesMs: round(perCycle.slice(-5).reduce((a, b) => a + b, 0) / Math.min(5, perCycle.length)),
    };
    o.log(`  generated: ${JSON.stringify(history)}; planning per cycle while it grew: ${JSON.stringify(planningWhileGrowing)}`);
    const databases: (DatabaseFigures | DatabaseFailure)[] = [];
    const run = {
      ...history,
      tailBatches: o.tailBatches,
      planningWhileGrowing,
      planningPerCycleMs: perCycle.map((x) => Math.round(x)),
      databases,
    };
    const attempt = async (database: DatabaseFigures["database"], fn: () => Promise<DatabaseFigures>) => {
      try {
        databases.push(await fn());
      } catch (err) {
        const error = err instanceof Error ? err.message : String(err);
        o.log(`  ${database}: FAILED: ${error}`);
        databases.push({ database, error });
      }
      report(run);
    };
    await attempt("pglite", () => measure(o, h, h.indexer, "pglite", async () => duMB(h.pgliteDir)));
    await h.indexer.stop();
    if (o.postgresAdminUrl) await attempt("postgres", () => measurePostgres(o, h, o.postgresAdminUrl!));
    return run;
  } finally {
    await h.indexer.stop();
    await h.w.close();
  }
}

/** Indexes the history from block 0 into a fresh Postgres database, then measures it there. */
async function measurePostgres(o: ScaleBenchOptions, h: History, adminUrl: string): Promise<DatabaseFigures> {
  const name = `bs_scale_${Date.now()}`;
  const admin = async (sql: string) => {
    const c = new pg.Client({ connectionString: adminUrl });
    await c.connect();
    try {
      return await c.query(sql);
    } finally {
      await c.end();
    }
  };
  await admin(`CREATE DATABASE ${name}`);
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  try {
    const indexer = await startIndexer({
      manifestPath: h.w.manifestPath,
      env: indexerEnv(h.w.rpcUrl, h.operatorSk, h.payer, h.w.dir),
      databaseUrl: url.toString(),
      logFile: join(h.w.dir, "ponder-postgres.log"),
      readyTimeoutMs: 3_600_000,
    });
    try {
      const backfillMs = await waitIndexed(new IndexerClient(indexer.url), h.w.chain);
      const size = async () => Number((await admin(`SELECT pg_database_size('${name}') AS n`)).rows[0].n) / 2 ** 20;
      return { backfillMs: round(backfillMs), ...(await measure(o, h, indexer, "postgres", size)) };
    } finally {
      await indexer.stop();
    }
  } finally {
    await admin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).catch(() => {});
  }
}

const TARGETS = { planningMs: 1_000, pendingP95Ms: 50, growthAtFullOverTenth: 1.5 };

export async function benchScale(o: ScaleBenchOptions): Promise<void> {
  const loadBefore = round(loadavg()[0]!);
  const runs: Record<string, unknown> = {};
  // Written after every database measured, so a run stopped or failed part-way keeps what it measured.
  const write = (complete: boolean) =>
    writeResults("scale.json", {
      providers: o.providers,
      cycles: o.cycles,
      linesPerBatch: o.linesPerBatch,
      fractions: o.fractions,
      complete,
      targets: TARGETS,
      loadAverage: { before: loadBefore, now: round(loadavg()[0]!) },
      ...runs,
    });
  for (const f of o.fractions) {
    const key = f === 1 ? "full" : `at${round(f * 100)}pct`;
    runs[key] = await sized(o, f, (run) => {
      runs[key] = run;
      write(false);
    });
  }
  const path = write(true);
  o.log(`  wrote ${path}`);
}
