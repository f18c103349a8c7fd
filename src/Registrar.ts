import { ponder } from "ponder:registry";
import { account, registration } from "ponder:schema";
import { eventColumns, metaOf } from "./indexer/ledger.js";

ponder.on("Registrar:Register", async ({ event, context }) => {
  const { user, publicKey } = event.args;
  // The audited Registrar lets an account register again with a new key: the latest one counts.
  const row = { publicKey: [publicKey.x, publicKey.y], ...eventColumns(metaOf(event)) };
  await context.db
    .insert(account)
    .values({ address: user, ...row })
    .onConflictDoUpdate(row);
  await context.db.insert(registration).values({ id: event.id, address: user, ...row });
});
