import { benchGas } from "../bench/gas.js";
import { benchGriefing } from "../bench/griefing.js";
import { benchIndexer } from "../bench/indexer.js";
import { benchIngest } from "../bench/ingest.js";
import { benchLines } from "../bench/lines.js";
import { benchMeter } from "../bench/meter.js";
import { benchPayouts } from "../bench/payouts.js";
import { benchPresence } from "../bench/presence.js";
import { benchProve } from "../bench/prove.js";
import { benchRevenue } from "../bench/revenue.js";
import { benchScale } from "../bench/scale.js";
import { benchSecurity } from "../bench/security.js";
import { benchSettlement } from "../bench/settlement.js";
import { benchWeb } from "../bench/web.js";
import { benchX402 } from "../bench/x402.js";
import { buildCircuits } from "../src/build/circuits.js";
import { reportStack, run } from "./run.js";

const only = process.argv.slice(2).filter((a) => !a.startsWith("-"));
const wants = (name: string) => only.length === 0 || only.includes(name);
const int = (name: string, fallback: number) => {
  const v = process.env[name];
  if (v === undefined) return fallback;
  if (!/^\d+$/.test(v) || Number(v) < 1) throw new Error(`${name} must be a positive integer`);
  return Number(v);
};

async function main(): Promise<void> {
  const log = (line: string) => console.log(line);
  await buildCircuits({ log });
  if (wants("prove")) {
    log("== proving ==");
    await benchProve({
      runs: int("BENCH_PROOFS", 10),
      memoryRuns: int("BENCH_MEMORY_PROOFS", 100),
      baselineRuns: int("BENCH_BASELINE_PROOFS", 10),
      log,
    });
  }
  if (wants("gas")) {
    log("== gas per operation, real proofs and verifiers ==");
    await benchGas({ log });
  }
  if (wants("meter")) {
    log("== metering overhead ==");
    await benchMeter({ calls: int("BENCH_METER_CALLS", 2000), log });
  }
  if (wants("x402")) {
    log("== paid tool calls (x402) ==");
    await benchX402({ calls: int("BENCH_X402_CALLS", 200), log });
  }
  if (wants("lines")) {
    log("== usage lines and amounts: encryption and decryption, and their primitives against the reference libraries ==");
    await benchLines({ runs: int("BENCH_LINES_RUNS", 200), log });
  }
  if (wants("indexer")) {
    log("== indexer: visibility latency and backfill ==");
    await benchIndexer({
      transfers: int("BENCH_VISIBILITY_TRANSFERS", 50),
      backfillEvents: int("BENCH_BACKFILL_EVENTS", 10_000),
      log,
    });
  }
  if (wants("ingest")) {
    log("== usage ingestion ==");
    await benchIngest({
      batches: int("BENCH_INGEST_BATCHES", 40),
      recordsPerBatch: 1000,
      postgresAdminUrl: process.env.BENCH_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/postgres",
      log,
    });
  }
  if (wants("revenue")) {
    log("== revenue engine ==");
    await benchRevenue({ lines: int("BENCH_REVENUE_LINES", 1_000_000), providers: int("BENCH_REVENUE_PROVIDERS", 10_000), log });
  }
  if (wants("settlement")) {
    log("== settlement: planning the next cycle with the projection and from genesis ==");
    await benchSettlement({
      batches: int("BENCH_SETTLEMENT_BATCHES", 100_000),
      tailBatches: int("BENCH_SETTLEMENT_TAIL", 1000),
      providers: int("BENCH_SETTLEMENT_PROVIDERS", 1000),
      cycles: int("BENCH_SETTLEMENT_CYCLES", 50),
      log,
    });
  }
  if (wants("presence")) {
    log("== payout presence: every active provider paid every cycle ==");
    await benchPresence({ providers: int("BENCH_PRESENCE_PROVIDERS", 10), withUsage: int("BENCH_PRESENCE_WITH_USAGE", 2), log });
  }
  if (wants("security")) {
    log("== API isolation: a typical read under the worst-case GraphQL and SQL the limits allow ==");
    await benchSecurity({
      clients: int("BENCH_SECURITY_CLIENTS", 3),
      seconds: int("BENCH_SECURITY_SECONDS", 15),
      postgresAdminUrl: process.env.BENCH_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/postgres",
      log,
    });
  }
  if (wants("web")) {
    log("== web dashboard: the provider view's first render for a year of usage, and the initial JS ==");
    await benchWeb({
      renders: int("BENCH_WEB_RENDERS", 5),
      batches: int("BENCH_WEB_BATCHES", 8760),
      cycles: int("BENCH_WEB_CYCLES", 100),
      fresh: process.env.BENCH_WEB_FRESH === "1",
      log,
    });
  }
  if (wants("griefing")) {
    log("== payout griefing: payouts per minute idle and with a credit to the payer ahead of every transfer ==");
    await benchGriefing({ providers: int("BENCH_GRIEFING_PROVIDERS", 10), log });
  }
  // Hours at full size: only when named (`npm run bench scale`).
  if (only.includes("scale")) {
    log("== scale: a long history on anvil, indexed on PGlite and Postgres; planning, pending reads, restarts ==");
    const fractions = (process.env.BENCH_SCALE_FRACTIONS ?? "0.1,1").split(",").map(Number);
    if (fractions.some((f) => !(f > 0 && f <= 1))) throw new Error("BENCH_SCALE_FRACTIONS must be fractions in (0, 1], comma-separated");
    await benchScale({
      batches: int("BENCH_SCALE_BATCHES", 100_000),
      providers: int("BENCH_SCALE_PROVIDERS", 1000),
      cycles: int("BENCH_SCALE_CYCLES", 50),
      tailBatches: int("BENCH_SCALE_TAIL", 1000),
      linesPerBatch: 5,
      fractions,
      postgresAdminUrl: process.env.BENCH_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/postgres",
      requests: int("BENCH_SCALE_REQUESTS", 200),
      log,
    });
  }
  if (wants("payouts")) {
    log("== payout throughput ==");
    await benchPayouts({ providers: int("PAYOUT_BENCH_PROVIDERS", 50), log });
  }
}

run(main, reportStack);
