import { type Address, type Hex, zeroHash } from "viem";
import { z } from "zod/v4";
import { AUDIT_KINDS, type AuditTotalsResponse, type EarningsResponse, HISTORY_KINDS } from "../history/types.js";
import {
  address,
  boolean,
  bytes32,
  fixedHex,
  hexBytes,
  oneOf,
  parseResponse,
  pct,
  point,
  safeUint,
  strictObject,
  uint,
  uint256Query,
  withStatus,
} from "../http/schema.js";
import { deadline, signature } from "../http/signed.js";
import { InvalidCallRecordError, InvalidPricingError, MalformedLinesError } from "../usage/errors.js";
import { decodeEncryptedLines } from "../usage/lines.js";
import { MAX_TIERS, type Pricing, PricingModel, validatePricing } from "../usage/pricing.js";
import { CALL_OUTCOMES, type CallRecord, MAX_RECORD_STRING_BYTES, validateCallRecord } from "../usage/record.js";
import { isValidNamespace } from "../usage/registry.js";

/**
 * The query API's requests and answers (`src/api/`), one schema each: the server parses requests
 * with them, builds its answers to their wire type (`z.input`), and `IndexerClient` parses the
 * answers with them into typed values (`z.output`: bigints, checksummed addresses). The OpenAPI
 * document (`src/api/openapi.ts`, served at `GET /openapi.json`) is generated from them.
 */

/** Most call records one submission may carry for the Merkle check. */
export const MAX_RECORDS = 10_000;
/** Most encrypted lines (padded) one batch may carry: 1,024 lines is 480 KiB, beyond any block's gas. */
export const MAX_LINES = 1_024;

const txHash = fixedHex(32, "is not a 32-byte hex hash");
const isZeroAddress = (a: Address) => /^0x0{40}$/.test(a);
const obj = <S extends z.core.$ZodLooseShape>(shape: S) => z.object(shape, { error: "is not an object" });
const list = <T extends z.ZodType>(item: T) => z.array(item, { error: "is not an array" });

// ---------------------------------------------------------------- reads

/** `address` of `GET /accounts/{address}/earnings`: the eERC account. */
export const accountParams = z.object({ address: address.meta({ description: "the eERC account (payout account)" }) });

/**
 * `providerId` of `GET /providers/{providerId}/earnings`: a provider id (the namespace hash), whose
 * payout account the indexed ProviderRegistry names, or, as before provider ids were accepted
 * here, the account address itself.
 */
export const providerRef = z
  .union(
    [
      fixedHex(32).transform((providerId) => ({ kind: "provider" as const, providerId })),
      address.transform((account) => ({ kind: "account" as const, account })),
    ],
    { error: "must be a 32-byte provider id or a 0x-prefixed 20-byte hex address" },
  )
  .meta({
    description:
      "a provider id (keccak256 of the namespace, 32-byte hex), resolved to its current payout account; an account address is also accepted",
  });

export const providerParams = z.object({ providerId: providerRef });

export const earningsQuery = z.object({
  tokenId: uint256Query.optional().meta({ description: "only this eERC token id" }),
});

export const auditQuery = z.object({
  period: z
    .enum(["day", "month"], { error: 'must be "day" or "month"' })
    .optional()
    .meta({ description: "UTC day (default) or month of the block timestamp" }),
});

const pendingField = obj({ pct, throughBlock: uint(64) }).meta({
  description: "owed and not yet paid, as a PCT under the account's key (0 is encrypted too)",
});

