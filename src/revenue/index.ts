export { allocatePool } from "./allocate.js";
export { earnings, owed } from "./earnings.js";
export * from "./errors.js";
export { BPS_DENOMINATOR, feeMicro, priceLines } from "./price.js";
export * from "./schedule.js";
export * from "./types.js";
