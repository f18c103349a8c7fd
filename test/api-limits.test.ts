/**
 * The public API's request limits on their own: SQL over HTTP off by default (and refused on
 * PGlite), and the GraphQL depth, alias and row limits, each refusal naming its reason.
 */

import { getIntrospectionQuery, parse } from "graphql";
import { Hono } from "hono";
import { describe, expect, it } from "vitest";
import { checkGraphqlRequest, GRAPHQL_LIMITS, graphqlCost } from "../src/api/graphql-limits.js";
import { mountSql } from "../src/api/sql.js";
import { DEFAULT_SQL_MAX_ROWS, DEFAULT_SQL_TIMEOUT_MS, sqlOverHttp } from "../src/config/api.js";
import { ConfigError } from "../src/config/parse.js";
import { ApiInputError } from "../src/http/input.js";

const postgres = { kind: "postgres" } as const;
const pglite = { kind: "pglite" } as const;

/** The refusal `checkGraphqlRequest` throws, as `{ field, message }`. */
const refusal = (body: unknown) => {
  try {
    checkGraphqlRequest(body);
  } catch (e) {
    if (e instanceof ApiInputError) return { field: e.field, message: e.message, status: e.status };
    throw e;
  }
  return null;
};

/** `{ a { b { … { leaf } } } }` with `levels` nested selections. */
const nested = (levels: number) => `{ ${"f { ".repeat(levels - 1)}leaf${" }".repeat(levels - 1)} }`;

describe("SQL over HTTP settings", () => {
  it("is off unless API_SQL=1, and API_SQL=1 needs Postgres", () => {
    expect(sqlOverHttp({}, postgres)).toEqual({ enabled: false });
    expect(sqlOverHttp({ API_SQL: "0" }, pglite)).toEqual({ enabled: false });
    expect(sqlOverHttp({ API_SQL: "1" }, postgres)).toEqual({
      enabled: true,
      timeoutMs: DEFAULT_SQL_TIMEOUT_MS,
      maxRows: DEFAULT_SQL_MAX_ROWS,
    });
    expect(sqlOverHttp({ API_SQL: "1", API_SQL_TIMEOUT_MS: "250", API_SQL_MAX_ROWS: "10" }, postgres)).toEqual({
      enabled: true,
      timeoutMs: 250,
      maxRows: 10,
    });
    const onPglite = () => sqlOverHttp({ API_SQL: "1" }, pglite);
    expect(onPglite).toThrow(ConfigError);
    expect(onPglite).toThrow(/PGlite cannot stop a query at a statement timeout/);
    expect(() => sqlOverHttp({ API_SQL: "yes" }, postgres)).toThrow(/API_SQL must be 0 or 1/);
    expect(() => sqlOverHttp({ API_SQL: "1", API_SQL_TIMEOUT_MS: "0" }, postgres)).toThrow(
      /API_SQL_TIMEOUT_MS must be an integer from 100/,
    );
  });

  it("answers every /sql/ path with a 404 JSON refusal when off, and refuses a large body first", async () => {
    const app = new Hono();
    // Off, the database is never touched.
    mountSql(app, { db: undefined as never, schema: undefined as never, settings: { enabled: false } });
    for (const path of ["/sql/db?sql=%7B%7D", "/sql/live", "/sql/anything/../db"]) {
      const res = await app.request(path);
      expect(res.status).toBe(404);
      expect(await res.json()).toEqual({ error: { field: null, message: expect.stringContaining("API_SQL=1") } });
    }
    const big = await app.request("/sql/db", { method: "POST", body: "x".repeat(4096), headers: { "content-length": "4096" } });
    expect(big.status).toBe(413);
    expect(((await big.json()) as { error: { field: string } }).error.field).toBe("body");
  });
});

