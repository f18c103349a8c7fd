/**
 * The provider's usage check without a chain: decrypting its lines from committed batches, reading
 * records files (spool, JSONL, JSON array with proofs) and checking them against roots and lines.
 */
import { type Address, getAddress } from "viem";
import { describe, expect, test } from "vitest";
import { randomScalar } from "../src/eerc/curve.js";
import { publicKeyOf } from "../src/eerc/keys.js";
import {
  type CommittedBatch,
  checkRecords,
  decryptProviderUsage,
  type ProviderRef,
  parseRecordsFile,
  RecordsFileError,
} from "../src/history/usage.js";
import { encodeLine } from "../src/meter/spool.js";
import { buildBatch, providerIdOf, recordProof, recordsTree } from "../src/usage/index.js";
import type { CallRecord } from "../src/usage/record.js";
import { handmadeLines } from "./lines-helpers.js";

const server = getAddress("0x00000000000000000000000000000000000000aa");
const key = () => {
  const sk = randomScalar();
  return { sk, pk: publicKeyOf(sk) };
};
const alice = { ...key(), address: getAddress("0x00000000000000000000000000000000000000a1") };
const bob = { ...key(), address: getAddress("0x00000000000000000000000000000000000000b0") };
const operator = key();
const auditor = key();
const providers: ProviderRef[] = [
  { providerId: providerIdOf("weather"), namespace: "weather", payoutAccount: alice.address, active: true },
  { providerId: providerIdOf("maps"), namespace: "maps", payoutAccount: alice.address, active: true },
  { providerId: providerIdOf("news"), namespace: "news", payoutAccount: bob.address, active: true },
];
const pkOf: Record<string, typeof alice.pk> = Object.fromEntries(
  providers.map((p) => [p.providerId, p.payoutAccount === alice.address ? alice.pk : bob.pk]),
);

let n = 0;
const record = (provider: string, t: number, overrides: Partial<CallRecord> = {}): CallRecord => ({
  eventId: `e${++n}`,
  provider,
  tool: "get",
  startedAt: t,
  endedAt: t + 5,
  durationMs: 5,
  outcome: "ok",
  requestBytes: 10,
  responseBytes: 20,
  billable: true,
  priceMicro: provider === "news" ? 0n : 700n,
  ...overrides,
});

function commit(sequence: number, records: CallRecord[], block: bigint): CommittedBatch {
  const periodStart = Math.min(...records.map((r) => r.startedAt));
  const periodEnd = Math.max(...records.map((r) => r.endedAt));
  const { batch } = buildBatch({
    server,
    sequence,
    periodStart,
    periodEnd,
    records,
    keys: { operatorPk: operator.pk, auditorPk: auditor.pk, providerPk: (id) => pkOf[id]! },
  });
  return { ...batch, blockNumber: block, logIndex: 0, txHash: `0x${block.toString(16).padStart(64, "0")}` };
}

const batch1 = [
  record("weather", 1_000),
  record("weather", 1_010, { outcome: "tool_error", billable: false, priceMicro: 0n }),
  record("news", 1_020),
  record("maps", 1_030),
];
const batch2 = [record("news", 2_000), record("news", 2_010)];
const batch3 = [record("weather", 3_000), record("news", 3_010)];
const open = [record("weather", 4_000)];
const committed = [commit(1, batch1, 10n), commit(2, batch2, 11n), commit(3, batch3, 12n)];

function spool(lines: string[]): Uint8Array {
  return new TextEncoder().encode(lines.join(""));
}
const call = (r: CallRecord) => encodeLine({ type: "call", period: 197001, record: r });
const close = (sequence: number, batch: CommittedBatch, count: number) =>
  encodeLine({ type: "close", sequence, batchId: batch.batchId, period: 197001, count, closedAt: 1 });
const submitted = (sequence: number) => encodeLine({ type: "submitted", sequence, txHash: null, at: 2 });
const fullSpool = () =>
  spool([
    ...batch1.map(call),
    close(1, committed[0]!, 4),
    submitted(1),
    ...batch2.map(call),
    close(2, committed[1]!, 2),
    submitted(2),
    ...batch3.map(call),
    close(3, committed[2]!, 2),
    submitted(3),
    ...open.map(call),
  ]);

