import { type Address, encodeAbiParameters, getAddress, type Hex, hashStruct, isAddress, keccak256, parseAbiParameters } from "viem";
import { DuplicateRecordError, EmptyBatchError, InvalidBatchError } from "./errors.js";
import { encryptLines, type LineKeys, type UsageLine } from "./lines.js";
import { buildMerkleTree, type MerkleTree, merkleProof } from "./merkle.js";
import { type CallRecord, callRecordLeaf, validateCallRecord, validatedRecordLeaf } from "./record.js";
import { providerIdOf } from "./registry.js";

/** UsageLedger's `UsageBatch` struct as viem reads and writes it. Periods are Unix milliseconds. */
export type UsageBatch = {
  server: Address;
  batchId: Hex;
  periodStart: bigint;
  periodEnd: bigint;
  merkleRoot: Hex;
  encryptedLines: Hex;
};

export type BuiltBatch = {
  batch: UsageBatch;
  /** The plaintext lines, sorted by provider id (never published). */
  lines: UsageLine[];
  tree: MerkleTree;
};

const UINT64_LIMIT = 1n << 64n;

export const USAGE_LEDGER_EIP712 = { name: "BackendShield UsageLedger", version: "1" } as const;

export const USAGE_BATCH_TYPES = {
  CommitUsageBatch: [
    { name: "batch", type: "UsageBatch" },
    { name: "deadline", type: "uint256" },
  ],
  UsageBatch: [
    { name: "server", type: "address" },
    { name: "batchId", type: "bytes32" },
    { name: "periodStart", type: "uint64" },
    { name: "periodEnd", type: "uint64" },
    { name: "merkleRoot", type: "bytes32" },
    { name: "encryptedLines", type: "bytes" },
  ],
} as const;

/** batchId = keccak256(abi.encode(server, sequence)): one id per server and sequence number. */
export function batchIdOf(server: Address, sequence: bigint | number): Hex {
  if (!isAddress(server)) throw new InvalidBatchError("server", "is not an address");
  const seq = typeof sequence === "number" && Number.isSafeInteger(sequence) ? BigInt(sequence) : sequence;
  if (typeof seq !== "bigint" || seq < 0n || seq >= UINT64_LIMIT)
    throw new InvalidBatchError("sequence", "must be an integer in [0, 2^64)");
  return keccak256(encodeAbiParameters(parseAbiParameters("address server, uint64 sequence"), [getAddress(server), seq]));
}

function validateRecords(records: readonly CallRecord[]): CallRecord[] {
  if (records.length === 0) throw new EmptyBatchError();
  const seen = new Set<string>();
  return records.map((record) => {
    const r = validateCallRecord(record);
    if (seen.has(r.eventId)) throw new DuplicateRecordError(r.eventId);
    seen.add(r.eventId);
    return r;
  });
}

/** One line per provider present in the records, sorted by provider id, with what its settled x402 payments brought in. */
export function aggregateLines(records: readonly CallRecord[]): UsageLine[] {
  const byProvider = new Map<Hex, UsageLine>();
  for (const record of validateRecords(records)) {
    const providerId = providerIdOf(record.provider);
    const line = byProvider.get(providerId) ?? { providerId, calls: 0n, billableCalls: 0n, amountMicro: 0n, revenueMicro: 0n };
    line.calls += 1n;
    if (record.billable) {
      line.billableCalls += 1n;
      line.amountMicro += record.priceMicro;
    }
    // A settled payment is a billed call (validateCallRecord): what it paid is the line's revenue.
    if (record.payment?.status === "settled") line.revenueMicro += record.payment.amountMicro;
    byProvider.set(providerId, line);
  }
  return [...byProvider.values()].sort((a, b) => (a.providerId < b.providerId ? -1 : 1));
}

/** Merkle tree over the records' leaves; rejects an empty batch and repeated event ids. */
export function recordsTree(records: readonly CallRecord[]): MerkleTree {
  return buildMerkleTree(validateRecords(records).map(validatedRecordLeaf));
}

export function recordProof(tree: MerkleTree, record: CallRecord): Hex[] {
  return merkleProof(tree, callRecordLeaf(record));
}

/** True when the records are exactly the set committed under `merkleRoot` (in any order). */
export function verifyBatchRecords(records: readonly CallRecord[], merkleRoot: Hex): boolean {
  return recordsTree(records).root === merkleRoot.toLowerCase();
}

/**
 * Closes records into a batch: Merkle root over the records, per-provider lines encrypted to
 * each provider, the operator and the auditor. Every record must lie within
 * [periodStart, periodEnd] (Unix milliseconds).
 */
export function buildBatch(input: {
  server: Address;
  sequence: bigint | number;
  periodStart: number;
  periodEnd: number;
  records: readonly CallRecord[];
  keys: LineKeys;
  minLines?: number;
}): BuiltBatch {
  const batchId = batchIdOf(input.server, input.sequence);
  const { periodStart, periodEnd } = input;
  for (const [field, v] of [
    ["periodStart", periodStart],
    ["periodEnd", periodEnd],
  ] as const) {
    if (!Number.isSafeInteger(v) || v < 0) throw new InvalidBatchError(field, "must be a non-negative integer (Unix ms)");
  }
  if (periodEnd < periodStart) throw new InvalidBatchError("periodEnd", "is before periodStart");
  const records = validateRecords(input.records);
  for (const r of records) {
    if (r.startedAt < periodStart || r.endedAt > periodEnd) {
      throw new InvalidBatchError("records", `call ${r.eventId} lies outside [periodStart, periodEnd]`);
    }
  }
  const tree = recordsTree(records);
  const lines = aggregateLines(records);
  const encryptedLines = encryptLines(lines, input.keys, { minLines: input.minLines });
  return {
    batch: {
      server: getAddress(input.server),
      batchId,
      periodStart: BigInt(periodStart),
      periodEnd: BigInt(periodEnd),
      merkleRoot: tree.root,
      encryptedLines,
    },
    lines,
    tree,
  };
}

/** Typed data the server signs for `commitSigned` (viem `signTypedData` / `verifyTypedData`). */
export function batchTypedData(batch: UsageBatch, deadline: bigint, target: { chainId: number | bigint; ledger: Address }) {
  return {
    domain: { ...USAGE_LEDGER_EIP712, chainId: BigInt(target.chainId), verifyingContract: getAddress(target.ledger) },
    types: USAGE_BATCH_TYPES,
    primaryType: "CommitUsageBatch",
    message: { batch, deadline },
  } as const;
}

/** EIP-712 struct hash of the batch: what UsageLedger stores in `batchHashOf` once committed. */
export function batchHash(batch: UsageBatch): Hex {
  return hashStruct({ data: batch, primaryType: "UsageBatch", types: USAGE_BATCH_TYPES });
}
