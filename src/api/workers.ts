import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { fileURLToPath, pathToFileURL } from "node:url";
import { parentPort, Worker } from "node:worker_threads";
import type { Address, Hex } from "viem";
import { type ApiErrorStatus, ApiInputError } from "../http/input.js";
import type { LineDecryptor } from "../payout/indexed-ledger.js";
import { type DecryptedLine, decryptLinesFor } from "../usage/lines.js";
import { type CheckedSubmission, checkSubmission } from "./submit-checks.js";

// The API shares its event loop with the indexer: CPU it spends there (checking a thousand
// records, decrypting usage lines) holds up indexing and every GraphQL answer. These run it in
// worker threads instead, each loaded through tsx; where tsx is missing or a worker dies, the
// work runs on this thread and `onFallback` says why.

type Request<P> = { id: number; payload: P };
type Response<R> = { id: number } & (
  | { value: R }
  | { inputError: { field: string; message: string; status: ApiErrorStatus } }
  | { failure: string }
);

/** The module that loads `module` through tsx's loader, as a data URL; undefined where tsx is not installed. */
function workerBoot(module: URL): URL | undefined {
  if (!module.href.startsWith("file:")) return undefined;
  let api: string;
  try {
    api = createRequire(import.meta.url)
      .resolve("tsx/esm/api")
      .replace(/\.cjs$/, ".mjs");
  } catch {
    return undefined;
  }
  if (!existsSync(api) || !existsSync(fileURLToPath(module))) return undefined;
  const code = `import { register } from ${JSON.stringify(pathToFileURL(api).href)};\nregister();\nawait import(${JSON.stringify(module.href)});\n`;
  return new URL(`data:text/javascript,${encodeURIComponent(code)}`);
}

/**
 * `inline` run in a worker thread started from `module` (which calls `serveRequests`). `name`
 * identifies the worker across builds: `ponder dev` runs the API module again on each change, and
 * the previous build's worker is stopped.
 */
function inWorker<P, R>(name: string, module: URL, inline: (payload: P) => Promise<R>, onFallback: (reason: string) => void) {
  const previous = Symbol.for(`backendshield.worker.${name}`);
  const pending = new Map<number, { payload: P; resolve: (v: R) => void; reject: (e: unknown) => void }>();
  let nextId = 0;
  let worker: Worker | undefined;
  const fallBack = (reason: string) => {
    if (!worker) return;
    worker = undefined;
    onFallback(reason);
    // What the worker had not answered runs here.
    for (const { payload, resolve, reject } of pending.values()) inline(payload).then(resolve, reject);
    pending.clear();
  };

  const global = globalThis as Record<symbol, Worker | undefined>;
  global[previous]?.terminate();
  const boot = workerBoot(module);
  if (boot) {
    worker = new Worker(boot);
    global[previous] = worker;
    worker.unref();
    worker.on("message", (response: Response<R>) => {
      const entry = pending.get(response.id);
      if (!entry) return;
      pending.delete(response.id);
      if ("value" in response) entry.resolve(response.value);
      else if ("inputError" in response)
        entry.reject(new ApiInputError(response.inputError.field, response.inputError.message, response.inputError.status));
      else entry.reject(new Error(response.failure));
    });
    worker.on("error", (err) => fallBack(`the ${name} worker failed: ${err.message}`));
    worker.on("exit", (code) => fallBack(`the ${name} worker exited (${code})`));
  } else {
    onFallback(`tsx is not installed: ${name} runs on the API's thread`);
  }

  return (payload: P): Promise<R> => {
    if (!worker) return inline(payload);
    const id = nextId++;
    return new Promise<R>((resolve, reject) => {
      pending.set(id, { payload, resolve, reject });
      worker!.postMessage({ id, payload } satisfies Request<P>);
    });
  };
}

/** In a worker module: answers each request with `handler`, passing input errors on as such. */
export function serveRequests<P, R>(handler: (payload: P) => Promise<R> | R): void {
  parentPort?.on("message", async ({ id, payload }: Request<P>) => {
    let response: Response<R>;
    try {
      response = { id, value: await handler(payload) };
    } catch (err) {
      response =
        err instanceof ApiInputError
          ? { id, inputError: { field: err.field, message: err.message, status: err.status } }
          : { id, failure: err instanceof Error ? err.message : String(err) };
    }
    parentPort?.postMessage(response);
  });
}

export type CheckTarget = { chainId: number; ledger: Address };
export type CheckPayload = { json: string; now: number; target: CheckTarget };

/** Runs the chain-free checks of a usage submission (`checkSubmission`) on its JSON text. */
export type SubmissionChecker = (json: string, now: number, target: CheckTarget) => Promise<CheckedSubmission>;

/** `checkSubmission` in a worker thread (`submit-worker.ts`): validation, the records' Merkle root, the signer. */
export function workerChecker(onFallback: (reason: string) => void = () => {}): SubmissionChecker {
  const run = inWorker<CheckPayload, CheckedSubmission>(
    "usage check",
    new URL("./submit-worker.ts", import.meta.url),
    ({ json, now, target }) => checkSubmission(json, now, target),
    onFallback,
  );
  // The text, not the parsed body: a string crosses to the worker without walking a thousand records.
  return (json, now, target) => run({ json, now, target });
}

export type DecryptPayload = { encryptedLines: Hex; sk: bigint; options: Parameters<LineDecryptor>[2] };

export const decryptOperatorLines = ({ encryptedLines, sk, options }: DecryptPayload): DecryptedLine[] =>
  decryptLinesFor(encryptedLines, sk, "operator", options);

/** The operator's decryption of usage lines in a worker thread (`decrypt-worker.ts`), for the API's payout ledger. */
export function workerDecryptor(onFallback: (reason: string) => void = () => {}): LineDecryptor {
  const run = inWorker<DecryptPayload, DecryptedLine[]>(
    "line decryption",
    new URL("./decrypt-worker.ts", import.meta.url),
    async (payload) => decryptOperatorLines(payload),
    onFallback,
  );
  return (encryptedLines, sk, options) => run({ encryptedLines, sk, options });
}