describe("decrypting a provider's usage", () => {
  test("each account reads only its own lines, per batch and in total, labelled by namespace", () => {
    const a = decryptProviderUsage({ account: alice.address, sk: alice.sk, providers, batches: committed });
    expect(a.namespaces.map((p) => p.namespace)).toEqual(["weather", "maps"]);
    expect(a.batchesScanned).toBe(3);
    expect(a.batches.map((b) => [b.blockNumber, b.lines.map((l) => [l.namespace, l.calls, l.billableCalls, l.amountMicro])])).toEqual([
      [
        10n,
        expect.arrayContaining([
          ["weather", 2n, 1n, 700n],
          ["maps", 1n, 1n, 700n],
        ]),
      ],
      [12n, [["weather", 1n, 1n, 700n]]],
    ]);
    expect(a.byProvider.map((p) => [p.namespace, p.calls, p.billableCalls, p.amountMicro])).toEqual([
      ["maps", 1n, 1n, 700n],
      ["weather", 3n, 2n, 1_400n],
    ]);
    expect(a.total).toEqual({ calls: 4n, billableCalls: 3n, amountMicro: 2_100n, revenueMicro: 0n });

    const b = decryptProviderUsage({ account: bob.address, sk: bob.sk, providers, batches: committed });
    expect(b.total).toEqual({ calls: 4n, billableCalls: 4n, amountMicro: 0n, revenueMicro: 0n });
    const stranger = decryptProviderUsage({
      account: getAddress("0x00000000000000000000000000000000000000cc"),
      sk: key().sk,
      providers,
      batches: committed,
    });
    expect(stranger).toMatchObject({
      namespaces: [],
      batches: [],
      byProvider: [],
      total: { calls: 0n, billableCalls: 0n, amountMicro: 0n, revenueMicro: 0n },
    });
  });
});

describe("a provider's copy that disagrees with the line's commitment", () => {
  test("is left out of the provider's usage and reported; its other lines read as usual", () => {
    const weather = { providerId: providerIdOf("weather"), calls: 4n, billableCalls: 4n, amountMicro: 2_800n, revenueMicro: 0n };
    const news = { providerId: providerIdOf("news"), calls: 1n, billableCalls: 1n, amountMicro: 0n, revenueMicro: 0n };
    const keys = { operatorPk: operator.pk, auditorPk: auditor.pk, providerPk: (id: `0x${string}`) => pkOf[id]! };
    // The server tells alice her weather line had 1 billable call, and commits to (and tells the operator) 4.
    const encryptedLines = handmadeLines([weather, news], keys, {
      copies: [{ provider: { ...weather, billableCalls: 1n, amountMicro: 700n } }, {}],
    });
    const forged: CommittedBatch = { ...committed[0]!, encryptedLines, blockNumber: 20n };
    const a = decryptProviderUsage({ account: alice.address, sk: alice.sk, providers, batches: [forged] });
    expect(a.batches).toEqual([]);
    expect(a.total).toEqual({ calls: 0n, billableCalls: 0n, amountMicro: 0n, revenueMicro: 0n });
    expect(a.copyMismatches).toEqual([
      { server, batchId: forged.batchId, blockNumber: 20n, txHash: forged.txHash, providerId: weather.providerId },
    ]);
    const b = decryptProviderUsage({ account: bob.address, sk: bob.sk, providers, batches: [forged] });
    expect(b.copyMismatches).toEqual([]);
    expect(b.total).toMatchObject({ calls: 1n, billableCalls: 1n });
    // An honest batch has none.
    expect(decryptProviderUsage({ account: alice.address, sk: alice.sk, providers, batches: committed }).copyMismatches).toEqual([]);
  });
});

