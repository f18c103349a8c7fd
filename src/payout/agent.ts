import type { Address, Hex } from "viem";
import { decryptBalance } from "../eerc/balance.js";
import { readSpendCount } from "../eerc/balance-read.js";
import type { EercClient } from "../eerc/client.js";
import { summarize } from "../errors.js";
import type { IndexerClient } from "../indexer-client/client.js";
import { type Logger, type LogTarget, toLogger } from "../log.js";
import type { Notifier } from "../notify/webhooks.js";
import type { ProviderId } from "../revenue/types.js";
import { reportLineAlerts } from "./admission.js";
import { type ClaimTurn, claimedDue, type PayoutCoordination, settleShared, type Turn } from "./coordination.js";
import { readPendingCap } from "./deferral.js";
import {
  IndexerBehindError,
  PayerSpendsUnindexedError,
  PayerUnderfundedError,
  PendingPayerTransactionError,
  UnattributedPayerTransferError,
} from "./errors.js";
import { fundFromPool, type PoolFunding } from "./funding.js";
import { IndexedLedger, type LedgerCheckpointing, type LedgerRead } from "./indexed-ledger.js";
import { type DeferredTransfer, type FaultPoint, type PlannedTransfer, payFromPayer, type SentTransfer } from "./pipeline.js";
import { encodeTag, payoutPCTOptions } from "./tag.js";

export type AgentOptions = {
  /** The operator's eERC account: its key reads the operator copy of every usage line and the amount of every payout. */
  operator: EercClient;
  /**
   * Checks, before each cycle, that `operator`'s key is the one the UsageLedger's operator
   * registered (a throw fails the cycle): with another key no line reads, and nothing would be paid.
   */
  checkOperator?: () => Promise<void>;
  /** Accounts that pay (the operator's own may be one); each pays its share of a cycle in order. */
  payers: readonly EercClient[];
  /** Former payers whose payouts still count as paid (their keys are not needed). */
  pastPayers?: readonly Address[];
  /**
   * Several agents (AGENT_DATABASE_URL): the cycles are planned by one agent at a time and each
   * agent pays the providers it claims (`coordination.ts`); every other agent's payers count as
   * payers. Unset, this agent plans and pays every cycle alone.
   */
  coordination?: PayoutCoordination;
  indexer: IndexerClient;
  tokenId: bigint;
  /** Blocks below the head a cycle settles through (0 on anvil). */
  confirmations?: number;
  /** Where the settlement read so far is kept across restarts (`IndexedLedger`); unset, a start reads from genesis. */
  checkpoint?: LedgerCheckpointing;
  /**
   * Pay every active provider in every cycle, with a zero-amount transfer where nothing is owed
   * (default true), so that "no transfer in cycle n" does not say "no billable usage in cycle n".
   * Each such transfer costs one transfer proof and its gas.
   */
  everyProvider?: boolean;
  /** Transfers per payer proved ahead of the receipts (1: prove, send, wait). */
  depth?: number;
  /** How long to wait for pending payer transactions and for the indexer, in ms. */
  waitMs?: number;
  /** A pino-compatible logger, or a callback that takes one line per record. */
  log?: LogTarget;
  /**
   * Where `cycle.paid`, `cycle.failed`, `payer.underfunded` and `payout.deferred` go (webhooks);
   * counts, block numbers, provider ids and accounts only.
   */
  notify?: Notifier;
  /**
   * Before each cycle, move the revenue pool's USDC into the payers' encrypted balances
   * (`funding.ts`); unset, the payers are funded by hand.
   */
  funding?: PoolFunding;
  /** A fault injected at one step of one transfer or of the funding (crash tests): `stop` is called there. */
  fault?: FaultPoint;
  /** Progress of the running cycle: counts only. */
  onProgress?: (p: CycleProgress) => void;
  /** Called after each transfer is broadcast (tests use it to land a credit mid-chain). */
  onSent?: (t: PlannedTransfer, hash: Hex) => Promise<void> | void;
};

export type CycleProgress = { cycle: number; total: number; proved: number; paid: number; resumed: boolean };

