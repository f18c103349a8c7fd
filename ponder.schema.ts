import { index, onchainTable, type PgColumnsBuilders, primaryKey, relations } from "ponder";

// Conventions
// - Addresses and hashes are lower-case hex. Amounts that are public on chain (deposits and
//   withdrawals) are plain integers; every other amount exists here only as a ciphertext.
// - A PCT is 7 field elements: [c0, c1, c2, c3, authKey.x, authKey.y, nonce].
// - An EGCT is stored as 4 field elements: [c1.x, c1.y, c2.x, c2.y].
// - `source` says where a row's ciphertexts come from: "calldata" (the transaction called the
//   eERC directly and was decoded) or "block_state" (it did not, so balanceOf was read at the
//   end of the event's block).
// - Usage is stored as the chain holds it: per-provider lines are ciphertexts (three copies each,
//   for the provider, the operator and the auditor); no plaintext count or amount is stored.
//   Provider pricing is public by design and stored in clear.

/** Where and when an event happened. */
const eventColumns = (t: PgColumnsBuilders) => ({
  blockNumber: t.bigint().notNull(),
  logIndex: t.integer().notNull(),
  timestamp: t.bigint().notNull(),
  txHash: t.hex().notNull(),
});

/** Registrar `Register`: an account and its (latest) BabyJubJub public key [x, y]. */
export const account = onchainTable("account", (t) => ({
  address: t.hex().primaryKey(),
  publicKey: t.bigint().array().notNull(),
  ...eventColumns(t),
}));

/**
 * Every `Register` event: the audited Registrar lets an account register again with another key,
 * so what was encrypted to an account depends on when.
 */
export const registration = onchainTable(
  "registration",
  (t) => ({
    id: t.text().primaryKey(),
    address: t.hex().notNull(),
    publicKey: t.bigint().array().notNull(),
    ...eventColumns(t),
  }),
  (table) => ({ addressIdx: index().on(table.address, table.blockNumber) }),
);

/** `AuditorChanged`, with the new auditor's public key [x, y] as the eERC stored it. */
export const auditorChange = onchainTable(
  "auditor_change",
  (t) => ({
    id: t.text().primaryKey(),
    oldAuditor: t.hex().notNull(),
    newAuditor: t.hex().notNull(),
    publicKey: t.bigint().array().notNull(),
    ...eventColumns(t),
  }),
  (table) => ({ blockIdx: index().on(table.blockNumber, table.logIndex) }),
);

/** Converter tokens, from their first deposit (ids from 1); the factor between units is 10^|decimals − eercDecimals|. */
export const token = onchainTable("token", (t) => ({
  tokenId: t.bigint().primaryKey(),
  tokenAddress: t.hex().notNull(),
  decimals: t.integer().notNull(),
  eercDecimals: t.integer().notNull(),
  blockNumber: t.bigint().notNull(),
  txHash: t.hex().notNull(),
}));

/** `Deposit`: `amount` token units requested, `dust` left with the user, `credited` eERC units; `amountPCT` is the depositor's own PCT. */
export const deposit = onchainTable(
  "deposit",
  (t) => ({
    id: t.text().primaryKey(),
    account: t.hex().notNull(),
    tokenId: t.bigint().notNull(),
    amount: t.bigint().notNull(),
    dust: t.bigint().notNull(),
    credited: t.bigint().notNull(),
    amountPCT: t.bigint().array(),
    source: t.text().$type<RowSource>().notNull(),
    ...eventColumns(t),
  }),
  (table) => ({ accountIdx: index().on(table.account), blockIdx: index().on(table.blockNumber, table.logIndex) }),
);

/** `Withdraw`: `amount` eERC units (public), `tokenAmount` token units paid out; `balancePCT` is the sender's new one. */
export const withdrawal = onchainTable(
  "withdrawal",
  (t) => ({
    id: t.text().primaryKey(),
    account: t.hex().notNull(),
    tokenId: t.bigint().notNull(),
    amount: t.bigint().notNull(),
    tokenAmount: t.bigint().notNull(),
    auditorAddress: t.hex().notNull(),
    auditorPCT: t.bigint().array().notNull(),
    balancePCT: t.bigint().array(),
    source: t.text().$type<RowSource>().notNull(),
    ...eventColumns(t),
  }),
  (table) => ({ accountIdx: index().on(table.account), blockIdx: index().on(table.blockNumber, table.logIndex) }),
);

/**
 * `PrivateTransfer` plus what only the calldata carries: the token, the sender and receiver VTTs,
 * the receiver's PCT and the sender's new balancePCT (null when `source` is "block_state").
 */
