import { concat, decodeAbiParameters, encodeAbiParameters, type Hex, keccak256, parseAbiParameters, verifyTypedData } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { describe, expect, it } from "vitest";
import { IDENTITY, mulBase, type Point, randomScalar } from "../src/eerc/curve.js";
import {
  aggregateLines,
  batchIdOf,
  batchTypedData,
  buildBatch,
  buildMerkleTree,
  type CallRecord,
  callRecordLeaf,
  DuplicateRecordError,
  decodeEncryptedLines,
  decryptLinesFor,
  EmptyBatchError,
  encodeCallRecord,
  encryptedLineCount,
  encryptLines,
  InvalidBatchError,
  InvalidCallRecordError,
  InvalidPricingError,
  InvalidRecipientKeyError,
  InvalidUsageLineError,
  LINES_FORMAT_VERSION,
  type LineKeys,
  MalformedLinesError,
  MerkleError,
  merkleProof,
  PricingModel,
  paddedLineCount,
  providerIdOf,
  recordProof,
  recordsTree,
  type UsageLine,
  validateCallRecord,
  validatePricing,
  verifyBatchRecords,
  verifyMerkleProof,
  WORDS_PER_LINE,
} from "../src/usage/index.js";
import { freePool, perCall } from "../src/usage/pricing.js";
import { handmadeLines } from "./lines-helpers.js";

const SERVER_KEY = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d" as const;
const server = privateKeyToAccount(SERVER_KEY);

let counter = 0;
function record(overrides: Partial<CallRecord> = {}): CallRecord {
  counter += 1;
  return {
    eventId: `evt-${counter}`,
    provider: "coingecko",
    tool: "getPrice",
    startedAt: 1_700_000_000_000 + counter,
    endedAt: 1_700_000_000_050 + counter,
    durationMs: 50,
    outcome: "ok",
    requestBytes: 120,
    responseBytes: 2_048,
    billable: true,
    priceMicro: 1_500n,
    ...overrides,
  };
}

const sk = {
  operator: randomScalar(),
  auditor: randomScalar(),
  coingecko: randomScalar(),
  etherscan: randomScalar(),
  defillama: randomScalar(),
  competitor: randomScalar(),
};
const providerSk: Record<Hex, bigint> = {
  [providerIdOf("coingecko")]: sk.coingecko,
  [providerIdOf("etherscan")]: sk.etherscan,
  [providerIdOf("defillama")]: sk.defillama,
};
const keys: LineKeys = {
  operatorPk: mulBase(sk.operator),
  auditorPk: mulBase(sk.auditor),
  providerPk: (id) => mulBase(providerSk[id]!),
};
const WINDOW = { periodStart: 1_700_000_000_000, periodEnd: 1_700_000_100_000 };

