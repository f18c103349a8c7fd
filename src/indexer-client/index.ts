export { IndexerClient, type IndexerClientOptions } from "./client.js";
export type { AuditTotalsWire, EarningsWire } from "./schemas.js";
