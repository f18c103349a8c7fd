import { performance } from "node:perf_hooks";
import * as reference from "@zk-kit/poseidon-cipher";
import { poseidon3, poseidon4 } from "poseidon-lite";
import { mulBase, mulFixedPoint, mulPoint, type Point, randomScalar } from "../src/eerc/curve.js";
import { decryptPCT, encryptPCT } from "../src/eerc/pct.js";
import { poseidonDecrypt, poseidonEncrypt, poseidonHash, poseidonPermutation } from "../src/eerc/poseidon.js";
import { decryptLinesFor, encryptLines, type UsageLine } from "../src/usage/lines.js";
import { median, round, writeResults } from "./report.js";

export type LinesBenchOptions = { runs: number; log: (line: string) => void };

/** Median milliseconds of `fn` over `runs` calls, after a warm-up of a tenth of them. */
function timed(runs: number, fn: (i: number) => unknown): number {
  for (let i = 0; i < Math.max(5, runs / 10); i++) fn(i);
  const samples: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t = performance.now();
    fn(i);
    samples.push(performance.now() - t);
  }
  return round(median(samples), 3);
}

/**
 * What reading and writing usage lines costs, and its primitives against the reference
 * implementations measured in the same run: the Poseidon permutation, hash and cipher
 * (`@zk-kit/poseidon-cipher`, `poseidon-lite`), and a long-lived key's multiplication
 * (`mulFixedPoint` against `mulPoint`). A batch is five providers' lines, padded to eight.
 */
export async function benchLines({ runs, log }: LinesBenchOptions): Promise<void> {
  const key = (): { sk: bigint; pk: Point } => {
    const sk = randomScalar();
    return { sk, pk: mulBase(sk) };
  };
  const [provider, operator, auditor] = [key(), key(), key()];
  const state = (i: number) => [0n, 1n, 2n, BigInt(i)];
  const shared = mulBase(randomScalar());
  const message = [11n, 22n, 33n];
  const ciphertext = poseidonEncrypt(message, shared, 5n);

  const compare = (name: string, referenceFn: (i: number) => unknown, oursFn: (i: number) => unknown) => {
    const before = timed(runs, referenceFn);
    const after = timed(runs, oursFn);
    log(`  ${name}: ${before} ms (reference) -> ${after} ms (${round(before / after, 2)}x)`);
    return { referenceMs: before, ms: after, speedup: round(before / after, 2) };
  };
  const primitives = {
    permutationT4: compare(
      "Poseidon permutation, t=4",
      (i) => reference.poseidonPerm(state(i)),
      (i) => poseidonPermutation(state(i)),
    ),
    hash3: compare(
      "Poseidon hash of 3",
      (i) => poseidon3([1n, 2n, BigInt(i)]),
      (i) => poseidonHash([1n, 2n, BigInt(i)]),
    ),
    hash4: compare(
      "Poseidon hash of 4",
      (i) => poseidon4([1n, 2n, 3n, BigInt(i)]),
      (i) => poseidonHash([1n, 2n, 3n, BigInt(i)]),
    ),
    cipherEncrypt: compare(
      "Poseidon cipher, encrypt 3",
      (i) => reference.poseidonEncrypt(message, shared, BigInt(i)),
      (i) => poseidonEncrypt(message, shared, BigInt(i)),
    ),
    cipherDecrypt: compare(
      "Poseidon cipher, decrypt 3",
      () => reference.poseidonDecrypt(ciphertext, shared, 5n, 3),
      () => poseidonDecrypt(ciphertext, shared, 5n, 3),
    ),
    longLivedKey: compare(
      "a long-lived key times a scalar",
      () => mulPoint(auditor.pk, randomScalar()),
      () => mulFixedPoint(auditor.pk, randomScalar()),
    ),
  };

  const ids = Array.from({ length: 5 }, (_, i) => `0x${(i + 1).toString(16).padStart(64, "0")}` as const);
  const lines: UsageLine[] = ids.map((providerId, i) => ({
    providerId,
    calls: BigInt(10 + i),
    billableCalls: BigInt(5 + i),
    amountMicro: BigInt(50 + i),
    revenueMicro: BigInt(55 + i),
  }));
  const keys = { operatorPk: operator.pk, auditorPk: auditor.pk, providerPk: () => provider.pk };
  const batches = Array.from({ length: Math.max(20, runs / 5) }, () => encryptLines(lines, keys));
  const per = (fn: (batch: `0x${string}`) => unknown) => timed(batches.length, (i) => fn(batches[i % batches.length]!));
  const batch = {
    linesPerBatch: lines.length,
    encryptMs: timed(batches.length, () => encryptLines(lines, keys)),
    operatorDecryptMs: per((b) => decryptLinesFor(b, operator.sk, "operator", { verify: [{ role: "auditor", pks: [auditor.pk] }] })),
    auditorDecryptMs: per((b) => decryptLinesFor(b, auditor.sk, "auditor", { verify: [{ role: "operator", pks: [operator.pk] }] })),
    providerDecryptMs: per((b) => decryptLinesFor(b, provider.sk, "provider")),
  };
  const pct = encryptPCT(1_000_000n, provider.pk).pct;
  const amount = {
    pctEncryptMs: timed(runs, () => encryptPCT(1_000_000n, auditor.pk)),
    pctDecryptMs: timed(runs, () => decryptPCT(pct, provider.sk)),
  };
  log(`  a batch of ${lines.length} lines: ${JSON.stringify(batch)}`);
  log(`  an amount (PCT): ${JSON.stringify(amount)}`);
  const path = writeResults("lines.json", { runs, primitives, batch, amount });
  log(`  wrote ${path}`);
}
