import { type Address, getAbiItem, getAddress, type Hex, isAddressEqual, isHex, type PublicClient } from "viem";
import { ProviderRegistryAbi } from "../../abis/ProviderRegistryAbi.js";
import { UsageLedgerAbi } from "../../abis/UsageLedgerAbi.js";
import { byChainPosition, type ChainPosition } from "../chain/position.js";
import { parseSpool, type SpoolContents } from "../meter/spool.js";
import { type UsageBatch, verifyBatchRecords } from "../usage/batch.js";
import { decryptLinesFor, type UsageLine } from "../usage/lines.js";
import { verifyMerkleProof } from "../usage/merkle.js";
import { type CallRecord, callRecordLeaf, validateCallRecord } from "../usage/record.js";
import { providerIdOf } from "../usage/registry.js";
import { getOrCreate } from "../util/map.js";
import { DEFAULT_BLOCK_RANGE, getLogsChunked, openRpc, type RpcSource } from "./chain.js";
import { HistoryError } from "./errors.js";

/**
 * A provider's check of its metered usage: the usage batches committed on the UsageLedger, its
 * own lines decrypted with its eERC key, and, given the call records, a check that they are what
 * was committed (Merkle root) and add up to its lines.
 */

/** One `UsageCommitted` event: a batch as the chain holds it. */
export type CommittedBatch = UsageBatch & ChainPosition & { txHash: Hex };

/** A ProviderRegistry entry as its events left it. */
export type ProviderRef = { providerId: Hex; namespace: string; payoutAccount: Address; active: boolean };

/** Calls, billable calls, the amount billed at the provider's price, and what the calls paid through x402. */
export type UsageTotals = { calls: bigint; billableCalls: bigint; amountMicro: bigint; revenueMicro: bigint };

/** A decrypted line, labelled with its namespace (null when no registration names its provider id). */
export type ProviderUsageLine = UsageLine & { namespace: string | null };

export type ProviderUsageBatch = Omit<CommittedBatch, "encryptedLines"> & { lines: ProviderUsageLine[] };

export type ProviderUsageReport = {
  account: Address;
  /** Registered namespaces whose payout account is `account`. */
  namespaces: ProviderRef[];
  batchesScanned: number;
  /** The batches holding at least one line this key decrypts, in chain order. */
  batches: ProviderUsageBatch[];
  byProvider: (UsageTotals & { providerId: Hex; namespace: string | null })[];
  total: UsageTotals;
  /**
   * Lines whose provider copy disagrees with the line's public commitment (format version 3): the
   * server sent this account something other than what it committed to, so the operator and the
   * auditor read a different line. They are left out of `batches` and the totals.
   */
  copyMismatches: { server: Address; batchId: Hex; blockNumber: bigint; txHash: Hex; providerId: Hex }[];
};

export class RecordsFileError extends HistoryError {
  readonly code = "RECORDS_FILE_INVALID";
}

const usageCommittedEvent = getAbiItem({ abi: UsageLedgerAbi, name: "UsageCommitted" });
const registeredEvent = getAbiItem({ abi: ProviderRegistryAbi, name: "ProviderRegistered" });
const payoutChangedEvent = getAbiItem({ abi: ProviderRegistryAbi, name: "ProviderPayoutAccountChanged" });
const activeChangedEvent = getAbiItem({ abi: ProviderRegistryAbi, name: "ProviderActiveChanged" });

const clientOf = async (source: RpcSource): Promise<PublicClient> => source.publicClient ?? (await openRpc(source.rpcUrl));

/** Every `UsageCommitted` log of the ledger since `fromBlock`, in chain order. */
export async function usageBatchesFromChain(
  args: RpcSource & { usageLedger: Address; fromBlock: bigint; toBlock?: bigint; blockRange?: bigint },
): Promise<CommittedBatch[]> {
  const publicClient = await clientOf(args);
  const toBlock = args.toBlock ?? (await publicClient.getBlockNumber());
  const logs = await getLogsChunked(args.fromBlock, toBlock, args.blockRange ?? DEFAULT_BLOCK_RANGE, (from, to) =>
    publicClient.getLogs({ address: args.usageLedger, event: usageCommittedEvent, fromBlock: from, toBlock: to, strict: true }),
  );
  return logs
    .map((log) => ({
      server: getAddress(log.args.server),
      batchId: log.args.batchId,
      periodStart: log.args.periodStart,
      periodEnd: log.args.periodEnd,
      merkleRoot: log.args.merkleRoot,
      encryptedLines: log.args.encryptedLines,
      blockNumber: log.blockNumber,
      logIndex: log.logIndex,
      txHash: log.transactionHash,
    }))
    .sort(byChainPosition);
}

