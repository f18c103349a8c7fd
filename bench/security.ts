import { randomBytes } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import pg from "pg";
import { UsageLedgerAbi } from "../abis/UsageLedgerAbi.js";
import * as ponderSchema from "../ponder.schema.js";
import { GRAPHQL_ADMISSION } from "../src/api/graphql-gate.js";
import { GRAPHQL_LIMITS, graphqlCatalog } from "../src/api/graphql-limits.js";
import { SQL_ADMISSION } from "../src/api/sql.js";
import { DEFAULT_SQL_TIMEOUT_MS } from "../src/config/api.js";
import { type RunningIndexer, startIndexer } from "../src/indexer/process.js";
import { IndexerClient } from "../src/indexer-client/client.js";
import { callRecords } from "../src/local/marketplace.js";
import { type LocalWorld, localWorld } from "../src/local/world.js";
import { buildBatch } from "../src/usage/batch.js";
import { fetchLineKeys } from "../src/usage/keys.js";
import { perCall } from "../src/usage/pricing.js";
import { providerIdOf } from "../src/usage/registry.js";
import { percentile, RESULTS_DIR, round, writeResults } from "./report.js";

export type SecurityBenchOptions = {
  /** Concurrent clients firing the worst-case query. */
  clients: number;
  /** Seconds each loaded phase lasts. */
  seconds: number;
  postgresAdminUrl: string;
  log: (line: string) => void;
};

const PROVIDERS = ["alpha", "beta", "gamma"];
/** Usage batches committed, each padded to `LINES_PER_BATCH` encrypted lines: 2,048 line rows in all. */
const BATCHES = 8;
const LINES_PER_BATCH = 256;
const IDLE_PROBES = 200;
const SCHEMA = "bench_security";
const IDLE_INTERVAL_MS = 20;
const PROBE_INTERVAL_MS = 100;

const LINE_FIELDS =
  "server batchId position ephemeralKey nonce providerCiphertext operatorCiphertext auditorCiphertext blockNumber logIndex";
const COMMITMENT_FIELDS =
  "server batchId periodStart periodEnd merkleRoot encryptedLines batchHash lineCount blockNumber logIndex timestamp txHash";
const aliases = (n: number, body: (i: number) => string) => `{ ${Array.from({ length: n }, (_, i) => `q${i}: ${body(i)}`).join(" ")} }`;

const catalog = graphqlCatalog(ponderSchema);
/** Encrypted lines in the answer's byte limit: each costs its row's widest, 1,727 bytes. */
const LINES_IN_BUDGET = Math.floor(GRAPHQL_LIMITS.maxBytes / catalog.tables.encryptedUsageLine!.rowBytes);
const WIDE_LISTS = GRAPHQL_LIMITS.maxAliases;
const PER_WIDE_LIST = Math.floor(LINES_IN_BUDGET / WIDE_LISTS);

type Candidate = { name: string; query: string };

/**
 * Requests at the edge of the GraphQL limits (`src/api/graphql-limits.ts`: depth 8, 10 aliases,
 * 10,000 rows asked, 1,000 statements, and an answer of at most `maxBytes`, each row counted at
 * its table's widest), each sized so that the world below fills its budget where it can, and the
 * ones earlier limits let through. The benchmark times each the API lets through once idle
 * (the ones it refuses are listed with the refusal) and loads the API with the slowest.
 */
