import type { Address, Hex, TransactionReceipt } from "viem";
import { decryptBalance } from "../eerc/balance.js";
import type { EercClient, PreparedTransfer } from "../eerc/client.js";
import type { EGCT } from "../eerc/elgamal.js";
import type { TransferPCTOptions } from "../eerc/inputs.js";
import type { ProviderId } from "../revenue/types.js";
import type { PlanFaultStep } from "./coordination.js";
import { PayoutError } from "./errors.js";
import type { FundingFaultStep } from "./funding.js";
import { classifyRevert, minedRevertReason, type RevertReason, revertDataOf } from "./reverts.js";

/** One payout: a provider, the account it is paid to, the amount and the PCT choices that tag the transfer. */
export type PlannedTransfer = { seq: number; providerId: ProviderId; to: Address; amount: bigint; pct: TransferPCTOptions };

export type SentTransfer = PlannedTransfer & { payer: Address; txHash: Hex; blockNumber: bigint; proveMs: number };

/**
 * The steps of one transfer, in order. The agent can be told to SIGKILL itself at one of them
 * (`PAYOUT_FAULT=<step>@<n>`, n counting transfers from 1) so crash recovery is tested on the
 * real process: before_prove, after_prove, after_send (broadcast, not yet mined),
 * before_receipt (mined, receipt not yet read), after_receipt.
 */
export const FAULT_STEPS = ["before_prove", "after_prove", "after_send", "before_receipt", "after_receipt"] as const;
export type FaultStep = (typeof FAULT_STEPS)[number];

/**
 * Where to stop the process (test builds of a crash): the step of the transfer with sequence
 * number `seq`, of the `seq`-th pool transfer or deposit of the funding (`funding.ts`), or of
 * the `seq`-th plan of an agent among several (`coordination.ts`).
 */
export type FaultPoint = { step: FaultStep | FundingFaultStep | PlanFaultStep; seq: number; stop: () => void };

export type PipelineHooks = {
  proved?: (t: PlannedTransfer, ms: number) => void;
  /** Right before a transfer is broadcast; a throw stops the payer (several agents: the claim was lost). */
  beforeSend?: (t: PlannedTransfer) => Promise<void>;
  sent?: (t: PlannedTransfer, hash: Hex) => Promise<void> | void;
  paid?: (t: SentTransfer) => void;
  /**
   * Transfers reverted because the payer's balance moved under the chain of proofs (or for no
   * readable reason); the rest is proved again from the chain balance, one at a time (`depth`
   * drops to 1 for the rest of the cycle).
   */
  recovered?: (info: { payer: Address; reverted: number; reproving: number; reason: RevertReason; depth: number }) => void;
  /** A transfer was skipped: its receiver cannot be credited now (its pending queue is full). */
  deferred?: (t: DeferredTransfer) => void;
};

/** A transfer not paid this cycle because its receiver cannot take a credit now; it stays owed. */
export type DeferredTransfer = PlannedTransfer & {
  payer: Address;
  reason: "receiver_queue_full";
  /** The decoded revert. */
  error: string;
  /** The reverted transaction, when it was sent (a transfer proved from chain is simulated first and not sent). */
  txHash: Hex | null;
};

export type PayerOutcome = {
  sent: SentTransfer[];
  deferred: DeferredTransfer[];
  /** Re-proving rounds after the payer's balance moved under its chain of proofs. */
  recoveries: number;
  /** Payout transactions of this payer that were mined reverted. */
  reverted: number;
};

export class PayerRecoveryError extends PayoutError {
  readonly code = "PAYER_RECOVERY_FAILED";
  constructor(
    readonly payer: Address,
    readonly attempts: number,
  ) {
    super(`payer ${payer}: transfers kept reverting after ${attempts} re-proofs from the chain balance`);
  }
}

/** A payout transfer reverted for a reason the payer cannot act on (neither a moved balance nor a full receiver). */
export class PayoutTransferRevertedError extends PayoutError {
  readonly code = "PAYOUT_TRANSFER_REVERTED";
  constructor(
    readonly payer: Address,
    readonly seq: number,
    readonly error: string,
    readonly txHash: Hex | null,
  ) {
    super(
      `payer ${payer}: payout transfer ${seq} ${txHash ? `reverted (${txHash})` : "would revert"} with ${error}: ` +
        "the payer's remaining transfers are not sent",
    );
  }
}

