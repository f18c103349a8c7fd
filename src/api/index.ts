import { db } from "ponder:api";
import schema from "ponder:schema";
import { Hono } from "hono";
import { client, graphql } from "ponder";
import { indexerSettings } from "../config/indexer.js";
import { ApiInputError } from "../http/input.js";
import { mountWebApp } from "./app.js";
import { mountOperations } from "./health.js";
import { payoutFields } from "./payouts.js";
import { mountReadRoutes } from "./reads.js";
import { ApiServiceError } from "./relayer.js";
import { mountWriteRoutes } from "./writes.js";

const app = new Hono();
const settings = indexerSettings();
const payouts = payoutFields({
  env: process.env,
  chainId: settings.chainId,
  graphqlFetch: ((input: string | URL | Request, init?: RequestInit) => app.request(input as string, init)) as typeof fetch,
});

app.use("/sql/*", client({ db, schema }));
app.use("/", graphql({ db, schema }));
app.use("/graphql", graphql({ db, schema }));

mountReadRoutes(app, { db, payouts });
mountOperations(app, { db, settings, env: process.env, payouts });
mountWriteRoutes(app, { db, settings, env: process.env });
mountWebApp(app);

app.onError((err, c) => {
  if (err instanceof ApiInputError) return c.json({ error: { field: err.field, message: err.message } }, err.status);
  if (err instanceof ApiServiceError) return c.json({ error: { field: null, message: err.message } }, err.status);
  throw err;
});

export default app;