export type CycleResult =
  | { status: "nothing_owed"; throughBlock: bigint; lastCycle: number | null }
  | {
      status: "paid";
      cycle: number;
      throughBlock: bigint;
      resumed: boolean;
      poolMicro: bigint;
      /** What this run paid (a resumed cycle's earlier transfers are not repeated here). */
      paidMicro: bigint;
      transfers: SentTransfer[];
      /**
       * Transfers not sent or reverted because the receiver cannot be credited now (its pending
       * queue is full): they stay owed, and a later cycle pays them.
       */
      deferred: DeferredTransfer[];
      /** Re-proving rounds after a payer's balance moved under its chain of proofs. */
      recoveries: number;
      /** Payout transactions mined reverted (the recoveries' and the deferrals'). */
      reverted: number;
      ms: { total: number; plan: number; pay: number };
    };

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * The payout agent. A cycle reads the finalized state from the indexer, computes each provider's
 * cumulative earnings, subtracts what the payout transfers on chain show as already paid, and
 * pays every non-zero difference with one private transfer per provider, tagged with its cycle,
 * boundary and provider (`tag.ts`). It keeps nothing of its own: after a crash at any point, the
 * next cycle finds on chain what was paid and pays only the rest, finishing an interrupted cycle
 * under the boundary it had already recorded. Every transfer a payer ever sent must be such a
 * payout; if one is not, no cycle runs (it could otherwise pay twice).
 */
export class PayoutAgent {
  /** The settlement kept from cycle to cycle: each cycle reads and decrypts only what was indexed since the last. */
  private readonly ledger: IndexedLedger;
  /** Batches whose ignored or capped lines were already reported. */
  private readonly alerted = new Set<string>();
  private readonly log: Logger;
  /** The cycle being planned or paid, for what a failure reports. */
  private current: { cycle: number; transfers: number } | null = null;
  /** The eERC token id of USDC: 0 until the converter's first deposit assigns it (which the funding may make). */
  private tokenId: bigint;
  /**
   * The last cycle this agent ran and the providers it had to defer in it: where the eERC does
   * not say what its pending cap is, these count as still full (`stuckProviders`).
   */
  private lastDeferred: { cycle: number; providers: Set<ProviderId> } | null = null;
  /** With several agents: the other agents' payers, as the running turn read them. */
  private otherPayers: Address[] = [];

  constructor(readonly options: AgentOptions) {
    this.log = toLogger(options.log);
    this.tokenId = options.tokenId;
    this.ledger = new IndexedLedger({
      indexer: options.indexer,
      operatorSk: () => options.operator.exportPrivateKey(),
      confirmations: options.confirmations,
      checkpoint: options.checkpoint,
    });
  }

  /** Resolves once the ledger checkpoints saved so far are written. */
  checkpointed(): Promise<void> {
    return this.ledger.flushed();
  }

  /**
   * Reads what was indexed since the last read without running a cycle. A served agent follows
   * the indexer between cycles, so the decryption of new usage is paid as it arrives and planning
   * a cycle costs only what arrived since the last follow.
   */
  async follow(): Promise<void> {
    await this.ledger.read(this.payerAddresses);
  }

  private get payerAddresses(): Address[] {
    return [...this.options.payers.map((p) => p.address), ...(this.options.pastPayers ?? []), ...this.otherPayers];
  }

  /** Waits until none of `accounts` has a transaction in the mempool (`deadline`: ms since the epoch). */
  private async waitForPending(accounts: readonly Address[], deadline: number): Promise<void> {
    const client = this.options.operator.publicClient;
    for (const address of new Set(accounts)) {
      let reported = false;
      for (;;) {
        const [latest, pending] = await Promise.all([
          client.getTransactionCount({ address, blockTag: "latest" }),
          client.getTransactionCount({ address, blockTag: "pending" }),
        ]);
        if (pending <= latest) break;
        if (Date.now() > deadline) throw new PendingPayerTransactionError(address, pending - latest);
        if (!reported)
          this.log.info(
            { payer: address, pending: pending - latest },
            `payer ${address}: waiting for ${pending - latest} pending transaction(s) before reading what was paid`,
          );
        reported = true;
        await sleep(250);
      }
    }
  }

  /**
   * Waits until no payer (nor any of `others`: another agent's that may have paid the claimed
   * providers) has a transaction in the mempool, then until the indexer has the head block.
   */
  private async quiesce(others: readonly Address[] = []): Promise<bigint> {
    const deadline = Date.now() + (this.options.waitMs ?? 60_000);
    await this.waitForPending([...this.options.payers.map((p) => p.address), ...others], deadline);
    const head = await this.options.operator.publicClient.getBlockNumber({ cacheTime: 0 });
    for (;;) {
      const blocks = Object.values(await this.options.indexer.indexedBlocks().catch(() => ({}) as Record<string, number>));
      const indexed = blocks.length > 0 ? BigInt(Math.min(...blocks)) : -1n;
      if (indexed >= head) return head;
      if (Date.now() > deadline) throw new IndexerBehindError(indexed, head);
      await sleep(100);
    }
  }

