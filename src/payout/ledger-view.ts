import type { Address } from "viem";
import type { IndexerClient } from "../indexer-client/client.js";
import { type SettlementTerm, settlementSchedule, termAt } from "../revenue/schedule.js";
import type { ProviderId } from "../revenue/types.js";
import { UnattributedPayerTransferError } from "./errors.js";
import { indexedHead } from "./facts.js";
import { IndexedLedger, type LedgerCheckpointing, type LineDecryptor } from "./indexed-ledger.js";

export type LedgerSnapshot = {
  /** The latest block of the facts read. */
  throughBlock: bigint;
  /** Owed and not yet paid, per payout account (every provider paying out to it). */
  pendingByAccount: Map<Address, bigint>;
  pendingByProvider: Map<ProviderId, bigint>;
  /** What each recorded cycle paid in all, with its boundary. */
  cycles: { cycle: number; throughBlock: bigint; transfers: number; totalMicro: bigint }[];
};

/**
 * The operator's read of the payout ledger for the query API: what is pending per account and
 * what each cycle paid. The settlement is kept between reads (`IndexedLedger`), so a read costs
 * the facts indexed since the last read; a snapshot is reused until the indexer's head moves past
 * the head it was computed at (or `follow` finds the facts under that head changed), so every
 * answer covers what was indexed when it was asked and a burst of requests costs one computation.
 */
export class PayoutLedgerView {
  /** The settlement kept between reads: a read costs what was indexed since the last one. */
  private readonly ledger: IndexedLedger;
  private cached: { head: bigint; snapshot: Promise<LedgerSnapshot> } | null = null;

  constructor(
    private readonly args: {
      indexer: IndexerClient;
      /** Where the indexer's `/status` answers (the API process's own port). */
      status: IndexerClient;
      operatorSk: () => Promise<bigint>;
      /** Checks that the key is the one the UsageLedger's operator registered; a throw fails the read. */
      checkOperator?: () => Promise<void>;
      payers: readonly Address[];
      /** Checks the settlement record in force at the indexed head (the settings the process was given); a throw fails the read. */
      checkInForce?: (inForce: SettlementTerm) => void;
      /** Where the ledger read so far is kept across restarts; unset, a start reads from genesis. */
      checkpoint?: LedgerCheckpointing;
      /** Where usage lines are decrypted (the API: a worker thread); unset, on this thread. */
      decryptLines?: LineDecryptor;
      /** Checks that the indexer has caught up since it started (`catchUpGate`); a throw fails the read. */
      checkIndexed?: () => Promise<void>;
    },
  ) {
    this.ledger = new IndexedLedger({
      indexer: args.indexer,
      status: args.status,
      operatorSk: args.operatorSk,
      checkpoint: args.checkpoint,
      decryptLines: args.decryptLines,
    });
  }

  async snapshot(): Promise<LedgerSnapshot> {
    const head = (await indexedHead(this.args.status)).number;
    if (this.cached && this.cached.head >= head) return this.cached.snapshot;
    const entry = { head, snapshot: this.compute(false) as Promise<LedgerSnapshot> };
    this.cached = entry;
    entry.snapshot.catch(() => {
      if (this.cached === entry) this.cached = null;
    });
    return entry.snapshot;
  }

  /**
   * Reads the ledger on, also when the head has not moved. Blocks Ponder undoes and indexes again
   * (a reorg it believed it saw, a restart) can leave a snapshot taken meanwhile without their rows,
   * under a head that does not move when they come back. Once they are back, the facts the ledger
   * holds are no longer the indexer's (one query tells): it is read again, rebuilds, and the
   * snapshot is replaced.
   */
  async follow(): Promise<void> {
    const head = (await indexedHead(this.args.status)).number;
    const cached = this.cached;
    if (!cached || cached.head < head) {
      await this.snapshot();
      return;
    }
    await cached.snapshot;
    if (!(await this.ledger.heldFactsChanged(this.args.payers))) return;
    const rebuilt = await this.compute(true);
    if (rebuilt && this.cached === cached) this.cached = { head: rebuilt.throughBlock, snapshot: Promise.resolve(rebuilt) };
  }

  /** The snapshot of a read of the ledger; with `onlyIfRebuilt`, null unless the read rebuilt the ledger. */
  private async compute(onlyIfRebuilt: boolean): Promise<LedgerSnapshot | null> {
    await this.args.checkOperator?.();
    await this.args.checkIndexed?.();
    const facts = await this.ledger.read(this.args.payers);
    if (onlyIfRebuilt && !facts.cost.rebuilt) return null;
    this.args.checkInForce?.(termAt(settlementSchedule(facts.settlementRecords), facts.indexedTimestamp));
    // With a transfer it cannot account for, the ledger cannot say what is pending.
    if (facts.unattributed.length > 0) throw new UnattributedPayerTransferError(facts.unattributed);
    const state = facts.state(facts.indexedBlock);
    // An unsettled cycle's free-pool share is not pending yet: served block by block, it would show
    // how the others' usage moves. It becomes pending (and paid) once its cycle has a boundary.
    const pendingByProvider = new Map<ProviderId, bigint>();
    const through = state.next ?? state.unfinished;
    for (const [id, v] of through?.due ?? []) {
      const rest = v - (state.next ? (state.next.poolShares.get(id) ?? 0n) : 0n);
      if (rest > 0n) pendingByProvider.set(id, rest);
    }
    const account = new Map<ProviderId, Address>();
    for (const c of facts.providerChanges) account.set(c.providerId, c.payoutAccount);
    const pendingByAccount = new Map<Address, bigint>();
    for (const [id, v] of pendingByProvider) {
      const a = account.get(id);
      if (a) pendingByAccount.set(a, (pendingByAccount.get(a) ?? 0n) + v);
    }
    const cycles = facts.cycleTotals();
    return { throughBlock: facts.indexedBlock, pendingByAccount, pendingByProvider, cycles };
  }
}