type Proved = "chain" | "predicted";
type InFlight = { t: PlannedTransfer; hash: Hex; proveMs: number; provedFrom: Proved; receipt: Promise<TransactionReceipt> };
type Failed = { t: PlannedTransfer; hash: Hex; blockNumber: bigint; provedFrom: Proved };

/**
 * Pays `transfers` from one payer account. A payer's transfers must be mined in order (each proof
 * shows the balance the previous one left), so with `depth` > 1 the next transfer is proved from
 * the predicted balance while the earlier ones are still being mined. `depth` 1 is the naive loop:
 * read the balance from chain, prove, send, wait for the receipt, repeat.
 *
 * Credits and the chain of proofs. Every credit to an account (a transfer in, a deposit) records
 * its new balance as one more valid snapshot at the account's current nonce and invalidates none;
 * only the account's own spends increment the nonce, which invalidates every older snapshot
 * (`contracts/EncryptedERC.sol` `_credit`, `_recordSnapshot`, `_spend`; the audited contract
 * keeps its snapshots the same way, `eerc-interface.md`, "Balance model"). So:
 * - a transfer proved from the balance read from chain, with none of the payer's own transfers in
 *   flight, cannot be invalidated by anyone else's credit: its snapshot stays valid until the
 *   payer spends again;
 * - a transfer proved from a *predicted* balance (the previous transfer's result) proves against
 *   a snapshot that only exists if no credit lands before the previous transfer is mined: anyone
 *   can make it revert with one credit, even a zero-value private transfer.
 * When a transfer reverts, the reason is read back (`reverts.ts`). A stale snapshot (or a reason
 * that cannot be read) costs one recovery: the pipeline waits for what is in flight and proves the
 * rest again, at depth 1 for the rest of the cycle, so an attacker's credits cannot break it again
 * and the payer no longer needs `maxRecoveries` to outlast them. A receiver whose pending queue is
 * full (`PendingHistoryLimitReached`) gets nothing this cycle: its transfer is deferred (it stays
 * owed; a later cycle pays it) and the payer goes on with the others. Any other revert stops the
 * payer with PayoutTransferRevertedError. A transfer proved from chain is simulated before it is
 * sent (which also estimates its gas), so a full receiver or another revert costs no transaction.
 */
