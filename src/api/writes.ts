import type { db as ApiDb } from "ponder:api";
import { usageCommitment } from "ponder:schema";
import type { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { and, eq } from "ponder";
import type { Address, Hex } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { relayerKey, relayerReceiptTimeoutMs } from "../config/api.js";
import type { IndexerSettings } from "../config/indexer.js";
import { readJsonBody, readJsonText } from "../http/input.js";
import { API_PATHS } from "../indexer-client/schemas.js";
import { ProviderWriter } from "./providers-write.js";
import { Relayer, rpcClients } from "./relayer.js";
import { UsageSubmitter } from "./usage-submit.js";
import { workerChecker } from "./workers.js";

/** Largest request body the write routes read. */
export const MAX_BODY_BYTES = 8 * 1024 * 1024;

type Db = typeof ApiDb;

/**
 * Mounts `POST /providers/register`, `POST /providers/update` and `POST /usage/submit`. They relay
 * signed calls with the relayer key (`relayerKey`); without one they answer 503.
 */
export function mountWriteRoutes(app: Hono, deps: { db: Db; settings: IndexerSettings; env: Record<string, string | undefined> }): void {
  const { db, settings } = deps;
  const key = relayerKey(deps.env, settings.chainId);
  const limit = bodyLimit({
    maxSize: MAX_BODY_BYTES,
    onError: (c) => c.json({ error: { field: "body", message: `must be at most ${MAX_BODY_BYTES} bytes` } }, 413),
  });
  const routes = [API_PATHS.providersRegister, API_PATHS.providersUpdate, API_PATHS.usageSubmit] as const;
  // Ponder's server allows every origin; writes are authenticated by signatures, not cookies, but
  // their answers are for the caller's own client, not for pages of other origins.
  for (const path of routes) {
    app.use(path, async (c, next) => {
      await next();
      c.res.headers.delete("access-control-allow-origin");
    });
  }

  if (!key.enabled) {
    console.warn(`write routes disabled: ${key.reason}`);
    for (const path of routes)
      app.post(path, (c) => c.json({ error: { field: null, message: `write routes are disabled: ${key.reason}` } }, 503));
    return;
  }

  const { chain, publicClient, walletClient } = rpcClients(settings.chainId, settings.rpcUrl);
  const relayer = new Relayer(privateKeyToAccount(key.key), publicClient, walletClient, chain, undefined, {
    receiptTimeoutMs: relayerReceiptTimeoutMs(deps.env),
  });
  const providers = new ProviderWriter({
    relayer,
    publicClient,
    chainId: settings.chainId,
    registry: settings.contracts.providerRegistry,
    registrar: settings.contracts.registrar,
  });
  const usage = new UsageSubmitter({
    relayer,
    publicClient,
    chainId: settings.chainId,
    ledger: settings.contracts.usageLedger,
    startBlock: settings.startBlock,
    async findIndexed(server: Address, batchId: Hex) {
      const [row] = await db
        .select({ batchHash: usageCommitment.batchHash, txHash: usageCommitment.txHash })
        .from(usageCommitment)
        .where(and(eq(usageCommitment.server, server.toLowerCase() as Address), eq(usageCommitment.batchId, batchId)))
        .limit(1);
      return row;
    },
    warn: (message) => console.warn(message),
    check: workerChecker((reason) => console.warn(reason)),
  });
  console.info(`write routes enabled: relayer ${relayer.address}${key.source === "anvil" ? " (anvil account #8)" : ""}`);

  app.post(API_PATHS.providersRegister, limit, async (c) => c.json(await providers.register(await readJsonBody(c.req)), 201));
  app.post(API_PATHS.providersUpdate, limit, async (c) => c.json(await providers.update(await readJsonBody(c.req)), 200));
  app.post(API_PATHS.usageSubmit, limit, async (c) => c.json(await usage.submit(await readJsonText(c.req)), 200));
}