/** `GET /accounts/{address}/earnings` (and `/providers/{providerId}/earnings`). */
export const earningsResponse = obj({
  account: address,
  publicKey: point,
  tokens: list(
    obj({
      tokenId: uint(256),
      tokenAddress: address
        .nullish()
        .transform((a) => (a && !isZeroAddress(a) ? a : null))
        .meta({ description: "null in standalone mode" }),
    }),
  ),
  balanceHistory: list(
    obj({
      tokenId: uint(256),
      blockNumber: uint(64),
      logIndex: safeUint,
      timestamp: uint(64),
      txHash,
      kind: oneOf(HISTORY_KINDS),
      eGCT: obj({ c1: point, c2: point }),
      nonce: uint(256),
      transactionIndex: uint(256),
      balancePCT: pct,
      amountPCTs: list(obj({ pct, index: uint(256) })),
    }),
  ).meta({ description: "the balance right after each change, in (blockNumber, logIndex) order" }),
  receivedTransfers: list(
    obj({
      from: address,
      tokenId: uint(256),
      blockNumber: uint(64),
      txHash,
      amountPCT: pct.nullable().meta({ description: "null for a relayed transfer whose PCT the block's end state no longer holds" }),
    }),
  ),
  pending: pendingField.nullish().transform((p) => p ?? null),
  pendingUnavailable: z.string().optional().meta({ description: "why `pending` is null" }),
}).meta({ id: "Earnings" });

/** `GET /audit/totals`. */
export const auditTotalsResponse = obj({
  auditor: address.nullish().transform((a) => a ?? null),
  auditorPublicKey: point.nullish().transform((p) => p ?? null),
  periods: list(
    obj({
      period: z.string({ error: "is not a non-empty string" }).min(1, { error: "is not a non-empty string" }),
      tokenId: uint(256)
        .nullish()
        .transform((t) => t ?? null),
      entries: list(obj({ kind: oneOf(AUDIT_KINDS), txHash, auditorAddress: address, auditorPCT: pct })),
    }),
  ),
  cycles: list(obj({ cycle: safeUint, throughBlock: uint(64), transfers: safeUint, totalPCT: pct }))
    .nullish()
    .transform((c) => c ?? null)
    .meta({ description: "each payout cycle's total, as a PCT under the auditor's key" }),
  cyclesUnavailable: z.string().optional().meta({ description: "why `cycles` is null" }),
}).meta({ id: "AuditTotals" });

// The answers as the server writes them: bigints as decimal strings.
type Wire<S extends z.ZodType> = z.input<S>;

/** `pending` of the earnings answer. */
export type PendingField = Pick<Wire<typeof earningsResponse>, "pending" | "pendingUnavailable">;
/** `cycles` of the audit answer. */
export type CyclesField = Pick<Wire<typeof auditTotalsResponse>, "cycles" | "cyclesUnavailable">;
/** The earnings answer without the payout fields, as `src/api/earnings.ts` reads it from the store. */
export type EarningsBody = Omit<Wire<typeof earningsResponse>, keyof PendingField> & {
  account: Address;
  publicKey: [string, string];
};
/** The audit answer without the payout fields. */
export type AuditTotalsBody = Omit<Wire<typeof auditTotalsResponse>, keyof CyclesField>;
/** `GET /accounts/{address}/earnings` as sent. */
export type EarningsWire = Wire<typeof earningsResponse>;
/** `GET /audit/totals` as sent. */
export type AuditTotalsWire = Wire<typeof auditTotalsResponse>;

/** The earnings answer, typed; a wrong shape is an ApiResponseError naming the path. */
export const parseEarnings = (json: unknown, source: string): EarningsResponse => parseResponse(earningsResponse, json, source);
/** The audit answer, typed; a wrong shape is an ApiResponseError naming the path. */
export const parseAuditTotals = (json: unknown, source: string): AuditTotalsResponse => parseResponse(auditTotalsResponse, json, source);

// ---------------------------------------------------------------- writes

const nonNegative = "must be a non-negative integer";
const count = z.number({ error: nonNegative }).int({ error: nonNegative }).min(0, { error: nonNegative });

/**
 * A call record as the meter writes it, `priceMicro` a decimal string. `validateCallRecord` (the
 * one rule for records, shared with the spool) has the last word.
 */