const WORST_GRAPHQL: Candidate[] = [
  {
    name: "nested: 10 commitments × 999 lines",
    query: `{ usageCommitments(limit: 10) { totalCount items { ${COMMITMENT_FIELDS} lines(limit: 999) { totalCount items { ${LINE_FIELDS} } } } } }`,
  },
  {
    name: "fan-out: 1,000 lines × their commitment's 9 lines",
    query: `{ encryptedUsageLines(limit: 1000) { totalCount items { ${LINE_FIELDS} commitment { ${COMMITMENT_FIELDS} lines(limit: 9) { totalCount items { ${LINE_FIELDS} } } } } } }`,
  },
  {
    name: "wide: 10 aliased lists of 1,000 lines",
    query: aliases(WIDE_LISTS, () => `encryptedUsageLines(limit: 1000) { items { ${LINE_FIELDS} } }`),
  },
  {
    name: "one-relation fan-out: 100 lines, each with its commitment's encrypted lines",
    query: `{ encryptedUsageLines(limit: 100) { items { position commitment { encryptedLines } } } }`,
  },
  {
    name: "count fan-out at the statement limit: 499 lines, a count of their commitment's lines each",
    query: `{ encryptedUsageLines(limit: 499) { items { position commitment { lines(limit: 0) { totalCount } } } } }`,
  },
  {
    name: "count fan-out: 10 × 1,000 lines, a count of their commitment's lines each",
    query: aliases(
      WIDE_LISTS,
      (i) =>
        `encryptedUsageLines(limit: 1000, orderBy: "position", orderDirection: "${i % 2 ? "asc" : "desc"}") { items { position commitment { lines(limit: 0) { totalCount } } } }`,
    ),
  },
  {
    name: `lines at the byte limit: ${LINES_IN_BUDGET} lines`,
    query: `{ encryptedUsageLines(limit: ${LINES_IN_BUDGET}) { items { ${LINE_FIELDS} } } }`,
  },
  {
    name: `wide at the byte limit: ${WIDE_LISTS} aliased lists of ${PER_WIDE_LIST} lines`,
    query: aliases(
      WIDE_LISTS,
      (i) => `encryptedUsageLines(limit: ${PER_WIDE_LIST}, offset: ${i * PER_WIDE_LIST}) { items { ${LINE_FIELDS} } }`,
    ),
  },
  ...Array.from({ length: BATCHES }, (_, i) => ({
    name: `commitments at the byte limit: ${BATCHES - i} usage commitments with their encrypted lines`,
    query: `{ usageCommitments(limit: ${BATCHES - i}) { items { ${COMMITMENT_FIELDS} } } }`,
  })),
];

/** Eight joined 25-row lists: 25^8 rows to count, far past any statement timeout. */
const CROSS_JOIN = `SELECT count(*) FROM ${Array.from({ length: 8 }, (_, i) => `(VALUES ${Array.from({ length: 25 }, (_, j) => `(${j})`).join(", ")}) AS t${i}(x)`).join(", ")}`;

type Phase = {
  probes: number;
  /** Probes that failed (a reset or refused connection), counted in the percentiles at the time they failed. */
  failedProbes: number;
  p50Ms: number;
  p95Ms: number;
  maxMs: number;
  /** Ponder's own `/health`, which reads no database: how long the API's event loop takes to turn. */
  healthP95Ms: number;
  /** Worst-case requests answered within the phase, those the API's admission refused (503), and the answered ones' median. */
  loadRequests: number;
  loadRefused: number;
  loadP50Ms: number | null;
  /** CPU time of the indexer's process over the phase, in percent of one core. */
  apiCpuPercent: number;
  /** Postgres only: the API's read-only connections busy (`pg_stat_activity`, sampled each second), mean and most. */
  readConnectionsActive?: { mean: number; max: number };
  loadAverage1m: number;
};

type Probe = { ms: number; failed: boolean };

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function timed(f: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await f();
  return performance.now() - t0;
}

async function probe(f: () => Promise<unknown>): Promise<Probe> {
  const t0 = performance.now();
  try {
    await f();
    return { ms: performance.now() - t0, failed: false };
  } catch {
    return { ms: performance.now() - t0, failed: true };
  }
}

/** The indexer process's user + system CPU time, in seconds (Linux; 0 elsewhere). */
function cpuSeconds(pid: number): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return 0;
  }
}

/** A request the API refused: 400 over a GraphQL limit, 503 from its admission (GraphQL or SQL). */
class ApiRefusal extends Error {
  constructor(
    readonly status: number,
    readonly body: string,
  ) {
    super(`GraphQL ${status}: ${body.slice(0, 300)}`);
  }
}

/** Sends a GraphQL request; returns the answer's length, or throws with the status and body of a refusal. */
async function graphql(url: string, query: string, signal?: AbortSignal): Promise<number> {
  const res = await fetch(`${url}/graphql`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ query }),
    signal,
  });
  const text = await res.text();
  if (!res.ok) throw new ApiRefusal(res.status, text);
  const body = JSON.parse(text) as { data?: unknown; errors?: { message: string }[] };
  if (body.errors?.length) throw new Error(`GraphQL error: ${body.errors.map((e) => e.message).join("; ")}`);
  return text.length;
}

