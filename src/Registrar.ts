import { ponder } from "ponder:registry";
import { account } from "ponder:schema";
import { eventColumns, metaOf } from "./indexer/ledger.js";

ponder.on("Registrar:Register", async ({ event, context }) => {
  const { user, publicKey } = event.args;
  await context.db.insert(account).values({
    address: user,
    publicKey: [publicKey.x, publicKey.y],
    ...eventColumns(metaOf(event)),
  });
});
