import type { Address } from "viem";
import { byChainPosition } from "../../src/chain/position.js";
import {
  type CommittedBatch,
  decryptProviderUsage,
  type ProviderRef,
  type ProviderUsageReport,
  type UsageTotals,
} from "../../src/history/usage.js";
import type { IndexerClient } from "../../src/indexer-client/client.js";
import type { UsageAnswer, UsageJob } from "./usage-worker.js";

/**
 * The provider's usage, decrypted in the page a slice at a time. A reader finds its lines by trial
 * decryption, one curve multiplication per padded line of every batch: a year of hourly batches is
 * tens of thousands of them, seconds of work. The scan reads the committed batches page by page,
 * decrypts the first slices itself (up to the first page of the usage table), then hands the
 * rest to workers (`usage-worker.ts`, one per core: the multiplications run in parallel and the
 * page stays responsive), takes their answers in chain order and shows the
 * batches decrypted so far; the report it fills is `decryptProviderUsage`'s over every batch once
 * `done`. Where module workers cannot start (a page opened from a file, say), the page decrypts the
 * slices itself, yielding between them. The workers hold the key while they run and are ended
 * with the scan.
 */
export type UsageScan = {
  /** What the batches decrypted so far hold; the whole report (in chain order) once `done`. */
  report: ProviderUsageReport;
  /** Batches decrypted, and batches read from the API so far. */
  scanned: number;
  read: number;
  /** Every committed batch read and decrypted. */
  done: boolean;
  /** Why the scan stopped before the end (the API failed, say). */
  error: string | null;
  /** Stops the scan (the account is disconnected, or the view reloaded). */
  cancel(): void;
};

/** Batches per slice: a few tens of milliseconds of decryption. */
const SLICE_BATCHES = 16;
/** The page is told of progress at most this often. */
const NOTIFY_MS = 500;

/** Adds `l`'s totals into `t`, field by field (every field of UsageTotals is a bigint count or amount). */
const addTotals = (t: UsageTotals, l: UsageTotals) => {
  for (const k of Object.keys(t) as (keyof UsageTotals)[]) t[k] += l[k];
};
const yieldToPage = () => new Promise<void>((resolve) => setTimeout(resolve, 0));

type Decrypt = (batches: CommittedBatch[]) => Promise<ProviderUsageReport>;

/** What the scan uses of the browser's Worker (declared here: this module is also type-checked without the DOM library). */
type UsageWorker = {
  onmessage: ((event: { data: UsageAnswer }) => void) | null;
  onerror: ((event: { message: string; preventDefault(): void }) => void) | null;
  postMessage(message: UsageJob): void;
  terminate(): void;
};
declare const Worker: new (url: URL, options: { type: "module" }) => UsageWorker;

/** A worker decrypting slices; null when this page cannot start one. */
function startWorker(job: Omit<UsageJob, "id" | "batches">): { decrypt: Decrypt; stop(): void } | null {
  let worker: UsageWorker;
  try {
    worker = new Worker(new URL("./usage-worker.ts", import.meta.url), { type: "module" });
  } catch {
    return null;
  }
  const waiting = new Map<number, { resolve(r: ProviderUsageReport): void; reject(e: Error): void }>();
  let next = 0;
  // Once failed (its script refused, say) or stopped, the worker takes no more slices.
  let dead: string | null = null;
  const failAll = (message: string) => {
    dead = message;
    for (const w of waiting.values()) w.reject(new WorkerFailed(message));
    waiting.clear();
  };
  worker.onmessage = (event) => {
    const answer = event.data;
    const w = waiting.get(answer.id);
    waiting.delete(answer.id);
    if ("error" in answer) w?.reject(new Error(answer.error));
    else w?.resolve(answer.report);
  };
  worker.onerror = (event) => {
    event.preventDefault();
    failAll(event.message || "the usage worker failed to start");
  };
  return {
    decrypt: (batches) =>
      new Promise((resolve, reject) => {
        if (dead !== null) return reject(new WorkerFailed(dead));
        const id = next++;
        waiting.set(id, { resolve, reject });
        worker.postMessage({ id, ...job, batches } satisfies UsageJob);
      }),
    stop: () => {
      worker.terminate();
      failAll("stopped");
    },
  };
}

/** A worker that could not run (its script refused, say): its slice is decrypted in the page instead. */
class WorkerFailed extends Error {}

/**
 * Starts the scan and resolves once `firstRows` usage rows are decrypted (a table's first page) or
 * every batch is, whichever comes first; `onProgress` is called as it goes on, and once when done.
 */
