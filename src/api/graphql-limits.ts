import { type DocumentNode, type FragmentDefinitionNode, GraphQLError, Kind, parse, type SelectionSetNode, type ValueNode } from "graphql";
import type { MiddlewareHandler } from "hono";
import { ApiInputError, readJsonBody } from "../http/input.js";
import { type AdmissionGate, AdmissionRefusedError } from "./graphql-gate.js";

/**
 * What one GraphQL request may ask of the API. Ponder caps a list's `limit` at 1,000 rows (50 when
 * absent) and, by default, an operation at 1,000 tokens, depth 100 and 30 aliases; the API is
 * stricter, and refuses before anything is run:
 *
 * - depth: at most `maxDepth` nested selections (a list and its `items` are two), introspection
 *   (`__schema`, `__type`) aside: it reads the schema, not the database;
 * - aliases: at most `maxAliases` per request (each alias is another query);
 * - rows: the rows a request asks for, at most `maxRows`: each list's `limit` times the rows
 *   around it, and each relation to one row (a line's `commitment`) once per row around it. A
 *   `limit` given as a variable counts with the variable's value, or Ponder's largest when it is
 *   not a number;
 * - bytes: the JSON bytes the answer may hold, at most `maxBytes`: the rows again, each list
 *   counting its `limit` or the rows its table holds when fewer, times their table's widest row.
 *   Ponder reads every column of a row whatever the selection, so a row costs its whole width: an
 *   encrypted usage line 1,727 bytes, a usage commitment 845 and its batch's encrypted lines (the
 *   widest stored), a line's `commitment` as much again for every line. A request for one row is
 *   served however wide the row;
 * - statements: Ponder runs a list inside another list once per parent row (and its `totalCount`
 *   once more), whatever its `limit`, even 0: each list costs the rows of the lists around it, at
 *   most `maxStatements` in all. Rows alone let ten 1,000-row lists each hold a `limit: 0` list
 *   with a `totalCount`: 20,000 statements, seconds of the API's event loop.
 *
 * A request within the limits that still costs more than `GRAPHQL_ADMISSION`'s thresholds waits
 * for its turn (`graphql-gate.ts`): one such request runs at a time, and while cheaper requests
 * are being answered such requests get a share of the API's time.
 */
export const GRAPHQL_LIMITS = {
  maxDepth: 8,
  maxAliases: 10,
  maxRows: 10_000,
  maxBytes: 256 * 1024,
  maxStatements: 1_000,
  maxBodyBytes: 64 * 1024,
} as const;

export type GraphqlLimits = Omit<typeof GRAPHQL_LIMITS, "maxBodyBytes">;

/** Ponder's own list limits (`limit` argument of a plural field). */
export const PONDER_DEFAULT_LIMIT = 50;
export const PONDER_MAX_LIMIT = 1_000;

/** The options Ponder's `graphql()` middleware takes, in line with the limits above. */
export const PONDER_GRAPHQL_OPTIONS = { maxOperationTokens: 1_000, maxOperationDepth: 100, maxOperationAliases: GRAPHQL_LIMITS.maxAliases };

export type GraphqlCost = { depth: number; aliases: number; rows: number; bytes: number; statements: number };

// ------------------------------------------------------------------ what each field reads

/** A table as the cost counts it. */
export type CostTable = {
  /** JSON bytes of its widest row, every column, its variable-width columns aside. */
  rowBytes: number;
  /** Columns whose width depends on what is stored (a batch's encrypted lines), as `table.column`. */
  variable: string[];
  /** Its relation fields: the table each reads, and whether it is a list. */
  relations: Record<string, { table: string; list: boolean }>;
};

/** The tables of Ponder's GraphQL schema, by table name, and the query fields that read them. */
export type GraphqlCatalog = {
  tables: Record<string, CostTable>;
  /** `usageCommitments` (a list) and `usageCommitment` (one row) → `usageCommitment`. */
  fields: Record<string, { table: string; list: boolean }>;
};

