import { randomBytes, randomUUID } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import pg from "pg";
import { type Address, type Hex, recoverTypedDataAddress } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { UsageLedgerAbi } from "../abis/UsageLedgerAbi.js";
import { parseSubmitRequest } from "../src/api/usage-submit.js";
import { startAnvil } from "../src/chain/anvil.js";
import { type ChainClients, connectChain } from "../src/chain/clients.js";
import { ANVIL_KEYS } from "../src/chain/local.js";
import { deploy } from "../src/deployment/deploy.js";
import { mulBase, randomScalar } from "../src/eerc/curve.js";
import { Prover } from "../src/eerc/prover.js";
import { type RunningIndexer, startIndexer } from "../src/indexer/process.js";
import { IndexerClient } from "../src/indexer-client/client.js";
import { submitRequestBody } from "../src/meter/submit.js";
import { batchTypedData, buildBatch, type LineKeys, recordsTree } from "../src/usage/index.js";
import type { CallRecord } from "../src/usage/record.js";
import { mapLimit } from "../src/util/concurrency.js";
import { percentile, RESULTS_DIR, round, writeResults } from "./report.js";
import { rpcBatch } from "./rpc.js";

export type IngestBenchOptions = {
  /** Batches submitted per measured run (four times as many on 1 s blocks). */
  batches: number;
  recordsPerBatch: number;
  /** Requests in flight at once (default 4). */
  concurrency?: number;
  /**
   * A PostgreSQL admin connection string (e.g. postgresql://postgres@127.0.0.1:5432/postgres):
   * the API is also measured with the indexer on a fresh database there, as in production.
   */
  postgresAdminUrl?: string;
  log: (line: string) => void;
};

/** One API deployment measured. */
export type IngestRun = {
  database: "pglite" | "postgres";
  /**
   * Which process serves `POST /usage/submit`: "ponder start", the one that also indexes, or
   * "ponder serve", a replica on the same Postgres with its own relayer key, which leaves the
   * indexing process to indexing (docs/operations.md, Scaling).
   */
  api: "ponder start" | "ponder serve";
  /**
   * How anvil mines: "automine" puts each commit in a block of its own (the indexer pays its
   * per-block cost once per batch); "1 s blocks" mines every second, as a live chain does
   * (Fuji about every 2 s), so one block carries the commits of that second.
   */
  mining: "automine" | "1 s blocks";
  /** Blocks holding the measured commits. */
  blocks: number;
  /** Records per second accepted by `POST /usage/submit`, bodies carrying their records (the API checks every record and the root). */
  recordsPerSecond: number;
  /** The same, until the last commit transaction is mined (receipts read in one JSON-RPC batch every 10 ms). */
  minedRecordsPerSecond: number;
  /** The same, until the indexer has indexed the last commit. */
  indexedRecordsPerSecond: number;
  /** How long after the last commit was mined the indexer reached its block: the backlog left when submissions stop. */
  indexLagMs: number;
  /** How long the indexer took to serve a lone batch (the last warm-up one) after the API answered: its latency, without a backlog. */
  loneBatchIndexMs: number;
  /**
   * The indexed rate less that one batch's latency: records over (the time the last commit was
   * indexed − `loneBatchIndexMs`). It equals `recordsPerSecond` when the last commit is served as
   * fast as a lone one, i.e. when no backlog built up while the API accepted batches.
   */
  sustainedIndexedRecordsPerSecond: number;
  /** The machine's 1-minute load average when the run started (other processes share the cores). */
  loadAverage1mAtStart: number;
  requestP50Ms: number;
  requestP95Ms: number;
  /** Bodies without records (what the meter's submitter sends by default): the API checks the batch and its signature only. */
  withoutRecords: { recordsPerSecond: number; requestP50Ms: number };
};

