import { decodeAbiParameters, encodeAbiParameters, type Hex, isHex, parseAbiParameters } from "viem";
import {
  FIELD_MODULUS,
  IDENTITY,
  isInSubgroup,
  isOnCurve,
  mulBase,
  mulFixedPoint,
  mulPoint,
  type Point,
  pointEquals,
  randomScalar,
  SUBGROUP_ORDER,
} from "../eerc/curve.js";
import { validatePrivateKey } from "../eerc/keys.js";
import { poseidonDecrypt, poseidonEncrypt, poseidonHash } from "../eerc/poseidon.js";
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

/**
 * A line as one party decrypts its copy. `copyMismatch` is set (format version 3) when the copy
 * does not open to the line's public commitment: the server encrypted something else to this
 * party than what it committed to, and the copy must not be used (settlement ignores it and
 * reports it). Lines of versions 1 and 2 have no commitment and are never flagged.
 */
export type DecryptedLine = UsageLine & { copyMismatch?: true };

export type LineRole = "provider" | "operator" | "auditor";

export type LineKeys = {
  operatorPk: Point;
  auditorPk: Point;
  /** eERC public key of the provider's payout account (from the Registrar). */
  providerPk: (providerId: Hex) => Point;
};

/**
 * Serialised format, version 3: `abi.encode(uint256 version, uint256[] words)` with 16 words per
 * line: `[ephemeral.x, ephemeral.y, nonce, commitment, provider c0..c3, operator c0..c3, auditor c0..c3]`.
 * Each copy `c0..c3` is the Poseidon cipher (`poseidonEncrypt`, 3-element message, the
 * last word the authentication tag) under the ECDH key ephemeralSecret·recipientPk, with the
 * line's nonce. The three copies of a line share the ephemeral key and nonce; their keys differ
 * because their recipients do. Message:
 *   m0 = saltHigh << 192 | calls << 128 | providerId >> 128,
 *   m1 = saltLow << 192 | billableCalls << 128 | providerId mod 2^128,
 *   m2 = revenueMicro << 128 | amountMicro,
 * with a fresh 122-bit salt per line (saltHigh, saltLow: 61 bits each, so m0, m1 < 2^253, below
 * the field modulus). `commitment` = Poseidon(m0, m1, m2) ties the three copies together: each
 * recipient recomputes it from its own copy, and a copy that does not match it is flagged
 * (`copyMismatch`). Poseidon is binding, so every copy that matches holds the same line; the
 * salt, known only to the recipients, keeps the commitment hiding (guessing a line from it takes
 * 2^122 hashes per candidate). The ephemeral secret of a line is derived from its message
 * (`r = Poseidon(LINE_EPHEMERAL_DOMAIN, m0, m1, m2) mod the subgroup order`), so whoever reads a
 * copy also learns r, checks the ephemeral key, and can re-encrypt the message to another
 * recipient whose public key it knows: the operator checks the auditor's copy and the auditor the
 * operator's (`verify`), so both flag the same lines whatever the server sent to either. Version 2 (15 words: no commitment, no salt) and version 1 (also
 * m2 = amountMicro, no revenue) are still read, with revenueMicro 0 for version 1.
 * Lines are padded with dummy lines (random messages to random keys) to a power of two and
 * shuffled, so position and count say little; a reader finds its lines by trial decryption.
 */
export const LINES_FORMAT_VERSION = 3n;
/** Versions `decryptLinesFor` reads. */
const READABLE_VERSIONS: readonly bigint[] = [1n, 2n, 3n];
/** Words per line of the current format. */
export const WORDS_PER_LINE = 16;
/** Words per line of a format version: 15 before the commitment (versions 1 and 2). */
export const wordsPerLine = (version: bigint): number => (version >= 3n ? 16 : 15);
/** Bits of the salt each line's message carries (format version 3). */
export const LINE_SALT_BITS = 122;
/** Default floor of the padded line count. */
export const DEFAULT_MIN_LINES = 4;

const ROLES = ["provider", "operator", "auditor"] as const satisfies readonly LineRole[];
const LINES_ABI = parseAbiParameters("uint256 version, uint256[] words");
const TWO_64 = 1n << 64n;
const TWO_120 = 1n << 120n;
const TWO_128 = 1n << 128n;
const MASK_128 = TWO_128 - 1n;
const MASK_64 = TWO_64 - 1n;
const SALT_HALF_BITS = 61n;
const TWO_253 = 1n << 253n;

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