describe("GraphQL limits", () => {
  it("counts depth by nested selections, a list and its items being two", () => {
    expect(graphqlCost(parse(nested(8))).depth).toBe(8);
    expect(graphqlCost(parse(`{ providers { items { changes { items { kind } } } } }`)).depth).toBe(5);
  });

  it(`refuses a query deeper than ${GRAPHQL_LIMITS.maxDepth} levels, naming the depth`, () => {
    expect(refusal({ query: nested(GRAPHQL_LIMITS.maxDepth) })).toBeNull();
    expect(refusal({ query: nested(GRAPHQL_LIMITS.maxDepth + 1) })).toEqual({
      field: "query",
      message: `is ${GRAPHQL_LIMITS.maxDepth + 1} levels deep, more than ${GRAPHQL_LIMITS.maxDepth}`,
      status: 400,
    });
    // Depth hidden in fragments counts the same.
    const viaFragments = `query { ...A } fragment A on Query { f { f { ...B } } } fragment B on F { f { f { f { f { f { f { leaf } } } } } } }`;
    expect(refusal({ query: viaFragments })?.message).toBe(`is 9 levels deep, more than ${GRAPHQL_LIMITS.maxDepth}`);
  });

  it(`refuses an alias bomb: more than ${GRAPHQL_LIMITS.maxAliases} aliases`, () => {
    const aliases = (n: number) => `{ ${Array.from({ length: n }, (_, i) => `a${i}: __typename`).join(" ")} }`;
    expect(refusal({ query: aliases(GRAPHQL_LIMITS.maxAliases) })).toBeNull();
    expect(refusal({ query: aliases(100) })).toEqual({
      field: "query",
      message: `has 100 aliases, more than ${GRAPHQL_LIMITS.maxAliases}`,
      status: 400,
    });
  });

  it(`refuses a request whose lists may return more than ${GRAPHQL_LIMITS.maxRows} rows`, () => {
    // 100 providers + 100 × 100 changes = 10,100 rows.
    const product = `{ providers(limit: 100) { items { changes(limit: 100) { items { kind } } } } }`;
    expect(graphqlCost(parse(product)).rows).toBe(10_100);
    expect(refusal({ query: product })?.message).toMatch(/^may return 10100 rows/);
    // 1000 providers, 9 changes each by default? No: an absent limit is Ponder's 50 → 1000 + 50,000.
    expect(graphqlCost(parse(`{ providers(limit: 1000) { items { changes { items { kind } } } } }`)).rows).toBe(51_000);
    // A variable counts with its value, or Ponder's largest limit when it is not a number.
    const byVariable = `query ($n: Int) { providers(limit: $n) { items { changes(limit: $n) { items { kind } } } } }`;
    expect(graphqlCost(parse(byVariable), { n: 10 }).rows).toBe(10 + 100);
    expect(graphqlCost(parse(byVariable), { n: "10" }).rows).toBe(1_000 + 1_000_000);
    // Ten aliased lists of 1,000: the most the limits allow.
    const widest = `{ ${Array.from({ length: 10 }, (_, i) => `t${i}: transfers(limit: 1000) { items { id } }`).join(" ")} }`;
    expect(graphqlCost(parse(widest)).rows).toBe(10_000);
    expect(refusal({ query: widest })).toBeNull();
  });

  it(`refuses a request that needs more than ${GRAPHQL_LIMITS.maxStatements} database statements: a list inside a list runs per parent row`, () => {
    // Ten 1,000-row lists, each row counting its commitment's lines: 10 + 10 × 1,000 × 2 statements, 10,000 rows.
    const fanOut = `{ ${Array.from({ length: 10 }, (_, i) => `q${i}: encryptedUsageLines(limit: 1000) { items { position commitment { lines(limit: 0) { totalCount } } } }`).join(" ")} }`;
    expect(graphqlCost(parse(fanOut))).toMatchObject({ rows: 10_000, statements: 20_010 });
    expect(refusal({ query: fanOut })?.message).toMatch(
      /^needs 20010 database statements \(a list inside a list runs once per parent row\)/,
    );
    // At the limit: 499 rows, each with a counted list, and the outer list itself.
    const edge = `{ encryptedUsageLines(limit: 499) { items { position commitment { lines(limit: 0) { totalCount } } } } }`;
    expect(graphqlCost(parse(edge)).statements).toBe(999);
    expect(refusal({ query: edge })).toBeNull();
    // Top-level lists are one statement each, however many rows.
    const widest = `{ ${Array.from({ length: 10 }, (_, i) => `t${i}: transfers(limit: 1000) { items { id } }`).join(" ")} }`;
    expect(graphqlCost(parse(widest)).statements).toBe(10);
  });

  it("lets introspection (GraphiQL's query) through: it reads the schema, not the database", () => {
    expect(refusal({ query: getIntrospectionQuery() })).toBeNull();
  });

  it("names the malformed part of a request", () => {
    expect(refusal([{ query: "{ a }" }])?.field).toBe("body");
    expect(refusal("{ a }")?.field).toBe("body");
    expect(refusal({})?.field).toBe("query");
    expect(refusal({ query: 5 })?.field).toBe("query");
    expect(refusal({ query: "{ a " })).toEqual({ field: "query", message: expect.stringMatching(/^Syntax Error/), status: 400 });
    expect(refusal({ query: "{ a }", variables: [1] })?.field).toBe("variables");
    expect(refusal({ query: "{ a }", operationName: 5 })?.field).toBe("operationName");
    expect(refusal({ query: `query { ...A } fragment A on Query { f { ...A } }` })).toEqual({
      field: "query",
      message: "fragment A spreads itself",
      status: 400,
    });
    expect(refusal({ query: `{ ${"a ".repeat(2000)}}` })?.message).toMatch(/Syntax Error: Document contains more tha. 1000 tokens/);
  });
});
