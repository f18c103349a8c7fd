import type { Logger as PinoLogger } from "pino";
import { logSettings } from "../config/operations.js";
import { createLogger } from "../log.js";

let root: PinoLogger | undefined;

/** The API process's logger (LOG_FORMAT, LOG_LEVEL), one child per component: `relayer`, `health`, `webhooks`. */
export function apiLogger(component: string, env: Record<string, string | undefined> = process.env): PinoLogger {
  root ??= createLogger("api", logSettings(env));
  return root.child({ component });
}
