import { onchainTable } from "ponder";

// The handlers write nothing; Ponder needs one table to build its GraphQL schema.
export const unused = onchainTable("unused", (t) => ({ id: t.text().primaryKey() }));