/** Columns whose values are as long as their data, not their type: hex of any length. */
export const VARIABLE_COLUMNS: readonly string[] = ["usageCommitment.encryptedLines", "privateMessage.encryptedMsg"];

/**
 * Elements of each array column, by its name: keys are points [x, y], an EGCT (a balance, a VTT)
 * and a line's ciphertext copies 4 field elements, a PCT 7, a provider's price tiers at most 16.
 */
const ARRAY_LENGTHS: [RegExp, number][] = [
  [/^(publicKey|ephemeralKey)$/, 2],
  [/^eGCT$|VTT$|Ciphertext$/, 4],
  [/PCT$|^pct$/, 7],
  [/^tier/, 16],
];

/** JSON bytes of one value of each column type Ponder serialises, quotes included. */
const VALUE_BYTES: Record<string, number> = {
  PgHex: 68, // a 32-byte hash; addresses are shorter
  PgEvmBigint: 81, // a uint256 in decimal, as a string
  PgInteger: 11,
  PgBoolean: 5,
  PgText: 80, // ids (a hash and a log index), namespaces (at most 64)
};
const ARRAY_DEFAULT_LENGTH = 16;
/** Ponder's `_meta { status }`: `{ "<chain>": { "id", "block": { "number", "timestamp" } } }` for a chain or two. */
const META_BYTES = 256;

type Column = { columnType: string; baseColumn?: { columnType: string } };
const isColumn = (v: unknown): v is Column => typeof v === "object" && v !== null && typeof (v as Column).columnType === "string";
type RelationsObject = { table: object; config: (helpers: unknown) => Record<string, { kind: "one" | "many"; table: object }> };
const isRelations = (v: unknown): v is RelationsObject =>
  typeof v === "object" && v !== null && typeof (v as RelationsObject).config === "function" && "table" in v;

/** The array length `ARRAY_LENGTHS` gives a column, or undefined for one it does not know. */
export function arrayLength(column: string): number | undefined {
  return ARRAY_LENGTHS.find(([name]) => name.test(column))?.[1];
}

/**
 * The catalog of a Ponder schema module (`ponder.schema.ts`): each table's widest row from its
 * columns' types, its relations, and the query fields Ponder names after it (`usageCommitment`,
 * `usageCommitments`).
 */
export function graphqlCatalog(schema: Record<string, unknown>): GraphqlCatalog {
  const tables: Record<string, CostTable> = {};
  const names = new Map<object, string>();
  const fields: GraphqlCatalog["fields"] = {};
  for (const [name, value] of Object.entries(schema)) {
    if (typeof value !== "object" || value === null || isRelations(value)) continue;
    const columns = Object.entries(value).filter((e): e is [string, Column] => isColumn(e[1]));
    if (columns.length === 0) continue;
    let rowBytes = 2;
    const variable: string[] = [];
    for (const [column, c] of columns) {
      if (VARIABLE_COLUMNS.includes(`${name}.${column}`)) {
        variable.push(`${name}.${column}`);
        rowBytes += column.length + 4;
        continue;
      }
      const value =
        c.columnType === "PgArray"
          ? 2 + (arrayLength(column) ?? ARRAY_DEFAULT_LENGTH) * ((VALUE_BYTES[c.baseColumn?.columnType ?? ""] ?? 81) + 1)
          : (VALUE_BYTES[c.columnType] ?? 81);
      rowBytes += column.length + 4 + value;
    }
    tables[name] = { rowBytes, variable, relations: {} };
    names.set(value, name);
    const field = name.charAt(0).toLowerCase() + name.slice(1);
    fields[field] = { table: name, list: false };
    fields[`${field}s`] = { table: name, list: true };
  }
  // Ponder's own `_meta`: the block each indexed chain has reached, a few dozen bytes a chain.
  tables._meta = { rowBytes: META_BYTES, variable: [], relations: {} };
  fields._meta = { table: "_meta", list: false };
  for (const value of Object.values(schema)) {
    if (!isRelations(value)) continue;
    const from = names.get(value.table);
    if (!from) continue;
    // Drizzle's `relations()` names each relation through `withFieldName`.
    const relation = (kind: "one" | "many") => (table: object) => ({ kind, table, withFieldName: () => ({ kind, table }) });
    const relations = value.config({ one: relation("one"), many: relation("many") });
    for (const [field, r] of Object.entries(relations)) {
      const to = names.get(r.table);
      if (to) tables[from]!.relations[field] = { table: to, list: r.kind === "many" };
    }
  }
  return { tables, fields };
}

