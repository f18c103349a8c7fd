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

export type IngestBenchOptions = {
  /** Batches submitted per measured run. */
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

/** One API deployment measured: the indexer process (`ponder start`) serving the route. */
export type IngestRun = {
  database: "pglite" | "postgres";
  /** Records per second accepted by `POST /usage/submit`, bodies carrying their records (the API checks every record and the root). */
  recordsPerSecond: number;
  /** The same, until the last commit transaction is mined. */
  minedRecordsPerSecond: number;
  /** The same, until the indexer has indexed the last commit. */
  indexedRecordsPerSecond: number;
  /** How long after the last commit was mined the indexer reached its block: the backlog left when submissions stop. */
  indexLagMs: number;
  /**
   * Sustained rates, free of the one batch's latency the end-to-end figures include: the records
   * of batches 2..n over the time from the first to the last answer of the API, and from the first
   * to the last commit appearing in the indexer's `/status` (sampled every 20 ms). An indexer
   * that keeps up consumes batches at least as fast as the API accepts them.
   */
  sustained: { acceptedRecordsPerSecond: number; indexedRecordsPerSecond: number };
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
    const prepare = async (): Promise<Bodies> => {
      log(
        `ingest: building and signing ${WARMUP_BATCHES + 2 * batches} batches of ${recordsPerBatch} records (${PROVIDERS_PER_BATCH} providers each)`,
      );
      return {
        warmup: await build(WARMUP_BATCHES, true),
        withRecords: await build(batches, true),
        withoutRecords: await build(batches, false),
      };
    };
    const mean = (xs: string[]) => Math.round(xs.reduce((s, b) => s + b.length, 0) / xs.length);

    const first = await prepare();
    const baseline = await inProcessBaseline(first, server!.address, target);
    const noopSeconds = await noopPost(first.withRecords, concurrency);
    const estimateGasMs = await estimateGas(chain, first.withRecords[0]!, ledger);
    const n = batches * recordsPerBatch;

    const runs: IngestRun[] = [];
    const measure = async (database: IngestRun["database"], bodies: Bodies) => {
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
        runs.push(await measureApi({ database, indexer, chain, bodies, concurrency, n, log }));
      } finally {
        await indexer.stop();
        await dropDatabase();
      }
    };
    await measure("pglite", first);
    if (options.postgresAdminUrl) await measure("postgres", await prepare());

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
      const met = r.sustained.indexedRecordsPerSecond >= r.sustained.acceptedRecordsPerSecond;
      log(
        `target sustained indexed ≥ accepted (${r.database}): ${met ? "met" : "MISSED"} ` +
          `(${r.sustained.indexedRecordsPerSecond} ≥ ${r.sustained.acceptedRecordsPerSecond} records/s; load ${r.loadAverage1mAtStart})`,
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
  indexer: RunningIndexer;
  chain: ChainClients;
  bodies: Bodies;
  concurrency: number;
  n: number;
  log: (line: string) => void;
}): Promise<IngestRun> {
  const { indexer, chain, bodies, concurrency, n, log } = args;
  const submit = async (body: string): Promise<{ txHash: Hex; ms: number; at: number }> => {
    const t = now();
    const res = await fetch(`${indexer.url}/usage/submit`, { method: "POST", headers: { "content-type": "application/json" }, body });
    const answer = (await res.json()) as { txHash?: Hex; error?: unknown };
    if (res.status !== 200 || !answer.txHash) throw new Error(`POST /usage/submit answered ${res.status}: ${JSON.stringify(answer)}`);
    return { txHash: answer.txHash, ms: now() - t, at: now() };
  };
  for (const body of bodies.warmup) await chain.publicClient.waitForTransactionReceipt({ hash: (await submit(body)).txHash });

  log(`ingest (${args.database}): ${bodies.withRecords.length} batches with records, ${concurrency} requests at a time`);
  const loadAverage1mAtStart = round(loadavg()[0]!, 2);
  const status = watchIndexedBlocks(indexer.url);
  const t0 = now();
  const answers = await mapLimit(bodies.withRecords, concurrency, submit);
  const accepted = (now() - t0) / 1000;
  const receipts = await Promise.all(answers.map((a) => chain.publicClient.waitForTransactionReceipt({ hash: a.txHash })));
  const mined = (now() - t0) / 1000;
  if (receipts.some((r) => r.status !== "success")) throw new Error("ingest: a commit transaction reverted");
  await new IndexerClient(indexer.url).waitForBlock(
    receipts.reduce((m, r) => (r.blockNumber > m ? r.blockNumber : m), 0n),
    300_000,
  );
  const indexed = (now() - t0) / 1000;
  const samples = await status.stop();
  const perBatch = n / answers.length;
  // A block the sampler missed was indexed by the time waitForBlock saw it.
  const indexedAt = receipts.map((r) => samples.find((x) => x.block >= r.blockNumber)?.at ?? t0 + indexed * 1000);

  log(`ingest (${args.database}): ${bodies.withoutRecords.length} batches without records`);
  const t1 = now();
  const lean = await mapLimit(bodies.withoutRecords, concurrency, submit);
  const leanSeconds = (now() - t1) / 1000;
  await Promise.all(lean.map((a) => chain.publicClient.waitForTransactionReceipt({ hash: a.txHash })));

  const latencies = answers.map((a) => a.ms);
  const run: IngestRun = {
    database: args.database,
    recordsPerSecond: Math.round(n / accepted),
    minedRecordsPerSecond: Math.round(n / mined),
    indexedRecordsPerSecond: Math.round(n / indexed),
    indexLagMs: Math.round((indexed - mined) * 1000),
    sustained: {
      acceptedRecordsPerSecond: spanRate(
        answers.map((a) => a.at),
        perBatch,
      ),
      indexedRecordsPerSecond: spanRate(indexedAt, perBatch),
    },
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
    `ingest (${args.database}): ${run.recordsPerSecond} records/s accepted with records (p50 ${run.requestP50Ms} ms per batch), ` +
      `${run.minedRecordsPerSecond} mined, ${run.indexedRecordsPerSecond} indexed (${run.indexLagMs} ms after the last commit was mined); ` +
      `sustained ${run.sustained.acceptedRecordsPerSecond} accepted, ${run.sustained.indexedRecordsPerSecond} indexed; ` +
      `without records ${run.withoutRecords.recordsPerSecond} ` +
      `(p50 ${run.withoutRecords.requestP50Ms} ms)`,
  );
  return run;
}

/** Records per second of batches 2..n, from the first to the last of their times (ms). */
function spanRate(times: readonly number[], recordsPerBatch: number): number {
  const span = (Math.max(...times) - Math.min(...times)) / 1000;
  return Math.round(((times.length - 1) * recordsPerBatch) / Math.max(span, 0.001));
}

/** Samples the indexer's `/status` every 20 ms: when each newly indexed block was first reported. */
function watchIndexedBlocks(url: string): { stop(): Promise<{ block: bigint; at: number }[]> } {
  const client = new IndexerClient(url);
  const samples: { block: bigint; at: number }[] = [];
  let running = true;
  const done = (async () => {
    let seen = -1n;
    while (running) {
      const head = Object.values(await client.indexedBlocks().catch(() => ({})))[0];
      const at = now();
      if (head !== undefined && BigInt(head) > seen) {
        seen = BigInt(head);
        samples.push({ block: seen, at });
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  })();
  return {
    async stop() {
      running = false;
      await done;
      return samples;
    },
  };
}
