import { join } from "node:path";
import { pathToFileURL } from "node:url";
import type { db as ApiDb } from "ponder:api";
import type schema from "ponder:schema";
import type { Context, Hono } from "hono";
import type { SqlOverHttp } from "../config/api.js";
import { PROJECT_ROOT } from "../eerc/artifacts.js";
import { jsonBodyLimit } from "../http/input.js";
import { AdmissionGate, AdmissionRefusedError, GRAPHQL_ADMISSION } from "./graphql-gate.js";

type Db = typeof ApiDb;

type ReadPool = {
  connect(): Promise<{
    query(q: string | { text: string; values: unknown[] }): Promise<{ rows: unknown[]; fields: { name: string; dataTypeID: number }[] }>;
    release(): void;
  }>;
};

/**
 * Ponder's own SQL allow-list (the one its client middleware applies: one SELECT, no schema-qualified
 * name, no system catalogue, allow-listed functions only), loaded from the installed Ponder, which
 * does not export it.
 */
const ponderSqlParser = (): Promise<{ validateAllowableSQLQuery(sql: string): Promise<void> }> =>
  import(pathToFileURL(join(PROJECT_ROOT, "node_modules", "ponder", "dist", "esm", "utils", "sql-parse.js")).href);

/** Ponder refuses longer queries; the API says so before the parser runs. */
export const MAX_SQL_CHARS = 5_000;

/** `/sql/*` carries its query in the URL: a body is never read, and a large one is refused. */
export const MAX_SQL_BODY_BYTES = 1024;

/**
 * Relations the public API never serves: Ponder's bookkeeping (`_ponder_meta`, `_ponder_checkpoint`,
 * …), its reorg shadow tables (`_reorg_*`) and its RPC cache schema. Matched on the query's text,
 * case-insensitively, so a quoted or upper-case name is caught too; Unicode-escaped identifiers
 * (`U&"…"`) could spell any name and are refused with them. Ponder's parser already refuses a
 * schema-qualified name, a system catalogue and any function outside its allow-list.
 */