  /**
   * Every spend of the payers on chain, through the block the ledger was read at, must be in the
   * facts the plan is made from: a payout missing from them would be planned again. The chain
   * counts spends itself (each balance's nonce), so this holds whatever the indexer's `/status`
   * says; a difference drops the ledger, which the next cycle reads again from the chain.
   */
  private async checkSpendsIndexed(ledger: LedgerRead): Promise<void> {
    const { operator } = this.options;
    const payers = [...new Set(this.payerAddresses.map((a) => a.toLowerCase() as Address))];
    const block = ledger.indexedBlock;
    const spent = await Promise.all(
      payers.map((user) =>
        readSpendCount(operator.publicClient, {
          encryptedERC: operator.contracts.encryptedERC,
          user,
          tokenId: this.tokenId,
          blockNumber: block,
        }),
      ),
    );
    const where = `{ account_in: ${JSON.stringify(payers)}, tokenId: "${this.tokenId}", blockNumber_lte: "${block}" }`;
    const [withdrawals, burns] = await Promise.all([
      this.options.indexer.all("withdrawals", "id", "blockNumber", where),
      this.options.indexer.all("privateBurns", "id", "blockNumber", where),
    ]);
    const onChain = spent.reduce((a, b) => a + b, 0n);
    const indexed = BigInt(ledger.cycleTotals().reduce((n, c) => n + c.transfers, 0) + withdrawals.length + burns.length);
    if (onChain === indexed) return;
    this.ledger.reset();
    const error = new PayerSpendsUnindexedError(block, onChain, indexed);
    this.log.error({ alert: true, block: Number(block), onChain: Number(onChain), indexed: Number(indexed) }, `ALERT ${error.message}`);
    throw error;
  }

  /**
   * Moves what the revenue pool holds into the payers' encrypted balances, once nothing the pool
   * or a payer sent is still pending (a transfer or deposit of an interrupted run would otherwise
   * be read as not done). Logs counts and transaction hashes only.
   */
  private async fund(funding: PoolFunding, turn?: Turn): Promise<void> {
    const started = performance.now();
    const deadline = Date.now() + (this.options.waitMs ?? 60_000);
    await this.waitForPending([funding.pool.account.address, ...this.options.payers.map((p) => p.address)], deadline);
    const fault = this.options.fault;
    const { transfers, deposits } = await fundFromPool({
      funding,
      payers: this.options.payers,
      // Several agents: the planner splits the pool over every agent's payers; the others only deposit.
      ...(turn && { otherPayers: turn.kind === "plan" ? turn.runningPayers : [], depositOnly: turn.kind === "pay" }),
      at: (step, n) => {
        if (fault && fault.step === step && fault.seq === n) fault.stop();
      },
    });
    if (this.tokenId === 0n) this.tokenId = await this.options.operator.tokenId(funding.token);
    if (transfers.length === 0 && deposits.length === 0) return;
    this.log.info(
      {
        transfers: transfers.length,
        deposits: deposits.length,
        txHashes: [...transfers, ...deposits],
        ms: Math.round(performance.now() - started),
      },
      `funded the payers from the revenue pool: ${transfers.length} pool transfer(s), ${deposits.length} deposit(s) ` +
        `(${[...transfers, ...deposits].join(", ")})`,
    );
  }

  /**
   * Runs one cycle: finishes an interrupted one, or settles through the finalized head. Its outcome
   * is also sent to `notify` (paid, or failed, and underfunded payers), which never delays or fails it.
   */
  async runCycle(): Promise<CycleResult> {
    this.current = null;
    try {
      const coordination = this.options.coordination;
      const result = coordination ? await settleShared(coordination, (turn) => this.settle(turn)) : await this.settle();
      if (result.status === "paid") this.notifyPaid(result);
      return result;
    } catch (err) {
      this.notifyFailed(err);
      throw err;
    } finally {
      this.current = null;
    }
  }

