import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { fileURLToPath, pathToFileURL } from "node:url";
import { Worker } from "node:worker_threads";
import type { Address } from "viem";
import { type ApiErrorStatus, ApiInputError } from "../http/input.js";
import { type CheckedSubmission, checkSubmission } from "./submit-checks.js";

export type CheckTarget = { chainId: number; ledger: Address };
export type CheckRequest = { id: number; json: string; now: number; target: CheckTarget };
export type CheckResponse = { id: number } & (
  | { value: CheckedSubmission }
  | { inputError: { field: string; message: string; status: ApiErrorStatus } }
  | { failure: string }
);

/** Runs the chain-free checks of a usage submission (`checkSubmission`) on its JSON text. */
export type SubmissionChecker = (json: string, now: number, target: CheckTarget) => Promise<CheckedSubmission>;

/** The worker of the previous build of the API (`ponder dev` runs the API module again on each change). */
const PREVIOUS = Symbol.for("backendshield.submitWorker");

/** The module that loads submit-worker.ts through tsx's loader, as a data URL; undefined where tsx is not installed. */
function workerBoot(): URL | undefined {
  if (!import.meta.url.startsWith("file:")) return undefined;
  const worker = new URL("./submit-worker.ts", import.meta.url);
  let api: string;
  try {
    api = createRequire(import.meta.url)
      .resolve("tsx/esm/api")
      .replace(/\.cjs$/, ".mjs");
  } catch {
    return undefined;
  }
  if (!existsSync(api) || !existsSync(fileURLToPath(worker))) return undefined;
  const code = `import { register } from ${JSON.stringify(pathToFileURL(api).href)};\nregister();\nawait import(${JSON.stringify(worker.href)});\n`;
  return new URL(`data:text/javascript,${encodeURIComponent(code)}`);
}

/**
 * `checkSubmission` in a worker thread, so that the API's per-batch CPU (validating a thousand
 * records, their Merkle root, the signature) does not hold up the indexer on the event loop they
 * share. Where the worker cannot start (no tsx) or once it has died, the checks run on this
 * thread; `onFallback` says why.
 */
export function workerChecker(onFallback: (reason: string) => void = () => {}): SubmissionChecker {
  const pending = new Map<number, { request: CheckRequest; resolve: (v: CheckedSubmission) => void; reject: (e: unknown) => void }>();
  let nextId = 0;
  let worker: Worker | undefined;
  const fallBack = (reason: string) => {
    if (!worker) return;
    worker = undefined;
    onFallback(reason);
    // What the worker had not answered is checked here.
    for (const { request, resolve, reject } of pending.values())
      checkSubmission(request.json, request.now, request.target).then(resolve, reject);
    pending.clear();
  };

  (globalThis as Record<symbol, Worker | undefined>)[PREVIOUS]?.terminate();
  const boot = workerBoot();
  if (boot) {
    worker = new Worker(boot);
    (globalThis as Record<symbol, Worker | undefined>)[PREVIOUS] = worker;
    worker.unref();
    worker.on("message", (response: CheckResponse) => {
      const entry = pending.get(response.id);
      if (!entry) return;
      pending.delete(response.id);
      if ("value" in response) entry.resolve(response.value);
      else if ("inputError" in response)
        entry.reject(new ApiInputError(response.inputError.field, response.inputError.message, response.inputError.status));
      else entry.reject(new Error(response.failure));
    });
    worker.on("error", (err) => fallBack(`the usage check worker failed: ${err.message}`));
    worker.on("exit", (code) => fallBack(`the usage check worker exited (${code})`));
  } else {
    onFallback("tsx is not installed: usage submissions are checked on the API's thread");
  }

  return (json, now, target) => {
    if (!worker) return checkSubmission(json, now, target);
    // The text, not the parsed body: a string crosses to the worker without walking a thousand records.
    const request: CheckRequest = { id: nextId++, json, now, target };
    return new Promise<CheckedSubmission>((resolve, reject) => {
      pending.set(request.id, { request, resolve, reject });
      worker!.postMessage(request);
    });
  };
}