export const callRecord = z
  .strictObject(
    {
      eventId: z.string({ error: "must be a non-empty string" }).min(1, { error: "must be a non-empty string" }),
      provider: z
        .string({ error: "must be a FlowMCP namespace (1 to 64 ASCII letters or digits)" })
        .regex(/^[A-Za-z0-9]{1,64}$/, { error: "must be a FlowMCP namespace (1 to 64 ASCII letters or digits)" }),
      tool: z.string({ error: "must be a non-empty string" }).min(1, { error: "must be a non-empty string" }),
      startedAt: count.meta({ description: "Unix ms, server clock" }),
      endedAt: count.meta({ description: "Unix ms, server clock" }),
      durationMs: count,
      outcome: oneOf(CALL_OUTCOMES),
      requestBytes: count,
      responseBytes: count,
      billable: z.boolean({ error: "must be a boolean" }),
      priceMicro: uint(64).meta({ description: "micro-USDC; 0 unless billable" }),
    },
    { error: (iss) => (iss.code === "unrecognized_keys" ? "is not a call record field" : "must be a call record object") },
  )
  .transform((value, ctx): CallRecord => {
    try {
      return validateCallRecord(value);
    } catch (err) {
      if (!(err instanceof InvalidCallRecordError)) throw err;
      ctx.issues.push({ code: "custom", input: value, path: [err.field], message: err.reason });
      return z.NEVER;
    }
  })
  .meta({ description: `a call record; eventId and tool at most ${MAX_RECORD_STRING_BYTES} bytes of UTF-8` });

const MODEL_BY_NAME: Record<string, PricingModel> = {
  PerCall: PricingModel.PerCall,
  FreePool: PricingModel.FreePool,
  Tiered: PricingModel.Tiered,
};

/**
 * The registry's `Pricing`: `model` by name ("PerCall", "FreePool", "Tiered") or number (0, 1, 2);
 * uint64 amounts as decimal strings; fields the model does not use may be left out (they are 0).
 */
export const pricing = strictObject({
  model: z.union([z.enum(["PerCall", "FreePool", "Tiered"]), z.literal([0, 1, 2])], {
    error: 'must be "PerCall", "FreePool" or "Tiered" (or 0, 1, 2)',
  }),
  pricePerCallMicro: uint(64).optional(),
  poolWeight: uint(32).optional(),
  tiers: z
    .array(strictObject({ upToCalls: uint(64), priceMicro: uint(64) }), { error: "must be an array of { upToCalls, priceMicro }" })
    .max(MAX_TIERS, { error: `must have at most ${MAX_TIERS} tiers` })
    .optional(),
})
  .transform((p, ctx): Pricing => {
    const value: Pricing = {
      model: typeof p.model === "string" ? MODEL_BY_NAME[p.model]! : (p.model as PricingModel),
      pricePerCallMicro: p.pricePerCallMicro ?? 0n,
      poolWeight: Number(p.poolWeight ?? 0n),
      tiers: p.tiers ?? [],
    };
    try {
      return validatePricing(value);
    } catch (err) {
      if (!(err instanceof InvalidPricingError)) throw err;
      ctx.issues.push({ code: "custom", input: p, path: [err.field], message: err.reason });
      return z.NEVER;
    }
  })
  .meta({ id: "Pricing" });

const namespace = z
  .string({ error: "must be 1 to 64 ASCII letters or digits" })
  .refine(isValidNamespace, { error: "must be 1 to 64 ASCII letters or digits" })
  .meta({ description: "the FlowMCP namespace, 1 to 64 ASCII letters or digits", pattern: "^[A-Za-z0-9]{1,64}$" });

const ownerNonce = uint(256).optional().meta({ description: "the registry's next owner nonce; when given it must be the current one" });

