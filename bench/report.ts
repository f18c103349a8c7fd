import { mkdirSync, writeFileSync } from "node:fs";
import { cpus } from "node:os";
import { join } from "node:path";
import { PROJECT_ROOT } from "../src/eerc/artifacts.js";

export const RESULTS_DIR = join(PROJECT_ROOT, "bench", "results");

export function machine() {
  return {
    cores: cpus().length,
    cpu: cpus()[0]?.model ?? "unknown",
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
  };
}

export function percentile(samples: readonly number[], p: number): number {
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * sorted.length) - 1;
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank))]!;
}

export const median = (samples: readonly number[]) => percentile(samples, 50);
export const round = (x: number, digits = 1) => Math.round(x * 10 ** digits) / 10 ** digits;

export function writeResults(file: string, results: Record<string, unknown>): string {
  mkdirSync(RESULTS_DIR, { recursive: true });
  const path = join(RESULTS_DIR, file);
  writeFileSync(path, `${JSON.stringify({ machine: machine(), measuredAt: new Date().toISOString(), ...results }, null, 2)}\n`);
  return path;
}

export function rssMB(): number {
  (globalThis as { gc?: () => void }).gc?.();
  return process.memoryUsage().rss / 2 ** 20;
}