async function crossJoin(url: string, signal?: AbortSignal): Promise<void> {
  const sql = encodeURIComponent(JSON.stringify({ json: { sql: CROSS_JOIN, params: [] } }));
  const res = await fetch(`${url}/sql/db?sql=${sql}`, { signal });
  const text = await res.text();
  if (res.status === 503) throw new ApiRefusal(res.status, text);
  if (res.status !== 400 || !text.includes("was canceled"))
    throw new Error(`expected the cross join stopped by the timeout, got ${res.status} ${text}`);
}

/** The CLI's providers read, the typical request whose latency is measured. */
const providersRead = (url: string) => async () => {
  if ((await new IndexerClient(url, { timeoutMs: 120_000 }).providers()).length !== PROVIDERS.length)
    throw new Error("the providers read lost rows");
};

type PhaseOptions = {
  /** Loaded phases last `seconds`; idle, `IDLE_PROBES` probes. */
  seconds?: number;
  clients?: number;
  load?: (signal: AbortSignal) => Promise<unknown>;
  /** Samples the API's busy read connections (Postgres). */
  activeReads?: () => Promise<number>;
};

/**
 * Probes the API with the CLI's providers read and Ponder's `/health`, one of each every
 * `PROBE_INTERVAL_MS` whether or not the previous one has answered (a slow answer does not delay
 * the next probe), while `clients` workers fire `load` back to back. In-flight load is aborted
 * at the end; the server may still be finishing it (see `drain`).
 */
async function phase(indexer: RunningIndexer, options: PhaseOptions): Promise<Phase> {
  const stop = new AbortController();
  const loadTimes: number[] = [];
  let loadRefused = 0;
  const workers = Array.from({ length: options.load ? (options.clients ?? 0) : 0 }, async () => {
    while (!stop.signal.aborted) {
      try {
        loadTimes.push(await timed(() => options.load!(stop.signal)));
      } catch (e) {
        // The API's admission refused it (503, busy with costly queries or SQL): the client sends it again.
        if (e instanceof ApiRefusal && e.status === 503) loadRefused += 1;
        else if (!stop.signal.aborted) throw e;
      }
    }
  });
  const active: number[] = [];
  const sampler = (async () => {
    if (!options.activeReads) return;
    while (!stop.signal.aborted) {
      active.push(await options.activeReads());
      await sleep(1_000);
    }
  })();
  const cpu0 = cpuSeconds(indexer.pid);
  const t0 = performance.now();
  const loadAverage1m = round(loadavg()[0]!, 2);
  const read = providersRead(indexer.url);
  const health = async () => {
    const res = await fetch(`${indexer.url}/health`);
    if (!res.ok) throw new Error(`/health ${res.status}`);
    await res.arrayBuffer();
  };
  const probes: Promise<Probe>[] = [];
  const healthProbes: Promise<Probe>[] = [];
  let answered: Probe[] = [];
  let healthAnswered: Probe[] = [];
  try {
    // Let every worker have its first request in flight before the first probe.
    if (options.load) await sleep(500);
    const until = performance.now() + (options.seconds ?? 0) * 1000;
    while (options.seconds ? performance.now() < until : probes.length < IDLE_PROBES) {
      probes.push(probe(read));
      healthProbes.push(probe(health));
      await sleep(options.seconds ? PROBE_INTERVAL_MS : IDLE_INTERVAL_MS);
    }
    answered = await Promise.all(probes);
    healthAnswered = await Promise.all(healthProbes);
  } finally {
    stop.abort();
    await Promise.all([...workers, sampler]);
  }
  const elapsed = (performance.now() - t0) / 1000;
  const ms = answered.map((p) => p.ms);
  return {
    probes: answered.length,
    failedProbes: answered.filter((p) => p.failed).length,
    p50Ms: round(percentile(ms, 50), 2),
    p95Ms: round(percentile(ms, 95), 2),
    maxMs: round(Math.max(...ms), 2),
    healthP95Ms: round(
      percentile(
        healthAnswered.map((p) => p.ms),
        95,
      ),
      2,
    ),
    loadRequests: loadTimes.length,
    loadRefused,
    loadP50Ms: loadTimes.length ? round(percentile(loadTimes, 50)) : null,
    apiCpuPercent: Math.round(((cpuSeconds(indexer.pid) - cpu0) / elapsed) * 100),
    ...(options.activeReads &&
      active.length > 0 && {
        readConnectionsActive: { mean: round(active.reduce((a, b) => a + b, 0) / active.length), max: Math.max(...active) },
      }),
    loadAverage1m,
  };
}

