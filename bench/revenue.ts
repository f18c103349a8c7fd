import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { earnings, type ProviderId, priceLines, type RevenueLine } from "../src/revenue/index.js";
import { type Pricing, PricingModel, perCall } from "../src/usage/pricing.js";
import { providerIdOf } from "../src/usage/registry.js";
import { median, RESULTS_DIR, round, writeResults } from "./report.js";

export type RevenueBenchOptions = { lines: number; providers: number; runs?: number; log: (line: string) => void };

export type RevenueBenchResult = {
  lines: number;
  providers: number;
  periods: number;
  runs: number;
  medianMs: number;
  baselineMedianMs: number;
  targetMs: number;
};

const TARGET_MS = 2000;
const PERIODS = [202501, 202502, 202503];
const FEE_BPS = 250;

/** mulberry32: a small seeded generator of uint32 values, so every run prices the same workload. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
}

type Line = RevenueLine & { calls: bigint; amountMicro: bigint };

/**
 * A third of the providers per call, a third tiered (a free quota, then one or two priced tiers,
 * some capped), a third in the free pool; lines spread at random over three monthly periods, as
 * the operator decrypts them from many batches.
 */
export function revenueWorkload(lineCount: number, providerCount: number, seed = 1) {
  const next = prng(seed);
  const below = (n: number) => next() % n;
  const ids: ProviderId[] = [];
  const pricing = new Map<ProviderId, Pricing>();
  for (let i = 0; i < providerCount; i++) {
    const id = providerIdOf(`bench${i}`);
    ids.push(id);
    const kind = i % 3;
    if (kind === 0) {
      pricing.set(id, perCall(BigInt(1 + below(1000))));
    } else if (kind === 1) {
      const free = BigInt(1 + below(5000));
      const tiers = [
        { upToCalls: free, priceMicro: 0n },
        { upToCalls: free + BigInt(1 + below(20_000)), priceMicro: BigInt(1 + below(500)) },
      ];
      if (below(2) === 0) tiers.push({ upToCalls: (1n << 64n) - 1n, priceMicro: BigInt(1 + below(100)) });
      pricing.set(id, { model: PricingModel.Tiered, pricePerCallMicro: 0n, poolWeight: 0, tiers });
    } else {
      pricing.set(id, { model: PricingModel.FreePool, pricePerCallMicro: 0n, poolWeight: 1 + below(10), tiers: [] });
    }
  }
  const lines: Line[] = new Array(lineCount);
  for (let i = 0; i < lineCount; i++) {
    const billableCalls = BigInt(below(1000));
    lines[i] = {
      period: PERIODS[below(PERIODS.length)],
      providerId: ids[below(providerCount)],
      calls: billableCalls + BigInt(below(10)),
      billableCalls,
      amountMicro: 0n,
    };
  }
  const pools = new Map<number, bigint>(PERIODS.map((p) => [p, BigInt(1 + below(1_000_000)) * 1_000_000n + BigInt(below(1_000_000))]));
  return { lines, pricing, pools, ids };
}

/**
 * Time to price `lines` usage lines over `providers` providers and sum their earnings
 * (`priceLines` then `earnings`), median of `runs` runs after a warm-up, against a same-run
 * baseline: one naive pass summing billableCalls × a per-call price per provider, with no
 * aggregation per period, no tiers, no pool split and no fee.
 */
export async function benchRevenue({ lines: lineCount, providers, runs = 5, log }: RevenueBenchOptions): Promise<RevenueBenchResult> {
  const gc = (globalThis as { gc?: () => void }).gc;
  log(`revenue: generating ${lineCount} lines over ${providers} providers, ${PERIODS.length} periods`);
  const { lines, pricing, pools } = revenueWorkload(lineCount, providers);
  const flatPrice = new Map<ProviderId, bigint>();
  for (const [id, p] of pricing) flatPrice.set(id, p.pricePerCallMicro);

  const engine = () => {
    const revenue = priceLines({ lines, pricing, pools, feeBps: FEE_BPS });
    return { revenue, earned: earnings(revenue) };
  };
  const baseline = () => {
    const sums = new Map<ProviderId, bigint>();
    for (const line of lines) {
      const id = line.providerId;
      sums.set(id, (sums.get(id) ?? 0n) + line.billableCalls * flatPrice.get(id)!);
    }
    return sums;
  };
  const time = <T>(f: () => T): [number, T] => {
    gc?.();
    const t0 = performance.now();
    const out = f();
    return [performance.now() - t0, out];
  };

  const [warmEngineMs, { revenue, earned }] = time(engine);
  const [warmBaselineMs, naive] = time(baseline);
  log(`revenue: warm-up ${round(warmEngineMs)} ms engine, ${round(warmBaselineMs)} ms baseline`);
  checkConservation(revenue, pools, earned);
  for (const [id, p] of pricing) {
    if (p.model === PricingModel.PerCall && (naive.get(id) ?? 0n) !== (revenue.perProvider.get(id)?.grossMicro ?? 0n)) {
      throw new Error(`engine and baseline disagree on the per-call gross of ${id}`);
    }
  }

  const engineMs: number[] = [];
  const baselineMs: number[] = [];
  for (let r = 0; r < runs; r++) {
    engineMs.push(time(engine)[0]);
    baselineMs.push(time(baseline)[0]);
  }
  const result: RevenueBenchResult = {
    lines: lineCount,
    providers,
    periods: PERIODS.length,
    runs,
    medianMs: round(median(engineMs)),
    baselineMedianMs: round(median(baselineMs)),
    targetMs: TARGET_MS,
  };
  log(
    `revenue: median ${result.medianMs} ms (runs ${engineMs.map((m) => round(m)).join(", ")}), ` +
      `baseline ${result.baselineMedianMs} ms, target ${TARGET_MS} ms`,
  );
  const file = join(RESULTS_DIR, "payouts.json");
  const previous = existsSync(file) ? (JSON.parse(readFileSync(file, "utf8")) as Record<string, unknown>) : {};
  const { machine: _machine, measuredAt: _measuredAt, ...kept } = previous;
  log(`revenue: results in ${writeResults("payouts.json", { ...kept, revenueEngine: result })}`);
  return result;
}

/** Every micro-USDC in (per-call and tiered gross, pools) comes out (earnings, fees, unallocated pools). */
function checkConservation(
  revenue: ReturnType<typeof priceLines>,
  pools: ReadonlyMap<number, bigint>,
  earned: Map<ProviderId, bigint>,
): void {
  let inflow = 0n;
  for (const pool of pools.values()) inflow += pool;
  for (const period of revenue.byPeriod.values()) {
    for (const p of period.providers.values()) if (p.model === "per_call" || p.model === "tiered") inflow += p.grossMicro;
  }
  let outflow = revenue.platformFeeMicro + revenue.unallocatedPoolMicro;
  for (const v of earned.values()) outflow += v;
  if (inflow !== outflow) throw new Error(`revenue engine result does not conserve money: ${inflow} in, ${outflow} out`);
}
