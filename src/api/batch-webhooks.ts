import type { db as ApiDb } from "ponder:api";
import { usageCommitment } from "ponder:schema";
import { and, asc, desc, eq, gt, or } from "ponder";
import { summarize } from "../errors.js";
import type { Logger } from "../log.js";
import type { Notifier } from "../notify/webhooks.js";

type Db = typeof ApiDb;

type Position = { blockNumber: bigint; logIndex: number };

/**
 * Sends `batch.committed` for every usage batch the indexer stores once it is ready: server, batch
 * id, period, padded line count, block and transaction (never a line's content). Batches already
 * indexed when it starts are not reported; a batch seen again after a reorg is reported again
 * under the same id (`batch.committed:<server>:<batchId>`), which receivers drop as a repeat.
 */
export function watchCommittedBatches(args: {
  db: Db;
  notifier: Notifier;
  /** Whether the indexer has caught up (Ponder's /ready): history is not reported as news. */
  ready: () => Promise<boolean>;
  log: Logger;
  intervalMs?: number;
}): { stop(): void; notified(): number } {
  const { db, notifier, log } = args;
  let cursor: Position | null = null;
  let notified = 0;
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;

  const poll = async () => {
    if (cursor === null) {
      if (!(await args.ready())) return;
      const [last] = await db
        .select({ blockNumber: usageCommitment.blockNumber, logIndex: usageCommitment.logIndex })
        .from(usageCommitment)
        .orderBy(desc(usageCommitment.blockNumber), desc(usageCommitment.logIndex))
        .limit(1);
      cursor = last ?? { blockNumber: -1n, logIndex: -1 };
      return;
    }
    const from: Position = cursor;
    const rows = await db
      .select({
        server: usageCommitment.server,
        batchId: usageCommitment.batchId,
        periodStart: usageCommitment.periodStart,
        periodEnd: usageCommitment.periodEnd,
        lineCount: usageCommitment.lineCount,
        blockNumber: usageCommitment.blockNumber,
        logIndex: usageCommitment.logIndex,
        txHash: usageCommitment.txHash,
      })
      .from(usageCommitment)
      .where(
        or(
          gt(usageCommitment.blockNumber, from.blockNumber),
          and(eq(usageCommitment.blockNumber, from.blockNumber), gt(usageCommitment.logIndex, from.logIndex)),
        ),
      )
      .orderBy(asc(usageCommitment.blockNumber), asc(usageCommitment.logIndex))
      .limit(500);
    for (const r of rows) {
      notifier.notify(
        "batch.committed",
        {
          server: r.server,
          batchId: r.batchId,
          periodStart: r.periodStart.toString(),
          periodEnd: r.periodEnd.toString(),
          lines: r.lineCount ?? null,
          blockNumber: r.blockNumber.toString(),
          txHash: r.txHash,
        },
        `batch.committed:${r.server}:${r.batchId}`,
      );
      notified += 1;
      cursor = { blockNumber: r.blockNumber, logIndex: r.logIndex };
    }
    if (rows.length > 0)
      log.info({ batches: rows.length, throughBlock: Number(cursor.blockNumber) }, "batch.committed notifications queued");
  };

  const loop = async () => {
    try {
      await poll();
    } catch (err) {
      log.warn({ code: summarize(err).code }, `committed batches could not be read: ${summarize(err).message}`);
    }
    if (!stopped) timer = setTimeout(loop, args.intervalMs ?? 1_000).unref();
  };
  void loop();
  return {
    stop() {
      stopped = true;
      clearTimeout(timer);
    },
    notified: () => notified,
  };
}
