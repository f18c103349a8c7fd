import type { Address, Hex } from "viem";
import { describe, expect, it } from "vitest";
import { encryptElGamal } from "../src/eerc/elgamal.js";
import { publicKeyOf } from "../src/eerc/keys.js";
import { OverpaidError } from "../src/revenue/errors.js";
import type { ProviderId } from "../src/revenue/types.js";
import { CycleBoundaryConflictError, MemoMismatchError } from "../src/payout/errors.js";
import type { BatchFact, PayoutFact, ProviderChangeFact } from "../src/payout/facts.js";
import { checkMemoAmount, decodeMemo, encodeMemo, memoAmount } from "../src/payout/memo.js";
import { boundariesOf, cycleEarnings, type DecryptedBatch, ledgerState, paymentsByCycle, reconcileCycles } from "../src/payout/settlement.js";
import { PricingModel, providerIdOf } from "../src/usage/registry.js";

// The settlement rules on hand-made facts; the same rules run end to end in the payout tests.

const OPERATOR_SK = 123456789n;
const operatorPk = publicKeyOf(OPERATOR_SK);
const A = providerIdOf("alpha") as ProviderId;
const B = providerIdOf("beta") as ProviderId;
const ACCOUNT = "0x00000000000000000000000000000000000000aa" as Address;
const JAN = Date.UTC(2026, 0, 10);
const FEB = Date.UTC(2026, 1, 10);

const perCall = (price: bigint) => ({ model: PricingModel.PerCall, pricePerCallMicro: price, poolWeight: 0, tiers: [] });
const pool = (weight: number) => ({ model: PricingModel.FreePool, pricePerCallMicro: 0n, poolWeight: weight, tiers: [] });
const change = (providerId: ProviderId, blockNumber: bigint, pricing: ProviderChangeFact["pricing"], active = true): ProviderChangeFact => ({
  providerId,
  namespace: providerId === A ? "alpha" : "beta",
  payoutAccount: ACCOUNT,
  active,
  pricing,
  blockNumber,
  logIndex: 0,
});
let batchNo = 0;
const batch = (blockNumber: bigint, at: number, lines: [ProviderId, bigint][]): DecryptedBatch => ({
  server: ACCOUNT,
  batchId: `0x${(++batchNo).toString(16).padStart(64, "0")}` as Hex,
  periodStart: BigInt(at),
  encryptedLines: "0x",
  blockNumber,
  logIndex: 0,
  lines: lines.map(([providerId, billableCalls]) => ({ providerId, calls: billableCalls, billableCalls, amountMicro: 0n })),
}) as BatchFact & DecryptedBatch;
const payout = (cycle: number, throughBlock: bigint, providerId: ProviderId, amount: bigint, blockNumber: bigint): PayoutFact => ({
  txHash: `0x${blockNumber.toString(16).padStart(64, "0")}` as Hex,
  from: ACCOUNT,
  to: ACCOUNT,
  memo: decodeMemo(encodeMemo({ cycle, throughBlock, providerId, amount, operatorPk }))!,
  senderVTT: null,
  auditorPCT: [],
  blockNumber,
  logIndex: 0,
});
const settlement = { feeBps: 1000, periodUnit: "month" as const };

describe("payout memos", () => {
  it("round-trip; anything else in a message is not a memo", () => {
    const memo = decodeMemo(encodeMemo({ cycle: 3, throughBlock: 99n, providerId: A, amount: 1n, operatorPk }))!;
    expect(memo).toMatchObject({ cycle: 3, throughBlock: 99n, providerId: A });
    expect(memoAmount(memo, OPERATOR_SK)).toBe(1n);
    expect(decodeMemo("0x")).toBeUndefined();
    expect(decodeMemo("0x1234")).toBeUndefined();
  });

  it("a memo must agree with the transfer's sender-side ciphertext", () => {
    const payerSk = 987654321n;
    const vtt = encryptElGamal(500n, publicKeyOf(payerSk)).ct;
    const words = [vtt.c1[0], vtt.c1[1], vtt.c2[0], vtt.c2[1]];
    expect(() => checkMemoAmount({ amount: 500n, senderVTT: words, payerSk, txHash: "0x01" })).not.toThrow();
    expect(() => checkMemoAmount({ amount: 501n, senderVTT: words, payerSk, txHash: "0x01" })).toThrow(MemoMismatchError);
  });
});

