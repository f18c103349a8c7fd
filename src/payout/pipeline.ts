import type { Address, Hex, TransactionReceipt } from "viem";
import { decryptBalance } from "../eerc/balance.js";
import type { EercClient, PreparedTransfer } from "../eerc/client.js";
import type { EGCT } from "../eerc/elgamal.js";
import type { TransferPCTOptions } from "../eerc/inputs.js";
import type { ProviderId } from "../revenue/types.js";
import { PayoutError } from "./errors.js";
import type { FundingFaultStep } from "./funding.js";

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
 * number `seq`, or of the `seq`-th pool transfer or deposit of the funding (`funding.ts`).
 */
export type FaultPoint = { step: FaultStep | FundingFaultStep; seq: number; stop: () => void };

export type PipelineHooks = {
  proved?: (t: PlannedTransfer, ms: number) => void;
  sent?: (t: PlannedTransfer, hash: Hex) => Promise<void> | void;
  paid?: (t: SentTransfer) => void;
  /** A transfer reverted (the payer's balance changed under the chain of proofs); the rest is re-proved. */
  recovered?: (info: { payer: Address; reverted: number; reproving: number }) => void;
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

type InFlight = { t: PlannedTransfer; hash: Hex; proveMs: number; receipt: Promise<TransactionReceipt> };

/**
 * Pays `transfers` from one payer account. A payer's transfers must be mined in order (each proof
 * shows the balance the previous one left), so with `depth` > 1 the next transfer is proved from
 * the predicted balance while the earlier ones are still being mined. A credit to the payer that
 * lands mid-chain changes its balance under the chain of proofs: the next transfers revert, and
 * the pipeline waits for what is in flight, reads the balance back from chain and proves the
 * rest again. `depth` 1 is the naive loop: prove, send, wait for the receipt, repeat.
 */
export async function payFromPayer(args: {
  payer: EercClient;
  tokenId: bigint;
  transfers: readonly PlannedTransfer[];
  depth: number;
  hooks?: PipelineHooks;
  fault?: FaultPoint;
  maxRecoveries?: number;
}): Promise<SentTransfer[]> {
  const { payer, tokenId, hooks = {}, fault } = args;
  const at = (step: FaultStep, t: PlannedTransfer) => {
    if (fault && fault.step === step && fault.seq === t.seq) fault.stop();
  };
  const publicClient = payer.publicClient;
  const sk = payer.exportPrivateKey();
  const maxRecoveries = args.maxRecoveries ?? 8;
  const done: SentTransfer[] = [];
  let remaining = [...args.transfers];
  let gas: bigint | undefined;

  for (let attempt = 0; remaining.length > 0; attempt++) {
    if (attempt > maxRecoveries) throw new PayerRecoveryError(payer.address, maxRecoveries);
    const view = await payer.balanceView(tokenId);
    let balance: { eGCT: EGCT; plain: bigint } = { eGCT: view.eGCT, plain: decryptBalance(view, sk) };
    let nonce = await publicClient.getTransactionCount({ address: payer.address, blockTag: "pending" });
    const inFlight: InFlight[] = [];
    const failed: PlannedTransfer[] = [];

    const settle = async (f: InFlight) => {
      const receipt = await f.receipt;
      at("after_receipt", f.t);
      if (receipt.status === "success") {
        const sent: SentTransfer = { ...f.t, payer: payer.address, txHash: f.hash, blockNumber: receipt.blockNumber, proveMs: f.proveMs };
        done.push(sent);
        hooks.paid?.(sent);
      } else {
        failed.push(f.t);
      }
    };

    let next = 0;
    for (; next < remaining.length && failed.length === 0; next++) {
      const t = remaining[next]!;
      at("before_prove", t);
      const started = performance.now();
      const prepared: PreparedTransfer = await payer.prepareTransfer({
        to: t.to,
        amount: t.amount,
        tokenId,
        from: balance,
        pct: t.pct,
        allowZero: true,
      });
      const proveMs = performance.now() - started;
      hooks.proved?.(t, proveMs);
      at("after_prove", t);
      // Only the first transfer of a chain can be simulated: the later ones spend a balance that
      // exists once the earlier ones are mined.
      gas ??= ((await payer.estimateTransferGas(prepared)) * 3n) / 2n;
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
      inFlight.push({ t, hash, proveMs, receipt });
      balance = prepared.nextBalance;
      while (inFlight.length >= args.depth) await settle(inFlight.shift()!);
    }
    while (inFlight.length > 0) await settle(inFlight.shift()!);
    if (failed.length === 0 && next >= remaining.length) break;
    const rest = [...failed, ...remaining.slice(next)];
    hooks.recovered?.({ payer: payer.address, reverted: failed.length, reproving: rest.length });
    remaining = rest;
  }
  return done;
}
