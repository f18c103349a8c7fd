import { dirname, join } from "node:path";
import type { Address, Hex } from "viem";
import { localKey } from "../chain/local.js";
import { OPERATIONS_ENV } from "./operations.js";
import { OPERATOR_ENV, operatorSettings, type SettlementSettings, settlementSettings } from "./operator.js";
import { ConfigError, type Env, env, readEnv } from "./parse.js";

/** The API's own variables, next to the indexer's (it runs in the indexer's process). */
export const API_ENV = {
  ...OPERATOR_ENV,
  ...OPERATIONS_ENV,
  OPERATOR_EERC_KEY: env.eercKey(),
  PAYER_ADDRESSES: env.addresses(),
  RELAYER_PRIVATE_KEY: env.privateKey(),
  RELAYER_RECEIPT_TIMEOUT_S: env.integer({ min: 1, max: 3_600 }),
  PORT: env.integer({ max: 65_535 }),
  API_SQL: env.flag(),
  API_SQL_TIMEOUT_MS: env.integer({ min: 100, max: 60_000 }),
  API_SQL_MAX_ROWS: env.integer({ min: 1, max: 100_000 }),
  API_CHECKPOINT_FILE: env.text(),
};

/**
 * Where the API keeps the payout ledger it has read (sealed with the operator's key), so that a
 * restart reads on from there: API_CHECKPOINT_FILE, else next to the PGlite database (and gone
 * with it), else `data/api-checkpoint-<chain>-<database>.bin` for a Postgres database.
 */
