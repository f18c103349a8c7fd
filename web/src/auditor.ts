import type { Address, Hex } from "viem";
import { PCTDecryptionError } from "../../src/eerc/errors.js";
import { decryptPCT } from "../../src/eerc/pct.js";
import { openRpc } from "../../src/history/chain.js";
import { assertAuditKey, auditTotals } from "../../src/history/decrypt.js";
import type { AuditReport } from "../../src/history/types.js";
import { IndexerClient } from "../../src/indexer-client/client.js";
import { indexedPendingCap } from "../../src/payout/deferral.js";
import { readSettlementFacts } from "../../src/payout/facts.js";
import { type Reconciliation, reconcile } from "../../src/payout/reconcile.js";
import type { PeriodUnit } from "../../src/usage/period.js";

/**
 * The auditor view's figures, decrypted here with the auditor's eERC key held in memory: the CLI's
 * `reconcile --api` (`reconcile()`) and `audit --api` (`auditTotals`) over the same API answers,
 * plus each payout transfer's auditor PCT for the drill-down from a cycle to its transfers. The
 * eERC's pending-queue cap, which tells a deferred payout from a short one, is read from the RPC
 * (`indexedPendingCap`); the CLI takes it as `--pending-cap`.
 */

/** One payout transfer as the auditor reads it; `amountMicro` is null when its auditor PCT does not open with the key. */
export type AuditedTransfer = {
  cycle: number;
  providerId: Hex;
  namespace: string | null;
  from: Address;
  to: Address;
  blockNumber: bigint;
  txHash: Hex;
  amountMicro: bigint | null;
};

export type AuditorView = {
  operator: Address;
  reconciliation: Reconciliation;
  audit: AuditReport;
  period: PeriodUnit;
  transfers: AuditedTransfer[];
  /** Why the eERC's pending-queue cap could not be read (then no payout counts as deferred); null when it was read. */
  pendingCapError: string | null;
};

export async function loadAuditorView(args: {
  apiUrl: string;
  account: Address;
  sk: bigint;
  operator: Address;
  period: PeriodUnit;
  rpcUrl: string;
}): Promise<AuditorView> {
  const indexer = new IndexerClient(args.apiUrl);
  const response = await indexer.auditTotals({ period: args.period });
  await assertAuditKey(response, args.account, args.sk, async () => (await indexer.earnings(args.account)).publicKey);
  const audit = auditTotals(response, args.sk);
  let pendingCap: bigint | null = null;
  let pendingCapError: string | null = null;
  try {
    pendingCap = await indexedPendingCap(indexer, await openRpc(args.rpcUrl));
  } catch (e) {
    pendingCapError = e instanceof Error ? e.message : String(e);
  }
  const reconciliation = await reconcile({
    indexer,
    auditorSk: args.sk,
    operatorPk: await indexer.registeredKey(args.operator),
    payers: "any",
    pendingCap,
  });
  // The drill-down reads the payouts again; only those the reconciliation saw are listed.
  const facts = await readSettlementFacts(indexer, "any");
  const namespaces = new Map(facts.providerChanges.map((c) => [c.providerId, c.namespace]));
  const transfers = facts.payouts
    .filter((p) => p.blockNumber <= reconciliation.indexedBlock)
    .map((p): AuditedTransfer => {
      let amountMicro: bigint | null;
      try {
        amountMicro = decryptPCT(p.auditorPCT, args.sk);
      } catch (e) {
        if (!(e instanceof PCTDecryptionError)) throw e;
        amountMicro = null;
      }
      return {
        cycle: p.cycle,
        providerId: p.providerId,
        namespace: namespaces.get(p.providerId) ?? null,
        from: p.from,
        to: p.to,
        blockNumber: p.blockNumber,
        txHash: p.txHash,
        amountMicro,
      };
    });
  return { operator: args.operator, reconciliation, audit, period: args.period, transfers, pendingCapError };
}