describe("settlement", () => {
  it("a pricing change applies from the next pricing period, so earnings through a block never shrink", () => {
    const changes = [change(A, 1n, perCall(100n)), change(A, 5n, perCall(1n))];
    const batches = [batch(2n, JAN, [[A, 10n]]), batch(6n, JAN, [[A, 10n]]), batch(7n, FEB, [[A, 10n]])];
    const [c] = cycleEarnings({ batches, providerChanges: changes, poolFees: [], boundaries: [{ cycle: 1, throughBlock: 10n }], options: settlement });
    // January at 100 per call (20 calls), February at 1 (10 calls), 10% fee.
    expect(c!.earnedThrough.get(A)).toBe(1800n + 9n);
  });

  it("a cycle's pool is what the pool received in its blocks, split over the free usage committed in them", () => {
    const changes = [change(A, 1n, pool(1)), change(B, 1n, pool(3))];
    const batches = [batch(2n, JAN, [[A, 1n]]), batch(12n, JAN, [[A, 1n], [B, 1n]])];
    const fees = [
      { amount: 1000n, blockNumber: 3n, logIndex: 0 },
      { amount: 400n, blockNumber: 11n, logIndex: 0 },
    ];
    const [c1, c2] = cycleEarnings({
      batches,
      providerChanges: changes,
      poolFees: fees,
      boundaries: [{ cycle: 1, throughBlock: 10n }, { cycle: 2, throughBlock: 20n }],
      options: settlement,
    });
    expect(c1!.poolMicro).toBe(1000n);
    expect(c1!.earnedThrough).toEqual(new Map([[A, 900n]]));
    expect(c2!.poolMicro).toBe(400n);
    expect(c2!.earnedThrough.get(A)).toBe(900n + 90n);
    expect(c2!.earnedThrough.get(B)).toBe(270n);
  });

  it("memos of one cycle must agree on its boundary", () => {
    expect(() => boundariesOf([payout(1, 10n, A, 1n, 11n), payout(1, 11n, B, 1n, 12n)])).toThrow(CycleBoundaryConflictError);
  });

  it("an interrupted cycle is finished under its own boundary; an overpaid provider stops everything", () => {
    const changes = [change(A, 1n, perCall(10n)), change(B, 1n, perCall(10n))];
    const batches = [batch(2n, JAN, [[A, 1n], [B, 1n]]), batch(15n, JAN, [[A, 1n]])];
    const amountOf = (p: PayoutFact) => memoAmount(p.memo, OPERATOR_SK);
    const args = { batches, providerChanges: changes, poolFees: [], amountOf, settlement, through: 20n };
    const interrupted = ledgerState({ ...args, payouts: [payout(1, 10n, A, 9n, 11n)] });
    expect(interrupted.unfinished).toMatchObject({ cycle: 1, throughBlock: 10n, due: new Map([[B, 9n]]) });
    const done = ledgerState({ ...args, payouts: [payout(1, 10n, A, 9n, 11n), payout(1, 10n, B, 9n, 12n)] });
    expect(done.unfinished).toBeNull();
    expect(done.next).toMatchObject({ cycle: 2, throughBlock: 20n, due: new Map([[A, 9n]]) });
    expect(() => ledgerState({ ...args, payouts: [payout(1, 10n, A, 10n, 11n)] })).toThrow(OverpaidError);
  });

  it("reconciliation flags a wrong amount and a second transfer in one cycle", () => {
    const changes = [change(A, 1n, perCall(10n))];
    const batches = [batch(2n, JAN, [[A, 1n]])];
    const earnings = cycleEarnings({ batches, providerChanges: changes, poolFees: [], boundaries: [{ cycle: 1, throughBlock: 10n }], options: settlement });
    const amountOf = (p: PayoutFact) => memoAmount(p.memo, OPERATOR_SK);
    expect(reconcileCycles(earnings, paymentsByCycle([payout(1, 10n, A, 9n, 11n)], amountOf))[0]!.ok).toBe(true);
    expect(reconcileCycles(earnings, paymentsByCycle([payout(1, 10n, A, 8n, 11n)], amountOf))[0]).toMatchObject({ owedMicro: 9n, paidMicro: 8n, ok: false });
    const split = [payout(1, 10n, A, 4n, 11n), payout(1, 10n, A, 5n, 12n)];
    expect(reconcileCycles(earnings, paymentsByCycle(split, amountOf))[0]).toMatchObject({ paidMicro: 9n, transfers: 2, ok: false });
  });
});
