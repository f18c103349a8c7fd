import { getAddress, type Hex } from "viem";
import { describe, expect, it } from "vitest";
import { workerDecryptor } from "../src/api/workers.js";
import { mulBase } from "../src/eerc/curve.js";
import { encryptElGamal } from "../src/eerc/elgamal.js";
import { transferInputs } from "../src/eerc/inputs.js";
import { publicKeyOf } from "../src/eerc/keys.js";
import { egctToWords } from "../src/indexer/calldata.js";
import { IndexerClient } from "../src/indexer-client/client.js";
import { auditorCheck, NO_CAP } from "../src/payout/admission.js";
import { type CheckpointStore, checkpointScope, openCheckpoint, sealCheckpoint } from "../src/payout/checkpoint.js";
import { CheckpointUnreadableError, IndexerUnsettledError } from "../src/payout/errors.js";
import { readSettlementFacts } from "../src/payout/facts.js";
import { type CheckpointEvent, IndexedLedger } from "../src/payout/indexed-ledger.js";
import { PayoutLedgerView } from "../src/payout/ledger-view.js";
import { type LedgerState, operatorLedgerState } from "../src/payout/settlement.js";
import { encodeTag, operatorAmounts, payoutPCTOptions } from "../src/payout/tag.js";
import type { ProviderId } from "../src/revenue/types.js";
import { decryptLinesFor, encryptLines, type UsageLine } from "../src/usage/lines.js";
import { freePool, freeQuotaThenPerCall, type Pricing, PricingModel, perCall } from "../src/usage/pricing.js";
import { providerIdOf } from "../src/usage/registry.js";

// The operator's ledger read through the indexer's GraphQL, kept as a settlement projection: each
// read takes only what was indexed since the last one, decrypts only new batches, rebuilds after a
// reorg, and always answers what a read of the whole history answers. The indexer here is a table
// of rows answering the queries the reader sends (block filters, account filters, latest rows).

const OPERATOR_SK = 123456789n;
const AUDITOR_SK = 987654321n;
const PAYER_SK = 24681357n;
const RECEIVER_SK = 55555n;
const PAYER = getAddress("0x00000000000000000000000000000000000000a1");
const RECEIVER = getAddress("0x00000000000000000000000000000000000000b1");
const SERVER = getAddress("0x00000000000000000000000000000000000000c1");
const [A, B, C] = ["alpha", "beta", "gamma"].map((n) => providerIdOf(n) as ProviderId);
const JAN = Date.UTC(2026, 0, 10);
const KEYS = { operatorPk: mulBase(OPERATOR_SK), auditorPk: mulBase(AUDITOR_SK), providerPk: () => mulBase(RECEIVER_SK) };

type Row = Record<string, unknown> & { blockNumber: string; logIndex: number; txHash: Hex };

const MODEL_NAMES = { [PricingModel.PerCall]: "PerCall", [PricingModel.FreePool]: "FreePool", [PricingModel.Tiered]: "Tiered" } as const;

/** An indexer holding rows per GraphQL field, answering the settlement reader's queries; it counts the batch rows it serves. */
class TableIndexer extends IndexerClient {
  readonly rows = new Map<string, Row[]>();
  head = 0;
  batchRowsServed = 0;
  private tx = 0;

  constructor() {
    super("http://indexer.test/");
  }

  add(field: string, block: number, row: Record<string, unknown>): Row {
    const list = this.rows.get(field) ?? [];
    const full = {
      ...row,
      blockNumber: String(block),
      logIndex: list.length,
      txHash: `0x${(++this.tx).toString(16).padStart(64, "0")}` as Hex,
    };
    list.push(full);
    this.rows.set(field, list);
    this.head = Math.max(this.head, block);
    return full;
  }

