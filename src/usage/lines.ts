import { poseidonDecrypt, poseidonEncrypt } from "@zk-kit/poseidon-cipher";
import { decodeAbiParameters, encodeAbiParameters, type Hex, isHex, parseAbiParameters } from "viem";
import {
  FIELD_MODULUS,
  IDENTITY,
  isInSubgroup,
  isOnCurve,
  mulBase,
  mulPoint,
  type Point,
  pointEquals,
  randomScalar,
} from "../eerc/curve.js";
import { validatePrivateKey } from "../eerc/keys.js";
import { InvalidRecipientKeyError, InvalidUsageLineError, MalformedLinesError } from "./errors.js";

/** One provider's aggregate usage in a batch. */
export type UsageLine = {
  providerId: Hex;
  calls: bigint;
  billableCalls: bigint;
  /** Σ priceMicro over the provider's billable calls, in micro-USDC. */
  amountMicro: bigint;
  /**
   * Σ of the x402 payments settled for these calls (price plus the platform's per-call surcharge),
   * in micro-USDC: what the calls brought in. 0 for calls not paid through x402, and for lines of
   * format version 1, which did not carry it.
   */
  revenueMicro: bigint;
};

export type LineRole = "provider" | "operator" | "auditor";

export type LineKeys = {
  operatorPk: Point;
  auditorPk: Point;
  /** eERC public key of the provider's payout account (from the Registrar). */
  providerPk: (providerId: Hex) => Point;
};

/**
 * Serialised format, version 2: `abi.encode(uint256 version, uint256[] words)` with 15 words per
 * line: `[ephemeral.x, ephemeral.y, nonce, provider c0..c3, operator c0..c3, auditor c0..c3]`.
 * Each copy `c0..c3` is the Poseidon cipher (`@zk-kit/poseidon-cipher`, 3-element message, the
 * last word the authentication tag) under the ECDH key ephemeralSecret·recipientPk, with the
 * line's nonce. The three copies of a line share the ephemeral key and nonce; their keys differ
 * because their recipients do. Message:
 *   m0 = calls << 128 | providerId >> 128,
 *   m1 = billableCalls << 128 | providerId mod 2^128,
 *   m2 = revenueMicro << 128 | amountMicro.
 * Version 1 had m2 = amountMicro (no revenue) and is still read, with revenueMicro 0.
 * Lines are padded with dummy lines (random messages to random keys) to a power of two and
 * shuffled, so position and count say little; a reader finds its lines by trial decryption.
 */
export const LINES_FORMAT_VERSION = 2n;
/** Versions `decryptLinesFor` reads. */
const READABLE_VERSIONS: readonly bigint[] = [1n, 2n];
export const WORDS_PER_LINE = 15;
/** Default floor of the padded line count. */
export const DEFAULT_MIN_LINES = 4;

const ROLES = ["provider", "operator", "auditor"] as const satisfies readonly LineRole[];
const LINES_ABI = parseAbiParameters("uint256 version, uint256[] words");
const TWO_64 = 1n << 64n;
const TWO_120 = 1n << 120n;
const TWO_128 = 1n << 128n;
const MASK_128 = TWO_128 - 1n;

function randomBits(bits: number): bigint {
  const buf = new Uint8Array(Math.ceil(bits / 8));
  globalThis.crypto.getRandomValues(buf);
  let n = 0n;
  for (const b of buf) n = (n << 8n) | BigInt(b);
  return n & ((1n << BigInt(bits)) - 1n);
}

/** Uniform integer in [0, n) by rejection sampling. */
function randomBelow(n: number): number {
  const bits = Math.max(1, Math.ceil(Math.log2(n)));
  for (;;) {
    const v = Number(randomBits(bits));
    if (v < n) return v;
  }
}

/** Line count after padding: the next power of two, at least `minLines`. */
export function paddedLineCount(lines: number, minLines = DEFAULT_MIN_LINES): number {
  if (!Number.isSafeInteger(minLines) || minLines < 1 || (minLines & (minLines - 1)) !== 0) {
    throw new RangeError("minLines must be a power of two");
  }
  let n = minLines;
  while (n < lines) n *= 2;
  return n;
}

export function validateUsageLine(line: UsageLine): UsageLine {
  const fail = (field: string, reason: string): never => {
    throw new InvalidUsageLineError(field, reason);
  };
  if (typeof line.providerId !== "string" || !isHex(line.providerId, { strict: true }) || line.providerId.length !== 66) {
    fail("providerId", "must be a 32-byte hex string");
  }
  for (const field of ["calls", "billableCalls"] as const) {
    const v = line[field];
    if (typeof v !== "bigint" || v < 0n || v >= TWO_64) fail(field, "must be a bigint in [0, 2^64)");
  }
  if (line.billableCalls > line.calls) fail("billableCalls", "exceeds calls");
  if (typeof line.amountMicro !== "bigint" || line.amountMicro < 0n || line.amountMicro >= TWO_128) {
    fail("amountMicro", "must be a bigint in [0, 2^128)");
  }
  // 2^120 keeps revenue << 128 | amount below the field modulus.
  if (typeof line.revenueMicro !== "bigint" || line.revenueMicro < 0n || line.revenueMicro >= TWO_120) {
    fail("revenueMicro", "must be a bigint in [0, 2^120)");
  }
  return line;
}

function checkRecipient(pk: Point, recipient: string): Point {
  if (!Array.isArray(pk) || !isInSubgroup(pk) || pointEquals(pk, IDENTITY)) throw new InvalidRecipientKeyError(recipient);
  return pk;
}