export const privateTransfer = onchainTable(
  "private_transfer",
  (t) => ({
    id: t.text().primaryKey(),
    from: t.hex().notNull(),
    to: t.hex().notNull(),
    tokenId: t.bigint().notNull(),
    auditorAddress: t.hex().notNull(),
    auditorPCT: t.bigint().array().notNull(),
    senderVTT: t.bigint().array(),
    receiverVTT: t.bigint().array(),
    receiverPCT: t.bigint().array(),
    senderBalancePCT: t.bigint().array(),
    source: t.text().$type<RowSource>().notNull(),
    ...eventColumns(t),
  }),
  (table) => ({
    fromIdx: index().on(table.from),
    toIdx: index().on(table.to),
    blockIdx: index().on(table.blockNumber, table.logIndex),
  }),
);

/** `PrivateMint` (standalone mode, token 0) with the receiver's VTT and PCT from the mint proof. */
export const privateMint = onchainTable(
  "private_mint",
  (t) => ({
    id: t.text().primaryKey(),
    account: t.hex().notNull(),
    tokenId: t.bigint().notNull(),
    nullifierHash: t.bigint(),
    receiverVTT: t.bigint().array(),
    receiverPCT: t.bigint().array(),
    auditorAddress: t.hex().notNull(),
    auditorPCT: t.bigint().array().notNull(),
    source: t.text().$type<RowSource>().notNull(),
    ...eventColumns(t),
  }),
  (table) => ({ accountIdx: index().on(table.account), blockIdx: index().on(table.blockNumber, table.logIndex) }),
);

/** `PrivateBurn` (standalone mode, token 0) with the burnt value's EGCT and the sender's new balancePCT. */
export const privateBurn = onchainTable(
  "private_burn",
  (t) => ({
    id: t.text().primaryKey(),
    account: t.hex().notNull(),
    tokenId: t.bigint().notNull(),
    burnVTT: t.bigint().array(),
    balancePCT: t.bigint().array(),
    auditorAddress: t.hex().notNull(),
    auditorPCT: t.bigint().array().notNull(),
    source: t.text().$type<RowSource>().notNull(),
    ...eventColumns(t),
  }),
  (table) => ({ accountIdx: index().on(table.account), blockIdx: index().on(table.blockNumber, table.logIndex) }),
);

/** `PrivateMessage`: the `bytes message` overloads and `sendEncryptedMetadata`. */
export const privateMessage = onchainTable(
  "private_message",
  (t) => ({
    id: t.text().primaryKey(),
    from: t.hex().notNull(),
    to: t.hex().notNull(),
    messageFrom: t.hex().notNull(),
    messageTo: t.hex().notNull(),
    messageType: t.text().notNull(),
    encryptedMsg: t.hex().notNull(),
    ...eventColumns(t),
  }),
  (table) => ({ fromIdx: index().on(table.from), toIdx: index().on(table.to) }),
);

/**
 * Every credit's amount PCT, stored once. `index` is the balance's transactionIndex at the credit,
 * as in `balanceOf(...).amountPCTs[i].index`.
 */
export const amountPct = onchainTable(
  "amount_pct",
  (t) => ({
    account: t.hex().notNull(),
    tokenId: t.bigint().notNull(),
    index: t.bigint().notNull(),
    pct: t.bigint().array().notNull(),
    kind: t.text().$type<"deposit" | "transfer_in" | "mint">().notNull(),
    eventId: t.text().notNull(),
    ...eventColumns(t),
  }),
  (table) => ({ pk: primaryKey({ columns: [table.account, table.tokenId, table.index] }) }),
);

/**
 * One row per balance change of (account, tokenId), keyed by the resulting transactionIndex: the
 * EGCT, nonce and balancePCT after the change. The pending amount PCTs at that point are the
 * `amount_pct` rows with `pendingFrom <= index < transactionIndex`; together they are what
 * `balanceOf` returned right after the change.
 */
export const balanceHistory = onchainTable(
  "balance_history",
  (t) => ({
    account: t.hex().notNull(),
    tokenId: t.bigint().notNull(),
    transactionIndex: t.bigint().notNull(),
    kind: t.text().$type<BalanceChangeKind>().notNull(),
    eGCT: t.bigint().array().notNull(),
    nonce: t.bigint().notNull(),
    pendingFrom: t.bigint().notNull(),
    balancePCT: t.bigint().array().notNull(),
    source: t.text().$type<RowSource>().notNull(),
    eventId: t.text().notNull(),
    ...eventColumns(t),
  }),
  (table) => ({
    pk: primaryKey({ columns: [table.account, table.tokenId, table.transactionIndex] }),
    accountBlockIdx: index().on(table.account, table.blockNumber, table.logIndex),
  }),
);