export async function payFromPayer(args: {
  payer: EercClient;
  tokenId: bigint;
  transfers: readonly PlannedTransfer[];
  depth: number;
  hooks?: PipelineHooks;
  fault?: FaultPoint;
  maxRecoveries?: number;
}): Promise<PayerOutcome> {
  const { payer, tokenId, hooks = {}, fault } = args;
  const at = (step: FaultStep, t: PlannedTransfer) => {
    if (fault && fault.step === step && fault.seq === t.seq) fault.stop();
  };
  const publicClient = payer.publicClient;
  const sk = payer.exportPrivateKey();
  const maxRecoveries = args.maxRecoveries ?? 8;
  const done: SentTransfer[] = [];
  const deferred: DeferredTransfer[] = [];
  let recoveries = 0;
  let reverted = 0;
  let depth = Math.max(1, args.depth);
  let remaining = [...args.transfers];
  let gas: bigint | undefined;

  const defer = (t: PlannedTransfer, reason: RevertReason, txHash: Hex | null) => {
    const d: DeferredTransfer = { ...t, payer: payer.address, reason: "receiver_queue_full", error: reason.error, txHash };
    deferred.push(d);
    hooks.deferred?.(d);
  };
  const readBalance = async () => {
    const view = await payer.balanceView(tokenId);
    return { eGCT: view.eGCT, plain: decryptBalance(view, sk) };
  };

  while (remaining.length > 0) {
    let balance: { eGCT: EGCT; plain: bigint } | undefined;
    let nonce = await publicClient.getTransactionCount({ address: payer.address, blockTag: "pending" });
    const inFlight: InFlight[] = [];
    const failed: Failed[] = [];
    /** Set when a transfer proved from chain would revert for a reason that stops or re-plans the payer. */
    let stopped: { t: PlannedTransfer; reason: RevertReason } | null = null;

    const settle = async (f: InFlight) => {
      const receipt = await f.receipt;
      at("after_receipt", f.t);
      if (receipt.status === "success") {
        const sent: SentTransfer = { ...f.t, payer: payer.address, txHash: f.hash, blockNumber: receipt.blockNumber, proveMs: f.proveMs };
        done.push(sent);
        hooks.paid?.(sent);
      } else {
        reverted += 1;
        failed.push({ t: f.t, hash: f.hash, blockNumber: receipt.blockNumber, provedFrom: f.provedFrom });
      }
    };

    let next = 0;
    for (; next < remaining.length && failed.length === 0 && !stopped; next++) {
      const t = remaining[next]!;
      at("before_prove", t);
      // Nothing of the payer's in flight: prove from the chain balance, which no credit can invalidate.
      const provedFrom: Proved = inFlight.length === 0 || !balance ? "chain" : "predicted";
      if (provedFrom === "chain") balance = await readBalance();
      const started = performance.now();
      const prepared: PreparedTransfer = await payer.prepareTransfer({
        to: t.to,
        amount: t.amount,
        tokenId,
        from: balance!,
        pct: t.pct,
        allowZero: true,
      });
      const proveMs = performance.now() - started;
      hooks.proved?.(t, proveMs);
      at("after_prove", t);
      if (provedFrom === "chain") {
        // Only a transfer proved from chain can be simulated: a predicted balance exists once the
        // transfers before it are mined. The simulation also prices its gas.
        try {
          gas = ((await payer.estimateTransferGas(prepared)) * 3n) / 2n;
        } catch (err) {
          const reason = classifyRevert(revertDataOf(err), provedFrom);
          if (reason.kind === "receiver_full") {
            defer(t, reason, null);
            continue;
          }
          if (reason.kind === "other") throw new PayoutTransferRevertedError(payer.address, t.seq, reason.error, null);
          if (revertDataOf(err) === undefined && !isRevert(err)) throw err;
          stopped = { t, reason };
          break;
        }
      }
      await hooks.beforeSend?.(t);
      const hash = await payer.broadcastTransfer(prepared, { nonce, gas });
      nonce += 1;
      await hooks.sent?.(t, hash);
      at("after_send", t);
      const receipt = publicClient.waitForTransactionReceipt({ hash, pollingInterval: 100 });
      receipt.catch(() => {});
      if (fault?.step === "before_receipt" && fault.seq === t.seq) {
        // Stop once it is mined and before the pipeline reads the receipt.
        await receipt;
        fault.stop();
      }
      inFlight.push({ t, hash, proveMs, provedFrom, receipt });
      balance = prepared.nextBalance;
      while (inFlight.length >= depth) await settle(inFlight.shift()!);
    }
    while (inFlight.length > 0) await settle(inFlight.shift()!);
    if (failed.length === 0 && !stopped && next >= remaining.length) break;

    // What broke the chain: the first failure in order; the later transfers were proved from the
    // balance it would have left, so they are proved again whatever their own revert says.
    // A deferral first is no recovery: what follows it reverted for want of its spend, and is
    // proved again without counting against the budget (each such round defers one more transfer).
    const rest: PlannedTransfer[] = [];
    let cause: RevertReason | null = stopped?.reason ?? null;
    for (const [i, f] of failed.entries()) {
      const reason = await minedRevertReason(publicClient, f.hash, f.blockNumber, f.provedFrom);
      if (reason.kind === "other") throw new PayoutTransferRevertedError(payer.address, f.t.seq, reason.error, f.hash);
      if (reason.kind === "receiver_full") defer(f.t, reason, f.hash);
      else rest.push(f.t);
      if (i === 0 && reason.kind !== "receiver_full") cause = reason;
    }
    // A stopped transfer ended the loop before `next` moved past it: it is in this slice.
    rest.push(...remaining.slice(next));
    if (cause) {
      recoveries += 1;
      if (recoveries > maxRecoveries) throw new PayerRecoveryError(payer.address, maxRecoveries);
      depth = 1;
      hooks.recovered?.({ payer: payer.address, reverted: failed.length, reproving: rest.length, reason: cause, depth });
    }
    remaining = rest.sort((a, b) => a.seq - b.seq);
  }
  return { sent: done, deferred, recoveries, reverted };
}

/** Whether a failed gas estimate is the transaction reverting (rather than the node being unreachable). */
function isRevert(err: unknown): boolean {
  const text = err instanceof Error ? `${err.name} ${err.message}` : String(err);
  return /revert/i.test(text);
}
