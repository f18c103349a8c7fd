import type { Address, Hex } from "viem";
import type { Point } from "../eerc/curve.js";
import type { IndexerClient } from "../indexer-client/client.js";
import type { SettlementRecord } from "../revenue/schedule.js";
import { type DecryptedLine, decryptLinesFor } from "../usage/lines.js";
import { auditorCheck } from "./admission.js";
import { type CheckpointStore, type LedgerCheckpoint, openCheckpoint, sealCheckpoint } from "./checkpoint.js";
import { IndexerUnsettledError, StaleProjectionError } from "./errors.js";
import { factsFingerprint, factsMissing, indexedHead, type ProviderChangeFact, readLatestFacts, readSettlementFacts } from "./facts.js";
import { type AuditorChangeFact, type CycleTotal, type PaidPayout, type SettlementFactsDelta, SettlementProjection } from "./projection.js";
import { type LedgerState, operatorPoolSecret } from "./settlement.js";
import { operatorAmounts, type UnattributedTransfer } from "./tag.js";

/** One read of the ledger: the indexed head and the settlement through any block up to it. */
export type LedgerRead = {
  indexedBlock: bigint;
  /** The timestamp of `indexedBlock` (Unix seconds). */
  indexedTimestamp: bigint;
  settlementRecords: readonly SettlementRecord[];
  providerChanges: readonly ProviderChangeFact[];
  /** Payer transfers that are not payouts this operator can account for: with any, nothing may be paid or served. */
  unattributed: readonly UnattributedTransfer[];
  /** `ledgerState` (settlement.ts) over every indexed fact, settling a new cycle through `through`. */
  state(through: bigint): LedgerState;
  /** What each recorded cycle paid in all, in cycle order. */
  cycleTotals(): CycleTotal[];
  /**
   * What the read took from the indexer: the batches read (and decrypted), whether the projection
   * was rebuilt from the chain, and the block of the checkpoint it was restored from, if it was.
   */
  cost: { batches: number; decrypted: number; rebuilt: boolean; restoredAt: bigint | null };
};

/** What happened to the ledger's checkpoint: for the process's log (blocks and sizes only). */
export type CheckpointEvent =
  | { kind: "restored"; block: bigint; cycle: number | null; tailBatches: number }
  | { kind: "ignored"; reason: string }
  | { kind: "saved"; block: bigint; bytes: number; ms: number }
  | { kind: "failed"; error: unknown };

/** Where and how often a ledger keeps its checkpoint. */
export type LedgerCheckpointing = {
  store: CheckpointStore;
  /** The chain and contracts read (`checkpointScope`): a checkpoint of another is not used. */
  scope: string;
  /** Batches applied since the last save that make a new one (a newly settled cycle always does); 500 by default. */
  everyBatches?: number;
  onEvent?: (event: CheckpointEvent) => void;
};

/**
 * Decrypts a batch's usage lines with the operator's key (`decryptLinesFor`), somewhere else than
 * this thread: the API hands it to a worker thread (`workerDecryptor`).
 */
export type LineDecryptor = (
  encryptedLines: Hex,
  sk: bigint,
  options: { verify: { role: "auditor"; pks: Point[] }[] },
) => Promise<DecryptedLine[]>;

/** How long a read decrypts on this thread before it lets the rest of the process run. */
const YIELD_EVERY_MS = 50;
/** A read the indexer's tables changed under is tried again this often, this far apart (Ponder took 3 s to index four undone blocks again under load). */
const UNSETTLED_ATTEMPTS = 40;
const UNSETTLED_PAUSE_MS = 250;
/** Batches handed to a `LineDecryptor` at a time: enough to keep it busy, few enough to bound the copies in flight. */
const DECRYPT_WINDOW = 64;

/** A read stopped because the indexer reached the checkpoint it waited for: the next read takes it up. */
class CheckpointReached extends Error {}

const batchKey = (b: { server: Address; batchId: Hex }) => `${b.server}:${b.batchId}`;

