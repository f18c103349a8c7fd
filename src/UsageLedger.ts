import { ponder } from "ponder:registry";
import { encryptedUsageLine, serverAuthorisation, serverBinding, usageCommitment, usageServer } from "ponder:schema";
import { eventColumns, metaOf } from "./indexer/ledger.js";
import { splitEncryptedLines } from "./indexer/usage.js";
import { batchHash } from "./usage/batch.js";

ponder.on("UsageLedger:ServerAuthorisationChanged", async ({ event, context }) => {
  const meta = metaOf(event);
  const { server, authorised } = event.args;
  await context.db.insert(serverAuthorisation).values({ id: event.id, server, authorised, ...eventColumns(meta) });
  await context.db
    .insert(usageServer)
    .values({ server, authorised, ...eventColumns(meta) })
    .onConflictDoUpdate({ authorised, ...eventColumns(meta) });
});

ponder.on("UsageLedger:ServerProviderBound", async ({ event, context }) => {
  const { server, providerId, bound, maxCallsPerBatch, maxCallsPerPeriod } = event.args;
  await context.db
    .insert(serverBinding)
    .values({ id: event.id, server, providerId, bound, maxCallsPerBatch, maxCallsPerPeriod, ...eventColumns(metaOf(event)) });
});

ponder.on("UsageLedger:UsageCommitted", async ({ event, context }) => {
  const meta = metaOf(event);
  const { server, batchId, periodStart, periodEnd, merkleRoot, encryptedLines } = event.args;
  const lines = splitEncryptedLines(encryptedLines);
  await context.db.insert(usageCommitment).values({
    server,
    batchId,
    periodStart,
    periodEnd,
    merkleRoot,
    encryptedLines,
    batchHash: batchHash({ server, batchId, periodStart, periodEnd, merkleRoot, encryptedLines }),
    lineCount: lines?.length ?? null,
    ...eventColumns(meta),
  });
  if (lines && lines.length > 0) {
    await context.db
      .insert(encryptedUsageLine)
      .values(lines.map((line) => ({ server, batchId, ...line, blockNumber: meta.blockNumber, logIndex: meta.logIndex })));
  }
});