/** The registry's entries replayed from its events since `fromBlock` (registration, payout account, active flag). */
export async function providersFromChain(
  args: RpcSource & { providerRegistry: Address; fromBlock: bigint; toBlock?: bigint; blockRange?: bigint },
): Promise<ProviderRef[]> {
  const publicClient = await clientOf(args);
  const toBlock = args.toBlock ?? (await publicClient.getBlockNumber());
  const logs = await getLogsChunked(args.fromBlock, toBlock, args.blockRange ?? DEFAULT_BLOCK_RANGE, (from, to) =>
    publicClient.getLogs({
      address: args.providerRegistry,
      events: [registeredEvent, payoutChangedEvent, activeChangedEvent],
      fromBlock: from,
      toBlock: to,
      strict: true,
    }),
  );
  logs.sort(byChainPosition);
  const providers = new Map<Hex, ProviderRef>();
  for (const log of logs) {
    const id = log.args.providerId.toLowerCase() as Hex;
    if (log.eventName === "ProviderRegistered") {
      providers.set(id, { providerId: id, namespace: log.args.namespace, payoutAccount: getAddress(log.args.payoutAccount), active: true });
      continue;
    }
    const p = providers.get(id);
    if (!p) continue;
    if (log.eventName === "ProviderPayoutAccountChanged") p.payoutAccount = getAddress(log.args.newPayoutAccount);
    else p.active = log.args.active;
  }
  return [...providers.values()];
}

const zero = (): UsageTotals => ({ calls: 0n, billableCalls: 0n, amountMicro: 0n, revenueMicro: 0n });
const add = (t: UsageTotals, l: UsageTotals) => {
  t.calls += l.calls;
  t.billableCalls += l.billableCalls;
  t.amountMicro += l.amountMicro;
  t.revenueMicro += l.revenueMicro;
};

/**
 * Decrypts the provider copy of every line of every batch with `sk`: the lines that authenticate
 * are this account's (one per namespace paying out to it when the batch was built); any other
 * key reads nothing.
 */
export function decryptProviderUsage(args: {
  account: Address;
  sk: bigint;
  providers: readonly ProviderRef[];
  batches: readonly CommittedBatch[];
}): ProviderUsageReport {
  const account = getAddress(args.account);
  const names = new Map(args.providers.map((p) => [p.providerId.toLowerCase(), p.namespace]));
  const batches: ProviderUsageBatch[] = [];
  const byProvider = new Map<string, UsageTotals & { providerId: Hex; namespace: string | null }>();
  const total = zero();
  const copyMismatches: ProviderUsageReport["copyMismatches"] = [];
  for (const b of args.batches) {
    const lines = [];
    for (const { copyMismatch, ...l } of decryptLinesFor(b.encryptedLines, args.sk, "provider")) {
      if (copyMismatch) {
        copyMismatches.push({
          server: b.server,
          batchId: b.batchId,
          blockNumber: b.blockNumber,
          txHash: b.txHash,
          providerId: l.providerId,
        });
        continue;
      }
      lines.push({ ...l, namespace: names.get(l.providerId.toLowerCase()) ?? null });
    }
    if (lines.length === 0) continue;
    const { encryptedLines: _lines, ...rest } = b;
    batches.push({ ...rest, lines });
    for (const l of lines) {
      const key = l.providerId.toLowerCase();
      const t = getOrCreate(byProvider, key, () => ({ providerId: l.providerId, namespace: l.namespace, ...zero() }));
      add(t, l);
      add(total, l);
    }
  }
  return {
    account,
    namespaces: args.providers.filter((p) => isAddressEqual(p.payoutAccount, account)),
    batchesScanned: args.batches.length,
    batches,
    byProvider: [...byProvider.values()].sort((a, b) => ((a.namespace ?? a.providerId) < (b.namespace ?? b.providerId) ? -1 : 1)),
    total,
    copyMismatches,
  };
}

// ---------------------------------------------------------------------------------------------
// Call records

