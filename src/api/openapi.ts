import { z } from "zod/v4";
import { openApiDocument, type RouteDoc } from "../http/openapi.js";
import { errorBody } from "../http/schema.js";
import {
  API_PATHS,
  accountParams,
  auditQuery,
  auditTotalsResponse,
  earningsQuery,
  earningsResponse,
  MAX_LINES,
  MAX_RECORDS,
  providerParams,
  providerWriteResult,
  registerRequest,
  submitRequest,
  submitResult,
  updateRequest,
} from "../indexer-client/schemas.js";
import { APP_PREFIX } from "./app.js";
import { GRAPHQL_ADMISSION } from "./graphql-gate.js";
import { GRAPHQL_LIMITS, PONDER_MAX_LIMIT } from "./graphql-limits.js";
import { OPERATIONS_PREFIX } from "./health.js";
import { MAX_SQL_CHARS } from "./sql.js";
import { MAX_BODY_BYTES } from "./writes.js";

const refused = (description: string) => ({ description, schema: errorBody });
const anyJson = z.unknown();

const earningsResponses = (param: string) => ({
  200: { description: "the account's balance history, received transfers and pending payout", schema: earningsResponse },
  400: refused(`a malformed ${param} or tokenId`),
  404: refused(`no registered account${param === "providerId" ? " or provider" : ""}`),
});

const graphqlResponses = {
  200: { description: "a GraphQL answer", schema: anyJson },
  400: refused(
    "not a JSON object with a GraphQL document (`field` body, query or variables), or over the depth, alias, row, byte or statement limits (`field` query; `limit` names the limit, `max` its value, `requested` the request's)",
  ),
  413: refused(`a body over ${GRAPHQL_LIMITS.maxBodyBytes} bytes`),
  415: refused("not sent as application/json"),
  503: refused("a costly request while others run: the queue is full or the wait too long (`field` null, Retry-After in seconds)"),
};

const writeRefusals = {
  400: refused("malformed or invalid, `field` naming the offending part (`body` for the body as a whole)"),
  401: refused("a signature that is not the required signer's"),
  413: refused(`a body over ${MAX_BODY_BYTES} bytes`),
  415: refused("not sent as application/json"),
  502: refused("the chain did not answer or refused the call (`field` null)"),
  503: refused("no relayer key, or it cannot pay for gas (`field` null)"),
};

const healthProbe = z.object({
  ok: z.literal(true),
  ready: z.boolean().meta({ description: "historical indexing is done" }),
  indexedBlock: z.number().int().nullable(),
  headBlock: z.number().int().nullable(),
  lagBlocks: z.number().int().nullable(),
});