/** A line's message (format version 3) with `salt` (< 2^122) in the top bits of m0 and m1. */
function pack(line: UsageLine, salt: bigint): bigint[] {
  const id = BigInt(line.providerId);
  return [
    ((salt >> SALT_HALF_BITS) << 192n) | (line.calls << 128n) | (id >> 128n),
    ((salt & ((1n << SALT_HALF_BITS) - 1n)) << 192n) | (line.billableCalls << 128n) | (id & MASK_128),
    (line.revenueMicro << 128n) | line.amountMicro,
  ];
}

/** Domain of the ephemeral secret a line's message derives (the ASCII of "bs-line-r"). */
const LINE_EPHEMERAL_DOMAIN = 0x62732d6c696e652d72n;

/** The ephemeral secret of a format version 3 line: derived from its (salted) message. */
export function ephemeralSecretOf(message: readonly bigint[]): bigint {
  const r = poseidonHash([LINE_EPHEMERAL_DOMAIN, message[0]!, message[1]!, message[2]!]) % SUBGROUP_ORDER;
  return r === 0n ? 1n : r;
}

/** The public commitment of a line's message: Poseidon(m0, m1, m2). */
const commitmentOf = (message: readonly bigint[]): bigint => poseidonHash([message[0]!, message[1]!, message[2]!]);

function unpack(m: bigint[], version: bigint): UsageLine {
  const [m0, m1, m2] = m;
  const revenueLimit = version === 1n ? 1n : TWO_120;
  const wordLimit = version >= 3n ? TWO_253 : TWO_64 << 128n;
  if (m0 >= wordLimit || m1 >= wordLimit || m2 >= revenueLimit << 128n) {
    throw new MalformedLinesError("an authenticated line holds out-of-range values");
  }
  const id = ((m0 & MASK_128) << 128n) | (m1 & MASK_128);
  return {
    providerId: `0x${id.toString(16).padStart(64, "0")}`,
    calls: (m0 >> 128n) & MASK_64,
    billableCalls: (m1 >> 128n) & MASK_64,
    amountMicro: m2 & MASK_128,
    revenueMicro: m2 >> 128n,
  };
}

/** Uniform in [0, FIELD_MODULUS): what a real line's commitment looks like. */
function randomFieldElement(): bigint {
  for (;;) {
    const v = randomBits(254);
    if (v < FIELD_MODULUS) return v;
  }
}

/** A copy's recipient; `longLived` for the operator's and the auditor's keys, whose multiples are kept (`mulFixedPoint`). */
type Recipient = { pk: Point; longLived: boolean };

function encryptLine(message: bigint[], commitment: bigint, recipients: readonly Recipient[], r = randomScalar()): bigint[] {
  const ephemeral = mulBase(r);
  const nonce = randomBits(128);
  const words = [ephemeral[0], ephemeral[1], nonce, commitment];
  for (const { pk, longLived } of recipients)
    words.push(...poseidonEncrypt(message, longLived ? mulFixedPoint(pk, r) : mulPoint(pk, r), nonce));
  return words;
}