/** Waits until the server has finished the aborted load: a providers read answers within `withinMs` again (at most 30 s). */
async function drain(url: string, withinMs: number): Promise<number> {
  const t0 = performance.now();
  const read = providersRead(url);
  while (performance.now() - t0 < 30_000) if ((await probe(read)).ms < withinMs) break;
  return Math.round(performance.now() - t0);
}

/**
 * Times each worst-case candidate once and returns those the API answers, slowest first, and
 * those it refuses (400, before anything runs), with the refusal. Of the commitment candidates,
 * only the largest the limits let through is timed.
 */
async function rankWorstGraphql(url: string) {
  const ranked: { name: string; query: string; idleMs: number; responseBytes: number }[] = [];
  const refused: Record<string, string> = {};
  let commitments = false;
  for (const c of WORST_GRAPHQL) {
    const isCommitments = c.name.startsWith("commitments at the byte limit");
    if (isCommitments && commitments) continue;
    let responseBytes = 0;
    try {
      const idleMs = await timed(async () => {
        responseBytes = await graphql(url, c.query);
      });
      ranked.push({ ...c, idleMs: round(idleMs), responseBytes });
      if (isCommitments) commitments = true;
    } catch (e) {
      if (!(e instanceof ApiRefusal) || e.status !== 400) throw e;
      if (isCommitments) continue;
      refused[c.name] = (JSON.parse(e.body) as { error: { message: string } }).error.message;
      console.log(`security: "${c.name}" is refused by the limits: ${refused[c.name]}`);
    }
  }
  return { ranked: ranked.sort((a, b) => b.idleMs - a.idleMs), refused };
}

/** Commits `BATCHES` usage batches of the world's providers, each padded with dummy lines to `LINES_PER_BATCH`. */
async function commitPaddedUsage(world: LocalWorld): Promise<bigint> {
  const { chain, manifest, server, operator } = world;
  const keys = await fetchLineKeys(chain.publicClient, manifest.contracts, operator.address, PROVIDERS.map(providerIdOf));
  let block = 0n;
  for (let sequence = 1; sequence <= BATCHES; sequence++) {
    const at = Date.now();
    const records = PROVIDERS.flatMap((p) => callRecords(p, 5, { at, priceMicro: 1_000n }));
    const { batch } = buildBatch({
      server: server.address,
      sequence,
      periodStart: at,
      periodEnd: at,
      records,
      keys,
      minLines: LINES_PER_BATCH,
    });
    const hash = await chain.walletFor(server).writeContract({
      address: manifest.contracts.usageLedger,
      abi: UsageLedgerAbi,
      functionName: "commit",
      args: [batch],
    } as never);
    const receipt = await chain.publicClient.waitForTransactionReceipt({ hash });
    if (receipt.status !== "success") throw new Error(`usage batch ${sequence} reverted`);
    block = receipt.blockNumber;
  }
  return block;
}

type Ranked = Awaited<ReturnType<typeof rankWorstGraphql>>["ranked"];

type DatabaseResult = {
  idle: Phase;
  graphqlLoaded: Phase;
  /** How long the API took, after the GraphQL load stopped, to answer the providers read within 2× its idle p95 again. */
  drainMs?: number;
  sqlLoaded?: Phase;
};

const describe = (p: Phase) =>
  `p50 ${p.p50Ms} ms, p95 ${p.p95Ms} ms, max ${p.maxMs} ms (${p.probes} probes, ${p.failedProbes} failed); ` +
  `${p.loadRequests} load requests answered${p.loadP50Ms === null ? "" : `, p50 ${p.loadP50Ms} ms`}` +
  `${p.loadRefused ? `, ${p.loadRefused} refused (503)` : ""}; /health p95 ${p.healthP95Ms} ms; ` +
  `API process ${p.apiCpuPercent}% CPU` +
  (p.readConnectionsActive ? `; read connections busy: mean ${p.readConnectionsActive.mean}, max ${p.readConnectionsActive.max}` : "");