function pack(line: UsageLine): bigint[] {
  const id = BigInt(line.providerId);
  return [
    (line.calls << 128n) | (id >> 128n),
    (line.billableCalls << 128n) | (id & MASK_128),
    (line.revenueMicro << 128n) | line.amountMicro,
  ];
}

function unpack(m: bigint[], version: bigint): UsageLine {
  const [m0, m1, m2] = m;
  const revenueLimit = version === 1n ? 1n : TWO_120;
  if (m0 >= TWO_64 << 128n || m1 >= TWO_64 << 128n || m2 >= revenueLimit << 128n) {
    throw new MalformedLinesError("an authenticated line holds out-of-range values");
  }
  const id = ((m0 & MASK_128) << 128n) | (m1 & MASK_128);
  return {
    providerId: `0x${id.toString(16).padStart(64, "0")}`,
    calls: m0 >> 128n,
    billableCalls: m1 >> 128n,
    amountMicro: m2 & MASK_128,
    revenueMicro: m2 >> 128n,
  };
}

function encryptLine(message: bigint[], recipients: readonly Point[]): bigint[] {
  const r = randomScalar();
  const ephemeral = mulBase(r);
  const nonce = randomBits(128);
  const words = [ephemeral[0], ephemeral[1], nonce];
  for (const pk of recipients) words.push(...poseidonEncrypt(message, mulPoint(pk, r), nonce));
  return words;
}

function dummyLine(): bigint[] {
  const message = [randomBits(192), randomBits(192), randomBits(248)];
  return encryptLine(
    message,
    ROLES.map(() => mulBase(randomScalar())),
  );
}

/**
 * Encrypts each line to its provider, the operator and the auditor, pads and shuffles.
 * Returns the `encryptedLines` bytes of a usage batch.
 */
export function encryptLines(lines: readonly UsageLine[], keys: LineKeys, options: { minLines?: number } = {}): Hex {
  if (lines.length === 0) throw new InvalidUsageLineError("lines", "must not be empty");
  const seen = new Set<string>();
  for (const line of lines) {
    validateUsageLine(line);
    const id = line.providerId.toLowerCase();
    if (seen.has(id)) throw new InvalidUsageLineError("providerId", `${line.providerId} appears in more than one line`);
    seen.add(id);
  }
  const operatorPk = checkRecipient(keys.operatorPk, "the operator");
  const auditorPk = checkRecipient(keys.auditorPk, "the auditor");

  const encrypted = lines.map((line) =>
    encryptLine(pack(line), [checkRecipient(keys.providerPk(line.providerId), `provider ${line.providerId}`), operatorPk, auditorPk]),
  );
  const total = paddedLineCount(lines.length, options.minLines);
  while (encrypted.length < total) encrypted.push(dummyLine());
  for (let i = encrypted.length - 1; i > 0; i--) {
    const j = randomBelow(i + 1);
    [encrypted[i], encrypted[j]] = [encrypted[j], encrypted[i]];
  }
  return encodeAbiParameters(LINES_ABI, [LINES_FORMAT_VERSION, encrypted.flat()]);
}

/** The encrypted lines as word arrays of WORDS_PER_LINE; throws MalformedLinesError. */
export function decodeEncryptedLines(encryptedLines: Hex): bigint[][] {
  return decodeVersionedLines(encryptedLines).lines;
}

function decodeVersionedLines(encryptedLines: Hex): { version: bigint; lines: bigint[][] } {
  let version: bigint;
  let words: readonly bigint[];
  try {
    [version, words] = decodeAbiParameters(LINES_ABI, encryptedLines);
  } catch {
    throw new MalformedLinesError("encrypted lines are not abi.encode(uint256, uint256[])");
  }
  if (!READABLE_VERSIONS.includes(version)) throw new MalformedLinesError(`unsupported encrypted lines version ${version}`);
  if (words.length === 0 || words.length % WORDS_PER_LINE !== 0) {
    throw new MalformedLinesError(`${words.length} words is not a positive multiple of ${WORDS_PER_LINE}`);
  }
  const lines: bigint[][] = [];
  for (let i = 0; i < words.length; i += WORDS_PER_LINE) lines.push(words.slice(i, i + WORDS_PER_LINE));
  return { version, lines };
}

/** Number of (padded) lines in a batch: the only count it reveals publicly. */
export function encryptedLineCount(encryptedLines: Hex): number {
  return decodeEncryptedLines(encryptedLines).length;
}

/**
 * The lines `sk` can read in the copy slot of `role`, sorted by provider id. A provider gets its
 * own line (one per namespace paying out to its account), the operator and the auditor every
 * real line; any other key gets nothing.
 */
export function decryptLinesFor(encryptedLines: Hex, sk: bigint, role: LineRole): UsageLine[] {
  validatePrivateKey(sk);
  const slot = ROLES.indexOf(role);
  if (slot < 0) throw new RangeError(`role must be one of ${ROLES.join(", ")}`);
  const found: UsageLine[] = [];
  const { version, lines } = decodeVersionedLines(encryptedLines);
  for (const words of lines) {
    const ephemeral: Point = [words[0], words[1]];
    const nonce = words[2];
    const ciphertext = words.slice(3 + slot * 4, 7 + slot * 4);
    if (!isOnCurve(ephemeral) || nonce >= TWO_128 || ciphertext.some((w) => w >= FIELD_MODULUS)) continue;
    let message: bigint[];
    try {
      message = poseidonDecrypt(ciphertext, mulPoint(ephemeral, sk), nonce, 3);
    } catch {
      continue;
    }
    found.push(unpack(message, version));
  }
  return found.sort((a, b) => (a.providerId < b.providerId ? -1 : a.providerId > b.providerId ? 1 : 0));
}
