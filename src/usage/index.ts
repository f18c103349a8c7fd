export * from "./errors.js";
export * from "./record.js";
export * from "./merkle.js";
export * from "./lines.js";
export * from "./batch.js";
export * from "./registry.js";
export { fetchLineKeys } from "./keys.js";
