/**
 * The public API's request limits on their own: SQL over HTTP off by default (and refused on
 * PGlite), the GraphQL depth, alias, row, byte and statement limits, each refusal naming its
 * reason, the admission of costly requests one at a time, and the client paging within them.
 */

import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { getIntrospectionQuery, parse } from "graphql";
import { Hono } from "hono";
import { describe, expect, it, vi } from "vitest";
import * as ponderSchema from "../ponder.schema.js";
import { AdmissionGate, GRAPHQL_ADMISSION } from "../src/api/graphql-gate.js";
import {
  arrayLength,
  checkGraphqlRequest,
  GRAPHQL_LIMITS,
  GraphqlCostError,
  graphqlCatalog,
  graphqlCost,
  graphqlLimits,
  type StoreStats,
  UNMEASURED_VARIABLE_BYTES,
} from "../src/api/graphql-limits.js";
import { STORE_STATS_TTL_MS, storeStats } from "../src/api/graphql-stats.js";
import { mountSql, SQL_ADMISSION } from "../src/api/sql.js";
import { DEFAULT_SQL_MAX_ROWS, DEFAULT_SQL_TIMEOUT_MS, sqlOverHttp } from "../src/config/api.js";
import { ConfigError } from "../src/config/parse.js";
import { ApiUnreachableError } from "../src/http/errors.js";
import { ApiInputError } from "../src/http/input.js";
import { GraphqlLimitError, IndexerClient } from "../src/indexer-client/client.js";

const postgres = { kind: "postgres" } as const;
const pglite = { kind: "pglite" } as const;

const catalog = graphqlCatalog(ponderSchema);

/**
 * The refusal `checkGraphqlRequest` throws, as `{ field, message }`, counting bytes against the
 * schema's tables and `stats` (none: a field outside the schema, `f`, costs as the widest table).
 */
