import { db } from "ponder:api";
import schema from "ponder:schema";
import { Hono } from "hono";
import { client, graphql } from "ponder";
import { auditTotals, parsePeriod } from "./audit.js";
import { indexerSettings } from "../indexer/settings.js";
import { earnings } from "./earnings.js";
import { ApiInputError, parseAddress, parseTokenId } from "./input.js";
import { ApiServiceError } from "./relayer.js";
import { mountWriteRoutes } from "./writes.js";

const app = new Hono();

app.use("/sql/*", client({ db, schema }));
app.use("/", graphql({ db, schema }));
app.use("/graphql", graphql({ db, schema }));

app.get("/providers/:providerId/earnings", async (c) => {
  const address = parseAddress("providerId", c.req.param("providerId"));
  const tokenId = parseTokenId(c.req.query("tokenId"));
  const body = await earnings(db, address, tokenId);
  if (!body) return c.json({ error: { field: "providerId", message: `no registered account ${address}` } }, 404);
  return c.json(body);
});

app.get("/audit/totals", async (c) => c.json(await auditTotals(db, parsePeriod(c.req.query("period")))));

mountWriteRoutes(app, { db, settings: indexerSettings(), env: process.env });

app.onError((err, c) => {
  if (err instanceof ApiInputError) return c.json({ error: { field: err.field, message: err.message } }, err.status);
  if (err instanceof ApiServiceError) return c.json({ error: { field: null, message: err.message } }, err.status);
  throw err;
});

export default app;
