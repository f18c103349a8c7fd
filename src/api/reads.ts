import type { db as ApiDb } from "ponder:api";
import type { Context, Hono } from "hono";
import type { Address } from "viem";
import { ApiInputError } from "../http/input.js";
import { parseRequest } from "../http/schema.js";
import {
  API_PATHS,
  type AuditTotalsWire,
  accountParams,
  auditQuery,
  type CyclesField,
  type EarningsWire,
  earningsQuery,
  type PendingField,
  providerParams,
} from "../indexer-client/schemas.js";
import { auditTotals } from "./audit.js";
import { earnings, payoutAccountOf } from "./earnings.js";
import { apiDocument } from "./openapi.js";

type Db = typeof ApiDb;

/**
 * Mounts the REST views: an account's earnings (`/accounts/:address/earnings`, and
 * `/providers/:providerId/earnings` by provider id or, as before, by address), the auditor's
 * totals (`/audit/totals`) and the OpenAPI document of the whole API (`/openapi.json`).
 */
export function mountReadRoutes(
  app: Hono,
  deps: {
    db: Db;
    payouts: {
      pending(account: Address, publicKey: [bigint, bigint]): Promise<PendingField>;
      cycles(auditorPk: [bigint, bigint] | null): Promise<CyclesField>;
    };
  },
): void {
  const { db, payouts } = deps;

  /** `field` is the path parameter an unknown account is reported on. */
  const earningsOf = async (c: Context, field: string, address: Address) => {
    const { tokenId } = parseRequest(earningsQuery, c.req.query(), "query");
    const body = await earnings(db, address, tokenId);
    if (!body) throw new ApiInputError(field, `no registered account ${address}`, 404);
    const pk: [bigint, bigint] = [BigInt(body.publicKey[0]), BigInt(body.publicKey[1])];
    return c.json({ ...body, ...(await payouts.pending(address, pk)) } satisfies EarningsWire);
  };

  app.get(API_PATHS.accountEarnings, async (c) => {
    const { address } = parseRequest(accountParams, c.req.param(), "address");
    return earningsOf(c, "address", address);
  });

  app.get(API_PATHS.providerEarnings, async (c) => {
    const { providerId } = parseRequest(providerParams, c.req.param(), "providerId");
    if (providerId.kind === "account") return earningsOf(c, "providerId", providerId.account);
    const account = await payoutAccountOf(db, providerId.providerId);
    if (!account) throw new ApiInputError("providerId", `no registered provider ${providerId.providerId}`, 404);
    return earningsOf(c, "providerId", account);
  });

  app.get(API_PATHS.auditTotals, async (c) => {
    const { period } = parseRequest(auditQuery, c.req.query(), "query");
    const body = await auditTotals(db, period ?? "day");
    const pk: [bigint, bigint] | null = body.auditorPublicKey ? [BigInt(body.auditorPublicKey[0]), BigInt(body.auditorPublicKey[1])] : null;
    return c.json({ ...body, ...(await payouts.cycles(pk)) } satisfies AuditTotalsWire);
  });

  const document = apiDocument();
  app.get(API_PATHS.openapi, (c) => c.json(document));
}
