import { type DocumentNode, type FragmentDefinitionNode, GraphQLError, Kind, parse, type SelectionSetNode, type ValueNode } from "graphql";
import type { MiddlewareHandler } from "hono";
import { ApiInputError, readJsonBody } from "../http/input.js";

/**
 * What one GraphQL request may ask of the API. Ponder caps a list's `limit` at 1,000 rows (50 when
 * absent) and, by default, an operation at 1,000 tokens, depth 100 and 30 aliases; the API is
 * stricter, and refuses before anything is run:
 *
 * - depth: at most `maxDepth` nested selections (a list and its `items` are two), introspection
 *   (`__schema`, `__type`) aside: it reads the schema, not the database;
 * - aliases: at most `maxAliases` per request (each alias is another query);
 * - rows: the rows every list may return, each list's `limit` times the lists it sits in, summed
 *   over the request, at most `maxRows`. A `limit` given as a variable counts with the variable's
 *   value, or Ponder's largest when it is not a number;
 * - statements: Ponder runs a list inside another list once per parent row (and its `totalCount`
 *   once more), whatever its `limit`, even 0: each list costs the rows of the lists around it, at
 *   most `maxStatements` in all. Rows alone let ten 1,000-row lists each hold a `limit: 0` list
 *   with a `totalCount`: 20,000 statements, seconds of the API's event loop.
 */
export const GRAPHQL_LIMITS = { maxDepth: 8, maxAliases: 10, maxRows: 10_000, maxStatements: 1_000, maxBodyBytes: 64 * 1024 } as const;

/** Ponder's own list limits (`limit` argument of a plural field). */
export const PONDER_DEFAULT_LIMIT = 50;
export const PONDER_MAX_LIMIT = 1_000;

/** The options Ponder's `graphql()` middleware takes, in line with the limits above. */
export const PONDER_GRAPHQL_OPTIONS = { maxOperationTokens: 1_000, maxOperationDepth: 100, maxOperationAliases: GRAPHQL_LIMITS.maxAliases };

export type GraphqlCost = { depth: number; aliases: number; rows: number; statements: number };

/**
 * The depth, aliases, rows and statements a parsed request asks for. A plural field of Ponder's
 * schema is recognised by its `items`, `totalCount` or `pageInfo` selection; its rows are its
 * `limit` times those of the lists around it.
 */
export function graphqlCost(document: DocumentNode, variables: Record<string, unknown> = {}): GraphqlCost {
  const fragments = new Map<string, FragmentDefinitionNode>();
  for (const d of document.definitions) if (d.kind === Kind.FRAGMENT_DEFINITION) fragments.set(d.name.value, d);
  const cost: GraphqlCost = { depth: 0, aliases: 0, rows: 0, statements: 0 };

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

  // `inFragments` guards against a fragment spreading itself (GraphQL's validation refuses it later).
  const walk = (set: SelectionSetNode, depth: number, multiplier: number, inFragments: Set<string>) => {
    for (const s of set.selections) {
      if (s.kind === Kind.FRAGMENT_SPREAD) {
        const fragment = fragments.get(s.name.value);
        if (!fragment) continue;
        if (inFragments.has(s.name.value)) throw new ApiInputError("query", `fragment ${s.name.value} spreads itself`);
        walk(fragment.selectionSet, depth, multiplier, new Set([...inFragments, s.name.value]));
        continue;
      }
      if (s.kind === Kind.INLINE_FRAGMENT) {
        walk(s.selectionSet, depth, multiplier, inFragments);
        continue;
      }
      if (s.alias) cost.aliases += 1;
      if (s.name.value.startsWith("__")) continue;
      cost.depth = Math.max(cost.depth, depth + 1);
      if (!s.selectionSet) continue;
      let rows = multiplier;
      if (hasItems(s.selectionSet, inFragments)) {
        rows = multiplier * limitOf(s.arguments?.find((a) => a.name.value === "limit")?.value);
        cost.rows += rows;
        const counted = s.selectionSet.selections.some((x) => x.kind === Kind.FIELD && x.name.value === "totalCount");
        cost.statements += multiplier * (counted ? 2 : 1);
      }
      walk(s.selectionSet, depth + 1, rows, inFragments);
    }
  };
  for (const d of document.definitions) if (d.kind === Kind.OPERATION_DEFINITION) walk(d.selectionSet, 0, 1, new Set());
  return cost;
}

/** Checks a GraphQL request body against `limits`; throws an ApiInputError naming the part refused. */
export function checkGraphqlRequest(body: unknown, limits: Omit<typeof GRAPHQL_LIMITS, "maxBodyBytes"> = GRAPHQL_LIMITS): void {
  if (typeof body !== "object" || body === null || Array.isArray(body))
    throw new ApiInputError("body", "must be a JSON object { query, variables }");
  const { query, variables, operationName } = body as Record<string, unknown>;
  if (typeof query !== "string" || query.trim() === "") throw new ApiInputError("query", "must be a GraphQL document");
  if (variables !== undefined && variables !== null && (typeof variables !== "object" || Array.isArray(variables)))
    throw new ApiInputError("variables", "must be an object");
  if (operationName !== undefined && operationName !== null && typeof operationName !== "string")
    throw new ApiInputError("operationName", "must be a string");
  let document: DocumentNode;
  try {
    document = parse(query, { maxTokens: PONDER_GRAPHQL_OPTIONS.maxOperationTokens });
  } catch (e) {
    throw new ApiInputError("query", e instanceof GraphQLError ? e.message : "is not a GraphQL document");
  }
  const cost = graphqlCost(document, (variables ?? {}) as Record<string, unknown>);
  if (cost.depth > limits.maxDepth) throw new ApiInputError("query", `is ${cost.depth} levels deep, more than ${limits.maxDepth}`);
  if (cost.aliases > limits.maxAliases) throw new ApiInputError("query", `has ${cost.aliases} aliases, more than ${limits.maxAliases}`);
  if (cost.statements > limits.maxStatements)
    throw new ApiInputError(
      "query",
      `needs ${cost.statements} database statements (a list inside a list runs once per parent row), more than ${limits.maxStatements}`,
    );
  if (cost.rows > limits.maxRows)
    throw new ApiInputError(
      "query",
      `may return ${cost.rows} rows (each list's limit times the lists around it), more than ${limits.maxRows}`,
    );
}

/**
 * Runs before Ponder's GraphQL handler: a POST must be JSON within the limits above, else 400
 * (413 over `maxBodyBytes`, 415 not JSON). The body is put back for the handler to read. GET only
 * serves GraphiQL's page.
 */
export function graphqlLimits(limits: Omit<typeof GRAPHQL_LIMITS, "maxBodyBytes"> = GRAPHQL_LIMITS): MiddlewareHandler {
  return async (c, next) => {
    if (c.req.method !== "POST") return next();
    const text = await c.req.raw.clone().text();
    checkGraphqlRequest(await readJsonBody({ header: (n) => c.req.header(n), text: async () => text }), limits);
    return next();
  };
}