export type IngestBenchResult = {
  batches: number;
  recordsPerBatch: number;
  providersPerBatch: number;
  concurrency: number;
  /** Mean request body with the records, and without. */
  bodyBytes: number;
  bodyBytesWithoutRecords: number;
  /** The embedded setup (PGlite in the indexer process): records per second accepted, bodies with records. */
  recordsPerSecond: number;
  /** Same-run baseline: the route's own checks on the same bodies in this process (JSON parse, validation, signature recovery, Merkle root), one core. */
  baselineRecordsPerSecond: number;
  /** The same checks for bodies without records. */
  baselineWithoutRecordsRecordsPerSecond: number;
  /** Same-run baseline: the same bodies POSTed to a handler that reads them and answers at once. */
  noopPostRecordsPerSecond: number;
  /** The route's in-process checks per batch, and one `eth_estimateGas` of `commitSigned`, in ms. */
  profileMsPerBatch: { jsonParse: number; validate: number; signature: number; merkle: number; estimateGas: number };
  runs: IngestRun[];
};

const PROVIDERS_PER_BATCH = 10;
/** Batches submitted before each measured run (route, RPC connections and JIT warm). */
const WARMUP_BATCHES = 2;
/** The `ponder serve` replica's relayer: anvil's account #7, not the indexing process's #8. */
const REPLICA_RELAYER_KEY = ANVIL_KEYS[7];
/** The runs on 1 s blocks send this many times `batches`. */
const INTERVAL_RUN_FACTOR = 4;
const now = () => performance.now();
const unix = () => Math.floor(Date.now() / 1000);

/** A metered call as a FlowMCP server records it: one in ten failed (counted, not billed). */
function records(batch: number, count: number): CallRecord[] {
  const t0 = 1_767_225_600_000 + batch * 60_000;
  return Array.from({ length: count }, (_, i) => {
    const ok = i % 10 !== 9;
    return {
      eventId: randomUUID(),
      provider: `provider${i % PROVIDERS_PER_BATCH}`,
      tool: i % 2 === 0 ? "getQuote" : "searchHeadlines",
      startedAt: t0 + i * 7,
      endedAt: t0 + i * 7 + 5,
      durationMs: 5,
      outcome: ok ? "ok" : "tool_error",
      requestBytes: 60 + (i % 40),
      responseBytes: 400 + (i % 300),
      billable: ok,
      priceMicro: ok ? 1_500n : 0n,
    };
  });
}

type Bodies = { warmup: string[]; withRecords: string[]; withoutRecords: string[] };

/**
 * Ingestion throughput of `POST /usage/submit` against the real API (the indexer process, relaying
 * to anvil). Batches of `recordsPerBatch` call records are built and signed beforehand, then
 * submitted with `concurrency` requests in flight, first with their records (the API checks every
 * record and the Merkle root before relaying), then without. Baselines in the same run: the
 * route's own checks in-process, and a no-op POST of the same bodies.
 */