/**
 * What the store holds, for the cost: rows per table, counted up to `PONDER_MAX_LIMIT` + 1 (a
 * larger table counts as that many: no list returns more), and the widest value stored in each
 * variable-width column, in JSON bytes. A table or column not given counts at its most.
 */
export type StoreStats = { rows: Record<string, number>; widest: Record<string, number> };

/** A variable-width column nobody has measured counts as a usage batch of 1,024 encrypted lines. */
export const UNMEASURED_VARIABLE_BYTES = 1024 * 1024 + 2;

// ------------------------------------------------------------------ cost

/**
 * The depth, aliases, rows, bytes and statements a parsed request asks for (see GRAPHQL_LIMITS).
 * A plural field of Ponder's schema is recognised by its `items`, `totalCount` or `pageInfo`
 * selection; any other selection with fields of its own is one row of a relation. A field the
 * catalog does not know costs as the widest table.
 */
export function graphqlCost(
  document: DocumentNode,
  variables: Record<string, unknown> = {},
  catalog: GraphqlCatalog = { tables: {}, fields: {} },
  stats: StoreStats = { rows: {}, widest: {} },
): GraphqlCost {
  const fragments = new Map<string, FragmentDefinitionNode>();
  for (const d of document.definitions) if (d.kind === Kind.FRAGMENT_DEFINITION) fragments.set(d.name.value, d);
  const cost: GraphqlCost = { depth: 0, aliases: 0, rows: 0, bytes: 0, statements: 0 };

  const widthOfTable = (t: CostTable) =>
    t.rowBytes + t.variable.reduce((sum, column) => sum + (stats.widest[column] ?? UNMEASURED_VARIABLE_BYTES), 0);
  const widest = Math.max(0, ...Object.values(catalog.tables).map(widthOfTable));
  const widthOf = (table: string | undefined) => {
    const t = table === undefined ? undefined : catalog.tables[table];
    return t ? widthOfTable(t) : widest;
  };

  const limitOf = (value: ValueNode | undefined): number => {
    if (!value) return PONDER_DEFAULT_LIMIT;
    if (value.kind === Kind.INT) return Math.min(Number(value.value), PONDER_MAX_LIMIT);
    if (value.kind === Kind.VARIABLE) {
      const v = variables[value.name.value];
      return typeof v === "number" && Number.isInteger(v) ? Math.min(Math.max(v, 0), PONDER_MAX_LIMIT) : PONDER_MAX_LIMIT;
    }
    return PONDER_MAX_LIMIT;
  };

  // A plural field of Ponder's schema: it selects `items`, `totalCount` or `pageInfo` (a count alone still runs a statement).
  const LIST_FIELDS = new Set(["items", "totalCount", "pageInfo"]);
  const hasItems = (set: SelectionSetNode, seen: Set<string>): boolean =>
    set.selections.some((s) =>
      s.kind === Kind.FIELD
        ? LIST_FIELDS.has(s.name.value)
        : s.kind === Kind.INLINE_FRAGMENT
          ? hasItems(s.selectionSet, seen)
          : !seen.has(s.name.value) &&
            fragments.has(s.name.value) &&
            hasItems(fragments.get(s.name.value)!.selectionSet, new Set([...seen, s.name.value])),
    );

  /**
   * `at` is what the selection set belongs to: the query root, a page of a list (its `items`,
   * `pageInfo` and `totalCount`) or a row of a table. `n` is how many times it appears in the
   * answer as asked (limits), `stored` as the store can fill it (limits, or the rows of the table
   * when fewer). `inFragments` guards against a fragment spreading itself (GraphQL's validation
   * refuses it later).
   */
  type At = { kind: "root" } | { kind: "page"; table: string | undefined } | { kind: "row"; table: string | undefined };
  type Times = { n: number; stored: number };
  const walk = (set: SelectionSetNode, at: At, depth: number, times: Times, inFragments: Set<string>) => {
    for (const s of set.selections) {
      if (s.kind === Kind.FRAGMENT_SPREAD) {
        const fragment = fragments.get(s.name.value);
        if (!fragment) continue;
        if (inFragments.has(s.name.value)) throw new ApiInputError("query", `fragment ${s.name.value} spreads itself`);
        walk(fragment.selectionSet, at, depth, times, new Set([...inFragments, s.name.value]));
        continue;
      }
      if (s.kind === Kind.INLINE_FRAGMENT) {
        walk(s.selectionSet, at, depth, times, inFragments);
        continue;
      }
      if (s.alias) cost.aliases += 1;
      if (s.name.value.startsWith("__")) continue;
      cost.depth = Math.max(cost.depth, depth + 1);
      if (!s.selectionSet) continue;
      const name = s.name.value;
      if (at.kind === "page") {
        // `items` are the list's rows, counted with the list; `pageInfo` holds cursors.
        if (name === "items") walk(s.selectionSet, { kind: "row", table: at.table }, depth + 1, times, inFragments);
        continue;
      }
      const table = at.kind === "root" ? catalog.fields[name]?.table : catalog.tables[at.table ?? ""]?.relations[name]?.table;
      let rows: Times;
      if (hasItems(s.selectionSet, inFragments)) {
        const limit = limitOf(s.arguments?.find((a) => a.name.value === "limit")?.value);
        const stored = table === undefined ? undefined : stats.rows[table];
        rows = { n: times.n * limit, stored: times.stored * (stored === undefined ? limit : Math.min(limit, stored)) };
        const counted = s.selectionSet.selections.some((x) => x.kind === Kind.FIELD && x.name.value === "totalCount");
        cost.statements += times.n * (counted ? 2 : 1);
      } else {
        // One row: a relation to one (a line's `commitment`), a row by its key, or Ponder's `_meta`.
        rows = times;
      }
      cost.rows += rows.n;
      cost.bytes += rows.stored * widthOf(table);
      walk(s.selectionSet, { kind: rows === times ? "row" : "page", table }, depth + 1, rows, inFragments);
    }
  };
  for (const d of document.definitions)
    if (d.kind === Kind.OPERATION_DEFINITION) walk(d.selectionSet, { kind: "root" }, 0, { n: 1, stored: 1 }, new Set());
  return cost;
}

