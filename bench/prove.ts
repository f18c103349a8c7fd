import { performance } from "node:perf_hooks";
import * as snarkjs from "snarkjs";
import { constraintCount } from "../src/build/circuits.js";
import { CIRCUIT_NAMES, type CircuitName, circuitArtifacts } from "../src/eerc/artifacts.js";
import { randomScalar } from "../src/eerc/curve.js";
import { encryptElGamal } from "../src/eerc/elgamal.js";
import { burnInputs, mintInputs, registrationInputs, transferInputs, withdrawInputs } from "../src/eerc/inputs.js";
import { publicKeyOf } from "../src/eerc/keys.js";
import { Prover } from "../src/eerc/prover.js";
import { median, percentile, round, rssMB, writeResults } from "./report.js";

/** A fresh, valid input for each proof, so no run is served from a cache. */
function randomInput(name: CircuitName): Record<string, unknown> {
  const sk = randomScalar();
  const pk = publicKeyOf(sk);
  const auditorPk = publicKeyOf(randomScalar());
  const receiverPk = publicKeyOf(randomScalar());
  const balance = 1_000_000_000n + BigInt(Math.floor(Math.random() * 1e6));
  const value = 1n + BigInt(Math.floor(Math.random() * 1e6));
  const balanceCT = encryptElGamal(balance, pk).ct;
  switch (name) {
    case "registration":
      return registrationInputs({ sk, address: "0x70997970C51812dc3A010C7d01b50e0d17dc79C8", chainId: 31337n }).input;
    case "transfer":
      return transferInputs({ sk, value, balance, balanceCT, receiverPk, auditorPk }).input;
    case "withdraw":
      return withdrawInputs({ sk, value, balance, balanceCT, auditorPk }).input;
    case "mint":
      return mintInputs({ value, chainId: 31337n, receiverPk, auditorPk }).input;
    case "burn":
      return burnInputs({ sk, value, balance, balanceCT, auditorPk }).input;
  }
}

export type ProveBenchOptions = { runs: number; memoryRuns: number; baselineRuns: number; log: (line: string) => void };

export async function benchProve({ runs, memoryRuns, baselineRuns, log }: ProveBenchOptions) {
  const prover = new Prover();
  const circuits: Record<string, unknown> = {};
  try {
    for (const name of CIRCUIT_NAMES) {
      const a = circuitArtifacts(name);
      // The transfer circuit, the largest, also carries the long memory-stability run.
      const n = name === "transfer" ? Math.max(runs, memoryRuns) : runs;
      await prover.prove(name, randomInput(name) as never);
      const rssBefore = rssMB();
      const times: number[] = [];
      const verifyTimes: number[] = [];
      for (let i = 0; i < n; i++) {
        const input = randomInput(name);
        const t0 = performance.now();
        const result = await prover.prove(name, input as never);
        times.push(performance.now() - t0);
        const t1 = performance.now();
        if (!(await prover.verify(name, result))) throw new Error(`${name} proof did not verify`);
        verifyTimes.push(performance.now() - t1);
      }
      const rssGrowthMB = rssMB() - rssBefore;

      const baseline: number[] = [];
      for (let i = 0; i < baselineRuns; i++) {
        const input = randomInput(name);
        const t0 = performance.now();
        await snarkjs.groth16.fullProve(input, a.wasm, a.zkey);
        baseline.push(performance.now() - t0);
      }
      const row = {
        constraints: constraintCount(name),
        runs: n,
        medianMs: round(median(times)),
        p95Ms: round(percentile(times, 95)),
        verifyMedianMs: round(median(verifyTimes)),
        baselineRuns,
        baselineMedianMs: round(median(baseline)),
        baselineP95Ms: round(percentile(baseline, 95)),
        speedup: round(median(baseline) / median(times), 2),
        rssGrowthMB: round(rssGrowthMB),
        rssGrowthOverRuns: n,
      };
      circuits[name] = row;
      log(
        `${name.padEnd(12)} ${String(row.constraints).padStart(6)} constraints  prover median ${row.medianMs} ms, p95 ${row.p95Ms} ms (${n} proofs)  ` +
          `fullProve median ${row.baselineMedianMs} ms (${baselineRuns})  verify ${row.verifyMedianMs} ms  RSS growth ${row.rssGrowthMB} MB`,
      );
    }
  } finally {
    await prover.close();
  }
  const path = writeResults("prove.json", {
    targets: { transferMedianMs: 2000, rssGrowthMB: 50 },
    circuits,
  });
  log(`wrote ${path}`);
  return circuits;
}
