export * from "./batch.js";
export * from "./errors.js";
export { fetchLineKeys, ledgerOperatorKey } from "./keys.js";
export * from "./lines.js";
export * from "./merkle.js";
export * from "./pricing.js";
export * from "./record.js";
export * from "./registry.js";