export async function scanUsage(args: {
  client: IndexerClient;
  account: Address;
  sk: bigint;
  providers: readonly ProviderRef[];
  firstRows: number;
  onProgress: (scan: UsageScan) => void;
}): Promise<UsageScan> {
  const job = { account: args.account, sk: args.sk, providers: [...args.providers] };
  const inPage: Decrypt = async (batches) => {
    await yieldToPage();
    return decryptProviderUsage({ ...job, batches });
  };
  const cores = Math.max(1, Math.min(8, globalThis.navigator?.hardwareConcurrency ?? 1));
  let workers: ({ decrypt: Decrypt; stop(): void } | null)[] = [];
  const stopWorkers = () => {
    for (const w of workers) w?.stop();
  };

  const byProvider = new Map<string, ProviderUsageReport["byProvider"][number]>();
  let cancelled = false;
  const scan: UsageScan = {
    report: decryptProviderUsage({ ...job, batches: [] }),
    scanned: 0,
    read: 0,
    done: false,
    error: null,
    cancel: () => {
      cancelled = true;
      stopWorkers();
      wake();
    },
  };
  let rows = 0;
  let shown = false;
  let firstShown: () => void = () => {};
  const firstPage = new Promise<void>((resolve) => {
    firstShown = () => {
      shown = true;
      resolve();
    };
  });

  const merge = (one: ProviderUsageReport, batches: number) => {
    scan.scanned += batches;
    const report = scan.report;
    report.batches.push(...one.batches);
    report.copyMismatches.push(...one.copyMismatches);
    for (const p of one.byProvider) {
      const key = p.providerId.toLowerCase();
      const t = byProvider.get(key);
      if (t) addTotals(t, p);
      else byProvider.set(key, { ...p });
    }
    addTotals(report.total, one.total);
    rows += one.batches.reduce((n, b) => n + b.lines.length, 0);
  };
  const publish = () => {
    scan.report = {
      ...scan.report,
      batchesScanned: scan.scanned,
      byProvider: [...byProvider.values()].sort((a, b) => ((a.namespace ?? a.providerId) < (b.namespace ?? b.providerId) ? -1 : 1)),
    };
  };

  // Slices in chain order; their answers are merged in that order whatever order they come back in.
  const slices: CommittedBatch[][] = [];
  const answers = new Map<number, ProviderUsageReport>();
  let taken = 0;
  let merged = 0;
  let reading = true;
  let lastNotified = performance.now();
  // Lanes with nothing to do wait here until the reader brings more slices or is done.
  let waiting: (() => void)[] = [];
  const wake = () => {
    const woken = waiting;
    waiting = [];
    for (const w of woken) w();
  };
  const more = () => new Promise<void>((resolve) => waiting.push(resolve));
  const mergeReady = () => {
    while (answers.has(merged)) {
      merge(answers.get(merged)!, slices[merged]!.length);
      answers.delete(merged);
      slices[merged] = [];
      merged++;
    }
    if (rows >= args.firstRows) firstShown();
    if (performance.now() - lastNotified >= NOTIFY_MS) {
      publish();
      args.onProgress(scan);
      lastNotified = performance.now();
    }
  };
  const lane = async (decrypt: Decrypt, untilShown = false) => {
    while (!cancelled && !(untilShown && shown)) {
      if (taken === slices.length) {
        if (!reading) return;
        await more();
        continue;
      }
      const index = taken++;
      let answer: ProviderUsageReport;
      try {
        answer = await decrypt(slices[index]!);
      } catch (e) {
        if (!(e instanceof WorkerFailed) || cancelled) throw e;
        answer = await inPage(slices[index]!);
      }
      answers.set(index, answer);
      mergeReady();
    }
  };
  const read = async () => {
    for await (const page of args.client.usageBatchPages()) {
      if (cancelled) return;
      scan.read += page.length;
      for (let i = 0; i < page.length; i += SLICE_BATCHES) slices.push(page.slice(i, i + SLICE_BATCHES));
      wake();
    }
  };

  const run = async () => {
    const reader = read().finally(() => {
      reading = false;
      wake();
    });
    // The page decrypts the first slices itself, up to the table's first page: starting a worker
    // (loading and compiling its bundle) would delay it. The workers then take the rest.
    const rest = lane(inPage, true).then(() => {
      if (cancelled || (!reading && taken === slices.length)) return;
      workers = typeof Worker === "function" ? Array.from({ length: cores }, () => startWorker(job)) : [];
      const started = workers.filter((w) => w !== null).map((w) => w.decrypt);
      return Promise.all((started.length > 0 ? started : [inPage]).map((l) => lane(l)));
    });
    await Promise.all([reader, rest]);
    if (cancelled) return;
    scan.report.batches.sort(byChainPosition);
    publish();
    scan.done = true;
    args.onProgress(scan);
  };
  void run()
    .catch((e: unknown) => {
      // Stopped by the page: not an error. Otherwise the other lanes stop too, and the page is told why.
      if (cancelled) return;
      cancelled = true;
      scan.error = e instanceof Error ? e.message : String(e);
      publish();
      args.onProgress(scan);
    })
    .finally(() => {
      stopWorkers();
      firstShown();
    });
  await firstPage;
  if (scan.error !== null && scan.scanned === 0) throw new Error(scan.error);
  publish();
  return scan;
}
