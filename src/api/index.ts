import { db } from "ponder:api";
import schema from "ponder:schema";
import { Hono } from "hono";
import { graphql } from "ponder";
import { apiCheckpointFile, sqlOverHttp } from "../config/api.js";
import { indexerSettings } from "../config/indexer.js";
import { ApiInputError, jsonBodyLimit } from "../http/input.js";
import { API_PATHS } from "../indexer-client/schemas.js";
import { mountWebApp } from "./app.js";
import { catchUpGate, selfProgress } from "./catch-up.js";
import { AdmissionGate } from "./graphql-gate.js";
import { GRAPHQL_LIMITS, graphqlCatalog, graphqlLimits, PONDER_GRAPHQL_OPTIONS } from "./graphql-limits.js";
import { storeStats } from "./graphql-stats.js";
import { mountOperations } from "./health.js";
import { payoutFields } from "./payouts.js";
import { mountReadRoutes } from "./reads.js";
import { ApiServiceError, rpcClients } from "./relayer.js";
import { mountSql } from "./sql.js";
import { MAX_BODY_BYTES, mountWriteRoutes } from "./writes.js";

const app = new Hono();
const settings = indexerSettings();
// Ponder serves /status, /ready and /metrics itself, next to this app, on the process's port.
const catchUp = catchUpGate(
  selfProgress(`http://127.0.0.1:${process.env.PORT || 42069}`, rpcClients(settings.chainId, settings.rpcUrl).publicClient),
  (reason) => console.warn(reason),
);
const payouts = payoutFields({
  checkIndexed: catchUp.check,
  env: process.env,
  chainId: settings.chainId,
  rpcUrl: settings.rpcUrl,
  contracts: settings.contracts,
  checkpointFile: apiCheckpointFile(process.env, settings.chainId, settings.database),
  graphqlFetch: ((input: string | URL | Request, init?: RequestInit) => app.request(input as string, init)) as typeof fetch,
});

// Every route reads at most the write routes' largest body; GraphQL and SQL much less (below).
app.use("*", jsonBodyLimit(MAX_BODY_BYTES));
// No indexed read is answered until the indexer has caught up since it started (catch-up.ts).
for (const path of ["/", "/graphql", "/sql/*", API_PATHS.accountEarnings, API_PATHS.providerEarnings, API_PATHS.auditTotals])
  app.use(path, catchUp.middleware);
mountSql(app, { db, schema, settings: sqlOverHttp(process.env, settings.database) });
const graphqlHandler = graphql({ db, schema }, PONDER_GRAPHQL_OPTIONS);
// The limits count against what the store holds; costly requests take turns (graphql-gate.ts).
const catalog = graphqlCatalog(schema);
const graphqlCost = graphqlLimits({ catalog, stats: storeStats(db, schema, catalog), gate: new AdmissionGate() });
for (const path of ["/", "/graphql"]) app.use(path, jsonBodyLimit(GRAPHQL_LIMITS.maxBodyBytes), graphqlCost, graphqlHandler);

mountReadRoutes(app, { db, payouts });
mountOperations(app, { db, settings, env: process.env, payouts, checkIndexed: catchUp.check });
mountWriteRoutes(app, { db, settings, env: process.env });
mountWebApp(app, { deployment: { chainId: settings.chainId, contracts: settings.contracts } });

app.onError((err, c) => {
  if (err instanceof ApiInputError) return c.json({ error: { field: err.field, message: err.message } }, err.status);
  if (err instanceof ApiServiceError) return c.json({ error: { field: null, message: err.message } }, err.status);
  throw err;
});

export default app;
