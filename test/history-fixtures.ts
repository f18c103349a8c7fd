import type { Address, Hex } from "viem";
import type { Point } from "../src/eerc/curve.js";
import { addEGCT, type EGCT, encryptElGamal, subEGCT } from "../src/eerc/elgamal.js";
import { encryptPCT } from "../src/eerc/pct.js";
import type { AuditKind, HistoryKind } from "../src/history/types.js";
import type { AuditTotalsWire, EarningsWire } from "../src/indexer-client/schemas.js";
import { getOrCreate } from "../src/util/map.js";

/** The API's JSON (its wire types: bigints as decimal strings) built with the real SDK crypto. */

const s = (v: bigint) => v.toString();
const ss = (v: readonly bigint[]) => v.map(s);
export const txHash = (i: number): Hex => `0x${(0xabc000 + i).toString(16).padStart(64, "0")}`;

const CREDITS: readonly HistoryKind[] = ["deposit", "transfer_in", "mint"];

/** One (account, token) balance following the contract's balance model. */
class FakeBalance {
  eGCT: EGCT = { c1: [0n, 1n], c2: [0n, 1n] };
  balancePCT: bigint[] = Array(7).fill(0n);
  amountPCTs: { pct: bigint[]; index: bigint }[] = [];
  nonce = 0n;
  transactionIndex = 0n;
  plain = 0n;
  constructor(private readonly pk: Point) {}

  credit(amount: bigint): bigint[] {
    this.eGCT = addEGCT(this.eGCT, encryptElGamal(amount, this.pk).ct);
    const { pct } = encryptPCT(amount, this.pk);
    this.amountPCTs.push({ pct, index: this.transactionIndex });
    this.transactionIndex++;
    this.plain += amount;
    return pct;
  }

  spend(amount: bigint): void {
    this.eGCT = subEGCT(this.eGCT, encryptElGamal(amount, this.pk).ct);
    this.plain -= amount;
    this.balancePCT = encryptPCT(this.plain, this.pk).pct;
    this.amountPCTs = [];
    this.nonce++;
  }
}

export type Step = { tokenId: bigint; kind: HistoryKind; amount: bigint; from?: Address; timestamp?: bigint };

/** A `/accounts/:address/earnings` body for `steps`, plus the balance after each step. */
export function buildEarnings(account: Address, pk: Point, steps: Step[], tokens: { tokenId: bigint; tokenAddress: Address | null }[]) {
  const balances = new Map<bigint, FakeBalance>();
  const balanceHistory: EarningsWire["balanceHistory"] = [];
  const receivedTransfers: EarningsWire["receivedTransfers"] = [];
  const expected: bigint[] = [];
  steps.forEach((step, i) => {
    const b = getOrCreate(balances, step.tokenId, () => new FakeBalance(pk));
    const blockNumber = 100n + BigInt(i);
    if (CREDITS.includes(step.kind)) {
      const pct = b.credit(step.amount);
      if (step.kind === "transfer_in") {
        receivedTransfers.push({
          from: step.from ?? "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
          tokenId: s(step.tokenId),
          blockNumber: s(blockNumber),
          txHash: txHash(i),
          amountPCT: ss(pct),
        });
      }
    } else {
      b.spend(step.amount);
    }
    expected.push(b.plain);
    balanceHistory.push({
      tokenId: s(step.tokenId),
      blockNumber: s(blockNumber),
      logIndex: i % 3,
      timestamp: s(step.timestamp ?? 1_764_000_000n + BigInt(i) * 3600n),
      txHash: txHash(i),
      kind: step.kind,
      eGCT: { c1: [s(b.eGCT.c1[0]), s(b.eGCT.c1[1])], c2: [s(b.eGCT.c2[0]), s(b.eGCT.c2[1])] },
      nonce: s(b.nonce),
      transactionIndex: s(b.transactionIndex),
      balancePCT: ss(b.balancePCT),
      amountPCTs: b.amountPCTs.map((a) => ({ pct: ss(a.pct), index: s(a.index) })),
    });
  });
  const json: EarningsWire = {
    account,
    publicKey: [s(pk[0]), s(pk[1])],
    tokens: tokens.map((t) => ({ tokenId: s(t.tokenId), tokenAddress: t.tokenAddress })),
    balanceHistory,
    receivedTransfers,
    pending: null,
  };
  return { json, expected };
}

export type AuditSpec = {
  period: string;
  tokenId: bigint;
  kind: AuditKind;
  amount: bigint;
  /** the auditor key the PCT is encrypted to */
  to: Point;
  auditorAddress: Address;
};

/** A `/audit/totals` body: entries grouped by (period, token) in the order given. */
export function buildAudit(auditor: Address, auditorPk: Point, specs: AuditSpec[]): AuditTotalsWire {
  const periods: AuditTotalsWire["periods"] = [];
  specs.forEach((e, i) => {
    let p = periods.find((x) => x.period === e.period && x.tokenId === s(e.tokenId));
    if (!p) {
      p = { period: e.period, tokenId: s(e.tokenId), entries: [] };
      periods.push(p);
    }
    p.entries.push({
      kind: e.kind,
      txHash: txHash(1000 + i),
      auditorAddress: e.auditorAddress,
      auditorPCT: ss(encryptPCT(e.amount, e.to).pct),
    });
  });
  return { auditor, auditorPublicKey: [s(auditorPk[0]), s(auditorPk[1])], periods, cycles: null };
}