/** The latest `balance_history` row of each (account, tokenId). */
export const balance = onchainTable(
  "balance",
  (t) => ({
    account: t.hex().notNull(),
    tokenId: t.bigint().notNull(),
    eGCT: t.bigint().array().notNull(),
    nonce: t.bigint().notNull(),
    transactionIndex: t.bigint().notNull(),
    pendingFrom: t.bigint().notNull(),
    balancePCT: t.bigint().array().notNull(),
    source: t.text().$type<RowSource>().notNull(),
    blockNumber: t.bigint().notNull(),
    logIndex: t.integer().notNull(),
  }),
  (table) => ({ pk: primaryKey({ columns: [table.account, table.tokenId] }) }),
);

// ---------------------------------------------------------------- ProviderRegistry

/** A provider's pricing as stored: the `Pricing` struct, tiers as two parallel arrays. */
const pricingColumns = (t: PgColumnsBuilders) => ({
  pricingModel: t.text().$type<PricingModelName>().notNull(),
  pricePerCallMicro: t.bigint().notNull(),
  poolWeight: t.integer().notNull(),
  /** `tiers[i].upToCalls`; empty unless the model is Tiered. */
  tierUpToCalls: t.bigint().array().notNull(),
  /** `tiers[i].priceMicro`, micro-USDC per call. */
  tierPriceMicro: t.bigint().array().notNull(),
});

/**
 * Every provider's current registration (`ProviderRegistered`, then each change): provider id =
 * keccak256(namespace), payout account, active flag and pricing. The event columns are those of
 * the latest change.
 */
export const provider = onchainTable(
  "provider",
  (t) => ({
    providerId: t.hex().primaryKey(),
    namespace: t.text().notNull(),
    payoutAccount: t.hex().notNull(),
    active: t.boolean().notNull(),
    ...pricingColumns(t),
    registeredBlockNumber: t.bigint().notNull(),
    registeredTxHash: t.hex().notNull(),
    ...eventColumns(t),
  }),
  (table) => ({ payoutAccountIdx: index().on(table.payoutAccount), namespaceIdx: index().on(table.namespace) }),
);

/**
 * One row per ProviderRegistry event: what changed (`kind`) and the provider's whole registration
 * right after it, so the pricing in force at any block is the latest row at or before it.
 */
export const providerChange = onchainTable(
  "provider_change",
  (t) => ({
    id: t.text().primaryKey(),
    providerId: t.hex().notNull(),
    kind: t.text().$type<ProviderChangeKind>().notNull(),
    namespace: t.text().notNull(),
    payoutAccount: t.hex().notNull(),
    /** Set on `payout_account`: the account paid before the change. */
    previousPayoutAccount: t.hex(),
    active: t.boolean().notNull(),
    ...pricingColumns(t),
    ...eventColumns(t),
  }),
  (table) => ({
    providerBlockIdx: index().on(table.providerId, table.blockNumber, table.logIndex),
    blockIdx: index().on(table.blockNumber, table.logIndex),
  }),
);

export const providerRelations = relations(provider, ({ many }) => ({ changes: many(providerChange) }));
export const providerChangeRelations = relations(providerChange, ({ one }) => ({
  provider: one(provider, { fields: [providerChange.providerId], references: [provider.providerId] }),
}));

/**
 * Every `SettlementChanged`: the platform fee (basis points) and the pricing period (`month` or
 * `day`) from `effectiveFrom` (Unix seconds, a UTC day start; 0 = from genesis). The settlement
 * applies each record from the next period start (`src/revenue/schedule.ts`).
 */
export const settlementChange = onchainTable(
  "settlement_change",
  (t) => ({
    id: t.text().primaryKey(),
    feeBps: t.integer().notNull(),
    periodUnit: t.text().$type<"month" | "day">().notNull(),
    effectiveFrom: t.bigint().notNull(),
    ...eventColumns(t),
  }),
  (table) => ({ blockIdx: index().on(table.blockNumber, table.logIndex) }),
);

// ---------------------------------------------------------------- UsageLedger

/** Each server key's current authorisation on the UsageLedger (`ServerAuthorisationChanged`). */
export const usageServer = onchainTable("usage_server", (t) => ({
  server: t.hex().primaryKey(),
  authorised: t.boolean().notNull(),
  ...eventColumns(t),
}));

/** Every `ServerAuthorisationChanged` event. */
export const serverAuthorisation = onchainTable(
  "server_authorisation",
  (t) => ({
    id: t.text().primaryKey(),
    server: t.hex().notNull(),
    authorised: t.boolean().notNull(),
    ...eventColumns(t),
  }),
  (table) => ({ serverBlockIdx: index().on(table.server, table.blockNumber, table.logIndex) }),
);