  private notifyPaid(r: Extract<CycleResult, { status: "paid" }>): void {
    this.options.notify?.notify(
      "cycle.paid",
      {
        cycle: r.cycle,
        throughBlock: r.throughBlock.toString(),
        resumed: r.resumed,
        transfers: r.transfers.length,
        recoveries: r.recoveries,
        ...(r.deferred.length > 0 && { deferred: r.deferred.length }),
        seconds: Math.round(r.ms.total / 100) / 10,
      },
      // A cycle is paid once (by each agent, with several): its id lets a receiver drop a repeated delivery.
      `cycle.paid:${r.cycle}${this.options.coordination ? `:${this.options.coordination.agentId}` : ""}`,
    );
  }

  private notifyFailed(err: unknown): void {
    const notify = this.options.notify;
    if (!notify) return;
    const { code, message } = summarize(err);
    const cycle = this.current?.cycle ?? null;
    notify.notify("cycle.failed", { cycle, code, message });
    if (err instanceof PayerUnderfundedError) {
      notify.notify("payer.underfunded", { cycle, payers: this.options.payers.length, transfers: this.current?.transfers ?? null });
    }
  }

  /**
   * One cycle alone, or one turn of a cycle shared with other agents (`turn`): a plan turn decides
   * the cycle as alone, records it and pays this agent's first claims; a claim turn pays the
   * claimed providers what they are owed at the recorded boundary.
   */
  private async settle(turn?: Turn): Promise<CycleResult> {
    const started = performance.now();
    let paying: ClaimTurn | undefined = turn?.kind === "pay" ? turn : undefined;
    this.otherPayers = turn?.otherPayers ?? [];
    await this.options.checkOperator?.();
    if (this.options.funding) await this.fund(this.options.funding, turn);
    const head = await this.quiesce(paying?.attemptedBy);
    const ledger = await this.ledger.read(this.payerAddresses);
    const operatorSk = this.options.operator.exportPrivateKey();
    const unattributed = ledger.unattributed;
    if (unattributed.length > 0) {
      for (const t of unattributed)
        this.log.error(
          { alert: true, payer: t.from, txHash: t.txHash, block: Number(t.blockNumber), reason: t.reason },
          `ALERT payer ${t.from} sent transfer ${t.txHash} (block ${t.blockNumber}) that is not an accountable payout: ${t.reason}`,
        );
      throw new UnattributedPayerTransferError(unattributed);
    }
    await this.checkSpendsIndexed(ledger);
    const finalized = paying?.throughBlock ?? head - BigInt(this.options.confirmations ?? 0);
    const state = ledger.state(finalized);
    reportLineAlerts(state.alerts, { log: this.log, notify: this.options.notify, reported: this.alerted });
    let unfinished = state.unfinished;
    if (!paying && unfinished && state.next) {
      // An interrupted cycle is finished under its own boundary, unless all it still owes is to
      // providers that cannot be credited now (full pending queues) while others are owed more:
      // then a new cycle starts, owing those providers the same, cumulatively, so that their
      // queues do not hold up everyone else's payouts.
      const stuck = await this.stuckProviders(unfinished.cycle, [...unfinished.due.keys()], ledger.providerChanges);
      if (stuck.size === unfinished.due.size && [...state.next.due.keys()].some((id) => !stuck.has(id))) {
        this.log.info(
          { cycle: unfinished.cycle, stuck: stuck.size, next: state.next.cycle },
          `cycle ${unfinished.cycle} owes only ${stuck.size} provider(s) whose pending queue is full: ` +
            `starting cycle ${state.next.cycle}, which owes them the same`,
        );
        unfinished = null;
      }
    }
    const resumed = paying ? state.last?.cycle === paying.cycle : unfinished !== null;
    const plan = paying ? claimedDue(paying, state) : (unfinished ?? state.next);
    if (!plan || (!paying && plan.due.size === 0)) {
      return { status: "nothing_owed", throughBlock: plan?.throughBlock ?? state.last!.throughBlock, lastCycle: state.last?.cycle ?? null };
    }
    const { cycle, throughBlock, poolMicro } = plan;
    const due = new Map(plan.due);
    if (this.options.everyProvider ?? true) {
      // Zero-amount transfers to every provider active at the boundary that this cycle has not paid yet.
      const paidThisCycle = new Set(state.payments.get(cycle)?.keys());
      const latest = new Map<ProviderId, boolean>();
      for (const c of ledger.providerChanges) if (c.blockNumber <= throughBlock) latest.set(c.providerId, c.active);
      for (const [id, active] of [...latest].sort(([a], [b]) => (a < b ? -1 : 1))) {
        if (active && !due.has(id) && !paidThisCycle.has(id)) due.set(id, 0n);
      }
    }
    // Several agents: a planner records the cycle and claims its first providers; a turn pays only what it claimed.
    if (turn?.kind === "plan") paying = await turn.record({ cycle, throughBlock, poolMicro, providers: [...due.keys()] });
    const claim = paying;
    if (claim) for (const id of [...due.keys()]) if (!claim.providers.has(id)) due.delete(id);

    const payoutAccount = new Map<ProviderId, Address>();
    for (const c of ledger.providerChanges) payoutAccount.set(c.providerId, c.payoutAccount);
    const planned: PlannedTransfer[] = [...due].map(([providerId, amount], i) => ({
      seq: i + 1,
      providerId,
      to: payoutAccount.get(providerId)!,
      amount,
      pct: payoutPCTOptions(operatorSk, encodeTag({ cycle, throughBlock, providerId })),
    }));
    this.current = { cycle, transfers: planned.length };
    const assignment = await this.assign(planned);
    await claim?.attempt(planned.map((t) => t.providerId));
    const planMs = performance.now() - started;
    const total = planned.length;
    this.log.info(
      { cycle, resumed, throughBlock: Number(throughBlock), transfers: total, payers: assignment.size, ms: Math.round(planMs) },
      `cycle ${cycle}${resumed ? " (resumed)" : ""}: settling through block ${throughBlock}, ` +
        `${total} transfer(s) from ${assignment.size} payer(s)`,
    );

    const progress: CycleProgress = { cycle, total, proved: 0, paid: 0, resumed };
    this.options.onProgress?.({ ...progress });
    const fault = this.options.fault;
    const payStarted = performance.now();
    const results = await Promise.all(
      [...assignment].map(([payer, transfers]) =>
        payFromPayer({
          payer,
          tokenId: this.tokenId,
          transfers,
          depth: this.options.depth ?? 3,
          fault,
          hooks: {
            beforeSend: claim && (() => claim.stillHeld()),
            proved: (t, ms) => {
              progress.proved += 1;
              this.log.info(
                { cycle, seq: t.seq, proved: progress.proved, total, ms: Math.round(ms) },
                `cycle ${cycle} [${progress.proved}/${total}] proved transfer ${t.seq} in ${Math.round(ms)} ms`,
              );
              this.options.onProgress?.({ ...progress });
            },
            sent: (t, hash) => this.options.onSent?.(t, hash),
            paid: (t) => {
              progress.paid += 1;
              this.log.info(
                { cycle, seq: t.seq, paid: progress.paid, total, block: Number(t.blockNumber), txHash: t.txHash },
                `cycle ${cycle} [${progress.paid}/${total}] paid transfer ${t.seq} in block ${t.blockNumber} (${t.txHash})`,
              );
              this.options.onProgress?.({ ...progress });
            },
            recovered: ({ payer: p, reverted, reproving, reason, depth }) => {
              this.log.warn(
                { cycle, payer: p, reverted, reproving, reason: reason.error, depth },
                `payer ${p}: ${reverted} transfer(s) reverted (${reason.error}: its balance changed under the chain of proofs); ` +
                  `re-proving ${reproving} from the chain balance, ${depth === 1 ? "one at a time" : `depth ${depth}`}`,
              );
            },
            deferred: (t) => this.deferred(cycle, t),
          },
        }),
      ),
    );
    const transfers = results.flatMap((r) => r.sent).sort((a, b) => a.seq - b.seq);
    const deferred = results.flatMap((r) => r.deferred).sort((a, b) => a.seq - b.seq);
    const recoveries = results.reduce((s, r) => s + r.recoveries, 0);
    const reverted = results.reduce((s, r) => s + r.reverted, 0);
    this.lastDeferred = deferred.length > 0 ? { cycle, providers: new Set(deferred.map((d) => d.providerId)) } : null;
    const payMs = performance.now() - payStarted;
    const totalMs = performance.now() - started;
    this.log.info(
      {
        cycle,
        transfers: transfers.length,
        deferred: deferred.length,
        recoveries,
        reverted,
        ms: Math.round(totalMs),
        planMs: Math.round(planMs),
        payMs: Math.round(payMs),
      },
      `cycle ${cycle}: ${transfers.length} transfer(s) paid in ${(payMs / 1000).toFixed(1)} s (planning ${Math.round(planMs)} ms)` +
        (deferred.length > 0 ? `, ${deferred.length} deferred to a later cycle` : "") +
        (reverted > 0 ? `; ${reverted} reverted, ${recoveries} recover${recoveries === 1 ? "y" : "ies"}` : ""),
    );
    return {
      status: "paid",
      cycle,
      throughBlock,
      resumed,
      poolMicro,
      paidMicro: transfers.reduce((s, t) => s + t.amount, 0n),
      transfers,
      deferred,
      recoveries,
      reverted,
      ms: { total: totalMs, plan: planMs, pay: payMs },
    };
  }