const INTERNAL_RELATION = /_ponder_|_reorg_|ponder_sync|u&\s*["']/i;

/** Ponder's own refusals, passed on as they are; any other message is replaced (it may name a file). */
const SAFE_MESSAGE =
  /^(?:[A-Za-z_]+ not supported|Invalid query|Multiple statements not supported|syntax error at [^\n/\\]{0,120}|(?:relation|column|operator|function) [^\n/\\]{0,160})$/;

const refuse = (c: Context, status: 400 | 403 | 404 | 405, message: string, field: string | null = "sql") =>
  c.json({ error: { field, message } }, status);

/**
 * Queries run one at a time: each may keep a Postgres backend busy up to the statement timeout,
 * and a few at once take every core the API shares. The next ones wait in arrival order (at most
 * 16, at most 10 s), more are answered 503 with Retry-After.
 */
export const SQL_ADMISSION = {
  concurrent: 1,
  queue: GRAPHQL_ADMISSION.queue,
  maxWaitMs: GRAPHQL_ADMISSION.maxWaitMs,
  heavyShare: 1,
  what: "SQL queries",
};

/** The client's query (superjson's `{ json: { sql, params } }`), or why it is unreadable. */
function readQuery(encoded: string): { sql: string; params: unknown[] } | string {
  let envelope: unknown;
  try {
    envelope = JSON.parse(encoded);
  } catch {
    return "must be JSON: a superjson-encoded { sql, params }, as @ponder/client sends it";
  }
  const json = (envelope as { json?: unknown } | null)?.json as { sql?: unknown; params?: unknown } | undefined;
  if (typeof json !== "object" || json === null || typeof json.sql !== "string")
    return "must be a superjson-encoded { sql, params }, as @ponder/client sends it";
  if (json.params !== undefined && !Array.isArray(json.params)) return "params must be an array";
  // Typed values (superjson's meta: bigint, Date…) are not decoded: send them as strings, Postgres casts them.
  const meta = (envelope as { meta?: unknown }).meta;
  if (meta !== undefined && meta !== null && Object.keys(meta as object).length > 0)
    return "typed parameters (superjson meta) are not supported: send them as strings";
  return { sql: json.sql, params: (json.params as unknown[] | undefined) ?? [] };
}

/**
 * Mounts `/sql/*`. Off (the default): every `/sql/` path answers 404. On (`API_SQL=1`, Postgres
 * only): `GET /sql/db` answers @ponder/client's queries — when the query is readable and short,
 * names none of Ponder's internal relations, passes Ponder's allow-list, returns at most `maxRows`
 * rows (a larger answer is refused, not cut) and ends within `statement_timeout`, set for its own
 * read-only transaction and run once, one query at a time (`SQL_ADMISSION`, or `gate`). Every
 * refusal is a 4xx `{ error: { field, message } }`, or 503 with Retry-After when too many queries
 * wait. Live queries (`/sql/live`, re-run on every indexed block) are not served.
 */
export function mountSql(app: Hono, deps: { db: Db; schema: typeof schema; settings: SqlOverHttp; gate?: AdmissionGate }): void {
  const { settings } = deps;
  const limit = jsonBodyLimit(MAX_SQL_BODY_BYTES);
  if (!settings.enabled) {
    app.all("/sql/*", limit, (c) => refuse(c, 404, "SQL over HTTP is off on this API (API_SQL=1 turns it on, with Postgres)", null));
    return;
  }
  const { timeoutMs, maxRows } = settings;
  // The API's read-only pool (its connections are read-only, on the indexer's schema). Queries run
  // here rather than through Ponder's client middleware, whose transactions retry a failed query up
  // to nine times with back-off: a query stopped by the timeout would run ten times.
  const pool = (deps.db as unknown as { $client: unknown }).$client as Partial<ReadPool>;
  if (typeof pool.connect !== "function") throw new Error("SQL over HTTP needs the API's Postgres pool");
  const reads = pool as ReadPool;
  const gate = deps.gate ?? new AdmissionGate(SQL_ADMISSION);

  /** Runs an admitted query once, in its own read-only transaction under the statement timeout. */
  const run = async (c: Context, query: { sql: string; params: unknown[] }) => {
    const connection = await reads.connect();
    try {
      await connection.query("BEGIN READ ONLY");
      await connection.query(`SET LOCAL statement_timeout = ${timeoutMs}`);
      // One row more than allowed tells a complete answer from a cut one.
      const result = await connection.query({
        text: `SELECT * FROM (\n${query.sql}\n) AS api_sql_rows LIMIT ${maxRows + 1}`,
        values: query.params,
      });
      await connection.query("COMMIT");
      if (result.rows.length > maxRows) return refuse(c, 400, `returns more than ${maxRows} rows: add a LIMIT of at most ${maxRows}`);
      return c.json({
        command: "SELECT",
        rowCount: result.rows.length,
        rows: result.rows,
        fields: result.fields.map((f) => ({ name: f.name, dataTypeID: f.dataTypeID })),
      });
    } catch (e) {
      await connection.query("ROLLBACK").catch(() => {});
      const message = e instanceof Error ? e.message.split("\n")[0]!.trim() : "";
      if (/statement timeout/.test(message)) return refuse(c, 400, `ran longer than ${timeoutMs} ms and was canceled`);
      return refuse(c, 400, SAFE_MESSAGE.test(message) ? message : "the query was refused");
    } finally {
      connection.release();
    }
  };

  app.all("/sql/*", limit, async (c) => {
    if (c.req.path === "/sql/live") return refuse(c, 404, "live queries are not served: poll GET /sql/db", null);
    if (c.req.path !== "/sql/db") return refuse(c, 404, `no route ${c.req.path}`, null);
    if (c.req.method !== "GET") return refuse(c, 405, "only GET", null);
    const encoded = c.req.query("sql");
    if (encoded === undefined) return refuse(c, 400, "is required: the superjson-encoded query");
    const query = readQuery(encoded);
    if (typeof query === "string") return refuse(c, 400, query);
    if (query.sql.length > MAX_SQL_CHARS) return refuse(c, 400, `must be at most ${MAX_SQL_CHARS} characters`);
    if (INTERNAL_RELATION.test(query.sql)) return refuse(c, 403, "reads only the indexed tables: Ponder's internal tables are not served");
    try {
      await (await ponderSqlParser()).validateAllowableSQLQuery(query.sql);
    } catch (e) {
      const message = e instanceof Error ? e.message.split("\n")[0]!.trim() : "";
      return refuse(c, 400, SAFE_MESSAGE.test(message) ? message : "is not a query Ponder's SQL client accepts");
    }

    try {
      return await gate.run("costly", c.req.raw.signal, () => run(c, query));
    } catch (e) {
      if (e instanceof AdmissionRefusedError)
        return c.json({ error: { field: null, message: e.message } }, 503, {
          "retry-after": String(e.retryAfterS),
        });
      // The client left while its query waited: nobody reads this answer.
      if (c.req.raw.signal.aborted) return c.body(null, 503);
      throw e;
    }
  });
}
