import { readdirSync, readFileSync } from "node:fs";
import { ponder } from "ponder:registry";

/**
 * Every event the indexer has a handler for (`ponder.on` in its indexing files, src/*.ts) gets a
 * handler here that does nothing, so that Ponder fetches, stores and dispatches exactly what it
 * does for the indexer. The list is read from those files, so it cannot drift from them.
 */
const INDEXER_SRC = new URL("../../../src/", import.meta.url);

const events = readdirSync(INDEXER_SRC)
  .filter((name) => name.endsWith(".ts"))
  .flatMap((name) => [...readFileSync(new URL(name, INDEXER_SRC), "utf8").matchAll(/^ponder\.on\("([\w:]+)"/gm)].map((m) => m[1]!));
if (events.length === 0) throw new Error(`no ponder.on handlers found in ${INDEXER_SRC.pathname}`);

for (const name of new Set(events)) ponder.on(name as Parameters<typeof ponder.on>[0], async () => {});
