// The indexer's own configuration: the same chain, contracts, filters and database settings.
export { default } from "../../ponder.config.js";