/** A request refused for what it would cost: names the limit, its value and what was asked. */
export class GraphqlCostError extends ApiInputError {
  constructor(
    readonly limit: "maxDepth" | "maxAliases" | "maxRows" | "maxBytes" | "maxStatements",
    readonly max: number,
    readonly requested: number,
    message: string,
  ) {
    super("query", message);
  }
}

/** Parses a GraphQL request body; throws an ApiInputError naming the malformed part. */
export function parseGraphqlRequest(body: unknown): { document: DocumentNode; variables: Record<string, unknown> } {
  if (typeof body !== "object" || body === null || Array.isArray(body))
    throw new ApiInputError("body", "must be a JSON object { query, variables }");
  const { query, variables, operationName } = body as Record<string, unknown>;
  if (typeof query !== "string" || query.trim() === "") throw new ApiInputError("query", "must be a GraphQL document");
  if (variables !== undefined && variables !== null && (typeof variables !== "object" || Array.isArray(variables)))
    throw new ApiInputError("variables", "must be an object");
  if (operationName !== undefined && operationName !== null && typeof operationName !== "string")
    throw new ApiInputError("operationName", "must be a string");
  try {
    return {
      document: parse(query, { maxTokens: PONDER_GRAPHQL_OPTIONS.maxOperationTokens }),
      variables: (variables ?? {}) as Record<string, unknown>,
    };
  } catch (e) {
    throw new ApiInputError("query", e instanceof GraphQLError ? e.message : "is not a GraphQL document");
  }
}