describe("records files", () => {
  const report = (who: { address: Address; sk: bigint }) =>
    decryptProviderUsage({ account: who.address, sk: who.sk, providers, batches: committed });

  test("a spool: closed batches verify against their roots and lines; the open batch is pending", () => {
    const groups = parseRecordsFile(fullSpool(), "spool.jsonl");
    expect(groups.map((g) => [g.batchId, g.records.length, g.submitted])).toEqual([
      [committed[0]!.batchId, 4, true],
      [committed[1]!.batchId, 2, true],
      [committed[2]!.batchId, 2, true],
      [null, 1, false],
    ]);
    for (const who of [alice, bob]) {
      expect(checkRecords({ report: report(who), batches: committed, groups })).toEqual({
        records: 9,
        verifiedRecords: 8,
        verifiedBatches: 3,
        pendingRecords: 1,
        mismatches: [],
        ok: true,
      });
    }
  });

  test("a tampered, missing or extra record, a batch marked submitted but not committed, each fail with a reason", () => {
    const tampered = parseRecordsFile(fullSpool(), "spool");
    tampered[0]!.records[0] = { ...tampered[0]!.records[0]!, priceMicro: 70n };
    let check = checkRecords({ report: report(alice), batches: committed, groups: tampered });
    expect(check.ok).toBe(false);
    expect(check.mismatches).toEqual([
      { batchId: committed[0]!.batchId, kind: "merkle_root", message: expect.stringContaining("do not hash to the committed Merkle root") },
    ]);

    const short = parseRecordsFile(fullSpool(), "spool");
    short[2]!.records.pop();
    expect(checkRecords({ report: report(bob), batches: committed, groups: short }).mismatches.map((m) => m.kind)).toEqual(["merkle_root"]);

    // Batch 3 closed and marked submitted, but the chain has only the first two.
    check = checkRecords({ report: report(alice), batches: committed.slice(0, 2), groups: parseRecordsFile(fullSpool(), "spool") });
    expect(check.mismatches).toEqual([
      { batchId: committed[2]!.batchId, kind: "not_committed", message: expect.stringContaining("though the spool marks it submitted") },
    ]);
    // Not marked submitted: pending, not a mismatch.
    const unsent = spool([...batch1.map(call), close(1, committed[0]!, 4), ...batch2.map(call), close(2, committed[1]!, 2)]);
    expect(checkRecords({ report: report(alice), batches: [], groups: parseRecordsFile(unsent, "s") })).toMatchObject({
      pendingRecords: 6,
      ok: true,
    });
  });

  test("a provider's own records with batch ids and Merkle proofs, as a JSON array or JSONL", () => {
    const own = [
      ...batch1.filter((r) => r.provider !== "news").map((r) => ({ r, b: committed[0]!, all: batch1 })),
      ...batch3.filter((r) => r.provider === "weather").map((r) => ({ r, b: committed[2]!, all: batch3 })),
    ].map(({ r, b, all }) => ({ ...r, priceMicro: r.priceMicro.toString(), batchId: b.batchId, proof: recordProof(recordsTree(all), r) }));
    const asArray = parseRecordsFile(new TextEncoder().encode(JSON.stringify(own)), "own.json");
    const asLines = parseRecordsFile(new TextEncoder().encode(own.map((o) => JSON.stringify(o)).join("\n")), "own.jsonl");
    expect(asLines).toEqual(asArray);
    expect(checkRecords({ report: report(alice), batches: committed, groups: asArray })).toMatchObject({
      verifiedRecords: 4,
      verifiedBatches: 2,
      ok: true,
    });

    // One of alice's records left out: its line no longer adds up.
    const fewer = parseRecordsFile(new TextEncoder().encode(JSON.stringify(own.slice(1))), "own.json");
    expect(checkRecords({ report: report(alice), batches: committed, groups: fewer }).mismatches).toEqual([
      {
        batchId: committed[0]!.batchId,
        kind: "line",
        message: expect.stringMatching(
          /weather: records give 1 calls, 0 billable, 0 µUSDC billed, 0 µUSDC paid; the committed line says 2 calls, 1 billable, 700 µUSDC billed, 0 µUSDC paid/,
        ),
      },
    ]);
    // A proof for a changed record does not lead to the root.
    const forged = parseRecordsFile(
      new TextEncoder().encode(JSON.stringify([{ ...own[0], responseBytes: 21 }, ...own.slice(1)])),
      "own.json",
    );
    expect(checkRecords({ report: report(alice), batches: committed, groups: forged }).mismatches.map((m) => m.kind)).toEqual([
      "merkle_proof",
    ]);
  });

  test("records without batch ids go to the batch whose period holds them", () => {
    const all = [...batch1, ...batch2].map((r) => ({ ...r, priceMicro: Number(r.priceMicro) }));
    const groups = parseRecordsFile(new TextEncoder().encode(all.map((r) => JSON.stringify(r)).join("\n")), "calls.jsonl");
    expect(checkRecords({ report: report(bob), batches: committed, groups })).toMatchObject({
      verifiedBatches: 2,
      verifiedRecords: 6,
      ok: true,
    });
    const stray = parseRecordsFile(new TextEncoder().encode(JSON.stringify([{ ...all[0], startedAt: 9_000, endedAt: 9_001 }])), "x.json");
    expect(checkRecords({ report: report(alice), batches: committed, groups: stray }).mismatches).toEqual([
      { batchId: null, kind: "no_batch", message: expect.stringContaining("lie in no committed batch's period") },
    ]);
  });

  test("malformed files are refused with the place and the reason", () => {
    const bytes = (s: string) => new TextEncoder().encode(s);
    const cases: [string, RegExp][] = [
      ["", /no records/],
      ["[1,", /not valid JSON/],
      ['{"a":1,"priceMicro":"1"}', /f:1: invalid call record: a is not a call record field/],
      [`${JSON.stringify({ ...batch1[0], priceMicro: "1" })}\nnot json`, /f:2: not JSON/],
      [JSON.stringify([{ ...batch1[0], priceMicro: "-1" }]), /f\[0\]: priceMicro must be a non-negative integer/],
      [JSON.stringify([{ ...batch1[0], priceMicro: "1", batchId: "0x12" }]), /batchId must be a 32-byte hex string/],
      [JSON.stringify([{ ...batch1[0], priceMicro: "1", proof: ["0x12"] }]), /proof must be an array of 32-byte hex strings/],
      ['{"type":"call","period":1,"record":{}}\n{"type":"close"}\n', /call record: bad priceMicro|bad fields/],
    ];
    for (const [text, message] of cases) expect(() => parseRecordsFile(bytes(text), "f"), text).toThrow(message);
    expect(() => parseRecordsFile(bytes(""), "f")).toThrow(RecordsFileError);
  });
});
