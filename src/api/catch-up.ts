import type { MiddlewareHandler } from "hono";
import { BaseError } from "../errors.js";
import { IndexerClient } from "../indexer-client/client.js";
import { type IndexedHead, indexedHead } from "../payout/facts.js";

/**
 * The indexer has not yet indexed, since this process started, through the chain's block of that
 * moment: after a restart Ponder indexes its last blocks again, and its rows lack what they held
 * before it.
 */
export class IndexerCatchingUpError extends BaseError {
  readonly code = "INDEXER_CATCHING_UP";
  constructor(
    readonly head: bigint,
    readonly target: bigint,
  ) {
    super(
      `the indexer has not yet indexed, since it started, through block ${target} (it is at block ${head}); ` +
        "try again in a few seconds",
    );
  }
}

/** What the gate reads of the indexer process it runs in, and of the chain. */
export type IndexerProgress = {
  /** `/status`: the indexed head, or null before anything is indexed. */
  head(): Promise<IndexedHead | null>;
  /** `ponder_indexing_timestamp`: the block time through which this process has indexed events; null when it has not. */
  indexingTimestamp(): Promise<bigint | null>;
  /** Ponder's `/ready`. */
  ready(): Promise<boolean>;
  /** The chain's latest block. */
  chainHead(): Promise<bigint>;
};

/** How often the gate looks at the indexer from the start until it opens. */
const WATCH_MS = 250;

/**
 * Holds the indexed reads back until the indexer has caught up since it started.
 *
 * On start Ponder undoes the rows after its last finalized block and indexes those blocks again;
 * meanwhile `/ready` answers 200 and `/status` still gives the head of before the restart, until
 * the process writes its own (`/status` then drops to the block it has reached, and climbs). For
 * those seconds a read would find a registered account unknown, a history short or a pending
 * amount wrong, under a head that says they are complete.
 *
 * The gate watches `/status` from the start and opens once the head is at or past the chain's
 * head of its first look (`target`) and is this process's own: past the target (the head of
 * before the restart was at most the target), changed since its first look (only this process
 * writes it), or at the block time through which this process has indexed events, on two looks
 * around that reading. Then it stays open: Ponder recovers from a crash only when it starts. A
 * first look with nothing indexed is a fresh start, open at once. A `ponder serve` replica indexes
 * nothing and cannot tell: it is not held (docs/operations.md).
 */
export function catchUpGate(progress: IndexerProgress, onError: (reason: string) => void = () => {}) {
  let open = false;
  let target: bigint | null = null;
  let first: bigint | null = null;
  let changed = false;
  let lastError = "";
  /** Whether the process's own port has answered: until it does, its errors are expected. */
  let reached = false;

  const look = async (): Promise<void> => {
    target ??= await progress.chainHead();
    const head = await progress.head();
    reached = true;
    if (!head) {
      if (first === null) open = true;
      return;
    }
    if (first === null) first = head.number;
    else if (head.number !== first) changed = true;
    if (head.number < target) throw new IndexerCatchingUpError(head.number, target);
    if (head.number > target || changed) {
      open = true;
      return;
    }
    const through = await progress.indexingTimestamp();
    if (through === null) {
      // A `ponder serve` replica indexes nothing (and is ready); a `ponder start` that has not begun is not.
      if (await progress.ready()) open = true;
      else throw new IndexerCatchingUpError(head.number, target);
      return;
    }
    const again = await progress.head();
    if (through >= head.timestamp && again?.number === head.number) open = true;
    else throw new IndexerCatchingUpError(head.number, target);
  };

  let looking: Promise<void> | null = null;
  /** Throws `IndexerCatchingUpError` until the indexer has caught up since it started. */
  const check = (): Promise<void> => {
    if (open) return Promise.resolve();
    looking ??= look()
      .catch((e: unknown) => {
        if (e instanceof IndexerCatchingUpError) throw e;
        // An unreadable chain or indexer does not hold reads back (nor does the gate open).
        const reason = `the catch-up check could not read the indexer's progress: ${e instanceof Error ? e.message : String(e)}`;
        if (reached && reason !== lastError) onError(reason);
        lastError = reason;
      })
      .finally(() => {
        looking = null;
      });
    return looking;
  };

  // Looks from the start, so that the head of before a restart is seen before this process writes its own.
  const watch = setInterval(() => {
    if (open) clearInterval(watch);
    else if (!looking) check().catch(() => {});
  }, WATCH_MS);
  watch.unref();

  /** Answers 503 with `Retry-After` until the indexer has caught up. */
  const middleware: MiddlewareHandler = async (c, next) => {
    try {
      await check();
    } catch (e) {
      if (!(e instanceof IndexerCatchingUpError)) throw e;
      c.header("Retry-After", "2");
      return c.json({ error: { field: null, message: e.message } }, 503);
    }
    await next();
  };
  return { check, middleware, stop: () => clearInterval(watch) };
}

/** The progress of the indexer process whose port is `self`, and of the chain. */
export function selfProgress(self: string, chain: { getBlockNumber(): Promise<bigint> }): IndexerProgress {
  const status = new IndexerClient(self);
  return {
    head: async () => (Object.keys(await status.indexedHeads()).length === 0 ? null : indexedHead(status)),
    indexingTimestamp: async () => {
      const res = await fetch(`${self}/metrics`, { signal: AbortSignal.timeout(5_000) });
      if (!res.ok) throw new Error(`the indexer's /metrics answered ${res.status}`);
      const through = [...(await res.text()).matchAll(/^ponder_indexing_timestamp\{[^}]*\} (\d+)$/gm)].map((m) => BigInt(m[1]!));
      return through.length === 0 ? null : through.reduce((a, b) => (b < a ? b : a));
    },
    ready: async () => (await fetch(`${self}/ready`, { signal: AbortSignal.timeout(5_000) })).status === 200,
    chainHead: () => chain.getBlockNumber(),
  };
}