  /**
   * Which of `ids` cannot be credited now: its payout account holds as many pending amount PCTs
   * as the eERC allows (`MAX_PENDING_AMOUNT_PCTS()`, as `EncryptedERCCapped` and the reported
   * hardening expose it). An eERC without that view has no cap we can read: there, the providers
   * this agent deferred in `cycle` on its last run count as stuck.
   */
  private async stuckProviders(
    cycle: number,
    ids: readonly ProviderId[],
    changes: readonly { providerId: ProviderId; payoutAccount: Address }[],
  ): Promise<Set<ProviderId>> {
    const operator = this.options.operator;
    const cap = await readPendingCap(operator.publicClient, operator.contracts.encryptedERC).catch(() => null);
    if (cap === null) {
      const last = this.lastDeferred;
      return new Set(last?.cycle === cycle ? ids.filter((id) => last.providers.has(id)) : []);
    }
    const account = new Map<ProviderId, Address>();
    for (const c of changes) account.set(c.providerId, c.payoutAccount);
    const stuck = new Set<ProviderId>();
    for (const id of ids) {
      const to = account.get(id);
      if (to && BigInt((await operator.balanceView(this.tokenId, to)).amountPCTs.length) >= cap) stuck.add(id);
    }
    return stuck;
  }

  /**
   * A transfer skipped because its receiver's pending queue is full (someone may have filled it
   * with dust): logged, and sent to `notify` as `payout.deferred` with the provider's id and
   * payout account, never the amount. Once per cycle and provider (the webhook id).
   */
  private deferred(cycle: number, t: DeferredTransfer): void {
    this.log.warn(
      { cycle, seq: t.seq, providerId: t.providerId, payoutAccount: t.to, payer: t.payer, error: t.error, txHash: t.txHash },
      `cycle ${cycle}: payout transfer ${t.seq} to provider ${t.providerId} (${t.to}) deferred: its pending queue is full ` +
        `(${t.error}${t.txHash ? `, ${t.txHash}` : ""}); it stays owed and a later cycle pays it once the account spends (a withdrawal or transfer)`,
    );
    this.options.notify?.notify(
      "payout.deferred",
      { cycle, providerId: t.providerId, payoutAccount: t.to, reason: t.reason, txHash: t.txHash },
      `payout.deferred:${cycle}:${t.providerId}`,
    );
  }

