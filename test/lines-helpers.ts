import { poseidonEncrypt } from "@zk-kit/poseidon-cipher";
import { poseidon3 } from "poseidon-lite";
import { encodeAbiParameters, type Hex, parseAbiParameters } from "viem";
import { mulBase, mulPoint, type Point, randomScalar } from "../src/eerc/curve.js";
import { publicKeyOf } from "../src/eerc/keys.js";
import { ephemeralSecretOf, type LineKeys, type UsageLine } from "../src/usage/lines.js";
import type { CallRecord } from "../src/usage/record.js";

// Encrypted lines built by hand, as a server following an older format, or a dishonest one, would
// write them (src/usage/lines.ts describes the formats).

const MASK_128 = (1n << 128n) - 1n;
const randomBelow2 = (bits: number): bigint => {
  const bytes = crypto.getRandomValues(new Uint8Array(Math.ceil(bits / 8)));
  return BigInt(`0x${Buffer.from(bytes).toString("hex")}`) & ((1n << BigInt(bits)) - 1n);
};

/** Line keys of nobody in particular: the API and the ledger check the lines' format, not their recipients. */
export const randomLineKeys = (): LineKeys => ({
  operatorPk: publicKeyOf(randomScalar()),
  auditorPk: publicKeyOf(randomScalar()),
  providerPk: () => publicKeyOf(randomScalar()),
});

/** The i-th call a meter records: a billable weather lookup at 1,500 µUSDC. */
export const callRecord = (i: number, overrides: Partial<CallRecord> = {}): CallRecord => ({
  eventId: `e${i}`,
  provider: "weather",
  tool: "lookup",
  startedAt: 1_000 + i,
  endedAt: 1_001 + i,
  durationMs: 1,
  outcome: "ok",
  requestBytes: 10,
  responseBytes: 20,
  billable: true,
  priceMicro: 1_500n,
  ...overrides,
});

/** A line's message in format `version` (the salt is used by version 3 only). */
export function lineMessage(line: UsageLine, version: bigint, salt = 0n): bigint[] {
  const id = BigInt(line.providerId);
  const saltHigh = version >= 3n ? (salt >> 61n) << 192n : 0n;
  const saltLow = version >= 3n ? (salt & ((1n << 61n) - 1n)) << 192n : 0n;
  return [
    saltHigh | (line.calls << 128n) | (id >> 128n),
    saltLow | (line.billableCalls << 128n) | (id & MASK_128),
    version === 1n ? line.amountMicro : (line.revenueMicro << 128n) | line.amountMicro,
  ];
}

export type Role = "provider" | "operator" | "auditor";

/**
 * Encrypted lines in format `version` (1, 2 or 3), not padded nor shuffled. In version 3 the
 * commitment is of the line itself; `copies` may give, per line, what a role's copy holds instead
 * (a server telling one party something other than what it committed to).
 */
export function handmadeLines(
  lines: readonly UsageLine[],
  keys: LineKeys,
  options: { version?: bigint; copies?: readonly Partial<Record<Role, UsageLine>>[] } = {},
): Hex {
  const version = options.version ?? 3n;
  const words: bigint[] = [];
  for (const [i, line] of lines.entries()) {
    const salt = randomBelow2(122);
    const message = lineMessage(line, version, salt);
    const r = version >= 3n ? ephemeralSecretOf(message) : randomScalar();
    const ephemeral = mulBase(r);
    const nonce = randomBelow2(128);
    words.push(ephemeral[0], ephemeral[1], nonce);
    if (version >= 3n) words.push(poseidon3(message));
    const recipients: [Role, Point][] = [
      ["provider", keys.providerPk(line.providerId)],
      ["operator", keys.operatorPk],
      ["auditor", keys.auditorPk],
    ];
    for (const [role, pk] of recipients) {
      const copy = options.copies?.[i]?.[role];
      words.push(...poseidonEncrypt(copy ? lineMessage(copy, version, salt) : message, mulPoint(pk, r), nonce));
    }
  }
  return encodeAbiParameters(parseAbiParameters("uint256, uint256[]"), [version, words]);
}
