import { db } from "ponder:api";
import schema from "ponder:schema";
import { Hono } from "hono";
import { client, graphql } from "ponder";
import { indexerSettings } from "../config/indexer.js";
import { ApiInputError, parseAddress, parseTokenId } from "../http/input.js";
import type { AuditTotalsWire, EarningsWire } from "../indexer-client/wire.js";
import { auditTotals, parsePeriod } from "./audit.js";
import { earnings } from "./earnings.js";
import { payoutFields } from "./payouts.js";
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

app.get("/providers/:providerId/earnings", async (c) => {
  const address = parseAddress("providerId", c.req.param("providerId"));
  const tokenId = parseTokenId(c.req.query("tokenId"));
  const body = await earnings(db, address, tokenId);
  if (!body) return c.json({ error: { field: "providerId", message: `no registered account ${address}` } }, 404);
  const pk: [bigint, bigint] = [BigInt(body.publicKey[0]), BigInt(body.publicKey[1])];
  return c.json({ ...body, ...(await payouts.pending(address, pk)) } satisfies EarningsWire);
});

app.get("/audit/totals", async (c) => {
  const body = await auditTotals(db, parsePeriod(c.req.query("period")));
  const pk: [bigint, bigint] | null = body.auditorPublicKey ? [BigInt(body.auditorPublicKey[0]), BigInt(body.auditorPublicKey[1])] : null;
  return c.json({ ...body, ...(await payouts.cycles(pk)) } satisfies AuditTotalsWire);
});

mountWriteRoutes(app, { db, settings, env: process.env });

app.onError((err, c) => {
  if (err instanceof ApiInputError) return c.json({ error: { field: err.field, message: err.message } }, err.status);
  if (err instanceof ApiServiceError) return c.json({ error: { field: null, message: err.message } }, err.status);
  throw err;
});

export default app;