/** Every route of the query API (`src/api/`), documented from the schemas it parses and answers with. */
export const API_ROUTES: readonly RouteDoc[] = [
  {
    method: "get",
    path: API_PATHS.accountEarnings,
    tags: ["reads"],
    summary: "An account's earnings",
    description:
      "Every balance snapshot of the eERC account (the state right after each deposit, transfer, withdrawal…) with the PCTs its key decrypts, its received transfers, and `pending`: what is owed and not yet paid, as a PCT under the account's key (null with `pendingUnavailable` when the API has no operator key). Integers are decimal strings except `logIndex`.",
    params: accountParams,
    query: earningsQuery,
    responses: earningsResponses("address"),
  },
  {
    method: "get",
    path: API_PATHS.providerEarnings,
    tags: ["reads"],
    summary: "A provider's earnings",
    description:
      "`providerId` is the provider id of the ProviderRegistry (keccak256 of the namespace), answered with the earnings of its current payout account as indexed; an account address is also accepted, as `/accounts/{address}/earnings`, for clients written before provider ids were. The answer is that of `/accounts/{address}/earnings`.",
    params: providerParams,
    query: earningsQuery,
    responses: earningsResponses("providerId"),
  },
  {
    method: "get",
    path: API_PATHS.auditTotals,
    tags: ["reads"],
    summary: "Every auditor PCT, per UTC period and token",
    description:
      "Each transfer's, withdrawal's, mint's and burn's auditor PCT, grouped by the UTC day or month of its block and by token, and `cycles`: each payout cycle's total as a PCT under the auditor's key.",
    query: auditQuery,
    responses: { 200: { description: "the audit groups", schema: auditTotalsResponse }, 400: refused("a period other than day or month") },
  },
  {
    method: "post",
    path: API_PATHS.usageSubmit,
    tags: ["writes"],
    summary: "Relay a server-signed usage batch (UsageLedger.commitSigned)",
    description: `The deadline (Unix seconds) must lie between 60 s and 24 h ahead. With \`records\` (at most ${MAX_RECORDS}) the API checks that they hash to \`merkleRoot\`; records are neither stored nor logged. The answer comes once the node accepted the transaction; the same batch again gets the same \`txHash\`.`,
    body: submitRequest,
    responses: {
      200: { description: "sent, or already committed", schema: submitResult },
      ...writeRefusals,
      403: refused("the server is not authorised on the UsageLedger"),
      409: refused("the batch id is used for another batch"),
      413: refused(`a body over ${MAX_BODY_BYTES} bytes, more than ${MAX_RECORDS} records or ${MAX_LINES} lines`),
    },
  },
  {
    method: "post",
    path: API_PATHS.providersRegister,
    tags: ["writes"],
    summary: "Relay the registry owner's signed provider registration",
    body: registerRequest,
    responses: {
      201: { description: "registered (the transaction is mined)", schema: providerWriteResult },
      ...writeRefusals,
      409: refused("the namespace is registered, or `nonce` is not the registry's next owner nonce"),
      422: refused("the payout account has no eERC registration"),
    },
  },
  {
    method: "post",
    path: API_PATHS.providersUpdate,
    tags: ["writes"],
    summary: "Relay the registry owner's signed pricing, active flag or payout account change",
    body: updateRequest,
    responses: {
      200: { description: "updated (the transaction is mined)", schema: providerWriteResult },
      ...writeRefusals,
      404: refused("an unknown provider"),
      409: refused("`nonce` is not the registry's next owner nonce"),
      422: refused("the payout account has no eERC registration"),
    },
  },
  {
    method: "get",
    path: `${OPERATIONS_PREFIX}/health`,
    tags: ["operations"],
    summary: "Indexer readiness and lag",
    responses: { 200: { description: "readiness, indexed and head blocks", schema: healthProbe } },
  },
  {
    method: "get",
    path: `${OPERATIONS_PREFIX}/metrics`,
    tags: ["operations"],
    summary: "Prometheus metrics: counts and blocks, never an amount",
    responses: { 200: { description: "Prometheus text format", text: { contentType: "text/plain" } } },
  },
  {
    method: "get",
    path: "/graphql",
    tags: ["indexer"],
    summary: "GraphiQL, the in-browser GraphQL editor",
    responses: { 200: { description: "an HTML page", text: { contentType: "text/html" } } },
  },
  {
    method: "post",
    path: "/graphql",
    tags: ["indexer"],
    summary: "GraphQL over the indexed tables",
    description: `Refused before it runs: deeper than ${GRAPHQL_LIMITS.maxDepth} levels, more than ${GRAPHQL_LIMITS.maxAliases} aliases, lists that ask for more than ${GRAPHQL_LIMITS.maxRows} rows in all (each list's \`limit\`, at most ${PONDER_MAX_LIMIT}, times the rows around it), more than ${GRAPHQL_LIMITS.maxStatements} database statements, or an answer that may pass ${GRAPHQL_LIMITS.maxBytes} bytes (its rows, as many as the tables hold, times their table's widest row; one row is always served). A request costing more than ${GRAPHQL_ADMISSION.heavyBytes} bytes or ${GRAPHQL_ADMISSION.heavyStatements} statements waits for its turn: one runs at a time, and while cheaper requests are served such requests get ${GRAPHQL_ADMISSION.heavyShare * 100}% of the API's time.`,
    body: z.object({ query: z.string(), variables: z.record(z.string(), z.unknown()).optional() }),
    responses: graphqlResponses,
  },
  {
    method: "post",
    path: "/",
    tags: ["indexer"],
    summary: "GraphQL, as at /graphql",
    body: z.object({ query: z.string(), variables: z.record(z.string(), z.unknown()).optional() }),
    responses: graphqlResponses,
  },
  {
    method: "get",
    path: "/sql/db",
    tags: ["indexer"],
    summary: "Read-only SQL over the indexed tables, for Ponder's @ponder/client (off unless API_SQL=1)",
    description: `One SELECT that Ponder's allow-list accepts, on the indexed tables only (not Ponder's \`_ponder_*\` or \`_reorg_*\` tables), at most ${MAX_SQL_CHARS} characters, returning at most API_SQL_MAX_ROWS rows and ending within API_SQL_TIMEOUT_MS. Parameters are plain JSON values. Needs Postgres; \`/sql/live\` is not served.`,
    query: z.object({ sql: z.string().meta({ description: "the query, superjson-encoded { sql, params }" }) }),
    responses: {
      200: { description: "rows", schema: anyJson },
      400: refused("a missing, malformed or refused query, one over the row cap or the statement timeout (`field` sql)"),
      403: refused("a query naming one of Ponder's internal tables"),
      404: refused("SQL over HTTP is off (the default)"),
      503: refused("queries run one at a time: the queue is full or the wait too long (`field` null, Retry-After in seconds)"),
    },
  },
  {
    method: "get",
    path: APP_PREFIX,
    tags: ["dashboard"],
    summary: "The web dashboard: a redirect to /app/",
    responses: { 301: { description: "to /app/" } },
  },
  {
    method: "get",
    path: `${APP_PREFIX}/{file}`,
    tags: ["dashboard"],
    summary: "The web dashboard's static files (index.html for /app/)",
    description:
      "The provider dashboard, built from `web/` (`npm run build:web`; built on the first request when missing). It decrypts in the browser with a key derived from the user's wallet signature and reads only the public routes above; no key or figure is sent to or served by this route. `deployment.json` (the chain id and the eERC, Registrar and token addresses the page's withdraw needs) is served from this API's own settings when the build holds none.",
    params: z.object({ file: z.string().meta({ description: "a path under build/web/, e.g. assets/index-….js" }) }),
    responses: {
      200: { description: "the file", text: { contentType: "text/html" } },
      404: { description: "no such file" },
      503: { description: "the dashboard is not built and the build failed" },
    },
  },
  {
    method: "get",
    path: API_PATHS.openapi,
    tags: ["reads"],
    summary: "This document",
    responses: { 200: { description: "the OpenAPI 3.1 document of the query API", schema: anyJson } },
  },
];

/** The query API's OpenAPI 3.1 document, served at `GET /openapi.json`. */
export function apiDocument() {
  return openApiDocument(
    {
      title: "BackendShield query API",
      version: "1",
      description:
        "The REST views, the relaying write routes and the operations routes of the indexer's API. Integers travel as decimal strings (micro-USDC for amounts; a JSON number is accepted in a request when it is a safe integer), byte strings as 0x-hex, addresses checksummed in answers. Every refusal is `{ error: { field, message } }`. GraphQL and SQL are Ponder's own.",
    },
    API_ROUTES,
    [
      { name: "reads", description: "encrypted views: only the holder of the right key reads an amount" },
      { name: "writes", description: "signed calls relayed with the API's relayer key; a refused request sends nothing" },
      { name: "operations", description: "health and metrics for supervisors" },
      { name: "indexer", description: "Ponder's GraphQL and SQL" },
      { name: "dashboard", description: "the web dashboard's static files; it decrypts in the browser" },
    ],
  );
}
