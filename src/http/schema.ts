import { type Address, getAddress, type Hex } from "viem";
import { z } from "zod/v4";
import { type HttpClientOptions, httpErrorOf, jsonOf, sendRequest } from "./client.js";
import { ApiResponseError } from "./errors.js";
import { type ApiErrorStatus, ApiInputError } from "./input.js";

/**
 * The zod building blocks of the API's and the agent's requests and answers (the route schemas
 * live with their services' clients: `src/indexer-client/schemas.ts`, `src/payout/schemas.ts`).
 * Each schema's input side is the JSON on the wire, which is what the OpenAPI documents show;
 * its output side is the typed value: integers become bigints, addresses are checksummed and
 * byte strings lower-cased. Every leaf names its own message, so a refusal reads
 * `{ error: { field, message } }` with `field` the path to the offending part. A check that
 * guards a transform aborts: zod runs the transform after a failed check otherwise.
 */

const MAX_UINT256 = (1n << 256n) - 1n;
const DECIMAL = /^\d{1,78}$/;

/** A checksummed address, from any-case 0x-prefixed hex. */
export const address = z
  .string({ error: "must be a 0x-prefixed 20-byte hex address" })
  .regex(/^0x[0-9a-fA-F]{40}$/, { error: "must be a 0x-prefixed 20-byte hex address", abort: true })
  .transform((v): Address => getAddress(v));

/** Exactly `bytes` bytes of 0x-prefixed hex, lower-cased. */
export const fixedHex = (bytes: number, error = `must be 0x-prefixed hex of ${bytes} bytes`) =>
  z
    .string({ error })
    .regex(new RegExp(`^0x[0-9a-fA-F]{${2 * bytes}}$`), { error, abort: true })
    .transform((v) => v.toLowerCase() as Hex);

/** A 32-byte value (ids, hashes, roots), lower-cased. */
export const bytes32 = fixedHex(32);

/** Non-empty 0x-prefixed hex bytes, lower-cased. */
export const hexBytes = z
  .string({ error: "must be non-empty 0x-prefixed hex bytes" })
  .regex(/^0x([0-9a-fA-F]{2})+$/, { error: "must be non-empty 0x-prefixed hex bytes", abort: true })
  .transform((v) => v.toLowerCase() as Hex);

/**
 * An unsigned integer below 2^bits: a decimal string (the way bigints travel in JSON) or, for
 * convenience, a JSON number that is a safe integer.
 */
export const uint = (bits: number) => {
  const error = `must be a non-negative integer below 2^${bits} (a decimal string)`;
  return z
    .union([z.string().regex(DECIMAL), z.number().int().min(0).max(Number.MAX_SAFE_INTEGER)], { error })
    .transform((v) => BigInt(v))
    .refine((n) => n < 1n << BigInt(bits), { error });
};

/** A uint that also fits a JS number (counts, cycle numbers). */
export const safeUint = z
  .union([z.string().regex(DECIMAL), z.number().int().min(0).max(Number.MAX_SAFE_INTEGER)], {
    error: "must be a non-negative integer (a decimal string)",
  })
  .transform((v) => BigInt(v))
  .refine((n) => n <= BigInt(Number.MAX_SAFE_INTEGER), { error: "is too large" })
  .transform((n) => Number(n));

/** A JSON boolean. */
export const boolean = z.boolean({ error: "must be true or false" });

/** A uint256 in decimal, from a query string. */
export const uint256Query = z
  .string({ error: "must be a non-negative decimal integer below 2^256" })
  .regex(DECIMAL, { error: "must be a non-negative decimal integer below 2^256", abort: true })
  .transform((v) => BigInt(v))
  .refine((n) => n <= MAX_UINT256, { error: "must be a non-negative decimal integer below 2^256" });

/** `length` field elements (decimal strings), as bigints: a PCT (7), a point (2). */
export const words = <N extends number>(length: N) =>
  z
    .array(uint(256), { error: "is not an array" })
    .length(length, { error: (iss) => `must have ${length} elements, has ${(iss.input as unknown[]).length}` });

/** A BabyJubJub point [x, y]. */
export const point = words(2).transform((w) => [w[0]!, w[1]!] as [bigint, bigint]);

/** A PCT: 7 field elements. */
export const pct = words(7);

/** A string from a fixed list, refused with the list. */
export const oneOf = <const T extends readonly [string, ...string[]]>(values: T) =>
  z.enum(values, { error: `must be one of ${values.join(", ")}` });

/**
 * A JSON object with exactly these fields: an unknown field is refused by name, anything but an
 * object with `whenNotObject`.
 */
export const strictObject = <S extends z.core.$ZodLooseShape>(shape: S, whenNotObject = "must be a JSON object") =>
  z.strictObject(shape, { error: (iss) => (iss.code === "unrecognized_keys" ? "is not an accepted field" : whenNotObject) });

/** Every refusal of the API and the agent: `field` names the offending part (null when the fault is not the request's). */
export const errorBody = z
  .object({
    error: z.object({
      field: z.string().nullable().meta({ description: "the offending part of the request: a JSON path, a parameter, or `body`" }),
      message: z.string(),
    }),
  })
  .meta({ id: "Error" });

export type ErrorBody = z.input<typeof errorBody>;

/** A status a refinement asks for instead of 400 (too many records, too many lines). */
export const withStatus = (status: ApiErrorStatus) => ({ status });

/** `path` as the field name the API reports: `records[3].priceMicro`, `batch.server`; `root` for the whole value. */
export function fieldOf(path: readonly PropertyKey[], root: string): string {
  let field = "";
  for (const p of path) field += typeof p === "number" ? `[${p}]` : field === "" ? String(p) : `.${String(p)}`;
  return field === "" ? root : field;
}

/** The issue a refusal names: an unknown field first (the shallowest), else the first issue found. */
function firstIssue(error: z.ZodError, root: string): { field: string; message: string; status?: ApiErrorStatus } {
  const issues: z.core.$ZodIssue[] = error.issues;
  const unknown = issues.filter((i) => i.code === "unrecognized_keys").sort((a, b) => a.path.length - b.path.length);
  const issue = unknown.at(0) ?? issues[0]!;
  const status = issue.code === "custom" ? (issue.params as { status?: ApiErrorStatus } | undefined)?.status : undefined;
  const path = issue.code === "unrecognized_keys" ? [...issue.path, issue.keys[0]!] : issue.path;
  return { field: fieldOf(path, root), message: issue.message, status };
}

/** Parses a request part with its schema; a refusal is an ApiInputError naming the field (`root` for the part as a whole). */
export function parseRequest<S extends z.ZodType>(schema: S, value: unknown, root = "body"): z.output<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const { field, message, status } = firstIssue(result.error, root);
  throw new ApiInputError(field, message, status ?? 400);
}

/** Parses a service's answer with its schema; a wrong shape is an ApiResponseError naming the path. */
export function parseResponse<S extends z.ZodType>(schema: S, value: unknown, source: string): z.output<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const { field, message } = firstIssue(result.error, "body");
  throw new ApiResponseError(source, `${field} ${message}`);
}

/** Sends a request and parses its JSON answer with `schema`: ApiHttpError for a non-2xx answer, ApiResponseError for a body of another shape. */
export async function requestParsed<S extends z.ZodType>(
  schema: S,
  url: string,
  init: { method?: "GET" | "POST"; json?: unknown } = {},
  options: HttpClientOptions = {},
): Promise<z.output<S>> {
  const answer = await sendRequest(url, init, options);
  if (!answer.ok) throw httpErrorOf(answer);
  return parseResponse(schema, jsonOf(answer), answer.url);
}
