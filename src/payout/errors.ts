import type { Hex } from "viem";
import { BaseError } from "../errors.js";
import { describeTerm, type SettlementMismatch, type SettlementTerm } from "../revenue/schedule.js";

export abstract class PayoutError extends BaseError {}

/**
 * A payer sent a transfer that the payout ledger cannot account for (no payout tag, no single
 * provider, or an amount the operator's key does not open). Paying on as if it were not there
 * could pay twice, so no cycle runs until someone looks at it.
 */
export class UnattributedPayerTransferError extends PayoutError {
  readonly code = "UNATTRIBUTED_PAYER_TRANSFER";
  constructor(readonly transfers: readonly { txHash: Hex; from: Hex; reason: string }[]) {
    const [first] = transfers;
    super(
      `payer ${first!.from} sent transfer ${first!.txHash}, which is not a payout the ledger can account for (${first!.reason})` +
        `${transfers.length > 1 ? `, and ${transfers.length - 1} more` : ""}: no cycle runs until it is explained ` +
        "(a payer account must only send payouts; move funds with withdraw and deposit)",
    );
  }
}

/** Payouts of one cycle that disagree on the block the cycle settled through. */
export class CycleBoundaryConflictError extends PayoutError {
  readonly code = "CYCLE_BOUNDARY_CONFLICT";
  constructor(
    readonly cycle: number,
    readonly blocks: readonly bigint[],
  ) {
    super(`cycle ${cycle} has payouts settled through different blocks (${blocks.join(", ")})`);
  }
}

/**
 * The payer accounts cannot cover the cycle; nothing was sent. The amounts are fields, not part
 * of the message, which ends up in logs and the status endpoint.
 */
export class PayerUnderfundedError extends PayoutError {
  readonly code = "PAYER_UNDERFUNDED";
  constructor(
    readonly owedMicro: bigint,
    readonly availableMicro: bigint,
  ) {
    super("the payer accounts cannot cover this cycle's transfers: fund them and run the cycle again");
  }
}

/** A transaction that moves the revenue pool's USDC into a payer's encrypted balance reverted: the cycle does not run. */
export class FundingTransactionError extends PayoutError {
  readonly code = "FUNDING_FAILED";
  constructor(
    readonly step: "transfer" | "deposit",
    readonly txHash: Hex,
  ) {
    super(`funding from the revenue pool: a ${step} reverted (${txHash})`);
  }
}

/** A payer transaction is still pending after the wait: the cycle cannot know whether it paid. */
export class PendingPayerTransactionError extends PayoutError {
  readonly code = "PENDING_PAYER_TRANSACTION";
  constructor(
    readonly payer: Hex,
    readonly pending: number,
  ) {
    super(`payer ${payer} still has ${pending} pending transaction(s): wait for them to be mined or dropped, then run the cycle again`);
  }
}

/** The indexer did not reach the chain head in time, so already-paid amounts may be incomplete. */
export class IndexerBehindError extends PayoutError {
  readonly code = "INDEXER_BEHIND";
  constructor(
    readonly indexedBlock: bigint,
    readonly headBlock: bigint,
  ) {
    super(`the indexer is at block ${indexedBlock}, the chain at ${headBlock}: a cycle needs every payout indexed`);
  }
}

/** A cycle is already running; a second one would pay from the same balances. */
export class CycleInProgressError extends PayoutError {
  readonly code = "CYCLE_IN_PROGRESS";
  constructor(readonly cycle: number | null) {
    super(cycle === null ? "a cycle is being planned" : `cycle ${cycle} is in progress`);
  }
}

/**
 * Settlement settings a caller asserted (the auditor's `--fee-bps` or `--pricing-period`) that
 * disagree with the record in force on chain. The chain's record is what every party settles
 * with, so the assertion is dropped, not the record.
 */
export class SettlementMismatchError extends PayoutError {
  readonly code = "SETTLEMENT_MISMATCH";
  constructor(
    readonly mismatches: readonly SettlementMismatch[],
    readonly term: SettlementTerm,
  ) {
    const what = mismatches.map((m) =>
      m.setting === "feeBps"
        ? `--fee-bps ${m.asserted} but the recorded fee is ${m.recorded} bps`
        : `--pricing-period ${m.asserted} but the recorded pricing period is ${m.recorded}`,
    );
    super(
      `${what.join("; ")} (record in force: ${describeTerm(term)}): the settlement settings are read from the ProviderRegistry, ` +
        "drop the flag",
    );
  }
}

/**
 * Facts a settlement projection cannot take on top of what it folded: older than the facts it
 * holds (the chain went back, or the facts changed below its checkpoint), or a cycle recorded
 * below the cycles it settled. It holds nothing the chain does not: drop it and rebuild it from
 * the chain.
 */
export class StaleProjectionError extends PayoutError {
  readonly code = "STALE_PROJECTION";
}

/**
 * The indexer's tables changed under a ledger read: the facts read lack the latest rows the
 * indexer has through the head it reported (it was undoing and indexing again the last blocks,
 * after a reorg or one it believed it saw). Nothing was taken from that read; it was tried again
 * until the tables held still, `attempts` times.
 */
export class IndexerUnsettledError extends PayoutError {
  readonly code = "INDEXER_UNSETTLED";
  constructor(
    readonly head: bigint,
    readonly tables: readonly string[],
    readonly attempts: number,
  ) {
    super(
      `the indexer's ${tables.join(", ")} changed while the payout ledger read them through block ${head} ` +
        `(${attempts} attempts): a reorg being indexed; try again once the indexer's log shows it done`,
    );
  }
}

/**
 * The payers spent more often on chain, through the block a plan was read at, than the indexed
 * facts it was made from show: the facts lack some of their payouts (or withdrawals), so the plan
 * could pay again what was paid. Nothing was sent; the next cycle reads the ledger from the chain.
 */
export class PayerSpendsUnindexedError extends PayoutError {
  readonly code = "PAYER_SPENDS_UNINDEXED";
  constructor(
    readonly block: bigint,
    readonly onChain: bigint,
    readonly indexed: bigint,
  ) {
    super(
      `the payers spent ${onChain} time(s) on chain through block ${block}, the indexed facts show ${indexed}: ` +
        "the indexer does not hold every payout it reports as indexed (a reorg or a restart being indexed again); nothing was sent",
    );
  }
}

/** A ledger checkpoint that cannot be used: not sealed with this operator key, of another format, or damaged. */
export class CheckpointUnreadableError extends PayoutError {
  readonly code = "CHECKPOINT_UNREADABLE";
}