const refusal = (body: unknown, stats?: StoreStats, options: { bytes: boolean } = { bytes: true }) => {
  try {
    checkGraphqlRequest(body, { catalog: options.bytes ? catalog : undefined, stats });
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

describe("SQL over HTTP admission", () => {
  it("runs one query at a time: the next waits, and one more than the queue holds is answered 503 with Retry-After", async () => {
    const release = deferred();
    const ran: string[] = [];
    // The API's read-only pool: every query answers at once, but the first SELECT holds until released.
    const pool = {
      connect: async () => ({
        query: async (q: string | { text: string; values: unknown[] }) => {
          if (typeof q === "string") return { rows: [], fields: [] };
          ran.push(q.text.includes("'first'") ? "first" : "second");
          if (ran.length === 1) await release.promise;
          return { rows: [{ n: ran.length }], fields: [{ name: "n", dataTypeID: 23 }] };
        },
        release: () => {},
      }),
    };
    const gate = new AdmissionGate({ ...SQL_ADMISSION, queue: 1 });
    const app = new Hono();
    mountSql(app, {
      db: { $client: pool } as never,
      schema: undefined as never,
      settings: { enabled: true, timeoutMs: 1_000, maxRows: 10 },
      gate,
    });
    const get = (tag: string) =>
      app.request(
        `/sql/db?sql=${encodeURIComponent(JSON.stringify({ json: { sql: `SELECT '${tag}' AS tag FROM provider`, params: [] } }))}`,
      );

    const first = get("first");
    await expect.poll(() => ran).toEqual(["first"]);
    const second = get("second");
    await expect.poll(() => gate.load).toEqual({ running: 1, waiting: 1 });
    const third = await get("third");
    expect(third.status).toBe(503);
    expect(third.headers.get("retry-after")).toBe("1");
    expect(await third.json()).toEqual({
      error: { field: null, message: "the API is answering other SQL queries (1 running, 1 waiting, at most 1): retry later" },
    });
    release.resolve();
    expect(((await (await first).json()) as { rows: unknown[] }).rows).toEqual([{ n: 1 }]);
    expect(((await (await second).json()) as { rows: unknown[] }).rows).toEqual([{ n: 2 }]);
    expect(ran).toEqual(["first", "second"]);
  });
});

describe("GraphQL limits", () => {
  it("counts depth by nested selections, a list and its items being two", () => {
    expect(graphqlCost(parse(nested(8))).depth).toBe(8);
    expect(graphqlCost(parse(`{ providers { items { changes { items { kind } } } } }`)).depth).toBe(5);
  });

  it(`refuses a query deeper than ${GRAPHQL_LIMITS.maxDepth} levels, naming the depth`, () => {
    const noBytes = { bytes: false };
    expect(refusal({ query: nested(GRAPHQL_LIMITS.maxDepth) }, undefined, noBytes)).toBeNull();
    expect(refusal({ query: nested(GRAPHQL_LIMITS.maxDepth + 1) }, undefined, noBytes)).toEqual({
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
    // Ten aliased lists of 1,000: the most rows the limits allow (and far more bytes, below).
    const widest = `{ ${Array.from({ length: 10 }, (_, i) => `t${i}: tokens(limit: 1000) { items { tokenId } }`).join(" ")} }`;
    expect(graphqlCost(parse(widest)).rows).toBe(10_000);
    expect(refusal({ query: widest }, { rows: { token: 1 }, widest: {} })).toBeNull();
    // A relation to one row counts once per row around it: 100 lines and their 100 commitments.
    expect(graphqlCost(parse(`{ encryptedUsageLines(limit: 100) { items { commitment { server } } } }`)).rows).toBe(200);
  });

  it(`refuses a request that needs more than ${GRAPHQL_LIMITS.maxStatements} database statements: a list inside a list runs per parent row`, () => {
    // Ten 1,000-row lists, each row counting its commitment's lines: 10 + 10 × 1,000 × 2 statements;
    // 10,000 lines and their 10,000 commitments.
    const fanOut = `{ ${Array.from({ length: 10 }, (_, i) => `q${i}: encryptedUsageLines(limit: 1000) { items { position commitment { lines(limit: 0) { totalCount } } } }`).join(" ")} }`;
    expect(graphqlCost(parse(fanOut))).toMatchObject({ rows: 20_000, statements: 20_010 });
    expect(refusal({ query: fanOut })?.message).toMatch(
      /^needs 20010 database statements \(a list inside a list runs once per parent row\)/,
    );
    // At the limit: 499 rows, each with a counted list, and the outer list itself.
    const edge = `{ encryptedUsageLines(limit: 499) { items { position commitment { lines(limit: 0) { totalCount } } } } }`;
    expect(graphqlCost(parse(edge)).statements).toBe(999);
    // (Within the byte limit in a store of 25 lines in 4-line batches: 25 × 1,727 + 25 × (845 + 4,292) bytes.)
    const small: StoreStats = { rows: { encryptedUsageLine: 25 }, widest: { "usageCommitment.encryptedLines": 4_292 } };
    expect(graphqlCost(parse(edge), {}, catalog, small).bytes).toBe(171_600);
    expect(refusal({ query: edge }, small)).toBeNull();
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

/**
 * The store of the benchmark's world (`bench/security.ts`): 2,048 encrypted lines in 8 usage
 * batches of 256 lines (each batch's `encryptedLines` a 262,338-character hex string, 262,340
 * bytes in JSON), 3 providers with 5 changes.
 */
const BENCH_STORE: StoreStats = {
  rows: { encryptedUsageLine: 2048, usageCommitment: 8, provider: 3, providerChange: 5 },
  widest: { "usageCommitment.encryptedLines": 262_340, "privateMessage.encryptedMsg": 200 },
};
const COMMITMENT_BYTES = 845 + 262_340;

describe("GraphQL answer size", () => {
  it("counts a row at its table's widest, every column, from the schema's types", () => {
    // An encrypted line: 2 hashes (68 each), a position and a log index (11), a nonce, a line
    // commitment and a block number (81), a key of 2 and three ciphertexts of 4 field elements
    // (each 81 and a comma, in brackets), each with its quoted key, colon and comma, in braces.
    expect(catalog.tables.encryptedUsageLine).toEqual({
      rowBytes: 1727,
      variable: [],
      relations: { commitment: { table: "usageCommitment", list: false } },
    });
    // A usage commitment is 845 bytes and its batch's encrypted lines, as long as they are.
    expect(catalog.tables.usageCommitment).toMatchObject({ rowBytes: 845, variable: ["usageCommitment.encryptedLines"] });
    expect(catalog.fields).toMatchObject({
      encryptedUsageLines: { table: "encryptedUsageLine", list: true },
      usageCommitment: { table: "usageCommitment", list: false },
      providers: { table: "provider", list: true },
      _meta: { table: "_meta", list: false },
    });
    // Ponder's `_meta` (each chain's block) is one small row, not the widest table.
    expect(graphqlCost(parse(`{ _meta { status } }`), {}, catalog, BENCH_STORE)).toMatchObject({ rows: 1, bytes: 256 });
    // A line of the benchmark's answer (ten fields, 77-digit field elements) is within its count.
    const element = "1".repeat(77);
    const line = {
      server: `0x${"a".repeat(40)}`,
      batchId: `0x${"b".repeat(64)}`,
      position: 255,
      ephemeralKey: [element, element],
      nonce: element,
      lineCommitment: element,
      providerCiphertext: [element, element, element, element],
      operatorCiphertext: [element, element, element, element],
      auditorCiphertext: [element, element, element, element],
      blockNumber: "123456789",
      logIndex: 12,
    };
    expect(JSON.stringify(line).length).toBeLessThanOrEqual(1727);
  });

  it("knows the length of every array column of the schema", () => {
    for (const [name, table] of Object.entries(ponderSchema)) {
      for (const [column, c] of Object.entries(table as object)) {
        if ((c as { columnType?: string })?.columnType === "PgArray") expect(arrayLength(column), `${name}.${column}`).toBeGreaterThan(0);
      }
    }
  });

  it(`refuses a request whose answer may pass ${GRAPHQL_LIMITS.maxBytes} bytes, naming the limit and the size`, () => {
    const lines = (n: number) => ({ query: `{ encryptedUsageLines(limit: ${n}) { items { position } } }` });
    // 151 × 1,727 = 260,777 bytes fit; 152 × 1,727 = 262,504 do not, whatever the selection.
    expect(refusal(lines(151), BENCH_STORE)).toBeNull();
    let error: unknown;
    try {
      checkGraphqlRequest(lines(152), { catalog, stats: BENCH_STORE });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(GraphqlCostError);
    expect(error).toMatchObject({
      field: "query",
      status: 400,
      limit: "maxBytes",
      max: 262_144,
      requested: 262_504,
      message: "may return 262504 bytes (its rows, as many as the tables hold, times their table's widest row), more than 262144",
    });
    // The widest request of the row limit: ten aliased lists of 1,000 lines, 17,270,000 bytes.
    const wide = `{ ${Array.from({ length: 10 }, (_, i) => `q${i}: encryptedUsageLines(limit: 1000) { items { position } }`).join(" ")} }`;
    expect(graphqlCost(parse(wide), {}, catalog, BENCH_STORE)).toMatchObject({ rows: 10_000, bytes: 17_270_000 });
    expect(refusal({ query: wide }, BENCH_STORE)?.message).toMatch(/^may return 17270000 bytes/);
  });

  it("counts a list as the rows its table holds when they are fewer than its limit", () => {
    // The CLI's providers page: 200 rows asked, 3 stored: 3 × 3,648 bytes.
    const providers = `{ providers(limit: 200) { items { providerId namespace payoutAccount active } } }`;
    expect(graphqlCost(parse(providers), {}, catalog, BENCH_STORE).bytes).toBe(3 * 3648);
    // With nothing known of the store, 200 × 3,648.
    expect(graphqlCost(parse(providers), {}, catalog).bytes).toBe(200 * 3648);
    // Nested: 3 providers × at most 5 changes of 3,721 bytes.
    const nested = `{ providers(limit: 200) { items { changes(limit: 100) { items { kind } } } } }`;
    expect(graphqlCost(parse(nested), {}, catalog, BENCH_STORE)).toMatchObject({ rows: 200 + 20_000, bytes: 3 * 3648 + 15 * 3721 });
  });

  it("counts a usage commitment with its batch's encrypted lines, selected or not; one row is served however wide", () => {
    const commitments = (n: number) => ({ query: `{ usageCommitments(limit: ${n}) { items { server } } }` });
    // One row of 263,185 bytes is served, over the limit; 2 × 263,185 = 526,370 are not.
    expect(refusal(commitments(1), BENCH_STORE)).toBeNull();
    expect(refusal(commitments(2), BENCH_STORE)?.message).toMatch(/^may return 526370 bytes/);
    // Unmeasured, a batch counts as 1,024 lines: one such row, 845 + 1,048,578 bytes, is still served, two are not.
    expect(graphqlCost(parse(commitments(1).query), {}, catalog).bytes).toBe(845 + UNMEASURED_VARIABLE_BYTES);
    expect(refusal(commitments(1))).toBeNull();
    expect(refusal(commitments(2))?.message).toMatch(/^may return 2098846 bytes/);
  });

  it("counts a relation to one row once per row around it: 100 lines each repeating their commitment", () => {
    const fanOut = `{ encryptedUsageLines(limit: 100) { items { commitment { encryptedLines } } } }`;
    // The answer repeats a 262,340-byte string 100 times: 100 × 1,727 + 100 × 263,185 bytes.
    expect(graphqlCost(parse(fanOut), {}, catalog, BENCH_STORE)).toMatchObject({ rows: 200, bytes: 26_491_200 });
    expect(refusal({ query: fanOut }, BENCH_STORE)?.message).toMatch(/^may return 26491200 bytes/);
  });
});

describe("what the store holds, for the cost", () => {
  it(`is read in one statement at most every ${STORE_STATS_TTL_MS} ms; widths only grow; a failed read keeps the last`, async () => {
    vi.useFakeTimers({ toFake: ["performance"] });
    try {
      type Row = { k: string; n: string; b: string | null };
      const answers: (Row[] | Error)[] = [
        [
          { k: "encryptedUsageLine", n: "1001", b: null },
          { k: "provider", n: "3", b: null },
          { k: "usageCommitment.encryptedLines", n: "262338", b: "32" },
        ],
        [
          { k: "encryptedUsageLine", n: "1001", b: null },
          { k: "provider", n: "4", b: null },
          { k: "usageCommitment.encryptedLines", n: "4290", b: "40" },
        ],
        new Error("connection terminated"),
      ];
      let statements = 0;
      const db = {
        execute: async () => {
          statements += 1;
          const answer = answers.shift()!;
          if (answer instanceof Error) throw answer;
          return { rows: answer };
        },
      };
      const stats = storeStats(db as never, ponderSchema, catalog);
      const first = await stats();
      // A hex string of 262,338 characters is 262,340 bytes of JSON.
      expect(first).toEqual({
        rows: { encryptedUsageLine: 1001, provider: 3 },
        widest: { "usageCommitment.encryptedLines": 262_340 },
      });
      expect(await stats()).toBe(first);
      expect(statements).toBe(1);
      vi.advanceTimersByTime(STORE_STATS_TTL_MS);
      const second = await stats();
      expect(second).toEqual({ rows: { encryptedUsageLine: 1001, provider: 4 }, widest: { "usageCommitment.encryptedLines": 262_340 } });
      vi.advanceTimersByTime(STORE_STATS_TTL_MS);
      expect(await stats()).toBe(second);
      expect(statements).toBe(3);
    } finally {
      vi.useRealTimers();
    }
  });
});

/** A deferred promise the test settles. */
function deferred() {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

/**
 * The limits and the gate in front of a stand-in for Ponder's handler, which holds every request
 * for encrypted lines until the test lets it go, and notes the order requests reach it.
 */
function gatedApi(gate: AdmissionGate) {
  const hold = deferred();
  const reached: string[] = [];
  const app = new Hono();
  app.use("/graphql", graphqlLimits({ catalog, stats: async () => BENCH_STORE, gate }), async (c) => {
    const { query } = (await c.req.json()) as { query: string };
    const name = /#(\w+)/.exec(query)?.[1] ?? "?";
    reached.push(name);
    if (query.includes("encryptedUsageLines")) await hold.promise;
    return c.json({ data: { name } });
  });
  const send = (name: string, query: string, signal?: AbortSignal) =>
    app.request("/graphql", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ query: `${query} #${name}` }),
      signal,
    });
  return { app, send, hold, reached };
}

const HEAVY = `{ encryptedUsageLines(limit: 100) { items { position } } }`;
const CHEAP = `{ providers(limit: 200) { items { providerId namespace payoutAccount active } } }`;

describe("GraphQL admission", () => {
  it(`runs one costly request at a time (over ${GRAPHQL_ADMISSION.heavyBytes} bytes), while a cheap one is answered at once`, async () => {
    const gate = new AdmissionGate({ queue: 1 });
    // 100 × 1,727 bytes is costly; the providers page, 3 × 3,648, is not.
    expect(gate.heavy(graphqlCost(parse(HEAVY), {}, catalog, BENCH_STORE))).toBe(true);
    expect(gate.heavy(graphqlCost(parse(CHEAP), {}, catalog, BENCH_STORE))).toBe(false);
    const { send, hold, reached } = gatedApi(gate);

    const first = send("first", HEAVY);
    await expect.poll(() => reached).toEqual(["first"]);
    const second = send("second", HEAVY);
    await expect.poll(() => gate.load).toEqual({ running: 1, waiting: 1 });

    // The cheap read passes both.
    const cheap = await send("cheap", CHEAP);
    expect(cheap.status).toBe(200);
    expect(await cheap.json()).toEqual({ data: { name: "cheap" } });

    // The queue (1) is full: a third costly request is refused at once, 503 with Retry-After.
    const third = await send("third", HEAVY);
    expect(third.status).toBe(503);
    expect(third.headers.get("retry-after")).toBe("1");
    expect(await third.json()).toEqual({
      error: {
        field: null,
        message: "the API is answering other costly queries (1 running, 1 waiting, at most 1): retry later, or ask for fewer rows",
      },
    });

    hold.resolve();
    expect((await first).status).toBe(200);
    expect((await second).status).toBe(200);
    expect(reached).toEqual(["first", "cheap", "second"]);
    expect(gate.counts).toEqual({ cheap: 1, heavy: 2, refused: 1, abandoned: 0 });
  });

  it("refuses a costly request that waited too long, and forgets one whose client left", async () => {
    const gate = new AdmissionGate({ maxWaitMs: 50 });
    const { send, hold } = gatedApi(gate);
    const first = send("first", HEAVY);
    await expect.poll(() => gate.load.running).toBe(1);

    const late = await send("late", HEAVY);
    expect(late.status).toBe(503);
    expect(late.headers.get("retry-after")).toBe("1");
    expect(((await late.json()) as { error: { message: string } }).error.message).toBe(
      "waited 50 ms behind other costly queries: retry later, or ask for fewer rows",
    );

    const leaving = new AbortController();
    const gone = send("gone", HEAVY, leaving.signal);
    await expect.poll(() => gate.load.waiting).toBe(1);
    leaving.abort();
    await Promise.resolve(gone).catch(() => undefined);
    expect(gate.load).toEqual({ running: 1, waiting: 0 });
    hold.resolve();
    expect((await first).status).toBe(200);
    expect(gate.counts).toMatchObject({ heavy: 1, refused: 1, abandoned: 1 });
  });

  it("gives costly requests a share of the event loop while cheap ones are served, and all of it otherwise", async () => {
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "Date"] });
    try {
      // The event loop's busy time is the test's: each costly request adds its own.
      let busy = 0;
      const gate = new AdmissionGate({ heavyShare: 0.25, contendedMs: 1_000 }, { now: () => Date.now(), busyMs: () => busy });
      const heavy = { bytes: GRAPHQL_ADMISSION.heavyBytes + 1, statements: 1 };
      const started: Record<string, number> = {};
      const t0 = Date.now();
      /** A costly request that takes `ms`, `busyMs` of them on the event loop (the rest waiting on the database). */
      const work = (name: string, ms: number, busyMs: number) => () => {
        started[name] = Date.now() - t0;
        return new Promise<void>((r) =>
          setTimeout(() => {
            busy += busyMs;
            r();
          }, ms),
        );
      };
      // A keeps the loop busy 100 ms; a cheap read comes in meanwhile; B arrives as A ends.
      const a = gate.run(heavy, undefined, work("a", 100, 100));
      await vi.advanceTimersByTimeAsync(50);
      await gate.run({ bytes: 0, statements: 1 }, undefined, async () => {});
      await vi.advanceTimersByTimeAsync(50);
      await a;
      const b = gate.run(heavy, undefined, work("b", 100, 10));
      // 100 ms at a quarter of the loop: B starts 300 ms after A ended.
      await vi.advanceTimersByTimeAsync(299);
      expect(started.b).toBeUndefined();
      await vi.advanceTimersByTimeAsync(1);
      expect(started.b).toBe(400);
      // B waited 90 of its 100 ms on the database: C, queued meanwhile, starts 30 ms after B ended.
      const c = gate.run(heavy, undefined, work("c", 100, 100));
      await vi.advanceTimersByTimeAsync(130);
      await b;
      expect(started.c).toBe(530);
      await vi.advanceTimersByTimeAsync(100);
      await c;
      // Nobody else for a second: D and E run back to back.
      await vi.advanceTimersByTimeAsync(1_300);
      const d = gate.run(heavy, undefined, work("d", 100, 100));
      const e = gate.run(heavy, undefined, work("e", 100, 100));
      await vi.advanceTimersByTimeAsync(200);
      await Promise.all([d, e]);
      expect(started.e! - started.d!).toBe(100);
    } finally {
      vi.useRealTimers();
    }
  });

  it("answers a request over a limit 400, naming the limit, its value and the request's size, before it runs", async () => {
    const gate = new AdmissionGate();
    const { send, reached } = gatedApi(gate);
    const res = await send("big", `{ usageCommitments(limit: 8) { items { server } } }`);
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({
      error: {
        field: "query",
        message: `may return ${8 * COMMITMENT_BYTES} bytes (its rows, as many as the tables hold, times their table's widest row), more than 262144`,
        limit: "maxBytes",
        max: 262_144,
        requested: 8 * COMMITMENT_BYTES,
      },
    });
    expect(reached).toEqual([]);
    expect(gate.counts).toEqual({ cheap: 0, heavy: 0, refused: 0, abandoned: 0 });
  });
});

describe("IndexerClient within the limits", () => {
  /** An API holding 8 usage commitments of 263,185 bytes whose byte limit is 1 MiB: it refuses a page of more than 3. */
  function commitmentsApi() {
    const max = 1_048_576;
    const limits: number[] = [];
    const rows = Array.from({ length: 8 }, (_, i) => ({ server: `0x${String(i).repeat(40)}`, cursor: String(i) }));
    const fetch = (async (_url: string | URL | Request, init?: RequestInit) => {
      const { variables } = JSON.parse(String(init?.body)) as { variables: { after: string | null; limit: number } };
      limits.push(variables.limit);
      const requested = variables.limit * COMMITMENT_BYTES;
      if (requested > max)
        return new Response(JSON.stringify({ error: { field: "query", message: "too big", limit: "maxBytes", max, requested } }), {
          status: 400,
          headers: { "content-type": "application/json" },
        });
      const start = variables.after === null ? 0 : Number(variables.after) + 1;
      const items = rows.slice(start, start + variables.limit);
      const hasNextPage = start + variables.limit < rows.length;
      const page = { items: items.map((r) => ({ server: r.server })), pageInfo: { hasNextPage, endCursor: items.at(-1)?.cursor ?? null } };
      return new Response(JSON.stringify({ data: { usageCommitments: page } }), { headers: { "content-type": "application/json" } });
    }) as typeof globalThis.fetch;
    return { fetch, limits };
  }

  it("pages with fewer rows when the API says a page costs too much, in the proportion it states", async () => {
    const api = commitmentsApi();
    const client = new IndexerClient("http://api.test", { fetch: api.fetch });
    const rows = await client.all<{ server: string }>("usageCommitments", "server", "blockNumber");
    expect(rows).toHaveLength(8);
    // 200 rows would be 52,637,000 bytes: 200 × 1,048,576 / 52,637,000 → 3 rows a page.
    expect(api.limits).toEqual([200, 3, 3, 3]);
  });

  it("passes on a refusal it cannot page around", async () => {
    const api = commitmentsApi();
    const client = new IndexerClient("http://api.test", { fetch: api.fetch, pageSize: 1 });
    const fetch = (async () =>
      new Response(
        JSON.stringify({ error: { field: "query", message: "is 9 levels deep, more than 8", limit: "maxDepth", max: 8, requested: 9 } }),
        {
          status: 400,
        },
      )) as typeof globalThis.fetch;
    await expect(new IndexerClient("http://api.test", { fetch }).all("usageCommitments", "server", "blockNumber")).rejects.toMatchObject({
      status: 400,
      field: "query",
      limit: "maxDepth",
    });
    expect((await client.all("usageCommitments", "server", "blockNumber")).length).toBe(8);
    await expect(new IndexerClient("http://api.test", { fetch }).query("{ x }")).rejects.toBeInstanceOf(GraphqlLimitError);
  });

  it("sends a read again after the API answered 503 (busy with costly queries), then gives up", async () => {
    const statuses = [503, 503, 200];
    const sent: number[] = [];
    const fetch = (async () => {
      const status = statuses.shift() ?? 503;
      sent.push(status);
      return new Response(JSON.stringify(status === 200 ? { data: { ok: true } } : { error: { field: null, message: "busy" } }), {
        status,
      });
    }) as typeof globalThis.fetch;
    const client = new IndexerClient("http://api.test", { fetch, busyRetryMs: [0, 0] });
    expect(await client.query("{ ok }")).toEqual({ ok: true });
    expect(sent).toEqual([503, 503, 200]);
    await expect(client.query("{ ok }")).rejects.toMatchObject({ status: 503, serverMessage: "busy" });
    expect(sent).toEqual([503, 503, 200, 503, 503, 503]);
  });

  it("sends a read again on a new connection when the server closed the one it was on, then gives up", async () => {
    // A real server and the real fetch: the first `drops` requests have their connection closed
    // by the server before it answers, as a busy process does with a kept-alive connection.
    let drops = 2;
    let received = 0;
    const server = createServer((req, res) => {
      received++;
      if (drops > 0) {
        drops--;
        req.socket.destroy();
        return;
      }
      res.setHeader("content-type", "application/json");
      res.end(JSON.stringify({ data: { ok: true } }));
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    try {
      const client = new IndexerClient(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
      expect(await client.query("{ ok }")).toEqual({ ok: true });
      expect(received).toBe(3);
      drops = 3;
      const failure = await client.query("{ ok }").catch((e: unknown) => e);
      expect(failure).toBeInstanceOf(ApiUnreachableError);
      expect(String((failure as Error).message)).toMatch(/UND_ERR_SOCKET|ECONNRESET/);
      expect(received).toBe(6);
    } finally {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  });
});