async function measure(
  indexer: RunningIndexer,
  database: string,
  o: {
    clients: number;
    seconds: number;
    log: (line: string) => void;
    worst: Ranked[number];
    /** Postgres: the cross join is fired too, and busy read connections sampled. */
    activeReads?: () => Promise<number>;
  },
): Promise<DatabaseResult> {
  const { clients, seconds, log, worst, activeReads } = o;
  // Warm the probe's path before the baseline.
  for (let i = 0; i < 20; i++) await providersRead(indexer.url)();
  const idle = await phase(indexer, { activeReads });
  log(`security: ${database}: idle providers read: ${describe(idle)}`);
  const graphqlLoaded = await phase(indexer, {
    seconds,
    clients,
    activeReads,
    load: (signal) => graphql(indexer.url, worst.query, signal),
  });
  log(`security: ${database}: under ${clients} clients of "${worst.name}": ${describe(graphqlLoaded)}`);
  if (!activeReads) return { idle, graphqlLoaded };
  const drainMs = await drain(indexer.url, 2 * idle.p95Ms);
  log(`security: ${database}: the API was back within 2× idle ${drainMs} ms after the GraphQL load stopped`);
  const sqlLoaded = await phase(indexer, { seconds, clients, activeReads, load: (signal) => crossJoin(indexer.url, signal) });
  log(`security: ${database}: under ${clients} clients of a cross join stopped at the statement timeout: ${describe(sqlLoaded)}`);
  return { idle, graphqlLoaded, drainMs, sqlLoaded };
}

/**
 * API isolation, written to `bench/results/security.json`: the p50/p95 of a typical read (the
 * CLI's providers page over GraphQL) idle (the baseline, same run), then while `clients`
 * concurrent clients fire (a) the costliest GraphQL request the limits allow and (b) on Postgres
 * with `API_SQL=1`, a cross join the statement timeout stops. The world: anvil, the contracts,
 * three providers and 8 usage batches of 256 encrypted lines, indexed on Postgres and on PGlite
 * (SQL over HTTP off there). The target: the loaded p95 within 2× the idle p95.
 */