describe("call records", () => {
  it("accepts a well-formed record and returns exactly its fields", () => {
    const r = record();
    expect(validateCallRecord({ ...r })).toEqual(r);
  });

  it.each<[string, Record<string, unknown>]>([
    ["eventId", { eventId: "" }],
    ["provider", { provider: "coin-gecko" }],
    ["provider", { provider: "x".repeat(65) }],
    ["tool", { tool: 7 }],
    ["startedAt", { startedAt: -1 }],
    ["durationMs", { durationMs: 1.5 }],
    ["endedAt", { endedAt: 1 }],
    ["requestBytes", { requestBytes: -3 }],
    ["responseBytes", { responseBytes: Number.MAX_SAFE_INTEGER + 1 }],
    ["outcome", { outcome: "error" }],
    ["billable", { billable: "yes" }],
    ["priceMicro", { priceMicro: 10 }],
    ["priceMicro", { priceMicro: -1n }],
    ["priceMicro", { priceMicro: 1n << 64n }],
    ["priceMicro", { billable: false, priceMicro: 5n }],
    ["costMicro", { costMicro: 5n }],
  ])("rejects a bad %s with a typed error naming the field", (field, change) => {
    const bad = { ...record(), ...change };
    let caught: unknown;
    try {
      validateCallRecord(bad);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(InvalidCallRecordError);
    expect((caught as InvalidCallRecordError).field).toBe(field);
    expect((caught as InvalidCallRecordError).code).toBe("INVALID_CALL_RECORD");
  });

  it("encodes canonically: abi.encode of the fields, outcome as its index, double-hashed leaf", () => {
    const r = record({ outcome: "tool_error", billable: false, priceMicro: 0n });
    const encoded = encodeCallRecord(r);
    const decoded = decodeAbiParameters(
      parseAbiParameters("string, string, string, uint64, uint64, uint64, uint8, uint64, uint64, bool, uint64"),
      encoded,
    );
    expect(decoded).toEqual([r.eventId, r.provider, r.tool, BigInt(r.startedAt), BigInt(r.endedAt), 50n, 1, 120n, 2048n, false, 0n]);
    expect(callRecordLeaf(r)).toBe(keccak256(keccak256(encoded)));
    expect(callRecordLeaf({ ...r })).toBe(callRecordLeaf(r));
  });

  it("encodes exactly as viem's ABI encoder, for strings of every padding and the largest values", () => {
    const abi = parseAbiParameters("string, string, string, uint64, uint64, uint64, uint8, uint64, uint64, bool, uint64");
    const ids = ["e", "x".repeat(31), "x".repeat(32), "x".repeat(33), "é".repeat(128), `🙂-${"y".repeat(200)}`];
    for (const [i, eventId] of ids.entries()) {
      const r = record({
        eventId,
        provider: "P".repeat(1 + ((i * 13) % 64)),
        tool: i % 2 === 0 ? "t" : `ツール/${"z".repeat(40)}`,
        startedAt: i === 0 ? 0 : Number.MAX_SAFE_INTEGER - 10,
        endedAt: Number.MAX_SAFE_INTEGER,
        durationMs: 2 ** 32 + i,
        outcome: (["ok", "tool_error", "exception"] as const)[i % 3],
        requestBytes: 2 ** 32 - 1,
        responseBytes: 0,
        billable: i % 3 === 0,
        priceMicro: i % 3 === 0 ? (1n << 64n) - 1n : 0n,
      });
      const expected = encodeAbiParameters(abi, [
        r.eventId,
        r.provider,
        r.tool,
        BigInt(r.startedAt),
        BigInt(r.endedAt),
        BigInt(r.durationMs),
        i % 3,
        BigInt(r.requestBytes),
        BigInt(r.responseBytes),
        r.billable,
        r.priceMicro,
      ]);
      expect(encodeCallRecord(r)).toBe(expected);
      expect(callRecordLeaf(r)).toBe(keccak256(keccak256(expected)));
    }
  });

  it("changes the leaf when any field changes", () => {
    const r = record();
    const variants: Partial<CallRecord>[] = [
      { eventId: "other" },
      { provider: "etherscan" },
      { tool: "getBlock" },
      { startedAt: r.startedAt - 1 },
      { endedAt: r.endedAt + 1 },
      { durationMs: 51 },
      { outcome: "exception" },
      { requestBytes: 121 },
      { responseBytes: 2_049 },
      { billable: false, priceMicro: 0n },
      { priceMicro: 1_501n },
    ];
    const leaves = new Set([callRecordLeaf(r), ...variants.map((v) => callRecordLeaf({ ...r, ...v }))]);
    expect(leaves.size).toBe(variants.length + 1);
  });
});

describe("Merkle tree", () => {
  it("gives every record a proof that verifies, for 1 to 9 records", () => {
    for (let n = 1; n <= 9; n++) {
      const records = Array.from({ length: n }, () => record());
      const tree = recordsTree(records);
      for (const r of records) expect(verifyMerkleProof(callRecordLeaf(r), recordProof(tree, r), tree.root)).toBe(true);
      if (n === 1) {
        expect(tree.root).toBe(callRecordLeaf(records[0]));
        expect(recordProof(tree, records[0])).toEqual([]);
      }
    }
  });

  it("hashes sorted pairs as keccak256(min ‖ max), carrying an unpaired node up", () => {
    const reference = (leaves: Hex[]): Hex => {
      let level = [...leaves].sort();
      while (level.length > 1) {
        const next: Hex[] = [];
        for (let i = 0; i < level.length; i += 2) {
          const [a, b] = [level[i]!, level[i + 1]];
          next.push(b === undefined ? a : keccak256(concat(a < b ? [a, b] : [b, a])));
        }
        level = next;
      }
      return level[0]!;
    };
    for (const n of [1, 2, 3, 5, 8, 13, 100]) {
      const leaves = Array.from({ length: n }, () => callRecordLeaf(record()));
      expect(buildMerkleTree(leaves).root).toBe(reference(leaves));
    }
  });

  it("is deterministic and independent of record order", () => {
    const records = Array.from({ length: 7 }, () => record());
    const root = recordsTree(records).root;
    expect(recordsTree([...records].reverse()).root).toBe(root);
    expect(recordsTree([records[3], records[0], records[6], records[1], records[5], records[2], records[4]]).root).toBe(root);
  });

  it("refuses a wrong leaf, a wrong root and a tampered proof", () => {
    const records = Array.from({ length: 5 }, () => record());
    const tree = recordsTree(records);
    const proof = recordProof(tree, records[2]);
    const leaf = callRecordLeaf(records[2]);
    expect(verifyMerkleProof(callRecordLeaf({ ...records[2], priceMicro: 1n }), proof, tree.root)).toBe(false);
    expect(verifyMerkleProof(leaf, proof, recordsTree(records.slice(1)).root)).toBe(false);
    expect(verifyMerkleProof(leaf, [keccak256("0x01"), ...proof.slice(1)], tree.root)).toBe(false);
    expect(verifyMerkleProof(leaf, proof.slice(1), tree.root)).toBe(false);
    expect(() => merkleProof(tree, keccak256("0x02"))).toThrow(MerkleError);
  });

  it("rejects an empty batch and repeated records", () => {
    expect(() => recordsTree([])).toThrow(EmptyBatchError);
    expect(() => buildMerkleTree([])).toThrow(EmptyBatchError);
    const r = record();
    expect(() => recordsTree([r, { ...r }])).toThrow(DuplicateRecordError);
    expect(() => buildMerkleTree([callRecordLeaf(r), callRecordLeaf(r)])).toThrow(MerkleError);
  });

  it("verifyBatchRecords: true for the committed set in any order, false if one record differs or is missing", () => {
    const records = Array.from({ length: 6 }, () => record());
    const root = recordsTree(records).root;
    expect(verifyBatchRecords([...records].reverse(), root)).toBe(true);
    expect(verifyBatchRecords([...records.slice(1), { ...records[0], priceMicro: records[0].priceMicro + 1n }], root)).toBe(false);
    expect(verifyBatchRecords(records.slice(1), root)).toBe(false);
    expect(() => verifyBatchRecords([{ ...records[0], outcome: "bad" as never }], root)).toThrow(InvalidCallRecordError);
  });
});

describe("encrypted lines", () => {
  const mixed = (): CallRecord[] => [
    record({ provider: "coingecko", priceMicro: 1_500n }),
    record({ provider: "coingecko", priceMicro: 1_500n }),
    record({ provider: "coingecko", outcome: "tool_error", billable: false, priceMicro: 0n }),
    record({ provider: "etherscan", priceMicro: 2n }),
    record({ provider: "defillama", priceMicro: 0n }),
    record({ provider: "defillama", outcome: "exception", billable: false, priceMicro: 0n }),
  ];

  it("aggregates one line per provider: calls, billable calls, Σ price of billable calls", () => {
    const lines = aggregateLines(mixed());
    const byId = Object.fromEntries(lines.map((l) => [l.providerId, l]));
    expect(byId[providerIdOf("coingecko")]).toMatchObject({ calls: 3n, billableCalls: 2n, amountMicro: 3_000n, revenueMicro: 0n });
    expect(byId[providerIdOf("etherscan")]).toMatchObject({ calls: 1n, billableCalls: 1n, amountMicro: 2n, revenueMicro: 0n });
    expect(byId[providerIdOf("defillama")]).toMatchObject({ calls: 2n, billableCalls: 1n, amountMicro: 0n, revenueMicro: 0n });
    expect(lines.map((l) => l.providerId)).toEqual([...lines.map((l) => l.providerId)].sort());
  });

  it("carries what settled x402 payments brought in: not unpaid, refused or pending ones", () => {
    const paid = (amountMicro: bigint, status: "settled" | "unpaid" | "refused" | "settle_pending"): CallRecord => {
      const settled = status === "settled";
      return record({
        provider: "coingecko",
        priceMicro: settled ? 1_500n : 0n,
        billable: settled,
        payment: {
          payer: status === "unpaid" ? null : server.address,
          amountMicro,
          nonce: status === "unpaid" ? null : keccak256(`0x0${amountMicro.toString(16)}`),
          txHash: settled ? keccak256(`0x1${amountMicro.toString(16)}`) : null,
          status,
        },
      });
    };
    const lines = aggregateLines([
      paid(1_600n, "settled"),
      paid(1_601n, "settled"),
      paid(1_602n, "unpaid"),
      paid(1_603n, "refused"),
      paid(1_604n, "settle_pending"),
    ]);
    expect(lines).toEqual([
      { providerId: providerIdOf("coingecko"), calls: 5n, billableCalls: 2n, amountMicro: 3_000n, revenueMicro: 3_201n },
    ]);
    const encrypted = encryptLines(lines, keys);
    expect(decryptLinesFor(encrypted, sk.coingecko, "provider")).toEqual(lines);
    expect(decryptLinesFor(encrypted, sk.auditor, "auditor")).toEqual(lines);
  });

  it("reads format version 1 lines, which carry no revenue, as revenue 0, and version 2 lines, which carry no commitment", () => {
    const lines = aggregateLines(mixed());
    expect(decryptLinesFor(handmadeLines(lines, keys, { version: 1n }), sk.operator, "operator")).toEqual(lines);
    const withRevenue = lines.map((l) => ({ ...l, revenueMicro: 7n }));
    const v2 = decodeEncryptedLines(handmadeLines(withRevenue, keys, { version: 2n }));
    expect(v2.every((w) => w.length === 15)).toBe(true);
    expect(decryptLinesFor(encodeLines(v2, 2n), sk.operator, "operator")).toEqual(withRevenue);
    expect(() => decryptLinesFor(encodeLines(v2, 1n), sk.operator, "operator")).toThrow(MalformedLinesError);
    // A version 2 line's copies are not tied together: a disagreeing copy cannot be told apart.
    const other = withRevenue.map((l) => ({ ...l, billableCalls: 0n }));
    const untied = handmadeLines(withRevenue, keys, { version: 2n, copies: other.map((o) => ({ provider: o })) });
    expect(decryptLinesFor(untied, sk.operator, "operator")).toEqual(withRevenue);
    const v3 = decodeEncryptedLines(encryptLines(withRevenue, keys));
    expect(() => decryptLinesFor(encodeLines(v3, 4n), sk.operator, "operator")).toThrow(/unsupported encrypted lines version 4/);
  });

  it("ties the three copies of a line to its public commitment: a copy that disagrees is flagged for its reader only", () => {
    const lines = aggregateLines(mixed());
    const honest = encryptLines(lines, keys);
    for (const role of ["operator", "auditor"] as const) expect(decryptLinesFor(honest, sk[role], role)).toEqual(lines);
    const coingecko = lines.find((l) => l.providerId === providerIdOf("coingecko"))!;
    const inflated = { ...coingecko, billableCalls: coingecko.calls, amountMicro: coingecko.amountMicro * 10n };
    const copies = lines.map((l) => (l === coingecko ? { operator: inflated } : {}));
    const forged = handmadeLines(lines, keys, { copies });
    // The operator reads the inflated line, flagged; the provider and the auditor read the committed one.
    expect(decryptLinesFor(forged, sk.operator, "operator").find((l) => l.providerId === coingecko.providerId)).toEqual({
      ...inflated,
      copyMismatch: true,
    });
    expect(decryptLinesFor(forged, sk.operator, "operator").filter((l) => l.copyMismatch)).toHaveLength(1);
    expect(decryptLinesFor(forged, sk.auditor, "auditor")).toEqual(lines);
    expect(decryptLinesFor(forged, sk.coingecko, "provider")).toEqual([coingecko]);
    for (const role of ["provider", "auditor"] as const) {
      const other = handmadeLines(lines, keys, { copies: lines.map((l) => (l === coingecko ? { [role]: inflated } : {})) });
      const key = role === "provider" ? sk.coingecko : sk.auditor;
      expect(decryptLinesFor(other, key, role).find((l) => l.providerId === coingecko.providerId)).toEqual({
        ...inflated,
        copyMismatch: true,
      });
      expect(decryptLinesFor(other, sk.operator, "operator")).toEqual(lines);
    }
    // Checking the other's copy, the operator and the auditor flag the same line whichever copy was changed.
    const verifyAuditor = { verify: [{ role: "auditor" as const, pks: [keys.auditorPk] }] };
    const verifyOperator = { verify: [{ role: "operator" as const, pks: [keys.operatorPk] }] };
    expect(decryptLinesFor(honest, sk.operator, "operator", verifyAuditor)).toEqual(lines);
    expect(decryptLinesFor(honest, sk.auditor, "auditor", verifyOperator)).toEqual(lines);
    const flagged = (bytes: Hex, key: bigint, role: "operator" | "auditor", options: typeof verifyAuditor | typeof verifyOperator) =>
      decryptLinesFor(bytes, key, role, options)
        .filter((l) => l.copyMismatch)
        .map((l) => l.providerId);
    for (const changed of ["operator", "auditor"] as const) {
      const other = handmadeLines(lines, keys, { copies: lines.map((l) => (l === coingecko ? { [changed]: inflated } : {})) });
      expect(flagged(other, sk.operator, "operator", verifyAuditor)).toEqual([coingecko.providerId]);
      expect(flagged(other, sk.auditor, "auditor", verifyOperator)).toEqual([coingecko.providerId]);
    }
    // A copy to another auditor key is not the auditor's.
    expect(flagged(honest, sk.operator, "operator", { verify: [{ role: "auditor", pks: [mulBase(sk.competitor)] }] })).toHaveLength(
      lines.length,
    );
    // The commitment hides the line: the same line commits differently each time (a fresh salt).
    const [a, b] = [encryptLines([coingecko], keys, { minLines: 1 }), encryptLines([coingecko], keys, { minLines: 1 })];
    expect(decodeEncryptedLines(a)[0]![3]).not.toBe(decodeEncryptedLines(b)[0]![3]);
  });

  it("a provider decrypts exactly its own line; operator and auditor all; a competitor nothing", () => {
    const { batch, lines } = buildBatch({ server: server.address, sequence: 1, ...WINDOW, records: mixed(), keys });
    expect(lines).toHaveLength(3);
    for (const name of ["coingecko", "etherscan", "defillama"] as const) {
      const own = lines.find((l) => l.providerId === providerIdOf(name));
      expect(decryptLinesFor(batch.encryptedLines, sk[name], "provider")).toEqual([own]);
    }
    expect(decryptLinesFor(batch.encryptedLines, sk.operator, "operator")).toEqual(lines);
    expect(decryptLinesFor(batch.encryptedLines, sk.auditor, "auditor")).toEqual(lines);
    for (const role of ["provider", "operator", "auditor"] as const) {
      expect(decryptLinesFor(batch.encryptedLines, sk.competitor, role)).toEqual([]);
    }
    // Each key opens only its own copy slot.
    expect(decryptLinesFor(batch.encryptedLines, sk.coingecko, "operator")).toEqual([]);
    expect(decryptLinesFor(batch.encryptedLines, sk.operator, "auditor")).toEqual([]);
    expect(decryptLinesFor(batch.encryptedLines, sk.auditor, "provider")).toEqual([]);
  });

  it("a payout account behind two namespaces reads both lines", () => {
    const shared = randomScalar();
    const lines = aggregateLines([record({ provider: "alpha" }), record({ provider: "beta" }), record({ provider: "gamma" })]);
    const gamma = providerIdOf("gamma");
    const encrypted = encryptLines(lines, {
      ...keys,
      providerPk: (id) => (id === gamma ? mulBase(sk.competitor) : mulBase(shared)),
    });
    expect(decryptLinesFor(encrypted, shared, "provider")).toEqual(lines.filter((l) => l.providerId !== gamma));
  });

  it("pads to the next power of two (at least 4) with dummy lines that look like real ones", () => {
    expect([1, 2, 3, 4, 5, 9, 100].map((n) => paddedLineCount(n))).toEqual([4, 4, 4, 4, 8, 16, 128]);
    expect(paddedLineCount(1, 1)).toBe(1);
    expect(paddedLineCount(3, 1)).toBe(4);
    expect(() => paddedLineCount(3, 3)).toThrow(RangeError);

    const lines = aggregateLines(Array.from({ length: 5 }, (_, i) => record({ provider: `p${i}` })));
    const encrypted = encryptLines(lines, { ...keys, providerPk: () => mulBase(sk.coingecko) });
    expect(encryptedLineCount(encrypted)).toBe(8);
    const words = decodeEncryptedLines(encrypted);
    expect(words.every((w) => w.length === WORDS_PER_LINE)).toBe(true);
    expect(decryptLinesFor(encrypted, sk.operator, "operator")).toEqual(lines);
    expect(decryptLinesFor(encrypted, sk.coingecko, "provider")).toEqual(lines);
    const single = encryptLines(lines.slice(0, 1), { ...keys, providerPk: () => mulBase(sk.coingecko) }, { minLines: 1 });
    expect(encryptedLineCount(single)).toBe(1);
  });

  it("is randomised: the same lines encrypt differently, and real lines are not always first", () => {
    const lines = aggregateLines([record({ provider: "coingecko" })]);
    const a = encryptLines(lines, keys);
    const b = encryptLines(lines, keys);
    expect(a).not.toBe(b);
    const positions = new Set<number>();
    for (let i = 0; i < 24; i++) {
      const words = decodeEncryptedLines(encryptLines(lines, keys));
      positions.add(words.findIndex((w) => decryptLinesFor(encodeLines([w]), sk.operator, "operator").length === 1));
    }
    expect(positions.size).toBeGreaterThan(1);
  });

  it("a tampered word makes that line unreadable for every recipient", () => {
    const lines = aggregateLines([record({ provider: "coingecko" })]);
    const words = decodeEncryptedLines(encryptLines(lines, keys, { minLines: 1 }))[0];
    for (const i of [2, 4, 7, 8, 11, 15]) {
      const tampered = [...words];
      tampered[i] += 1n;
      const bytes = encodeLines([tampered]);
      const slotOf = (k: number) => (k < 4 ? -1 : Math.floor((k - 4) / 4));
      const readable = [
        decryptLinesFor(bytes, sk.coingecko, "provider").length,
        decryptLinesFor(bytes, sk.operator, "operator").length,
        decryptLinesFor(bytes, sk.auditor, "auditor").length,
      ];
      // A header word (nonce) breaks every copy; a ciphertext word breaks its own copy only.
      expect(readable).toEqual([0, 1, 2].map((s) => (slotOf(i) === -1 || slotOf(i) === s ? 0 : 1)));
    }
  });

  it("validates lines and recipient keys", () => {
    const good: UsageLine = { providerId: providerIdOf("coingecko"), calls: 2n, billableCalls: 1n, amountMicro: 5n, revenueMicro: 0n };
    const lineError = (line: Partial<UsageLine>) => {
      try {
        encryptLines([{ ...good, ...line }], keys);
      } catch (err) {
        expect(err).toBeInstanceOf(InvalidUsageLineError);
        return (err as InvalidUsageLineError).field;
      }
      return undefined;
    };
    expect(lineError({ billableCalls: 3n })).toBe("billableCalls");
    expect(lineError({ calls: -1n })).toBe("calls");
    expect(lineError({ calls: 1n << 64n, billableCalls: 0n })).toBe("calls");
    expect(lineError({ amountMicro: 1n << 128n })).toBe("amountMicro");
    expect(lineError({ revenueMicro: 1n << 120n })).toBe("revenueMicro");
    expect(lineError({ revenueMicro: -1n })).toBe("revenueMicro");
    expect(lineError({ providerId: "0x1234" })).toBe("providerId");
    expect(() => encryptLines([good, { ...good }], keys)).toThrow(InvalidUsageLineError);
    expect(() => encryptLines([], keys)).toThrow(InvalidUsageLineError);
    expect(() => encryptLines([good], { ...keys, auditorPk: [...IDENTITY] as Point })).toThrow(InvalidRecipientKeyError);
    expect(() => encryptLines([good], { ...keys, operatorPk: [1n, 2n] })).toThrow(InvalidRecipientKeyError);
  });

  it("a tampered commitment flags every copy of its line", () => {
    const lines = aggregateLines([record({ provider: "coingecko" })]);
    const words = decodeEncryptedLines(encryptLines(lines, keys, { minLines: 1 }))[0]!;
    const bytes = encodeLines([[...words.slice(0, 3), words[3]! + 1n, ...words.slice(4)]]);
    for (const [key, role] of [
      [sk.coingecko, "provider"],
      [sk.operator, "operator"],
      [sk.auditor, "auditor"],
    ] as const)
      expect(decryptLinesFor(bytes, key, role)).toEqual([{ ...lines[0], copyMismatch: true }]);
  });

  it("rejects malformed encrypted bytes", () => {
    expect(() => decryptLinesFor("0x1234", sk.operator, "operator")).toThrow(MalformedLinesError);
    expect(() => decodeEncryptedLines(encodeAbiParameters(parseAbiParameters("uint256, uint256[]"), [3n, Array(15).fill(1n)]))).toThrow(
      MalformedLinesError,
    );
    expect(() => decodeEncryptedLines(encodeAbiParameters(parseAbiParameters("uint256, uint256[]"), [1n, Array(14).fill(1n)]))).toThrow(
      MalformedLinesError,
    );
  });
});

describe("batches", () => {
  it("derives batchId = keccak256(abi.encode(server, sequence))", () => {
    const id = batchIdOf(server.address, 7n);
    expect(id).toBe(keccak256(encodeAbiParameters(parseAbiParameters("address, uint256"), [server.address, 7n])));
    expect(batchIdOf(server.address, 7)).toBe(id);
    expect(batchIdOf(server.address, 8n)).not.toBe(id);
    expect(() => batchIdOf(server.address, -1n)).toThrow(InvalidBatchError);
  });

  it("builds the struct and checks the period against the records", () => {
    const records = [record(), record({ provider: "etherscan" })];
    const { batch, tree } = buildBatch({ server: server.address, sequence: 3, ...WINDOW, records, keys });
    expect(batch).toMatchObject({
      server: server.address,
      batchId: batchIdOf(server.address, 3n),
      periodStart: BigInt(WINDOW.periodStart),
      periodEnd: BigInt(WINDOW.periodEnd),
      merkleRoot: tree.root,
    });
    expect(verifyBatchRecords(records, batch.merkleRoot)).toBe(true);
    const build = (o: object) => () => buildBatch({ server: server.address, sequence: 3, ...WINDOW, records, keys, ...o });
    expect(build({ periodEnd: WINDOW.periodStart - 1 })).toThrow(InvalidBatchError);
    expect(build({ periodStart: records[1].startedAt + 1 })).toThrow(InvalidBatchError);
    expect(build({ periodEnd: records[1].endedAt - 1 })).toThrow(InvalidBatchError);
    expect(build({ records: [] })).toThrow(EmptyBatchError);
  });

  it("produces typed data the server signs and viem verifies", async () => {
    const { batch } = buildBatch({ server: server.address, sequence: 1, ...WINDOW, records: [record()], keys });
    const typed = batchTypedData(batch, 1_900_000_000n, { chainId: 31337, ledger: "0x5FbDB2315678afecb367f032d93F642f64180aa3" });
    const signature = await server.signTypedData(typed);
    expect(await verifyTypedData({ ...typed, address: server.address, signature })).toBe(true);
    const other = batchTypedData({ ...batch, periodEnd: batch.periodEnd + 1n }, 1_900_000_000n, {
      chainId: 31337,
      ledger: "0x5FbDB2315678afecb367f032d93F642f64180aa3",
    });
    expect(await verifyTypedData({ ...other, address: server.address, signature })).toBe(false);
  });
});

describe("pricing (mirror of the registry's rules)", () => {
  it.each<[string, Parameters<typeof validatePricing>[0]]>([
    ["pricePerCallMicro", perCall(0n)],
    ["poolWeight", { model: PricingModel.PerCall, pricePerCallMicro: 1n, poolWeight: 1, tiers: [] }],
    ["poolWeight", freePool(0)],
    ["tiers", { model: PricingModel.Tiered, pricePerCallMicro: 0n, poolWeight: 0, tiers: [] }],
    [
      "tiers[1].upToCalls",
      {
        model: PricingModel.Tiered,
        pricePerCallMicro: 0n,
        poolWeight: 0,
        tiers: [
          { upToCalls: 10n, priceMicro: 0n },
          { upToCalls: 10n, priceMicro: 5n },
        ],
      },
    ],
  ])("rejects %s", (field, pricing) => {
    expect(() => validatePricing(pricing)).toThrow(InvalidPricingError);
    try {
      validatePricing(pricing);
    } catch (err) {
      expect((err as InvalidPricingError).field).toBe(field);
    }
  });
});

function encodeLines(lines: bigint[][], version = LINES_FORMAT_VERSION): Hex {
  return encodeAbiParameters(parseAbiParameters("uint256, uint256[]"), [version, lines.flat()]);
}