/**
 * Call records grouped by the batch they claim to belong to. From a spool: one group per `close`
 * line (the whole batch), and the records after the last close (`batchId` null, not yet in a
 * batch). From a list: by each record's `batchId`, records without one in a group of their own.
 */
export type RecordGroup = {
  batchId: Hex | null;
  source: "spool" | "list";
  /** Spool: the batch has a `submitted` line (it should be on chain). */
  submitted: boolean;
  records: CallRecord[];
  /** eventId → Merkle proof, when the list gave one for every record of the group. */
  proofs: Map<string, Hex[]> | null;
};

const isBytes32 = (v: unknown): v is Hex => typeof v === "string" && isHex(v, { strict: true }) && v.length === 66;

function recordFrom(value: unknown, where: string): { record: CallRecord; batchId?: Hex; proof?: Hex[] } {
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw new RecordsFileError(`${where}: not a call record object`);
  const { batchId, proof, priceMicro, ...fields } = value as Record<string, unknown>;
  let price: bigint;
  if (typeof priceMicro === "string" && /^(0|[1-9]\d*)$/.test(priceMicro)) price = BigInt(priceMicro);
  else if (typeof priceMicro === "number" && Number.isSafeInteger(priceMicro) && priceMicro >= 0) price = BigInt(priceMicro);
  else throw new RecordsFileError(`${where}: priceMicro must be a non-negative integer (a decimal string or a number)`);
  let record: CallRecord;
  try {
    record = validateCallRecord({ ...fields, priceMicro: price });
  } catch (e) {
    throw new RecordsFileError(`${where}: ${(e as Error).message}`);
  }
  if (batchId !== undefined && !isBytes32(batchId)) throw new RecordsFileError(`${where}: batchId must be a 32-byte hex string`);
  if (proof !== undefined && !(Array.isArray(proof) && proof.every(isBytes32)))
    throw new RecordsFileError(`${where}: proof must be an array of 32-byte hex strings`);
  return { record, batchId: batchId?.toLowerCase() as Hex | undefined, proof: proof as Hex[] | undefined };
}

function groupsFromList(entries: { record: CallRecord; batchId?: Hex; proof?: Hex[] }[]): RecordGroup[] {
  const groups = new Map<string, { batchId: Hex | null; entries: typeof entries }>();
  for (const e of entries) {
    const key = e.batchId ?? "";
    const g = getOrCreate(groups, key, () => ({ batchId: e.batchId ?? null, entries: [] as (typeof e)[] }));
    g.entries.push(e);
  }
  return [...groups.values()].map((g) => ({
    batchId: g.batchId,
    source: "list",
    submitted: false,
    records: g.entries.map((e) => e.record),
    proofs: g.batchId && g.entries.every((e) => e.proof) ? new Map(g.entries.map((e) => [e.record.eventId, e.proof!])) : null,
  }));
}

/**
 * Reads call records: a meter's spool (JSONL of `call`, `close` and `submitted` lines), JSONL of
 * call records, or a JSON array of them. A listed record may carry `batchId` and a Merkle `proof`;
 * `priceMicro` is a decimal string (or a safe integer).
 */
export function parseRecordsFile(bytes: Uint8Array, path = "records"): RecordGroup[] {
  const text = Buffer.from(bytes).toString("utf8");
  const trimmed = text.trimStart();
  if (trimmed.length === 0) throw new RecordsFileError(`${path}: no records`);
  if (trimmed.startsWith("[")) {
    let list: unknown;
    try {
      list = JSON.parse(text);
    } catch (e) {
      throw new RecordsFileError(`${path}: not valid JSON (${(e as Error).message})`);
    }
    if (!Array.isArray(list)) throw new RecordsFileError(`${path}: expected a JSON array of call records`);
    return groupsFromList(list.map((v, i) => recordFrom(v, `${path}[${i}]`)));
  }
  const lines = text.split("\n");
  const first = lines.find((l) => l.trim() !== "")!;
  let firstJson: unknown;
  try {
    firstJson = JSON.parse(first);
  } catch {
    throw new RecordsFileError(`${path}:1: not JSON`);
  }
  if (typeof firstJson === "object" && firstJson !== null && "type" in firstJson) return groupsFromSpool(bytes, path);
  const entries: { record: CallRecord; batchId?: Hex; proof?: Hex[] }[] = [];
  lines.forEach((line, i) => {
    if (line.trim() === "") return;
    let json: unknown;
    try {
      json = JSON.parse(line);
    } catch {
      throw new RecordsFileError(`${path}:${i + 1}: not JSON`);
    }
    entries.push(recordFrom(json, `${path}:${i + 1}`));
  });
  return groupsFromList(entries);
}