  private matching(field: string, where = ""): Row[] {
    const num = (name: string) => new RegExp(`${name}: "(-?\\d+)"`).exec(where)?.[1];
    const list = (name: string) => {
      const m = new RegExp(`${name}: (\\[[^\\]]*\\])`).exec(where);
      return m ? (JSON.parse(m[1]!) as string[]) : undefined;
    };
    const [gt, lte, from, address, account] = [
      num("blockNumber_gt"),
      num("blockNumber_lte"),
      list("from_in"),
      list("address_in"),
      list("account_in"),
    ];
    return (this.rows.get(field) ?? []).filter(
      (r) =>
        (gt === undefined || BigInt(r.blockNumber) > BigInt(gt)) &&
        (lte === undefined || BigInt(r.blockNumber) <= BigInt(lte)) &&
        (from === undefined || from.includes(String(r.from).toLowerCase())) &&
        (address === undefined || address.includes(String(r.address).toLowerCase())) &&
        (account === undefined || account.includes(String(r.account).toLowerCase())),
    );
  }

  override async all<R>(field: string, _selection: string, _orderBy: string, where?: string): Promise<R[]> {
    const rows = this.matching(field, where);
    if (field === "usageCommitments") this.batchRowsServed += rows.length;
    return rows as R[];
  }

  override async query<T>(query: string): Promise<T> {
    const out: Record<string, { items: Row[] }> = {};
    for (const m of query.matchAll(/(\w+)\(where: \{ ([^}]*) \}, orderBy: "blockNumber", orderDirection: "desc", limit: 1\)/g)) {
      const rows = this.matching(m[1]!, m[2]);
      out[m[1]!] = { items: rows.length > 0 ? [rows.reduce((a, b) => (BigInt(b.blockNumber) >= BigInt(a.blockNumber) ? b : a))] : [] };
    }
    return out as T;
  }

  override async indexedHeads(): Promise<Record<string, { number: number; timestamp: number }>> {
    return { anvil: { number: this.head, timestamp: Math.floor(JAN / 1000) + this.head * 12 } };
  }

  /** The chain as of `block`: later rows are gone (a reorg to a shorter chain). */
  rewindTo(block: number): void {
    for (const [field, list] of this.rows)
      this.rows.set(
        field,
        list.filter((r) => Number(r.blockNumber) <= block),
      );
    this.head = block;
  }
}

function world() {
  const indexer = new TableIndexer();
  indexer.add("settlementChanges", 1, { feeBps: 1000, periodUnit: "month", effectiveFrom: "0" });
  indexer.add("auditorChanges", 1, { publicKey: KEYS.auditorPk.map(String) });
  indexer.add("registrations", 1, { address: RECEIVER.toLowerCase(), publicKey: mulBase(RECEIVER_SK).map(String) });
  const register = (providerId: ProviderId, pricing: Pricing) =>
    indexer.add("providerChanges", 2, {
      providerId,
      namespace: providerId,
      payoutAccount: RECEIVER.toLowerCase(),
      active: true,
      pricingModel: MODEL_NAMES[pricing.model],
      pricePerCallMicro: String(pricing.pricePerCallMicro),
      poolWeight: pricing.poolWeight,
      tierUpToCalls: pricing.tiers.map((t) => String(t.upToCalls)),
      tierPriceMicro: pricing.tiers.map((t) => String(t.priceMicro)),
    });
  register(A, perCall(10n));
  register(B, freeQuotaThenPerCall(5, 3n));
  register(C, freePool(2));
  for (const providerId of [A, B, C])
    indexer.add("serverBindings", 2, {
      server: SERVER.toLowerCase(),
      providerId,
      bound: true,
      maxCallsPerBatch: String(NO_CAP),
      maxCallsPerPeriod: String(NO_CAP),
    });
  let batchNo = 0;
  const batch = (block: number, calls: [ProviderId, bigint][]) =>
    indexer.add("usageCommitments", block, {
      server: SERVER.toLowerCase(),
      batchId: `0x${(++batchNo).toString(16).padStart(64, "0")}`,
      periodStart: String(JAN + block * 60_000),
      encryptedLines: encryptLines(
        calls.map(
          ([providerId, billableCalls]): UsageLine => ({
            providerId,
            calls: billableCalls,
            billableCalls,
            amountMicro: 0n,
            revenueMicro: 0n,
          }),
        ),
        KEYS,
      ),
    });
  const fee = (block: number, amount: bigint) =>
    indexer.add("poolFees", block, { amount: String(amount), timestamp: String(Math.floor(JAN / 1000) + block * 12) });
  /** A payout transfer from the payer, with the operator's receiver PCT and the auditor's, as the agent sends it. */
  const pay = (block: number, cycle: number, throughBlock: bigint, providerId: ProviderId, amount: bigint) => {
    const tag = encodeTag({ cycle, throughBlock, providerId });
    const built = transferInputs({
      sk: PAYER_SK,
      value: amount,
      balance: 1_000_000n,
      balanceCT: encryptElGamal(1_000_000n, publicKeyOf(PAYER_SK)).ct,
      receiverPk: mulBase(RECEIVER_SK),
      auditorPk: KEYS.auditorPk,
      pct: payoutPCTOptions(OPERATOR_SK, tag),
    });
    indexer.add("privateTransfers", block, {
      from: PAYER.toLowerCase(),
      to: RECEIVER.toLowerCase(),
      senderVTT: egctToWords(built.senderVTT).map(String),
      receiverPCT: built.receiverPCT.map(String),
      auditorPCT: built.auditorPCT.map(String),
    });
  };
  /** Pays, in `block`, what the cycle the ledger plans next owes (an unfinished one first). */
  const payCycle = (state: LedgerState, block: number) => {
    const plan = state.unfinished ?? state.next!;
    for (const [id, amount] of plan.due) pay(block, plan.cycle, plan.throughBlock, id, amount);
  };
  return { indexer, batch, fee, pay, payCycle };
}