/** `POST /usage/submit`. */
export const submitRequest = strictObject({
  batch: strictObject({
    server: address,
    batchId: bytes32,
    periodStart: uint(64),
    periodEnd: uint(64),
    merkleRoot: bytes32,
    encryptedLines: hexBytes,
  }).check((ctx) => {
    const b = ctx.value;
    const fail = (field: string, message: string, status?: 413) =>
      void ctx.issues.push({ code: "custom", input: b, path: [field], message, ...(status ? { params: withStatus(status) } : {}) });
    if (b.periodEnd < b.periodStart) return fail("periodEnd", "is before periodStart");
    if (b.merkleRoot === zeroHash) return fail("merkleRoot", "must not be zero");
    let lineCount: number;
    try {
      lineCount = decodeEncryptedLines(b.encryptedLines).length;
    } catch (err) {
      if (err instanceof MalformedLinesError) return fail("encryptedLines", `is not in the encrypted lines format: ${err.message}`);
      throw err;
    }
    if (lineCount > MAX_LINES) fail("encryptedLines", `holds ${lineCount} lines, more than ${MAX_LINES}`, 413);
  }),
  deadline,
  signature,
  records: z
    .array(callRecord, { error: "must be an array of call records" })
    .min(1, { error: "must not be empty when given" })
    .check((ctx) => {
      if (ctx.value.length > MAX_RECORDS)
        ctx.issues.push({
          code: "custom",
          input: ctx.value,
          message: `must hold at most ${MAX_RECORDS} records`,
          params: withStatus(413),
        });
    })
    .optional()
    .meta({ description: `the batch's call records (at most ${MAX_RECORDS}): when given, the API checks them against merkleRoot` }),
}).check((ctx) => {
  const { batch, records } = ctx.value;
  if (!records) return;
  const seen = new Set<string>();
  for (const [i, r] of records.entries()) {
    if (seen.has(r.eventId))
      return void ctx.issues.push({
        code: "custom",
        input: r,
        path: ["records", i, "eventId"],
        message: `${r.eventId} appears more than once`,
      });
    seen.add(r.eventId);
    if (BigInt(r.startedAt) < batch.periodStart || BigInt(r.endedAt) > batch.periodEnd)
      return void ctx.issues.push({
        code: "custom",
        input: r,
        path: ["records", i],
        message: "lies outside [batch.periodStart, batch.periodEnd]",
      });
  }
});

/** `POST /usage/submit` answer; `txHash` is null only for a batch committed elsewhere whose transaction could not be found. */
export const submitResult = obj({ batchId: bytes32, txHash: txHash.nullable() }).meta({ id: "SubmitResult" });

/** `POST /providers/register`. */
export const registerRequest = strictObject({
  namespace,
  payoutAccount: address,
  pricing,
  nonce: ownerNonce,
  deadline,
  signature,
});

/** `POST /providers/update`: exactly one of pricing, active, payoutAccount. */
export const updateRequest = strictObject({
  providerId: bytes32,
  pricing: pricing.optional(),
  active: boolean.optional(),
  payoutAccount: address.optional(),
  nonce: ownerNonce,
  deadline,
  signature,
}).check((ctx) => {
  const given = (["pricing", "active", "payoutAccount"] as const).filter((k) => ctx.value[k] !== undefined);
  if (given.length !== 1)
    ctx.issues.push({ code: "custom", input: ctx.value, path: [], message: "must set exactly one of pricing, active, payoutAccount" });
});

/** `POST /providers/register` (201) and `POST /providers/update` (200) answer. */
export const providerWriteResult = obj({ providerId: bytes32, txHash }).meta({ id: "ProviderWriteResult" });

export type SubmitRequest = z.output<typeof submitRequest>;
export type SubmitRequestWire = z.input<typeof submitRequest>;
export type SubmitResult = { batchId: Hex; txHash: Hex | null };
export type RegisterRequestWire = z.input<typeof registerRequest>;
export type UpdateRequestWire = z.input<typeof updateRequest>;
export type ProviderWriteResult = z.output<typeof providerWriteResult>;

/** The route of each schema, for one home of the paths: the server mounts them, the client calls them. */
export const API_PATHS = {
  accountEarnings: "/accounts/:address/earnings",
  providerEarnings: "/providers/:providerId/earnings",
  auditTotals: "/audit/totals",
  usageSubmit: "/usage/submit",
  providersRegister: "/providers/register",
  providersUpdate: "/providers/update",
  openapi: "/openapi.json",
} as const;