function groupsFromSpool(bytes: Uint8Array, path: string): RecordGroup[] {
  let contents: SpoolContents;
  try {
    contents = parseSpool(bytes, path);
  } catch (e) {
    throw new RecordsFileError((e as Error).message);
  }
  const groups: RecordGroup[] = [];
  const bySequence = new Map<number, RecordGroup>();
  let since: CallRecord[] = [];
  for (const line of contents.lines) {
    if (line.type === "call") since.push(line.record);
    else if (line.type === "close") {
      if (line.count !== since.length || !isBytes32(line.batchId))
        throw new RecordsFileError(`${path}: close line of batch ${line.sequence} does not match its records`);
      const g: RecordGroup = {
        batchId: line.batchId.toLowerCase() as Hex,
        source: "spool",
        submitted: false,
        records: since,
        proofs: null,
      };
      groups.push(g);
      bySequence.set(line.sequence, g);
      since = [];
    } else if (line.type === "submitted") {
      const g = bySequence.get(line.sequence);
      if (g) g.submitted = true;
    }
  }
  if (since.length > 0) groups.push({ batchId: null, source: "spool", submitted: false, records: since, proofs: null });
  return groups;
}

export type RecordsMismatch = {
  batchId: Hex | null;
  kind: "merkle_root" | "merkle_proof" | "line" | "not_committed" | "no_batch";
  message: string;
};

export type RecordsCheck = {
  records: number;
  /** Records checked against a committed batch (its root, or their proofs). */
  verifiedRecords: number;
  verifiedBatches: number;
  /** Records not in a batch on chain yet: the spool's open batch, or closed batches not yet submitted. */
  pendingRecords: number;
  mismatches: RecordsMismatch[];
  ok: boolean;
};

const fmtTotals = (t: UsageTotals) =>
  `${t.calls} calls, ${t.billableCalls} billable, ${t.amountMicro} µUSDC billed, ${t.revenueMicro} µUSDC paid`;

function aggregate(records: readonly CallRecord[], providerId: string): UsageTotals {
  const t = zero();
  for (const r of records) {
    if (providerIdOf(r.provider).toLowerCase() !== providerId) continue;
    t.calls += 1n;
    if (r.billable) {
      t.billableCalls += 1n;
      t.amountMicro += r.priceMicro;
    }
    if (r.payment?.status === "settled") t.revenueMicro += r.payment.amountMicro;
  }
  return t;
}

/**
 * Records listed without a batchId go to the one committed batch whose period holds them; a
 * record that no period, or several, hold cannot be placed.
 */
function placeByPeriod(group: RecordGroup, batches: readonly CommittedBatch[]): { placed: RecordGroup[]; unplaced: CallRecord[][] } {
  const byBatch = new Map<string, CallRecord[]>();
  const none: CallRecord[] = [];
  const several: CallRecord[] = [];
  for (const r of group.records) {
    const fits = batches.filter((b) => BigInt(r.startedAt) >= b.periodStart && BigInt(r.endedAt) <= b.periodEnd);
    if (fits.length === 1) {
      const id = fits[0].batchId.toLowerCase();
      byBatch.set(id, [...(byBatch.get(id) ?? []), r]);
    } else (fits.length === 0 ? none : several).push(r);
  }
  return {
    placed: [...byBatch].map(([batchId, records]) => ({
      batchId: batchId as Hex,
      source: "list",
      submitted: false,
      records,
      proofs: null,
    })),
    unplaced: [none, several],
  };
}

/**
 * Checks call records against the chain: each group's records hash to the Merkle root its batch
 * committed (or each record's proof verifies against it), and for each of this account's
 * providers the records add up to the line it decrypted (calls, billable calls, amount). A spool's
 * open batch and unsubmitted batches are pending, not mismatches.
 */