export function apiCheckpointFile(
  source: Env,
  chainId: number,
  database: { kind: "pglite"; directory: string } | { kind: "postgres"; connectionString: string },
): string {
  const e = readEnv({ API_CHECKPOINT_FILE: API_ENV.API_CHECKPOINT_FILE }, source);
  if (e.API_CHECKPOINT_FILE) return e.API_CHECKPOINT_FILE;
  if (database.kind === "pglite") return join(dirname(database.directory), `api-checkpoint-${chainId}.bin`);
  const name = new URL(database.connectionString).pathname.replace(/^\//, "").replace(/[^A-Za-z0-9_-]/g, "_") || "postgres";
  return join("data", `api-checkpoint-${chainId}-${name}.bin`);
}

/**
 * What the query API needs to serve pending amounts and per-cycle totals: the operator's eERC
 * key, which only reads (it cannot sign a transaction), or the operator's wallet key to derive it.
 */
export type PayoutViewConfig = Omit<SettlementSettings, "pastPayers"> & {
  operator: { eercKey: bigint } | { walletKey: Hex };
  payers: Address[];
};

/**
 * The API's payout settings, or why they are off. The operator's eERC key (OPERATOR_EERC_KEY)
 * is all it needs, with the payers' addresses (PAYER_ADDRESSES); without it, the key is derived
 * from OPERATOR_PRIVATE_KEY (anvil's account #0 on a local chain), which gives the API process
 * the owner's powers: a deployment keeps that key out of the API. Past payers
 * (PAST_PAYER_ADDRESSES) are added.
 */
export function payoutViewConfig(
  source: Env,
  chainId: number,
  operatorAddress: (key: Hex) => Address,
): PayoutViewConfig | { disabled: string } {
  // The relayer key is read apart (relayerKey): a bad one turns the write routes off, not the API.
  const e = readEnv({ ...OPERATOR_ENV, OPERATOR_EERC_KEY: API_ENV.OPERATOR_EERC_KEY, PAYER_ADDRESSES: API_ENV.PAYER_ADDRESSES }, source);
  const { pastPayers, asserted } = settlementSettings(e);
  if (e.OPERATOR_EERC_KEY !== undefined) {
    if (!e.PAYER_ADDRESSES?.length)
      throw new ConfigError("PAYER_ADDRESSES", "PAYER_ADDRESSES must name the payer accounts when the API reads with OPERATOR_EERC_KEY");
    return { asserted, operator: { eercKey: e.OPERATOR_EERC_KEY }, payers: [...e.PAYER_ADDRESSES, ...pastPayers] };
  }
  if (e.OPERATOR_PRIVATE_KEY === undefined && !localKey("operator", chainId)) {
    return {
      disabled: `OPERATOR_EERC_KEY is not set: pending amounts and cycle totals need the operator's eERC key on chain ${chainId}`,
    };
  }
  const { operatorKey } = operatorSettings(e, chainId);
  const payers = e.PAYER_ADDRESSES?.length ? e.PAYER_ADDRESSES : [operatorAddress(operatorKey)];
  return { asserted, operator: { walletKey: operatorKey }, payers: [...payers, ...pastPayers] };
}

export type RelayerKey = { enabled: true; key: Hex; source: "env" | "anvil" } | { enabled: false; reason: string };

/**
 * The relayer's key: `RELAYER_PRIVATE_KEY`, or anvil's account #8 on a local chain only. On any
 * other chain without a key the write routes stay off. The key itself never appears in a message.
 */
export function relayerKey(source: Env, chainId: number): RelayerKey {
  let key: Hex | undefined;
  try {
    key = readEnv({ RELAYER_PRIVATE_KEY: API_ENV.RELAYER_PRIVATE_KEY }, source).RELAYER_PRIVATE_KEY;
  } catch (err) {
    if (err instanceof ConfigError) return { enabled: false, reason: err.message };
    throw err;
  }
  if (key) return { enabled: true, key, source: "env" };
  const local = localKey("relayer", chainId);
  if (local) return { enabled: true, key: local, source: "anvil" };
  return { enabled: false, reason: `RELAYER_PRIVATE_KEY is not set: the write routes need a funded relayer key on chain ${chainId}` };
}

/** Seconds a relayed transaction may wait for its receipt before the relayer replaces it. */
export const DEFAULT_RELAYER_RECEIPT_TIMEOUT_S = 60;

/** The relayer's receipt timeout in milliseconds: `RELAYER_RECEIPT_TIMEOUT_S`, 60 s by default. */
export function relayerReceiptTimeoutMs(source: Env): number {
  const { RELAYER_RECEIPT_TIMEOUT_S } = readEnv({ RELAYER_RECEIPT_TIMEOUT_S: API_ENV.RELAYER_RECEIPT_TIMEOUT_S }, source);
  return (RELAYER_RECEIPT_TIMEOUT_S ?? DEFAULT_RELAYER_RECEIPT_TIMEOUT_S) * 1_000;
}

/** Statement timeout of the SQL-over-HTTP queries (and every read of the API's pool) unless API_SQL_TIMEOUT_MS says otherwise. */
export const DEFAULT_SQL_TIMEOUT_MS = 5_000;
/** Most rows one SQL-over-HTTP answer holds unless API_SQL_MAX_ROWS says otherwise. */
export const DEFAULT_SQL_MAX_ROWS = 1_000;

export type SqlOverHttp = { enabled: false } | { enabled: true; timeoutMs: number; maxRows: number };

/**
 * Ponder's SQL over HTTP (`/sql/*`): off unless `API_SQL=1`. It needs Postgres: PGlite runs each
 * query on the API's own thread to the end (it accepts `SET statement_timeout` and never fires it),
 * so one expensive query would stall every other route; `API_SQL=1` on PGlite is a ConfigError.
 */
export function sqlOverHttp(source: Env, database: { kind: "pglite" | "postgres" }): SqlOverHttp {
  const e = readEnv(
    { API_SQL: API_ENV.API_SQL, API_SQL_TIMEOUT_MS: API_ENV.API_SQL_TIMEOUT_MS, API_SQL_MAX_ROWS: API_ENV.API_SQL_MAX_ROWS },
    source,
  );
  if (!e.API_SQL) return { enabled: false };
  if (database.kind !== "postgres")
    throw new ConfigError(
      "API_SQL",
      "API_SQL=1 needs Postgres (DATABASE_URL): PGlite cannot stop a query at a statement timeout, so one slow query would stall the whole API",
    );
  return { enabled: true, timeoutMs: e.API_SQL_TIMEOUT_MS ?? DEFAULT_SQL_TIMEOUT_MS, maxRows: e.API_SQL_MAX_ROWS ?? DEFAULT_SQL_MAX_ROWS };
}