/** What a read of the whole history answers (the reader before the projection). */
async function fromScratch(indexer: IndexerClient, through: bigint): Promise<LedgerState> {
  const facts = await readSettlementFacts(indexer, [PAYER]);
  const batches = facts.batches.map((b) => ({
    ...b,
    lines: decryptLinesFor(b.encryptedLines, OPERATOR_SK, "operator", auditorCheck(facts, b)),
  }));
  const { amounts } = operatorAmounts(OPERATOR_SK, facts);
  return operatorLedgerState(facts, { batches, amounts, operatorSk: OPERATOR_SK, through });
}

describe("the operator's indexed ledger", () => {
  it("reads and decrypts only what was indexed since its last read, and answers what a read of everything answers", async () => {
    const { indexer, batch, fee, pay, payCycle } = world();
    batch(3, [
      [A, 4n],
      [B, 7n],
    ]);
    fee(4, 9_000n);
    batch(5, [[C, 3n]]);
    batch(8, [
      [A, 1n],
      [C, 1n],
    ]);
    const ledger = new IndexedLedger({ indexer, operatorSk: () => OPERATOR_SK });
    const first = await ledger.read([PAYER]);
    expect(first.cost).toEqual({ batches: 3, decrypted: 3, rebuilt: false, restoredAt: null });
    expect(first.state(8n)).toEqual(await fromScratch(indexer, 8n));
    payCycle(first.state(8n), 9);

    batch(10, [
      [A, 2n],
      [B, 2n],
    ]);
    fee(11, 500n);
    const second = await ledger.read([PAYER]);
    expect(second.cost).toEqual({ batches: 1, decrypted: 1, rebuilt: false, restoredAt: null });
    expect(second.state(11n)).toEqual(await fromScratch(indexer, 11n));
    expect(second.state(11n).last).toEqual({ cycle: 1, throughBlock: 8n });
    expect(second.cycleTotals()).toEqual([{ cycle: 1, throughBlock: 8n, transfers: 3, totalMicro: expect.any(BigInt) }]);

    // Cycle 2 pays one of the two providers it owes: the next read finishes it under its own boundary.
    const [[id, amount]] = [...second.state(11n).next!.due];
    pay(12, 2, 11n, id!, amount!);
    const third = await ledger.read([PAYER]);
    expect(third.cost.batches).toBe(0);
    expect(third.state(12n)).toEqual(await fromScratch(indexer, 12n));
    expect(third.state(12n).unfinished?.cycle).toBe(2);
  });

  it("decrypts in a worker thread, as the API does, and answers what decrypting on this thread answers", async () => {
    const { indexer, batch, fee, payCycle } = world();
    // More batches than are handed to the worker at a time, so that their order across windows counts.
    for (let block = 1; block <= 70; block++)
      batch(block, [
        [[A, B, C][block % 3]!, BigInt(block)],
        [[A, B, C][(block + 1) % 3]!, 1n],
      ]);
    fee(71, 50_000n);
    const fallbacks: string[] = [];
    const inWorker = new IndexedLedger({ indexer, operatorSk: () => OPERATOR_SK, decryptLines: workerDecryptor((r) => fallbacks.push(r)) });
    const first = await inWorker.read([PAYER]);
    expect(first.cost).toEqual({ batches: 70, decrypted: 70, rebuilt: false, restoredAt: null });
    expect(first.state(71n)).toEqual(await fromScratch(indexer, 71n));
    payCycle(first.state(71n), 72);
    batch(73, [[B, 5n]]);
    const second = await inWorker.read([PAYER]);
    expect(second.cost.decrypted).toBe(1);
    const onThisThread = await new IndexedLedger({ indexer, operatorSk: () => OPERATOR_SK }).read([PAYER]);
    expect(second.state(73n)).toEqual(onThisThread.state(73n));
    expect(second.state(73n)).toEqual(await fromScratch(indexer, 73n));
    expect(fallbacks).toEqual([]);
  });

  it("keeps nothing of the unconfirmed blocks: read again at every read, decrypted once", async () => {
    const { indexer, batch, fee } = world();
    batch(3, [[A, 4n]]);
    batch(9, [[B, 9n]]);
    fee(10, 700n);
    const ledger = new IndexedLedger({ indexer, operatorSk: () => OPERATOR_SK, confirmations: 3 });
    expect((await ledger.read([PAYER])).cost).toEqual({ batches: 2, decrypted: 2, rebuilt: false, restoredAt: null });
    batch(11, [[C, 1n]]);
    const again = await ledger.read([PAYER]);
    // Block 9 is within 3 blocks of the head again: read again, not decrypted again.
    expect(again.cost).toEqual({ batches: 2, decrypted: 1, rebuilt: false, restoredAt: null });
    expect(again.state(11n)).toEqual(await fromScratch(indexer, 11n));
    expect(again.state(8n)).toEqual(await fromScratch(indexer, 8n));
  });

  it("rebuilds from the chain after a reorg below what it holds, and when the indexer's head goes back", async () => {
    const { indexer, batch, fee, payCycle } = world();
    batch(3, [[A, 4n]]);
    batch(6, [[B, 9n]]);
    fee(7, 1_000n);
    const ledger = new IndexedLedger({ indexer, operatorSk: () => OPERATOR_SK });
    payCycle((await ledger.read([PAYER])).state(7n), 8);
    expect((await ledger.read([PAYER])).cost.rebuilt).toBe(false);

    // Blocks 6 on are replaced by another branch: another batch, no fee, no payout yet.
    indexer.rewindTo(5);
    batch(6, [[A, 2n]]);
    batch(7, [[C, 5n]]);
    batch(9, [[B, 1n]]);
    const reorged = await ledger.read([PAYER]);
    expect(reorged.cost).toEqual({ batches: 4, decrypted: 4, rebuilt: true, restoredAt: null });
    expect(reorged.state(9n)).toEqual(await fromScratch(indexer, 9n));

    indexer.rewindTo(6);
    const back = await ledger.read([PAYER]);
    expect(back.cost.rebuilt).toBe(true);
    expect(back.state(6n)).toEqual(await fromScratch(indexer, 6n));
  });

  it("a read the indexer's tables change under (blocks undone and indexed again) is read again, and never plans a cycle twice", async () => {
    const { indexer, batch, fee, payCycle } = world();
    batch(3, [[A, 4n]]);
    fee(4, 1_000n);
    payCycle((await new IndexedLedger({ indexer, operatorSk: () => OPERATOR_SK }).read([PAYER])).state(4n), 5);
    batch(6, [[B, 9n]]);
    // Ponder undoes blocks 5 and 6 and indexes them again while `/status` still says 6: the first
    // time the payer's transfers and the usage are read, the rows of those blocks are not there yet.
    const undone = new Set(["privateTransfers", "usageCommitments"]);
    const racing = Object.assign(Object.create(indexer) as IndexerClient, {
      all: async (field: string, selection: string, orderBy: string, where?: string) => {
        const rows = await indexer.all<{ blockNumber: string }>(field, selection, orderBy, where);
        if (!undone.delete(field)) return rows;
        return rows.filter((r) => Number(r.blockNumber) < 5);
      },
    });
    const ledger = new IndexedLedger({ indexer: racing, operatorSk: () => OPERATOR_SK });
    const read = await ledger.read([PAYER]);
    expect(undone.size).toBe(0);
    // Cycle 1 is paid (block 5), B's usage of block 6 is owed: what a read of the settled tables answers.
    expect(read.state(6n)).toEqual(await fromScratch(indexer, 6n));
    expect(read.state(6n).unfinished).toBeNull();
    expect(read.cycleTotals().map((c) => c.cycle)).toEqual([1]);

    // Tables that never settle: the read gives up, naming them, and has taken nothing from them.
    const stuck = Object.assign(Object.create(indexer) as IndexerClient, {
      all: async (field: string, selection: string, orderBy: string, where?: string) =>
        (await indexer.all<{ blockNumber: string }>(field, selection, orderBy, where)).filter(
          (r) => field !== "poolFees" || Number(r.blockNumber) < 4,
        ),
    });
    const never = new IndexedLedger({ indexer: stuck, operatorSk: () => OPERATOR_SK }).read([PAYER]);
    await expect(never).rejects.toBeInstanceOf(IndexerUnsettledError);
    await expect(never).rejects.toThrow(/the indexer's poolFees changed while the payout ledger read them through block 6 \(40 attempts\)/);
  }, 30_000);

  it("the API's view replaces a snapshot taken while the rows under the head were not all indexed, though the head did not move", async () => {
    const { indexer, batch, fee, payCycle } = world();
    batch(3, [[A, 4n]]);
    fee(4, 1_000n);
    payCycle((await new IndexedLedger({ indexer, operatorSk: () => OPERATOR_SK }).read([PAYER])).state(4n), 5);
    batch(6, [[B, 9n]]);
    // After a crash recovery `/status` gives head 6 while the tables hold rows through block 4 only:
    // the cycle paid in block 5 and B's usage of block 6 are indexed again a moment later.
    const indexedBefore = new Map([...indexer.rows].map(([field, list]) => [field, [...list]]));
    indexer.rewindTo(4);
    indexer.head = 6;
    const view = new PayoutLedgerView({ indexer, operatorSk: async () => OPERATOR_SK, status: indexer, payers: [PAYER] });
    const early = await view.snapshot();
    expect(early.throughBlock).toBe(6n);
    expect(early.cycles).toEqual([]);

    for (const [field, list] of indexedBefore) indexer.rows.set(field, list);
    // A request finds the head where it was and is answered from the snapshot; the follower reads on.
    expect(await view.snapshot()).toBe(early);
    await view.follow();
    const settled = await view.snapshot();
    expect(settled.cycles.map((c) => c.cycle)).toEqual([1]);
    expect(settled.pendingByProvider.get(B)).toBeGreaterThan(0n);
    // What a view of the settled tables answers.
    expect(settled).toEqual(
      await new PayoutLedgerView({ indexer, status: indexer, operatorSk: async () => OPERATOR_SK, payers: [PAYER] }).snapshot(),
    );
    // With nothing changed, following keeps the snapshot.
    await view.follow();
    expect(await view.snapshot()).toBe(settled);
  });

  it("a payer transfer it cannot account for stays reported after it is read", async () => {
    const { indexer, batch } = world();
    batch(3, [[A, 4n]]);
    indexer.add("privateTransfers", 4, {
      from: PAYER.toLowerCase(),
      to: RECEIVER.toLowerCase(),
      senderVTT: null,
      receiverPCT: null,
      auditorPCT: ["1", "2", "3", "4", "5", "6", "7"],
    });
    const ledger = new IndexedLedger({ indexer, operatorSk: () => OPERATOR_SK });
    expect((await ledger.read([PAYER])).unattributed.map((t) => t.reason)).toEqual(["its auditor PCT nonce is not a payout tag"]);
    batch(5, [[B, 1n]]);
    const later = await ledger.read([PAYER]);
    expect(later.cost.batches).toBe(1);
    expect(later.unattributed).toHaveLength(1);
  });

  it("a process that starts reads on from the checkpoint the last one saved, and decrypts only what came after it", async () => {
    const { indexer, batch, fee, payCycle } = world();
    batch(3, [[A, 4n]]);
    batch(5, [
      [B, 9n],
      [C, 2n],
    ]);
    fee(6, 2_000n);
    const store = memoryStore();
    const events: CheckpointEvent[] = [];
    const ledgerWith = (scope = SCOPE, everyBatches?: number) =>
      new IndexedLedger({
        indexer,
        operatorSk: () => OPERATOR_SK,
        checkpoint: { store, scope, everyBatches, onEvent: (e) => events.push(e) },
      });
    const first = ledgerWith();
    expect((await first.read([PAYER])).cost.restoredAt).toBeNull();
    // Nothing settled and fewer batches than `everyBatches`: nothing saved yet.
    await first.flushed();
    expect(store.saves).toBe(0);
    payCycle((await first.read([PAYER])).state(6n), 7);
    batch(8, [[A, 1n]]);
    await first.read([PAYER]);
    await first.flushed();
    // Cycle 1 was settled: saved through block 8.
    expect(events.filter((e) => e.kind === "saved").map((e) => (e as { block: bigint }).block)).toEqual([8n]);
    expect(store.bytes).not.toBeNull();

    batch(9, [[B, 2n]]);
    batch(10, [[C, 3n]]);
    const restarted = await ledgerWith().read([PAYER]);
    expect(restarted.cost).toEqual({ batches: 2, decrypted: 2, rebuilt: false, restoredAt: 8n });
    expect(restarted.state(10n)).toEqual(await fromScratch(indexer, 10n));
    expect(restarted.cycleTotals()).toEqual([{ cycle: 1, throughBlock: 6n, transfers: 3, totalMicro: expect.any(BigInt) }]);
    expect(events.find((e) => e.kind === "restored")).toEqual({ kind: "restored", block: 8n, cycle: 1, tailBatches: 1 });

    // Another deployment's checkpoint is not used: that process reads from genesis.
    events.length = 0;
    const other = await ledgerWith(checkpointScope(31337, { usageLedger: SERVER })).read([PAYER]);
    expect(other.cost).toEqual({ batches: 5, decrypted: 5, rebuilt: false, restoredAt: null });
    expect(events).toEqual([{ kind: "ignored", reason: "it is of another chain or deployment" }]);
    expect(other.state(10n)).toEqual(await fromScratch(indexer, 10n));

    // Every `everyBatches` batches it saves again, with no cycle settled.
    const often = ledgerWith(SCOPE, 2);
    await often.read([PAYER]);
    batch(11, [[A, 1n]]);
    batch(12, [[A, 1n]]);
    await often.read([PAYER]);
    await often.flushed();
    expect(openCheckpoint(store.bytes!, OPERATOR_SK).block).toBe(12n);
  });

  it("does not use a checkpoint whose facts the indexer no longer has, nor one that was changed or sealed with another key", async () => {
    const { indexer, batch, fee, payCycle } = world();
    batch(3, [[A, 4n]]);
    fee(4, 1_000n);
    const store = memoryStore();
    const events: CheckpointEvent[] = [];
    const ledger = () =>
      new IndexedLedger({ indexer, operatorSk: () => OPERATOR_SK, checkpoint: { store, scope: SCOPE, onEvent: (e) => events.push(e) } });
    const first = ledger();
    payCycle((await first.read([PAYER])).state(4n), 5);
    batch(6, [[B, 3n]]);
    await first.read([PAYER]);
    await first.flushed();
    const saved = store.bytes!;
    expect(openCheckpoint(saved, OPERATOR_SK).block).toBe(6n);

    // A reorg replaced block 6: the checkpoint's facts are not the indexer's any more.
    indexer.rewindTo(5);
    batch(6, [[C, 8n]]);
    const reorged = await ledger().read([PAYER]);
    expect(reorged.cost.restoredAt).toBeNull();
    expect(events.find((e) => e.kind === "ignored")).toEqual({
      kind: "ignored",
      reason: "the indexed facts through its block 6 are not the ones it holds (a reorg, or another chain)",
    });
    expect(reorged.state(6n)).toEqual(await fromScratch(indexer, 6n));

    // An indexer still backfilling below the checkpoint: read from genesis meanwhile, without
    // saving over the checkpoint however often it saves, and the checkpoint taken up once the
    // indexer reaches it.
    let shown = 4;
    const backfilling = Object.assign(Object.create(indexer) as TableIndexer, {
      indexedHeads: async () => ({ anvil: { number: shown, timestamp: Math.floor(JAN / 1000) + shown * 12 } }),
    });
    const meanwhile = new IndexedLedger({
      indexer,
      status: backfilling,
      operatorSk: () => OPERATOR_SK,
      checkpoint: { store, scope: SCOPE, everyBatches: 1, onEvent: (e) => events.push(e) },
    });
    await first.read([PAYER]);
    await first.flushed();
    events.length = 0;
    const early = await meanwhile.read([PAYER]);
    expect(early.cost.restoredAt).toBeNull();
    expect(events).toEqual([
      { kind: "ignored", reason: "the indexer is at block 4, below its block 6; it is taken up once the indexer reaches it" },
    ]);
    expect(early.indexedBlock).toBe(4n);
    expect(early.cost).toEqual({ batches: 1, decrypted: 1, rebuilt: false, restoredAt: null });
    await meanwhile.flushed();
    expect(events.filter((e) => e.kind === "saved")).toEqual([]);
    expect(openCheckpoint(store.bytes!, OPERATOR_SK).block).toBe(6n);
    shown = 6;
    const later = await meanwhile.read([PAYER]);
    expect(later.cost).toEqual({ batches: 0, decrypted: 0, rebuilt: false, restoredAt: 6n });
    expect(later.state(6n)).toEqual(await fromScratch(indexer, 6n));
    // A read from genesis stops once the indexer reaches the checkpoint: taking it up costs less than decrypting on.
    let heads = 0;
    const reaching = Object.assign(Object.create(indexer) as TableIndexer, {
      indexedHeads: async () => {
        const n = heads++ === 0 ? 4 : 6;
        return { anvil: { number: n, timestamp: Math.floor(JAN / 1000) + n * 12 } };
      },
    });
    const ledgerReaching = new IndexedLedger({
      indexer,
      status: reaching,
      operatorSk: () => OPERATOR_SK,
      checkpoint: { store, scope: SCOPE },
    });
    expect((await ledgerReaching.read([PAYER])).cost).toEqual({ batches: 0, decrypted: 0, rebuilt: false, restoredAt: 6n });

    // One byte changed, or another operator key: refused, never read.
    const changed = Uint8Array.from(saved);
    changed[changed.length - 1]! ^= 1;
    expect(() => openCheckpoint(changed, OPERATOR_SK)).toThrow(CheckpointUnreadableError);
    expect(() => openCheckpoint(saved, OPERATOR_SK + 1n)).toThrow(CheckpointUnreadableError);
    expect(() => openCheckpoint(new TextEncoder().encode("{}"), OPERATOR_SK)).toThrow(CheckpointUnreadableError);
    store.bytes = changed;
    events.length = 0;
    expect((await ledger().read([PAYER])).cost.restoredAt).toBeNull();
    expect(events[0]).toEqual({ kind: "ignored", reason: "it was not sealed with this operator key, or it was changed" });
    // What is sealed reads back as it was.
    const checkpoint = openCheckpoint(saved, OPERATOR_SK);
    expect(openCheckpoint(sealCheckpoint(checkpoint, OPERATOR_SK), OPERATOR_SK)).toEqual(checkpoint);
  });
});

const SCOPE = checkpointScope(43113, { usageLedger: SERVER });

/** A checkpoint store in memory, counting its saves. */
function memoryStore(): CheckpointStore & { bytes: Uint8Array | null; saves: number } {
  return {
    where: "memory",
    bytes: null,
    saves: 0,
    async load() {
      return this.bytes;
    },
    async save(bytes) {
      this.bytes = bytes;
      this.saves += 1;
    },
  };
}