/** Throws a GraphqlCostError for the first limit `cost` exceeds. */
export function checkGraphqlCost(cost: GraphqlCost, limits: GraphqlLimits = GRAPHQL_LIMITS): void {
  const refuse = (limit: GraphqlCostError["limit"], requested: number, message: string) => {
    if (requested > limits[limit]) throw new GraphqlCostError(limit, limits[limit], requested, `${message}, more than ${limits[limit]}`);
  };
  refuse("maxDepth", cost.depth, `is ${cost.depth} levels deep`);
  refuse("maxAliases", cost.aliases, `has ${cost.aliases} aliases`);
  refuse("maxStatements", cost.statements, `needs ${cost.statements} database statements (a list inside a list runs once per parent row)`);
  refuse(
    "maxRows",
    cost.rows,
    `may return ${cost.rows} rows (each list's limit times the rows around it, a relation to one row once per row around it)`,
  );
  // One row is always served, however wide (a usage batch of many lines): it still waits its turn.
  if (cost.rows > 1)
    refuse("maxBytes", cost.bytes, `may return ${cost.bytes} bytes (its rows, as many as the tables hold, times their table's widest row)`);
}

/** What `checkGraphqlRequest` counts against: the schema's catalog, what the store holds, the limits. */
export type GraphqlCostContext = { catalog?: GraphqlCatalog; stats?: StoreStats; limits?: GraphqlLimits };

/** Checks a GraphQL request body against the limits; throws an ApiInputError naming the part refused. Returns its cost. */
export function checkGraphqlRequest(body: unknown, context: GraphqlCostContext = {}): GraphqlCost {
  const { document, variables } = parseGraphqlRequest(body);
  const cost = graphqlCost(document, variables, context.catalog, context.stats);
  checkGraphqlCost(cost, context.limits);
  return cost;
}

/**
 * Runs before Ponder's GraphQL handler: a POST must be JSON within the limits above, counted
 * against the catalog and what the store holds now (`stats`), else 400 (413 over `maxBodyBytes`,
 * 415 not JSON). A refusal for cost names the limit: `{ error: { field: "query", message, limit,
 * max, requested } }`. A request over the gate's thresholds then waits for its turn (503 with
 * Retry-After when the queue is full or the wait too long). The body is put back for the handler
 * to read. GET only serves GraphiQL's page.
 */
export function graphqlLimits(
  options: { catalog?: GraphqlCatalog; stats?: () => Promise<StoreStats>; gate?: AdmissionGate; limits?: GraphqlLimits } = {},
): MiddlewareHandler {
  return async (c, next) => {
    if (c.req.method !== "POST") return next();
    const text = await c.req.raw.clone().text();
    const body = await readJsonBody({ header: (n) => c.req.header(n), text: async () => text });
    const stats = options.stats ? await options.stats() : undefined;
    let cost: GraphqlCost;
    try {
      cost = checkGraphqlRequest(body, { catalog: options.catalog, stats, limits: options.limits });
    } catch (e) {
      if (!(e instanceof GraphqlCostError)) throw e;
      const { field, message, limit, max, requested } = e;
      return c.json({ error: { field, message, limit, max, requested } }, 400);
    }
    if (!options.gate) return next();
    try {
      await options.gate.run(cost, c.req.raw.signal, () => next());
    } catch (e) {
      if (e instanceof AdmissionRefusedError)
        return c.json({ error: { field: null, message: `${e.message}, or ask for fewer rows` } }, 503, {
          "retry-after": String(e.retryAfterS),
        });
      // The client left while its request waited: nobody reads this answer.
      if (c.req.raw.signal.aborted) return c.body(null, 503);
      throw e;
    }
  };
}