export function checkRecords(args: {
  report: ProviderUsageReport;
  batches: readonly CommittedBatch[];
  groups: readonly RecordGroup[];
}): RecordsCheck {
  const committed = new Map(args.batches.map((b) => [b.batchId.toLowerCase(), b]));
  const reported = new Map(args.report.batches.map((b) => [b.batchId.toLowerCase(), b]));
  const ownIds = new Set(args.report.namespaces.map((p) => p.providerId.toLowerCase()));
  const nameOf = (id: string) =>
    args.report.namespaces.find((p) => p.providerId.toLowerCase() === id)?.namespace ??
    args.report.byProvider.find((p) => p.providerId.toLowerCase() === id)?.namespace ??
    id;
  const mismatches: RecordsMismatch[] = [];
  let records = 0;
  let verifiedRecords = 0;
  let verifiedBatches = 0;
  let pendingRecords = 0;

  const groups: RecordGroup[] = [];
  for (const group of args.groups) {
    records += group.records.length;
    if (group.batchId !== null || group.source === "spool") {
      groups.push(group);
      continue;
    }
    const { placed, unplaced } = placeByPeriod(group, args.batches);
    groups.push(...placed);
    const [none, several] = unplaced;
    if (none.length > 0) {
      mismatches.push({
        batchId: null,
        kind: "no_batch",
        message: `${none.length} record(s) without a batchId lie in no committed batch's period (first: ${none[0].eventId})`,
      });
    }
    if (several.length > 0) {
      mismatches.push({
        batchId: null,
        kind: "no_batch",
        message:
          `${several.length} record(s) without a batchId lie in the periods of several committed batches ` +
          `(first: ${several[0].eventId}); give each record its batchId`,
      });
    }
  }

  for (const group of groups) {
    const batch = group.batchId ? committed.get(group.batchId) : undefined;
    if (!batch) {
      if (group.source === "spool" && !group.submitted) {
        pendingRecords += group.records.length;
        continue;
      }
      mismatches.push({
        batchId: group.batchId,
        kind: "not_committed",
        message:
          `batch ${group.batchId} (${group.records.length} records) is not committed on the UsageLedger` +
          (group.submitted ? ", though the spool marks it submitted" : ""),
      });
      continue;
    }
    const id = batch.batchId;
    if (group.proofs) {
      let bad = 0;
      for (const r of group.records) {
        if (!verifyMerkleProof(callRecordLeaf(r), group.proofs.get(r.eventId)!, batch.merkleRoot)) {
          bad++;
          mismatches.push({
            batchId: id,
            kind: "merkle_proof",
            message: `record ${r.eventId}: its Merkle proof does not lead to the root committed in batch ${id}`,
          });
        }
      }
      if (bad > 0) continue;
    } else {
      let ok = false;
      try {
        ok = verifyBatchRecords(group.records, batch.merkleRoot);
      } catch (e) {
        mismatches.push({ batchId: id, kind: "merkle_root", message: `batch ${id}: ${(e as Error).message}` });
        continue;
      }
      if (!ok) {
        mismatches.push({
          batchId: id,
          kind: "merkle_root",
          message: `batch ${id}: the ${group.records.length} records do not hash to the committed Merkle root ${batch.merkleRoot}`,
        });
        continue;
      }
    }
    verifiedRecords += group.records.length;
    verifiedBatches++;
    const lines = reported.get(id.toLowerCase())?.lines ?? [];
    const ids = new Set([...ownIds, ...lines.map((l) => l.providerId.toLowerCase())]);
    for (const pid of ids) {
      const fromRecords = aggregate(group.records, pid);
      const line = lines.find((l) => l.providerId.toLowerCase() === pid);
      if (!line && fromRecords.calls === 0n) continue;
      const fromLine = line ?? zero();
      if (
        fromLine.calls !== fromRecords.calls ||
        fromLine.billableCalls !== fromRecords.billableCalls ||
        fromLine.amountMicro !== fromRecords.amountMicro ||
        fromLine.revenueMicro !== fromRecords.revenueMicro
      ) {
        mismatches.push({
          batchId: id,
          kind: "line",
          message: `batch ${id}, ${nameOf(pid)}: records give ${fmtTotals(fromRecords)}; the committed line ${line ? `says ${fmtTotals(fromLine)}` : "is missing"}`,
        });
      }
    }
  }
  return { records, verifiedRecords, verifiedBatches, pendingRecords, mismatches, ok: mismatches.length === 0 };
}