/**
 * Every `ServerProviderBound` event: which provider a server may meter, and the caps on the
 * billable calls its lines may report for it per batch and per pricing period (uint64 max: no
 * cap). Settlement reads the binding in force at each batch's position (`src/payout/admission.ts`).
 */
export const serverBinding = onchainTable(
  "server_binding",
  (t) => ({
    id: t.text().primaryKey(),
    server: t.hex().notNull(),
    providerId: t.hex().notNull(),
    bound: t.boolean().notNull(),
    maxCallsPerBatch: t.bigint().notNull(),
    maxCallsPerPeriod: t.bigint().notNull(),
    ...eventColumns(t),
  }),
  (table) => ({
    serverBlockIdx: index().on(table.server, table.blockNumber, table.logIndex),
    blockIdx: index().on(table.blockNumber, table.logIndex),
  }),
);

/**
 * Every committed usage batch (`UsageCommitted`), keyed by (server, batchId) as the ledger keys
 * it: the period (server clock, Unix ms), the Merkle root over its call records, the encrypted
 * lines exactly as committed, and `batchHash`, the EIP-712 struct hash the ledger stores in
 * `batchHashOf`. `lineCount` is the padded line count, null when the bytes do not follow the
 * lines format (the ledger does not check it; such a batch has no `encrypted_usage_line` rows).
 */
export const usageCommitment = onchainTable(
  "usage_commitment",
  (t) => ({
    server: t.hex().notNull(),
    batchId: t.hex().notNull(),
    periodStart: t.bigint().notNull(),
    periodEnd: t.bigint().notNull(),
    merkleRoot: t.hex().notNull(),
    encryptedLines: t.hex().notNull(),
    batchHash: t.hex().notNull(),
    lineCount: t.integer(),
    ...eventColumns(t),
  }),
  (table) => ({
    pk: primaryKey({ columns: [table.server, table.batchId] }),
    blockIdx: index().on(table.blockNumber, table.logIndex),
    serverPeriodIdx: index().on(table.server, table.periodStart),
    periodIdx: index().on(table.periodStart),
  }),
);

/**
 * A usage batch's encrypted lines, one row per (padded) line in committed order: the line's
 * ephemeral key [x, y] and nonce, its public commitment (`lineCommitment`: Poseidon of the salted
 * line, which each recipient checks its copy against; null before format version 3), and its
 * three Poseidon-cipher copies (4 words each) for the provider, the operator and the auditor. A
 * reader trial-decrypts its role's copy of each row; real and dummy lines look alike.
 */
export const encryptedUsageLine = onchainTable(
  "encrypted_usage_line",
  (t) => ({
    server: t.hex().notNull(),
    batchId: t.hex().notNull(),
    position: t.integer().notNull(),
    ephemeralKey: t.bigint().array().notNull(),
    nonce: t.bigint().notNull(),
    lineCommitment: t.bigint(),
    providerCiphertext: t.bigint().array().notNull(),
    operatorCiphertext: t.bigint().array().notNull(),
    auditorCiphertext: t.bigint().array().notNull(),
    blockNumber: t.bigint().notNull(),
    logIndex: t.integer().notNull(),
  }),
  (table) => ({
    pk: primaryKey({ columns: [table.server, table.batchId, table.position] }),
    blockIdx: index().on(table.blockNumber, table.logIndex, table.position),
  }),
);

export const usageCommitmentRelations = relations(usageCommitment, ({ many }) => ({ lines: many(encryptedUsageLine) }));
export const encryptedUsageLineRelations = relations(encryptedUsageLine, ({ one }) => ({
  commitment: one(usageCommitment, {
    fields: [encryptedUsageLine.server, encryptedUsageLine.batchId],
    references: [usageCommitment.server, usageCommitment.batchId],
  }),
}));

// ---------------------------------------------------------------- Revenue pool

/**
 * A fee payment into the revenue pool: a `Transfer` of the fee token to the revenue pool address.
 * Public by nature (plain ERC-20); the payout agent splits what the pool received in each cycle's
 * blocks among the free-API providers. `amount` is in token units.
 */
export const poolFee = onchainTable(
  "pool_fee",
  (t) => ({
    id: t.text().primaryKey(),
    from: t.hex().notNull(),
    amount: t.bigint().notNull(),
    ...eventColumns(t),
  }),
  (table) => ({ blockIdx: index().on(table.blockNumber, table.logIndex) }),
);

export type RowSource = "calldata" | "block_state";
export type PricingModelName = "PerCall" | "FreePool" | "Tiered";
export type ProviderChangeKind = "registered" | "pricing" | "payout_account" | "active";
export type BalanceChangeKind = "deposit" | "transfer_in" | "transfer_out" | "withdraw" | "mint" | "burn";