  /**
   * Spreads the transfers over the payers so each proves about as many: largest amount first, each
   * to the payer with the fewest transfers among those that can still cover it (ties: the most
   * left). Refuses the cycle (nothing sent) when the payers cannot cover it.
   */
  private async assign(planned: readonly PlannedTransfer[]): Promise<Map<EercClient, PlannedTransfer[]>> {
    const left = new Map<EercClient, bigint>();
    for (const payer of this.options.payers) {
      const view = await payer.balanceView(this.tokenId);
      left.set(payer, decryptBalance(view, payer.exportPrivateKey()));
    }
    const available = [...left.values()].reduce((a, b) => a + b, 0n);
    const owedMicro = planned.reduce((a, t) => a + t.amount, 0n);
    const out = new Map<EercClient, PlannedTransfer[]>();
    const count = (p: EercClient) => out.get(p)?.length ?? 0;
    for (const t of [...planned].sort((a, b) => (a.amount === b.amount ? a.seq - b.seq : a.amount > b.amount ? -1 : 1))) {
      let best: EercClient | undefined;
      for (const [payer, v] of left) {
        if (v < t.amount) continue;
        if (!best || count(payer) < count(best) || (count(payer) === count(best) && v > left.get(best)!)) best = payer;
      }
      if (!best) throw new PayerUnderfundedError(owedMicro, available);
      left.set(best, left.get(best)! - t.amount);
      out.set(best, [...(out.get(best) ?? []), t]);
    }
    for (const list of out.values()) list.sort((a, b) => a.seq - b.seq);
    return out;
  }
}