export async function benchIngest(options: IngestBenchOptions): Promise<IngestBenchResult> {
  const { batches, recordsPerBatch, log } = options;
  const concurrency = options.concurrency ?? 4;
  const dir = mkdtempSync(join(tmpdir(), "bench-ingest-"));
  const anvil = await startAnvil();
  const prover = new Prover();
  try {
    const chain = await connectChain(anvil.rpcUrl);
    const [operator, , , , , , server] = ANVIL_KEYS.map((k) => privateKeyToAccount(k));
    const manifest = await deploy({
      rpcUrl: anvil.rpcUrl,
      network: "anvil-bench",
      deployer: operator!,
      auditor: privateKeyToAccount(ANVIL_KEYS[9]),
      prover,
      write: false,
    });
    const manifestPath = join(dir, "deployment.json");
    writeFileSync(manifestPath, JSON.stringify(manifest, null, 2));
    const ledger = manifest.contracts.usageLedger;
    const hash = await chain
      .walletFor(operator!)
      .writeContract({ address: ledger, abi: UsageLedgerAbi, functionName: "setServer", args: [server!.address, true] } as never);
    await chain.publicClient.waitForTransactionReceipt({ hash });
    const target = { chainId: chain.chain.id, ledger };

    // Lines go to random keys: the API and the ledger check their format, not their recipients.
    const keys: LineKeys = {
      operatorPk: mulBase(randomScalar()),
      auditorPk: mulBase(randomScalar()),
      providerPk: () => mulBase(randomScalar()),
    };
    const deadline = BigInt(unix() + 6 * 3600);
    let sequence = 0;
    const build = async (count: number, withRecords: boolean): Promise<string[]> => {
      const out: string[] = [];
      for (let i = 0; i < count; i++) {
        const rs = records(++sequence, recordsPerBatch);
        const { batch } = buildBatch({
          server: server!.address,
          sequence,
          periodStart: rs[0]!.startedAt,
          periodEnd: rs.at(-1)!.endedAt,
          records: rs,
          keys,
        });
        const signature = await server!.signTypedData(batchTypedData(batch, deadline, target));
        out.push(JSON.stringify(submitRequestBody(batch, deadline, signature, withRecords ? rs : undefined)));
      }
      return out;
    };
    const prepare = async (count = batches): Promise<Bodies> => {
      log(
        `ingest: building and signing ${WARMUP_BATCHES + 2 * count} batches of ${recordsPerBatch} records (${PROVIDERS_PER_BATCH} providers each)`,
      );
      return {
        warmup: await build(WARMUP_BATCHES, true),
        withRecords: await build(count, true),
        withoutRecords: await build(count, false),
      };
    };
    const mean = (xs: string[]) => Math.round(xs.reduce((s, b) => s + b.length, 0) / xs.length);

    const first = await prepare();
    const baseline = await inProcessBaseline(first, server!.address, target);
    const noopSeconds = await noopPost(first.withRecords, concurrency);
    const estimateGasMs = await estimateGas(chain, first.withRecords[0]!, ledger);
    const n = batches * recordsPerBatch;

    const runs: IngestRun[] = [];
    const rpc = (method: string, params: unknown[]) => chain.publicClient.request({ method: method as never, params: params as never });
    const measure = async (
      database: IngestRun["database"],
      mining: IngestRun["mining"],
      bodies: Bodies,
      api: IngestRun["api"] = "ponder start",
    ) => {
      let databaseUrl: string | undefined;
      let dropDatabase = async () => {};
      if (database === "postgres") {
        const name = `bs_bench_${randomBytes(6).toString("hex")}`;
        await adminQuery(options.postgresAdminUrl!, `CREATE DATABASE ${name}`);
        databaseUrl = options.postgresAdminUrl!.replace(/\/[^/]*$/, `/${name}`);
        dropDatabase = () => adminQuery(options.postgresAdminUrl!, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      }
      const indexer = await startIndexer({
        manifestPath,
        env: { RPC_URL: anvil.rpcUrl },
        ...(databaseUrl ? { databaseUrl, schema: "bench" } : { pgliteDir: join(dir, `pglite-${runs.length}`) }),
        logFile: join(dir, "ponder.log"),
      });
      try {
        if (mining === "1 s blocks") {
          await rpc("evm_setAutomine", [false]);
          await rpc("evm_setIntervalMining", [1]);
        }
        const records = bodies.withRecords.length * recordsPerBatch;
        // The replica relays from its own key: two processes never share a nonce lane.
        const replica =
          api === "ponder serve"
            ? await startIndexer({
                command: "serve",
                manifestPath,
                env: { RPC_URL: anvil.rpcUrl, RELAYER_PRIVATE_KEY: REPLICA_RELAYER_KEY },
                databaseUrl,
                schema: "bench",
                logFile: join(dir, "ponder-serve.log"),
              })
            : undefined;
        try {
          runs.push(
            await measureApi({ database, mining, api, indexer, replica, rpcUrl: anvil.rpcUrl, bodies, concurrency, n: records, log }),
          );
        } finally {
          await replica?.stop();
        }
      } finally {
        if (mining === "1 s blocks") {
          await rpc("evm_setIntervalMining", [0]);
          await rpc("evm_setAutomine", [true]);
        }
        await indexer.stop();
        await dropDatabase();
      }
    };
    await measure("pglite", "automine", first);
    if (options.postgresAdminUrl) {
      await measure("postgres", "automine", await prepare());
      await measure("postgres", "automine", await prepare(), "ponder serve");
    }
    // Enough batches for some ten blocks: a rate over two or three blocks is mostly their rounding.
    await measure("pglite", "1 s blocks", await prepare(INTERVAL_RUN_FACTOR * batches));
    if (options.postgresAdminUrl) {
      await measure("postgres", "1 s blocks", await prepare(INTERVAL_RUN_FACTOR * batches));
      await measure("postgres", "1 s blocks", await prepare(INTERVAL_RUN_FACTOR * batches), "ponder serve");
    }

    const result: IngestBenchResult = {
      batches,
      recordsPerBatch,
      providersPerBatch: PROVIDERS_PER_BATCH,
      concurrency,
      bodyBytes: mean(first.withRecords),
      bodyBytesWithoutRecords: mean(first.withoutRecords),
      recordsPerSecond: runs[0]!.recordsPerSecond,
      baselineRecordsPerSecond: Math.round(n / baseline.withRecordsSeconds),
      baselineWithoutRecordsRecordsPerSecond: Math.round(n / baseline.withoutRecordsSeconds),
      noopPostRecordsPerSecond: Math.round(n / noopSeconds),
      profileMsPerBatch: {
        jsonParse: round(baseline.ms.jsonParse / batches, 2),
        validate: round(baseline.ms.validate / batches, 2),
        signature: round(baseline.ms.signature / batches, 2),
        merkle: round(baseline.ms.merkle / batches, 2),
        estimateGas: round(estimateGasMs, 2),
      },
      runs,
    };
    log(
      `ingest: baselines: the route's checks in-process ${result.baselineRecordsPerSecond} records/s with records, ` +
        `${result.baselineWithoutRecordsRecordsPerSecond} without; no-op POST ${result.noopPostRecordsPerSecond}; ` +
        `ms per batch ${JSON.stringify(result.profileMsPerBatch)}`,
    );
    for (const r of runs) {
      const met = r.sustainedIndexedRecordsPerSecond >= r.recordsPerSecond;
      log(
        `target indexed ≥ accepted, sustained (${r.database}, ${r.mining}, API in ${r.api}): ${met ? "met" : "MISSED"} ` +
          `(${r.sustainedIndexedRecordsPerSecond} ≥ ${r.recordsPerSecond} records/s; load ${r.loadAverage1mAtStart})`,
      );
    }
    const file = join(RESULTS_DIR, "usage.json");
    const previous = existsSync(file) ? (JSON.parse(readFileSync(file, "utf8")) as Record<string, unknown>) : {};
    const { machine: _machine, measuredAt: _measuredAt, ...kept } = previous;
    log(`ingest: results in ${writeResults("usage.json", { ...kept, ingest: result })}`);
    return result;
  } finally {
    await prover.close();
    await anvil.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function adminQuery(url: string, sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

/** What the route computes before it touches the chain, on the same bodies, in this process. */
async function inProcessBaseline(bodies: Bodies, server: Address, target: { chainId: number; ledger: Address }) {
  const ms = { jsonParse: 0, validate: 0, signature: 0, merkle: 0 };
  const check = async (text: string, withRecords: boolean) => {
    let t = now();
    const json = JSON.parse(text);
    ms.jsonParse += withRecords ? now() - t : 0;
    t = now();
    const request = parseSubmitRequest(json, unix());
    ms.validate += withRecords ? now() - t : 0;
    t = now();
    const signer = await recoverTypedDataAddress({
      ...batchTypedData(request.batch, request.deadline, target),
      signature: request.signature,
    } as never);
    if (signer !== server) throw new Error("baseline: the signature does not recover to the server");
    ms.signature += withRecords ? now() - t : 0;
    if (!withRecords) return;
    t = now();
    if (recordsTree(request.records!).root !== request.batch.merkleRoot) throw new Error("baseline: Merkle root mismatch");
    ms.merkle += now() - t;
  };
  for (const text of bodies.warmup) await check(text, false);
  let t = now();
  for (const text of bodies.withRecords) await check(text, true);
  const withRecordsSeconds = (now() - t) / 1000;
  t = now();
  for (const text of bodies.withoutRecords) await check(text, false);
  return { ms, withRecordsSeconds, withoutRecordsSeconds: (now() - t) / 1000 };
}

/** The transport alone: the same bodies to a handler that reads them and answers. */
async function noopPost(bodies: string[], concurrency: number): Promise<number> {
  const noop = createServer((req, res) => {
    req.on("data", () => undefined);
    req.on("end", () => res.writeHead(200, { "content-type": "application/json" }).end('{"ok":true}'));
  });
  await new Promise<void>((r) => noop.listen(0, "127.0.0.1", r));
  const url = `http://127.0.0.1:${(noop.address() as AddressInfo).port}/usage/submit`;
  try {
    const t = now();
    await mapLimit(bodies, concurrency, async (body) =>
      (await fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body })).text(),
    );
    return (now() - t) / 1000;
  } finally {
    noop.closeAllConnections();
    noop.close();
  }
}

/** The route's chain work that runs the contract: one `eth_estimateGas` of `commitSigned`. */
async function estimateGas(chain: ChainClients, body: string, ledger: Address): Promise<number> {
  const { batch, deadline, signature } = parseSubmitRequest(JSON.parse(body), unix());
  const call = {
    address: ledger,
    abi: UsageLedgerAbi,
    functionName: "commitSigned",
    args: [batch, deadline, signature],
    account: privateKeyToAccount(ANVIL_KEYS[8]).address,
  } as const;
  await chain.publicClient.estimateContractGas(call);
  const t = now();
  for (let i = 0; i < 5; i++) await chain.publicClient.estimateContractGas(call);
  return (now() - t) / 5;
}

async function measureApi(args: {
  database: IngestRun["database"];
  mining: IngestRun["mining"];
  api: IngestRun["api"];
  indexer: RunningIndexer;
  /** The `ponder serve` process that takes the writes, if not the indexer. */
  replica?: RunningIndexer;
  rpcUrl: string;
  bodies: Bodies;
  concurrency: number;
  n: number;
  log: (line: string) => void;
}): Promise<IngestRun> {
  const { indexer, rpcUrl, bodies, concurrency, n, log } = args;
  const apiUrl = (args.replica ?? indexer).url;
  const submit = async (body: string): Promise<{ txHash: Hex; ms: number; at: number }> => {
    const t = now();
    const res = await fetch(`${apiUrl}/usage/submit`, { method: "POST", headers: { "content-type": "application/json" }, body });
    const answer = (await res.json()) as { txHash?: Hex; error?: unknown };
    if (res.status !== 200 || !answer.txHash) throw new Error(`POST /usage/submit answered ${res.status}: ${JSON.stringify(answer)}`);
    return { txHash: answer.txHash, ms: now() - t, at: now() };
  };
  // The warm-up batches go one at a time; the last one, indexed alone, gives the indexer's latency.
  let loneBatchIndexMs = 0;
  for (const body of bodies.warmup) {
    const answer = await submit(body);
    const [receipt] = await minedReceipts(rpcUrl, [answer.txHash]);
    loneBatchIndexMs = (await indexedAt(indexer.url, receipt!.blockNumber)) - answer.at;
  }

  const label = `${args.database}, ${args.mining}, API in ${args.api}`;
  log(`ingest (${label}): ${bodies.withRecords.length} batches with records, ${concurrency} requests at a time`);
  const loadAverage1mAtStart = round(loadavg()[0]!, 2);
  const t0 = now();
  const answers = await mapLimit(bodies.withRecords, concurrency, submit);
  const accepted = (now() - t0) / 1000;
  const receipts = await minedReceipts(
    rpcUrl,
    answers.map((a) => a.txHash),
  );
  const mined = (now() - t0) / 1000;
  if (receipts.some((r) => r.status !== "success")) throw new Error("ingest: a commit transaction reverted");
  const lastBlock = receipts.reduce((m, r) => (r.blockNumber > m ? r.blockNumber : m), 0n);
  const indexed = ((await indexedAt(indexer.url, lastBlock)) - t0) / 1000;

  log(`ingest (${label}): ${bodies.withoutRecords.length} batches without records`);
  const t1 = now();
  const lean = await mapLimit(bodies.withoutRecords, concurrency, submit);
  const leanSeconds = (now() - t1) / 1000;
  await minedReceipts(
    rpcUrl,
    lean.map((a) => a.txHash),
  );

  const latencies = answers.map((a) => a.ms);
  const run: IngestRun = {
    database: args.database,
    api: args.api,
    mining: args.mining,
    blocks: new Set(receipts.map((r) => r.blockNumber)).size,
    recordsPerSecond: Math.round(n / accepted),
    minedRecordsPerSecond: Math.round(n / mined),
    indexedRecordsPerSecond: Math.round(n / indexed),
    indexLagMs: Math.round((indexed - mined) * 1000),
    loneBatchIndexMs: Math.round(loneBatchIndexMs),
    sustainedIndexedRecordsPerSecond: Math.round(n / Math.max(indexed - loneBatchIndexMs / 1000, 0.001)),
    loadAverage1mAtStart,
    requestP50Ms: round(percentile(latencies, 50), 1),
    requestP95Ms: round(percentile(latencies, 95), 1),
    withoutRecords: {
      recordsPerSecond: Math.round(n / leanSeconds),
      requestP50Ms: round(
        percentile(
          lean.map((a) => a.ms),
          50,
        ),
        1,
      ),
    },
  };
  log(
    `ingest (${label}): ${run.recordsPerSecond} records/s accepted with records in ${run.blocks} blocks (p50 ${run.requestP50Ms} ms per batch), ` +
      `${run.minedRecordsPerSecond} mined, ${run.indexedRecordsPerSecond} indexed (${run.indexLagMs} ms after the last commit was mined); ` +
      `${run.sustainedIndexedRecordsPerSecond} less a lone batch's ${run.loneBatchIndexMs} ms; ` +
      `without records ${run.withoutRecords.recordsPerSecond} ` +
      `(p50 ${run.withoutRecords.requestP50Ms} ms)`,
  );
  return run;
}

/**
 * The receipts of `hashes` once all are mined: those still missing are asked for in one JSON-RPC
 * batch every 10 ms, so that the time is the chain's, not a client's polling interval.
 */
async function minedReceipts(url: string, hashes: readonly Hex[]): Promise<{ blockNumber: bigint; status: "success" | "reverted" }[]> {
  const found = new Map<Hex, { blockNumber: bigint; status: "success" | "reverted" }>();
  const deadline = now() + 300_000;
  for (;;) {
    const missing = hashes.filter((h) => !found.has(h));
    const answers = (await rpcBatch(
      url,
      missing.map((h) => ({ method: "eth_getTransactionReceipt", params: [h] })),
    )) as ({ blockNumber: Hex; status: Hex } | null)[];
    answers.forEach((r, i) => {
      if (r) found.set(missing[i]!, { blockNumber: BigInt(r.blockNumber), status: r.status === "0x1" ? "success" : "reverted" });
    });
    if (found.size === hashes.length) return hashes.map((h) => found.get(h)!);
    if (now() > deadline) throw new Error(`ingest: ${hashes.length - found.size} commits were not mined in 300 s`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** When the indexer's `/status` first reported `block` (`now()` time), polled every 10 ms for up to 300 s. */
async function indexedAt(url: string, block: bigint): Promise<number> {
  const client = new IndexerClient(url);
  const deadline = now() + 300_000;
  for (;;) {
    const head = Object.values(await client.indexedBlocks().catch(() => ({})))[0];
    const at = now();
    if (head !== undefined && BigInt(head) >= block) return at;
    if (at > deadline) throw new Error(`ingest: the indexer did not reach block ${block} in 300 s`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
