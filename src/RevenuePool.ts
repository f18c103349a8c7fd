import { ponder } from "ponder:registry";
import { poolFee } from "ponder:schema";
import { eventColumns, metaOf } from "./indexer/ledger.js";

ponder.on("RevenuePool:Transfer", async ({ event, context }) => {
  const meta = metaOf(event);
  await context.db.insert(poolFee).values({ id: event.id, from: event.args.from, amount: event.args.value, ...eventColumns(meta) });
});
