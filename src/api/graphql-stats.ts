import type { db as ApiDb } from "ponder:api";
import { sql } from "ponder";
import { summarize } from "../errors.js";
import { type GraphqlCatalog, PONDER_MAX_LIMIT, type StoreStats } from "./graphql-limits.js";
import { apiLogger } from "./log.js";

type Db = typeof ApiDb;

/** How long counted rows and measured widths are used before they are read again. */
export const STORE_STATS_TTL_MS = 2_000;

/**
 * Blocks a reorg may replace: widths are measured again over the rows of the last this many
 * blocks before the newest one measured, so rows a reorg brings in below it are seen too.
 */
const REORG_MARGIN_BLOCKS = 256n;

/**
 * What the store holds, for the GraphQL cost (`StoreStats`), read in one statement at most every
 * `ttlMs` while requests come: each table's rows, counted up to `PONDER_MAX_LIMIT` + 1 (never a
 * whole large table), and the widest value of each variable-width column. Widths only grow: each
 * read measures the rows of the newest blocks and keeps the largest value seen. When a read
 * fails, the last one stands for another `ttlMs` (none at first: every list then counts its whole
 * `limit`, every variable-width column as unmeasured).
 */
export function storeStats(
  db: Db,
  schema: Record<string, unknown>,
  catalog: GraphqlCatalog,
  options: { ttlMs?: number } = {},
): () => Promise<StoreStats> {
  const ttlMs = options.ttlMs ?? STORE_STATS_TTL_MS;
  const cap = PONDER_MAX_LIMIT + 1;
  // The schema's tables: the catalog also knows Ponder's `_meta`, which is no table.
  const tables = Object.keys(catalog.tables).filter((name) => schema[name] !== undefined);
  const widest: Record<string, number> = {};
  const since: Record<string, bigint> = {};
  let current: { stats: StoreStats; at: number } = { stats: { rows: {}, widest: {} }, at: Number.NEGATIVE_INFINITY };
  let reading: Promise<StoreStats> | undefined;
  const log = apiLogger("graphql");

  const read = async (): Promise<StoreStats> => {
    const parts = tables.map(
      (name) =>
        sql`SELECT ${name}::text AS k, count(*)::bigint AS n, NULL::numeric AS b FROM (SELECT 1 FROM ${schema[name]} LIMIT ${cap}) s`,
    );
    for (const name of tables) {
      const table = schema[name] as Record<string, unknown>;
      for (const key of catalog.tables[name]!.variable) {
        const column = table[key.split(".")[1]!];
        parts.push(
          sql`SELECT ${key}::text AS k, coalesce(max(octet_length(${column})), 0)::bigint AS n, max(${table.blockNumber})::numeric AS b FROM ${table} WHERE ${table.blockNumber} >= ${(since[key] ?? 0n).toString()}`,
        );
      }
    }
    const result = (await db.execute(sql.join(parts, sql` UNION ALL `))) as unknown as {
      rows: { k: string; n: string | number | bigint; b: string | number | bigint | null }[];
    };
    const rows: Record<string, number> = {};
    for (const r of result.rows) {
      if (r.k.includes(".")) {
        // A hex string in JSON: its characters and two quotes.
        widest[r.k] = Math.max(widest[r.k] ?? 0, Number(r.n) + 2);
        if (r.b !== null) since[r.k] = BigInt(r.b) > REORG_MARGIN_BLOCKS ? BigInt(r.b) - REORG_MARGIN_BLOCKS : 0n;
      } else rows[r.k] = Number(r.n);
    }
    return { rows, widest: { ...widest } };
  };

  return async () => {
    if (performance.now() - current.at < ttlMs) return current.stats;
    reading ??= read()
      .then((stats) => {
        current = { stats, at: performance.now() };
        return stats;
      })
      .catch((e: unknown) => {
        log.warn({ code: summarize(e).code }, `the store's rows could not be counted for the GraphQL limits: ${summarize(e).message}`);
        current = { stats: current.stats, at: performance.now() };
        return current.stats;
      })
      .finally(() => {
        reading = undefined;
      });
    return reading;
  };
}
