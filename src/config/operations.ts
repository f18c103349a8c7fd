import { LOG_FORMATS, LOG_LEVELS, type LoggerOptions } from "../log.js";
import { MIN_SECRET_BYTES, webhookKey } from "../notify/webhooks.js";
import { ConfigError, type Env, env, readEnv } from "./parse.js";

/** How the agent and the API log, and where they send webhook notifications. */
export const OPERATIONS_ENV = {
  LOG_FORMAT: env.oneOf(LOG_FORMATS),
  LOG_LEVEL: env.oneOf(LOG_LEVELS),
  WEBHOOK_URLS: env.urls(),
  WEBHOOK_SECRET: env.text(),
};

export type OperationsSettings = {
  log: Pick<LoggerOptions, "format" | "level">;
  /** Unset when WEBHOOK_URLS is: no notifications are sent. */
  webhooks?: { urls: string[]; secret: string };
};

/** LOG_FORMAT and LOG_LEVEL alone, for a component that only logs. */
export function logSettings(source: Env): OperationsSettings["log"] {
  const e = readEnv({ LOG_FORMAT: OPERATIONS_ENV.LOG_FORMAT, LOG_LEVEL: OPERATIONS_ENV.LOG_LEVEL }, source);
  return { format: e.LOG_FORMAT, level: e.LOG_LEVEL };
}

/** Logging and webhook settings; WEBHOOK_SECRET is required with WEBHOOK_URLS and is never echoed. */
export function operationsSettings(source: Env): OperationsSettings {
  const e = readEnv(OPERATIONS_ENV, source);
  const log = { format: e.LOG_FORMAT, level: e.LOG_LEVEL };
  if (!e.WEBHOOK_URLS?.length) return { log };
  if (!e.WEBHOOK_SECRET) throw new ConfigError("WEBHOOK_SECRET", "WEBHOOK_SECRET must be set with WEBHOOK_URLS: every delivery is signed");
  if (webhookKey(e.WEBHOOK_SECRET).length < MIN_SECRET_BYTES) {
    throw new ConfigError(
      "WEBHOOK_SECRET",
      `WEBHOOK_SECRET must hold at least ${MIN_SECRET_BYTES} bytes (whsec_<base64>, or at least ${MIN_SECRET_BYTES} characters)`,
    );
  }
  return { log, webhooks: { urls: e.WEBHOOK_URLS, secret: e.WEBHOOK_SECRET } };
}