function dummyLine(): bigint[] {
  const message = [randomBits(253), randomBits(253), randomBits(248)];
  return encryptLine(
    message,
    randomFieldElement(),
    ROLES.map(() => ({ pk: mulBase(randomScalar()), longLived: false })),
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

  const encrypted = lines.map((line) => {
    const message = pack(line, randomBits(LINE_SALT_BITS));
    return encryptLine(
      message,
      commitmentOf(message),
      [
        { pk: checkRecipient(keys.providerPk(line.providerId), `provider ${line.providerId}`), longLived: false },
        { pk: operatorPk, longLived: true },
        { pk: auditorPk, longLived: true },
      ],
      ephemeralSecretOf(message),
    );
  });
  const total = paddedLineCount(lines.length, options.minLines);
  while (encrypted.length < total) encrypted.push(dummyLine());
  for (let i = encrypted.length - 1; i > 0; i--) {
    const j = randomBelow(i + 1);
    [encrypted[i], encrypted[j]] = [encrypted[j], encrypted[i]];
  }
  return encodeAbiParameters(LINES_ABI, [LINES_FORMAT_VERSION, encrypted.flat()]);
}

/** The encrypted lines as word arrays of `wordsPerLine(version)`; throws MalformedLinesError. */
export function decodeEncryptedLines(encryptedLines: Hex): bigint[][] {
  return decodeVersionedLines(encryptedLines).lines;
}

/** The lines format version and its lines as word arrays; throws MalformedLinesError. */
export function decodeVersionedLines(encryptedLines: Hex): { version: bigint; lines: bigint[][] } {
  let version: bigint;
  let words: readonly bigint[];
  try {
    [version, words] = decodeAbiParameters(LINES_ABI, encryptedLines);
  } catch {
    throw new MalformedLinesError("encrypted lines are not abi.encode(uint256, uint256[])");
  }
  if (!READABLE_VERSIONS.includes(version)) throw new MalformedLinesError(`unsupported encrypted lines version ${version}`);
  const perLine = wordsPerLine(version);
  if (words.length === 0 || words.length % perLine !== 0) {
    throw new MalformedLinesError(`${words.length} words is not a positive multiple of ${perLine}`);
  }
  const lines: bigint[][] = [];
  for (let i = 0; i < words.length; i += perLine) lines.push(words.slice(i, i + perLine));
  return { version, lines };
}

/** A version 3 line's words hold `message` in its commitment, its ephemeral key and each copy of `verify`. */
function copiesAgree(words: readonly bigint[], message: bigint[], verify: readonly { role: LineRole; pks: readonly Point[] }[]): boolean {
  if (commitmentOf(message) !== words[3]) return false;
  const r = ephemeralSecretOf(message);
  if (!pointEquals(mulBase(r), [words[0]!, words[1]!])) return false;
  for (const v of verify) {
    const slot = ROLES.indexOf(v.role);
    const copy = words.slice(4 + slot * 4, 8 + slot * 4);
    const matches = v.pks.some((pk) => {
      const expected = poseidonEncrypt(message, mulFixedPoint(pk, r), words[2]!);
      return expected.length === copy.length && expected.every((w, i) => w === copy[i]);
    });
    if (!matches) return false;
  }
  return true;
}

/** The format version of encrypted lines (their first word), without decoding the rest; 0n when there is none. */
export function linesFormatVersion(encryptedLines: Hex): bigint {
  return encryptedLines.length >= 66 ? BigInt(encryptedLines.slice(0, 66)) : 0n;
}

/** Number of (padded) lines in a batch: the only count it reveals publicly. */
export function encryptedLineCount(encryptedLines: Hex): number {
  return decodeEncryptedLines(encryptedLines).length;
}

/**
 * The lines `sk` can read in the copy slot of `role`, sorted by provider id. A provider gets its
 * own line (one per namespace paying out to its account), the operator and the auditor every
 * real line; any other key gets nothing. A version 3 line comes back with `copyMismatch: true`
 * when the copy does not match the line's commitment or ephemeral key, or when a copy named in
 * `verify` is not the same message encrypted to one of the keys given for its role.
 */
export function decryptLinesFor(
  encryptedLines: Hex,
  sk: bigint,
  role: LineRole,
  options: { verify?: readonly { role: LineRole; pks: readonly Point[] }[] } = {},
): DecryptedLine[] {
  validatePrivateKey(sk);
  const slot = ROLES.indexOf(role);
  if (slot < 0) throw new RangeError(`role must be one of ${ROLES.join(", ")}`);
  const found: DecryptedLine[] = [];
  const { version, lines } = decodeVersionedLines(encryptedLines);
  const first = version >= 3n ? 4 : 3;
  for (const words of lines) {
    const ephemeral: Point = [words[0]!, words[1]!];
    const nonce = words[2]!;
    const ciphertext = words.slice(first + slot * 4, first + 4 + slot * 4);
    if (!isOnCurve(ephemeral) || nonce >= TWO_128 || ciphertext.some((w) => w >= FIELD_MODULUS)) continue;
    const message = poseidonDecrypt(ciphertext, mulPoint(ephemeral, sk), nonce, 3);
    if (!message) continue;
    const line: DecryptedLine = unpack(message, version);
    if (version >= 3n && !copiesAgree(words, message, options.verify ?? [])) line.copyMismatch = true;
    found.push(line);
  }
  return found.sort((a, b) => (a.providerId < b.providerId ? -1 : a.providerId > b.providerId ? 1 : 0));
}