export async function benchSecurity({ clients, seconds, postgresAdminUrl, log }: SecurityBenchOptions) {
  const database = `bs_bench_security_${randomBytes(6).toString("hex")}`;
  const admin = async (query: string) => {
    const c = new pg.Client({ connectionString: postgresAdminUrl });
    await c.connect();
    try {
      await c.query(query);
    } finally {
      await c.end();
    }
  };
  const databaseUrl = `${postgresAdminUrl.replace(/\/[^/]*$/, "")}/${database}`;
  const world = await localWorld({ providers: PROVIDERS.map((namespace) => ({ namespace, pricing: perCall(1_000n) })) });
  const indexers: RunningIndexer[] = [];
  try {
    await admin(`CREATE DATABASE ${database}`);
    const head = await commitPaddedUsage(world);
    log(`security: ${PROVIDERS.length} providers, ${BATCHES} usage batches of ${LINES_PER_BATCH} lines committed (block ${head})`);
    const postgres = await startIndexer({
      manifestPath: world.manifestPath,
      databaseUrl,
      schema: SCHEMA,
      env: { RPC_URL: world.rpcUrl, API_SQL: "1", API_SQL_TIMEOUT_MS: undefined, API_SQL_MAX_ROWS: undefined },
      logFile: join(world.dir, "ponder-postgres.log"),
    });
    indexers.push(postgres);
    await new IndexerClient(postgres.url).waitForBlock(head, 120_000);
    const { ranked, refused } = await rankWorstGraphql(postgres.url);
    const worst = ranked[0]!;
    log(`security: worst-case GraphQL candidates, idle on Postgres: ${ranked.map((r) => `${r.name} ${r.idleMs} ms`).join("; ")}`);
    const reads = new pg.Client({ connectionString: databaseUrl });
    await reads.connect();
    let onPostgres: DatabaseResult;
    try {
      const activeReads = async () =>
        Number(
          (
            await reads.query<{ n: string }>(
              "SELECT count(*) AS n FROM pg_stat_activity WHERE datname = $1 AND application_name = $2 AND state = 'active'",
              [database, `${SCHEMA}_readonly`],
            )
          ).rows[0]!.n,
        );
      onPostgres = await measure(postgres, "Postgres", { clients, seconds, log, worst, activeReads });
    } finally {
      await reads.end();
    }
    await postgres.stop();

    const pglite = await startIndexer({
      manifestPath: world.manifestPath,
      pgliteDir: join(world.dir, "pglite"),
      env: { RPC_URL: world.rpcUrl, API_SQL: undefined },
      logFile: join(world.dir, "ponder-pglite.log"),
    });
    indexers.push(pglite);
    await new IndexerClient(pglite.url).waitForBlock(head, 120_000);
    const onPglite = await measure(pglite, "PGlite", { clients, seconds, log, worst });

    const ratio = (loaded: Phase, idle: Phase) => round(loaded.p95Ms / idle.p95Ms, 2);
    const isolation = {
      idleP50Ms: onPostgres.idle.p50Ms,
      idleP95Ms: onPostgres.idle.p95Ms,
      loadedP50Ms: onPostgres.graphqlLoaded.p50Ms,
      loadedP95Ms: onPostgres.graphqlLoaded.p95Ms,
      ratioToIdle: ratio(onPostgres.graphqlLoaded, onPostgres.idle),
      sqlLoadedP50Ms: onPostgres.sqlLoaded!.p50Ms,
      sqlLoadedP95Ms: onPostgres.sqlLoaded!.p95Ms,
      sqlRatioToIdle: ratio(onPostgres.sqlLoaded!, onPostgres.idle),
      targetRatio: 2,
      clients,
      secondsPerPhase: seconds,
      probe: "the CLI's providers read (IndexerClient.providers, one GraphQL page)",
      sqlTimeoutMs: DEFAULT_SQL_TIMEOUT_MS,
      worstGraphql: { name: worst.name, idleMsOnPostgres: worst.idleMs, responseBytes: worst.responseBytes },
      candidatesIdleMsOnPostgres: Object.fromEntries(ranked.map((r) => [r.name, r.idleMs])),
      refusedCandidates: refused,
      graphqlLimits: { ...GRAPHQL_LIMITS },
      admission: { graphql: { ...GRAPHQL_ADMISSION }, sql: { ...SQL_ADMISSION } },
      world: { providers: PROVIDERS.length, usageBatches: BATCHES, encryptedLines: BATCHES * LINES_PER_BATCH },
      postgres: onPostgres,
      pglite: {
        idleP50Ms: onPglite.idle.p50Ms,
        idleP95Ms: onPglite.idle.p95Ms,
        loadedP50Ms: onPglite.graphqlLoaded.p50Ms,
        loadedP95Ms: onPglite.graphqlLoaded.p95Ms,
        ratioToIdle: ratio(onPglite.graphqlLoaded, onPglite.idle),
        ...onPglite,
      },
    };
    log(
      `security: Postgres: idle p50 ${isolation.idleP50Ms} ms, p95 ${isolation.idleP95Ms} ms; worst GraphQL p95 ${isolation.loadedP95Ms} ms ` +
        `(${isolation.ratioToIdle}× idle); worst SQL p95 ${isolation.sqlLoadedP95Ms} ms (${isolation.sqlRatioToIdle}× idle)`,
    );
    log(
      `security: PGlite: idle p50 ${isolation.pglite.idleP50Ms} ms, p95 ${isolation.pglite.idleP95Ms} ms; worst GraphQL p95 ` +
        `${isolation.pglite.loadedP95Ms} ms (${isolation.pglite.ratioToIdle}× idle)`,
    );
    for (const [name, r] of [
      ["Postgres, worst GraphQL", isolation.ratioToIdle],
      ["Postgres, worst SQL", isolation.sqlRatioToIdle],
      ["PGlite, worst GraphQL", isolation.pglite.ratioToIdle],
    ] as const)
      if (r > isolation.targetRatio) log(`security: ${name}: p95 is ${r}× idle, over the ${isolation.targetRatio}× target`);

    const file = join(RESULTS_DIR, "security.json");
    const previous = existsSync(file) ? (JSON.parse(readFileSync(file, "utf8")) as Record<string, unknown>) : {};
    const { machine: _machine, measuredAt: _measuredAt, isolation: _isolation, cores: _cores, node: _node, ...kept } = previous;
    log(`security: results in ${writeResults("security.json", { ...kept, isolation, cores: cpus().length, node: process.version })}`);
    return isolation;
  } finally {
    for (const indexer of indexers) await indexer.stop();
    await world.close();
    await admin(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
  }
}
