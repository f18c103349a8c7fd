import type { Address, Hex } from "viem";
import type { IndexerClient } from "../indexer-client/client.js";
import { type SettlementTerm, settlementSchedule, termAt } from "../revenue/schedule.js";
import type { ProviderId } from "../revenue/types.js";
import { decryptLinesFor } from "../usage/lines.js";
import { getOrCreate } from "../util/map.js";
import { auditorCheck } from "./admission.js";
import { UnattributedPayerTransferError } from "./errors.js";
import { readSettlementFacts, type SettlementFacts } from "./facts.js";
import { boundariesOf, type DecryptedBatch, operatorLedgerState } from "./settlement.js";
import { operatorAmounts } from "./tag.js";

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
 * what each cycle paid. Decrypted lines are kept between reads; a snapshot is reused for
 * `maxAgeMs` so a burst of requests costs one computation.
 */
export class PayoutLedgerView {
  private readonly lines = new Map<string, DecryptedBatch["lines"]>();
  private readonly amounts = new Map<Hex, bigint>();
  private cached: { at: number; snapshot: Promise<LedgerSnapshot> } | null = null;

  constructor(
    private readonly args: {
      indexer: IndexerClient;
      /** Where the indexer's `/status` answers (the API process's own port). */
      status: IndexerClient;
      operatorSk: () => Promise<bigint>;
      payers: readonly Address[];
      /** Checks the settlement record in force at the indexed head (the settings the process was given); a throw fails the read. */
      checkInForce?: (inForce: SettlementTerm) => void;
      maxAgeMs?: number;
    },
  ) {}

  snapshot(): Promise<LedgerSnapshot> {
    const now = Date.now();
    if (this.cached && now - this.cached.at < (this.args.maxAgeMs ?? 1000)) return this.cached.snapshot;
    const snapshot = this.compute();
    this.cached = { at: now, snapshot };
    snapshot.catch(() => (this.cached = null));
    return snapshot;
  }

  private async compute(): Promise<LedgerSnapshot> {
    const sk = await this.args.operatorSk();
    const facts: SettlementFacts = await readSettlementFacts(this.args.indexer, this.args.payers, { status: this.args.status });
    this.args.checkInForce?.(termAt(settlementSchedule(facts.settlementRecords), facts.indexedTimestamp));
    const batches = facts.batches.map((b) => {
      const key = `${b.server}:${b.batchId}`;
      const lines = getOrCreate(this.lines, key, () => decryptLinesFor(b.encryptedLines, sk, "operator", auditorCheck(facts, b)));
      return { ...b, lines };
    });
    const { amounts, unreadable } = operatorAmounts(sk, facts, this.amounts);
    // With a transfer it cannot account for, the ledger cannot say what is pending.
    const unattributed = [...facts.unattributed, ...unreadable];
    if (unattributed.length > 0) throw new UnattributedPayerTransferError(unattributed);
    const state = operatorLedgerState(facts, {
      batches,
      amounts,
      operatorSk: sk,
      through: facts.indexedBlock,
    });
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
    const cycles = boundariesOf(facts.payouts).map(({ cycle, throughBlock }) => {
      const paid = state.payments.get(cycle) ?? new Map();
      let totalMicro = 0n;
      let transfers = 0;
      for (const p of paid.values()) {
        totalMicro += p.amountMicro;
        transfers += p.transfers;
      }
      return { cycle, throughBlock, transfers, totalMicro };
    });
    return { throughBlock: facts.indexedBlock, pendingByAccount, pendingByProvider, cycles };
  }
}
