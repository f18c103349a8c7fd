export * from "./types.js";
export * from "./errors.js";
export { allocatePool } from "./allocate.js";
export { BPS_DENOMINATOR, feeMicro, priceLines, tieredAmountMicro } from "./price.js";
export { earnings, owed } from "./earnings.js";
