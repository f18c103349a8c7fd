import { type Address, getAddress, type Hex, isAddress } from "viem";
import { z } from "zod";
import { SUBGROUP_ORDER } from "../eerc/curve.js";
import { BaseError } from "../errors.js";

/** A setting that cannot be used; `field` is the environment variable. The value of a key is never echoed. */
export class ConfigError extends BaseError {
  readonly code = "INVALID_CONFIG";
  constructor(variable: string, message: string) {
    super(message, { field: variable });
  }
}

export type Env = Record<string, string | undefined>;

// An empty variable counts as unset, as a shell's `FOO= cmd` means.
const unset = (v: unknown) => (typeof v === "string" && v.trim() === "" ? undefined : v);

const KEY_PATTERN = /^0x[0-9a-fA-F]{64}$/;
const KEY_MESSAGE = "must be a 0x-prefixed 32-byte hex private key";

function checked<T>(message: string, parse: (value: string) => T | undefined) {
  return z.string().transform((value, ctx): T => {
    const out = parse(value.trim());
    if (out === undefined) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, message });
      return z.NEVER;
    }
    return out;
  });
}

const asInteger = (min: number, max: number) => (v: string) =>
  /^\d+$/.test(v) && Number(v) >= min && Number(v) <= max ? Number(v) : undefined;
const asAddress = (v: string) => (isAddress(v) ? getAddress(v) : undefined);
const asKey = (v: string) => (KEY_PATTERN.test(v) ? (v as Hex) : undefined);
const asEercKey = (v: string) => {
  if (!/^0x[0-9a-fA-F]{1,64}$/.test(v)) return undefined;
  const sk = BigInt(v);
  return sk >= 1n && sk < SUBGROUP_ORDER ? sk : undefined;
};
const asUrl = (v: string) => {
  try {
    const u = new URL(v);
    return u.protocol === "http:" || u.protocol === "https:" ? v.replace(/\/$/, "") : undefined;
  } catch {
    return undefined;
  }
};

function optional<T extends z.ZodTypeAny>(schema: T) {
  return z.preprocess(unset, schema.optional());
}

function listOf<T>(itemMessage: string, parse: (value: string) => T | undefined) {
  return optional(
    z.string().transform((value, ctx): T[] => {
      const items = value
        .split(",")
        .map((s) => s.trim())
        .filter((s) => s.length > 0);
      const out: T[] = [];
      for (const [i, item] of items.entries()) {
        const parsed = parse(item);
        if (parsed === undefined) {
          ctx.addIssue({ code: z.ZodIssueCode.custom, message: `item ${i + 1} ${itemMessage}` });
          return z.NEVER;
        }
        out.push(parsed);
      }
      return out;
    }),
  );
}

/** The shared parsers every process's schema is built from; each yields undefined when the variable is unset. */
export const env = {
  integer: ({ min = 0, max = Number.MAX_SAFE_INTEGER }: { min?: number; max?: number } = {}) =>
    optional(checked(`must be an integer from ${min} to ${max}`, asInteger(min, max))),
  flag: () => optional(checked("must be 0 or 1", (v) => (v === "1" ? true : v === "0" ? false : undefined))),
  address: () => optional(checked<Address>("must be a 0x-prefixed 20-byte address", asAddress)),
  addresses: () => listOf<Address>("must be a 0x-prefixed 20-byte address", asAddress),
  privateKey: () => optional(checked<Hex>(KEY_MESSAGE, asKey)),
  privateKeys: () => listOf<Hex>(KEY_MESSAGE, asKey),
  eercKey: () => optional(checked<bigint>("must be a 0x-prefixed hex eERC private key (npm run eerc-key prints it)", asEercKey)),
  url: () => optional(checked("must be an http(s) URL", asUrl)),
  urls: () => listOf("must be an http(s) URL", asUrl),
  oneOf: <const T extends readonly [string, ...string[]]>(values: T) =>
    optional(checked<T[number]>(`must be one of ${values.map((v) => `"${v}"`).join(", ")}`, (v) => values.find((x) => x === v))),
  text: () => optional(z.string().transform((v) => v.trim())),
};

const isSecret = (name: string) => /KEY|SECRET|WEBHOOK_URLS/.test(name);

/**
 * Reads the variables of `shape` from `env`. The first bad one throws a ConfigError naming it,
 * what it must be and (unless it holds a key, a secret or webhook URLs, which may carry a token) what it was.
 */
export function readEnv<S extends z.ZodRawShape>(shape: S, source: Env): z.infer<z.ZodObject<S>> {
  const result = z.object(shape).safeParse(source);
  if (result.success) return result.data;
  const issue = result.error.issues[0]!;
  const name = String(issue.path[0]);
  const got = isSecret(name) ? "" : `, got "${source[name]}"`;
  throw new ConfigError(name, `${name} ${issue.message}${got}`);
}

/** A variable that must be set in this situation (`why`: for example "on chain 43113"). */
export function required<T>(value: T | undefined, variable: string, why: string): T {
  if (value === undefined) throw new ConfigError(variable, `${variable} must be set ${why}`);
  return value;
}