/**
 * The payout ledger as the operator reads it from the indexer, kept as a `SettlementProjection`:
 * each read takes only the facts indexed since the last one (and those of the unconfirmed blocks,
 * which are read again each time and never kept), decrypts only the new batches with the
 * operator's key, and settles only what follows the last paid cycle. The decrypted lines stay in
 * this process's memory.
 *
 * The projection holds nothing the chain does not: it is rebuilt from the chain when the indexer's
 * head goes back below the facts it holds, when the latest indexed fact at or below them changed
 * (a reorg; `factsFingerprint`), and when facts cannot be applied on top of it
 * (StaleProjectionError). With `checkpoint`, it is saved (sealed with the operator's key) each time
 * a cycle is settled and every `everyBatches` batches, and a process that starts reads on from its
 * checkpoint when the facts through it are still the indexer's; otherwise it starts from genesis.
 */
export class IndexedLedger {
  private projection: SettlementProjection | null = null;
  private fingerprint = "";
  /** The payers whose transfers the projection holds. */
  private payers = "";
  /** Unaccountable payer transfers in the blocks the projection holds. */
  private unattributed: UnattributedTransfer[] = [];
  /** The unconfirmed blocks' batches and payout amounts, read again at each read: decrypted once. */
  private pendingLines = new Map<string, { encryptedLines: Hex; lines: readonly DecryptedLine[] }>();
  private pendingAmounts = new Map<Hex, bigint>();
  private reading: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly args: {
      indexer: IndexerClient;
      /** Where the indexer's `/status` answers, when not at `indexer`. */
      status?: IndexerClient;
      operatorSk: () => Promise<bigint> | bigint;
      /** Blocks below the indexed head whose facts are not kept but read again at every read (0: none). */
      confirmations?: number;
      checkpoint?: LedgerCheckpointing;
      /** Where usage lines are decrypted; unset, on this thread, a slice at a time. */
      decryptLines?: LineDecryptor;
    },
  ) {}

  /** The last checkpoint saved (or restored): its block, the cycles it had settled and the batches applied since. */
  private saved = { block: -1n, cycles: 0, batches: 0 };
  private saving: Promise<void> = Promise.resolve();
  /** The block of a checkpoint the indexer had not reached when it was found: taken up once it has. */
  private awaitingCheckpoint: bigint | null = null;

  private static projectionOptions(sk: bigint) {
    return { poolSecret: (auditors: readonly AuditorChangeFact[]) => operatorPoolSecret(sk, auditors) };
  }

  /** Forgets everything: the next read rebuilds the projection from the chain. */
  reset(): void {
    this.projection = null;
    this.fingerprint = "";
    this.payers = "";
    this.unattributed = [];
    this.pendingLines = new Map();
    this.pendingAmounts = new Map();
    this.saved = { block: -1n, cycles: 0, batches: 0 };
  }

  /**
   * Whether the facts the projection holds are no longer the indexer's, as when blocks were undone
   * and indexed again under an unmoved head: one query, where a read is several. A read that ends
   * meanwhile can make it answer true once more than needed, which costs one read.
   */
  async heldFactsChanged(payers: readonly Address[]): Promise<boolean> {
    const projection = this.projection;
    if (!projection) return false;
    const held = this.fingerprint;
    return (await factsFingerprint(this.args.indexer, payers, projection.appliedBlock)) !== held;
  }

  /** Resolves once the checkpoints saved so far are written (or failed). */
  flushed(): Promise<void> {
    return this.saving;
  }

  /**
   * Reads what was indexed since the last read. `payers` are the payer accounts, present and
   * past, whose transfers are the payouts; another set than the last read's rebuilds the projection.
   */
  read(payers: readonly Address[]): Promise<LedgerRead> {
    // One read at a time: each starts where the one before it stopped.
    const read = this.reading.then(async () => {
      for (let attempt = 1; ; attempt++) {
        try {
          try {
            return await this.readOnce(payers, false);
          } catch (e) {
            if (!(e instanceof StaleProjectionError)) throw e;
            this.reset();
            return await this.readOnce(payers, true);
          }
        } catch (e) {
          if (e instanceof CheckpointReached) continue;
          if (!(e instanceof IndexerUnsettledError) || attempt >= UNSETTLED_ATTEMPTS) throw e;
          await new Promise((r) => setTimeout(r, UNSETTLED_PAUSE_MS));
        }
      }
    });
    this.reading = read.catch(() => undefined);
    return read;
  }

  private async readOnce(payers: readonly Address[], rebuilding: boolean): Promise<LedgerRead> {
    const { indexer } = this.args;
    const sk = await this.args.operatorSk();
    const head = await indexedHead(this.args.status ?? indexer);
    const payerSet = [...new Set(payers.map((p) => p.toLowerCase()))].sort().join(",");
    let rebuilt = rebuilding;
    let restoredAt: bigint | null = null;
    // A checkpoint is tried once the projection is gone, unless it is the one that could not be read on,
    // and again once a backfilling indexer has reached the checkpoint the projection is still below.
    const caughtUp =
      this.awaitingCheckpoint !== null &&
      head.number >= this.awaitingCheckpoint &&
      (this.projection?.appliedBlock ?? -1n) < this.awaitingCheckpoint;
    if ((!this.projection || caughtUp) && !rebuilding && this.args.checkpoint) {
      this.awaitingCheckpoint = null;
      restoredAt = await this.restore(sk, payers, payerSet, head.number);
    }
    // A checkpoint ahead waits for the indexer: once the indexer reaches it, taking it up costs less
    // than decrypting on, so a long read stops there and the next one takes it up.
    const awaited = this.awaitingCheckpoint;
    const stopIfReached = async (decryptedSoFar: number) => {
      if (awaited === null || decryptedSoFar % DECRYPT_WINDOW !== 0) return;
      if ((await indexedHead(this.args.status ?? indexer)).number >= awaited) throw new CheckpointReached();
    };
    // The fingerprint of the facts held, when they are still the indexer's.
    let heldPrint: string | null = null;
    if (this.projection) {
      const held = this.projection.appliedBlock;
      heldPrint = payerSet !== this.payers || head.number < held ? null : await factsFingerprint(indexer, payers, held);
      if (heldPrint !== this.fingerprint) {
        this.reset();
        heldPrint = null;
        rebuilt = true;
      }
    }
    const projection = this.projection ?? new SettlementProjection(IndexedLedger.projectionOptions(sk));
    const after = projection.appliedBlock;
    const kept = head.number - BigInt(this.args.confirmations ?? 0) > after ? head.number - BigInt(this.args.confirmations ?? 0) : after;
    const facts = await readSettlementFacts(indexer, payers, { head, after, knownProviderChanges: projection.providerChanges });
    // What the indexer holds through the head once the facts are read: if they lack its latest rows,
    // the tables changed under the read, and nothing of it is taken.
    const latest = await readLatestFacts(indexer, payers, head.number);
    const missing = factsMissing(facts, latest, after);
    if (missing.length > 0) throw new IndexerUnsettledError(head.number, missing, UNSETTLED_ATTEMPTS);
    const fingerprint =
      kept === head.number
        ? latest.print
        : // Nothing new is final: the facts kept are the ones held, whose fingerprint was just read.
          heldPrint !== null && kept === after
          ? heldPrint
          : await factsFingerprint(indexer, payers, kept);

    const auditors = { auditorChanges: [...projection.auditorChanges, ...facts.auditorChanges] };
    let decrypted = 0;
    const linesOf = (b: (typeof facts.batches)[number]): readonly DecryptedLine[] | Promise<readonly DecryptedLine[]> => {
      const cached = this.pendingLines.get(batchKey(b));
      if (cached?.encryptedLines === b.encryptedLines) return cached.lines;
      decrypted += 1;
      const verify = auditorCheck(auditors, b);
      const decrypt = this.args.decryptLines;
      return decrypt ? decrypt(b.encryptedLines, sk, verify) : decryptLinesFor(b.encryptedLines, sk, "operator", verify);
    };
    const batches: ((typeof facts.batches)[number] & { lines: readonly DecryptedLine[] })[] = [];
    if (this.args.decryptLines) {
      for (let i = 0; i < facts.batches.length; i += DECRYPT_WINDOW) {
        await stopIfReached(i);
        const window = facts.batches.slice(i, i + DECRYPT_WINDOW);
        const lineSets = await Promise.all(window.map(linesOf));
        for (const [j, b] of window.entries()) batches.push({ ...b, lines: lineSets[j]! });
      }
    } else {
      let turn = performance.now();
      for (const b of facts.batches) {
        await stopIfReached(batches.length);
        batches.push({ ...b, lines: await linesOf(b) });
        // Decryption takes tens of milliseconds a batch: on this thread it would otherwise hold the
        // process (in the API, the indexer) for as long as it decrypts.
        if (performance.now() - turn > YIELD_EVERY_MS) {
          await new Promise((r) => setTimeout(r, 0));
          turn = performance.now();
        }
      }
    }
    const { amounts, unreadable } = operatorAmounts(sk, facts, new Map(this.pendingAmounts));
    const unreadableTx = new Set(unreadable.map((t) => t.txHash));
    const payouts: (PaidPayout & { txHash: Hex })[] = facts.payouts
      .filter((p) => !unreadableTx.has(p.txHash))
      .map((p) => ({ ...p, amountMicro: amounts.get(p.txHash)! }));
    const refused = [...facts.unattributed, ...unreadable];

    const final = <T extends { blockNumber: bigint }>(xs: readonly T[]) => xs.filter((x) => x.blockNumber <= kept);
    const recent = <T extends { blockNumber: bigint }>(xs: readonly T[]) => xs.filter((x) => x.blockNumber > kept);
    try {
      projection.apply({
        throughBlock: kept,
        settlementRecords: final(facts.settlementRecords),
        providerChanges: final(facts.providerChanges),
        serverBindings: final(facts.serverBindings),
        auditorChanges: final(facts.auditorChanges),
        batches: final(batches),
        poolFees: final(facts.poolFees),
        payouts: final(payouts),
      });
    } catch (e) {
      // Half applied: start again from the chain next time.
      this.reset();
      throw e;
    }
    this.projection = projection;
    this.fingerprint = fingerprint;
    this.payers = payerSet;
    this.unattributed.push(...final(refused));
    this.checkpointIfDue(projection, sk, final(batches).length);
    const pending: SettlementFactsDelta = {
      throughBlock: head.number,
      settlementRecords: recent(facts.settlementRecords),
      providerChanges: recent(facts.providerChanges),
      serverBindings: recent(facts.serverBindings),
      auditorChanges: recent(facts.auditorChanges),
      batches: recent(batches),
      poolFees: recent(facts.poolFees),
      payouts: recent(payouts),
    };
    this.pendingLines = new Map(pending.batches!.map((b) => [batchKey(b), { encryptedLines: b.encryptedLines, lines: b.lines }]));
    this.pendingAmounts = new Map(recent(payouts).map((p) => [p.txHash, p.amountMicro]));

    const guarded =
      <A extends unknown[], R>(f: (...a: A) => R) =>
      (...a: A): R => {
        try {
          return f(...a);
        } catch (e) {
          // Pending facts this projection cannot take: the next read rebuilds it.
          if (e instanceof StaleProjectionError && this.projection === projection) this.reset();
          throw e;
        }
      };
    return {
      indexedBlock: head.number,
      indexedTimestamp: head.timestamp,
      settlementRecords: [...projection.settlementRecords, ...pending.settlementRecords!],
      providerChanges: [...projection.providerChanges, ...pending.providerChanges!],
      unattributed: [...this.unattributed, ...recent(refused)],
      state: guarded((through: bigint) => projection.ledgerState(through, pending)),
      cycleTotals: guarded(() => projection.cycleTotals(pending)),
      cost: { batches: facts.batches.length, decrypted, rebuilt, restoredAt },
    };
  }

  /** Takes up the saved checkpoint when it fits this read; its block, or null (and the reason is reported). */
  private async restore(sk: bigint, payers: readonly Address[], payerSet: string, head: bigint): Promise<bigint | null> {
    const { store, scope, onEvent } = this.args.checkpoint!;
    let checkpoint: LedgerCheckpoint;
    try {
      const bytes = await store.load();
      if (!bytes) return null;
      checkpoint = openCheckpoint(bytes, sk);
    } catch (e) {
      onEvent?.({ kind: "ignored", reason: e instanceof Error ? e.message : String(e) });
      return null;
    }
    const reason =
      checkpoint.scope !== scope
        ? "it is of another chain or deployment"
        : checkpoint.payers !== payerSet
          ? "it holds another set of payers' transfers"
          : head < checkpoint.block
            ? `the indexer is at block ${head}, below its block ${checkpoint.block}`
            : (await factsFingerprint(this.args.indexer, payers, checkpoint.block)) !== checkpoint.fingerprint
              ? `the indexed facts through its block ${checkpoint.block} are not the ones it holds (a reorg, or another chain)`
              : null;
    if (reason) {
      if (head < checkpoint.block && checkpoint.scope === scope && checkpoint.payers === payerSet) {
        this.awaitingCheckpoint = checkpoint.block;
        onEvent?.({ kind: "ignored", reason: `${reason}; it is taken up once the indexer reaches it` });
      } else onEvent?.({ kind: "ignored", reason });
      return null;
    }
    const projection = SettlementProjection.restore(checkpoint.projection, IndexedLedger.projectionOptions(sk));
    this.projection = projection;
    this.fingerprint = checkpoint.fingerprint;
    this.payers = payerSet;
    this.unattributed = checkpoint.unattributed;
    this.saved = { block: checkpoint.block, cycles: projection.foldedCycleCount, batches: 0 };
    onEvent?.({
      kind: "restored",
      block: checkpoint.block,
      cycle: projection.checkpoint?.cycle ?? null,
      tailBatches: projection.tailBatches,
    });
    return checkpoint.block;
  }

  /** Saves the projection when a cycle was settled or enough batches were applied since the last save. */
  private checkpointIfDue(projection: SettlementProjection, sk: bigint, newBatches: number): void {
    const options = this.args.checkpoint;
    if (!options) return;
    this.saved.batches += newBatches;
    const block = projection.appliedBlock;
    if (this.awaitingCheckpoint !== null) {
      // A checkpoint ahead of this read waits for the indexer to reach it: saving would overwrite it.
      if (block < this.awaitingCheckpoint) return;
      this.awaitingCheckpoint = null;
    }
    const settled = projection.foldedCycleCount > this.saved.cycles;
    if (block <= this.saved.block || (!settled && this.saved.batches < (options.everyBatches ?? 500))) return;
    const started = performance.now();
    // Sealed now, while the projection is as read; written in the background.
    const bytes = sealCheckpoint(
      {
        scope: options.scope,
        payers: this.payers,
        block,
        fingerprint: this.fingerprint,
        projection: projection.export(),
        unattributed: this.unattributed,
      },
      sk,
    );
    this.saved = { block, cycles: projection.foldedCycleCount, batches: 0 };
    this.saving = this.saving
      .then(() => options.store.save(bytes))
      .then(
        () => options.onEvent?.({ kind: "saved", block, bytes: bytes.length, ms: Math.round(performance.now() - started) }),
        (error: unknown) => options.onEvent?.({ kind: "failed", error }),
      )
      .catch(() => {});
  }
}

/** A log line for a checkpoint event: blocks, counts and sizes, never an amount. */
export function describeCheckpointEvent(e: CheckpointEvent, where: string): string {
  switch (e.kind) {
    case "restored":
      return `payout ledger: read on from the checkpoint at block ${e.block} (${where}; ${e.cycle === null ? "no cycle settled" : `cycle ${e.cycle} settled`}, ${e.tailBatches} batch(es) after it)`;
    case "ignored":
      return `payout ledger: the checkpoint ${where} is not used, reading from genesis: ${e.reason}`;
    case "saved":
      return `payout ledger: checkpoint at block ${e.block} saved to ${where} (${e.bytes} bytes, ${e.ms} ms)`;
    case "failed":
      return `payout ledger: the checkpoint could not be saved to ${where}: ${e.error instanceof Error ? e.error.message : String(e.error)}`;
  }
}
