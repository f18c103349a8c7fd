import type { Address, Hex } from "viem";
import { describe, expect, it } from "vitest";
import { mulBase } from "../src/eerc/curve.js";
import { encryptElGamal } from "../src/eerc/elgamal.js";
import { PCTDecryptionError } from "../src/eerc/errors.js";
import { transferInputs } from "../src/eerc/inputs.js";
import { publicKeyOf } from "../src/eerc/keys.js";
import { decryptPCT } from "../src/eerc/pct.js";
import { egctToWords } from "../src/indexer/calldata.js";
import { admitLines, NO_CAP, type ServerBindingFact } from "../src/payout/admission.js";
import { CycleBoundaryConflictError } from "../src/payout/errors.js";
import type { BatchFact, ProviderChangeFact } from "../src/payout/facts.js";
import { splitEvenly } from "../src/payout/funding.js";
import {
  boundariesOf,
  cycleEarnings,
  cycleMoneyFlow,
  type DecryptedBatch,
  deferredOf,
  ledgerState,
  type PoolSecret,
  paymentsByCycle,
  payoutStatus,
  poolReserve,
  poolSecret,
  type QueueReading,
  queueKey,
  reconcileCycles,
  totalMoneyFlow,
} from "../src/payout/settlement.js";
import {
  attributeTransfers,
  decodeTag,
  encodeTag,
  operatorAmount,
  type PayerTransfer,
  type Payout,
  payoutPCTOptions,
  providerSlot,
} from "../src/payout/tag.js";
import { allocatePool } from "../src/revenue/allocate.js";
import { NoSettlementInForceError, OverpaidError } from "../src/revenue/errors.js";
import { fixedSchedule, type SettlementRecord, settlementSchedule, termAt } from "../src/revenue/schedule.js";
import type { ProviderId } from "../src/revenue/types.js";
import { freePool, freeQuotaThenPerCall, perCall } from "../src/usage/pricing.js";
import { providerIdOf } from "../src/usage/registry.js";

// The settlement rules on hand-made facts; the same rules run end to end in the payout tests.

const OPERATOR_SK = 123456789n;
const A = providerIdOf("alpha") as ProviderId;
const B = providerIdOf("beta") as ProviderId;
const ACCOUNT = "0x00000000000000000000000000000000000000aa" as Address;
const OTHER = "0x00000000000000000000000000000000000000bb" as Address;
const JAN = Date.UTC(2026, 0, 10);
const FEB = Date.UTC(2026, 1, 10);

const pool = freePool;
const change = (
  providerId: ProviderId,
  blockNumber: bigint,
  pricing: ProviderChangeFact["pricing"],
  active = true,
): ProviderChangeFact => ({
  providerId,
  namespace: providerId === A ? "alpha" : "beta",
  payoutAccount: ACCOUNT,
  active,
  pricing,
  blockNumber,
  logIndex: 0,
});
let batchNo = 0;
/** A line: provider, billable calls, and optionally the amount billed and what the calls paid (x402). */
type Line = [ProviderId, bigint] | [ProviderId, bigint, bigint, bigint];
const batch = (blockNumber: bigint, at: number, lines: Line[]): DecryptedBatch =>
  ({
    server: ACCOUNT,
    batchId: `0x${(++batchNo).toString(16).padStart(64, "0")}` as Hex,
    periodStart: BigInt(at),
    // Only the format version (the first word) is read: 3, whose copies are checked.
    encryptedLines: `0x${"3".padStart(64, "0")}`,
    blockNumber,
    logIndex: 0,
    lines: lines.map(([providerId, billableCalls, amountMicro = 0n, revenueMicro = 0n]) => ({
      providerId,
      calls: billableCalls,
      billableCalls,
      amountMicro,
      revenueMicro,
    })),
  }) as BatchFact & DecryptedBatch;
/** A binding of `server` to `providerId` recorded at `blockNumber`, with its caps (none by default). */
const binding = (
  providerId: ProviderId,
  blockNumber = 0n,
  caps: { perBatch?: bigint; perPeriod?: bigint; bound?: boolean; server?: Address } = {},
): ServerBindingFact => ({
  server: caps.server ?? ACCOUNT,
  providerId,
  bound: caps.bound ?? true,
  maxCallsPerBatch: caps.bound === false ? 0n : (caps.perBatch ?? NO_CAP),
  maxCallsPerPeriod: caps.bound === false ? 0n : (caps.perPeriod ?? NO_CAP),
  blockNumber,
  logIndex: 0,
});
/** The test server, bound from genesis to both providers without caps. */
const BOUND = [binding(A), binding(B)];
/** What each hand-made payout paid, as a key holder would read it. */
const paidAmounts = new Map<Hex, bigint>();
const amountOf = (p: Payout) => paidAmounts.get(p.txHash)!;
let txNo = 0;
const payout = (cycle: number, throughBlock: bigint, providerId: ProviderId, amount: bigint, blockNumber: bigint): Payout => {
  const txHash = `0x${(++txNo).toString(16).padStart(64, "0")}` as Hex;
  paidAmounts.set(txHash, amount);
  return {
    txHash,
    from: ACCOUNT,
    to: ACCOUNT,
    receiverPCT: null,
    senderVTT: null,
    auditorPCT: [],
    blockNumber,
    logIndex: 0,
    cycle,
    throughBlock,
    providerId,
  };
};
/** The default settings, recorded once from genesis: every cycle below settles at 10% by UTC month. */
const schedule = fixedSchedule({ feeBps: 1000, periodUnit: "month" });
const AUDITOR_SK = 987654321n;
/** The secret the operator and the auditor share, as each derives it. */
const secret = poolSecret(OPERATOR_SK, mulBase(AUDITOR_SK));
const poolSecretOf: PoolSecret = () => secret;

/** The settlement's cycles over these facts, with the test's settlement options and pool secret. */
const cyclesOf = (
  facts: Pick<Parameters<typeof cycleEarnings>[0], "batches" | "providerChanges"> &
    Partial<Pick<Parameters<typeof cycleEarnings>[0], "poolFees" | "boundaries" | "serverBindings">>,
) =>
  cycleEarnings({
    serverBindings: BOUND,
    poolFees: [],
    boundaries: [{ cycle: 1, throughBlock: 10n }],
    ...facts,
    schedule,
    poolSecret: poolSecretOf,
  });

describe("payout tags", () => {
  it("round-trip through a PCT nonce below 2^128; any other nonce is not a tag", () => {
    const tag = encodeTag({ cycle: 3, throughBlock: 99n, providerId: A });
    expect(tag < 1n << 128n).toBe(true);
    expect(decodeTag(tag)).toEqual({ cycle: 3, throughBlock: 99n, providerSlot: providerSlot(A) });
    expect(decodeTag(encodeTag({ cycle: 2 ** 32 - 1, throughBlock: 2n ** 48n - 1n, providerId: B }))).toEqual({
      cycle: 2 ** 32 - 1,
      throughBlock: 2n ** 48n - 1n,
      providerSlot: providerSlot(B),
    });
    for (const nonce of [0n, 12345n, (1n << 128n) - 1n, tag ^ (1n << 120n), tag & ~(0xffffffffn << 80n)])
      expect(decodeTag(nonce)).toBeUndefined();
    expect(() => encodeTag({ cycle: 0, throughBlock: 1n, providerId: A })).toThrow(RangeError);
    expect(() => encodeTag({ cycle: 1, throughBlock: 1n << 48n, providerId: A })).toThrow(RangeError);
  });

  it("the operator reads a payout's amount from its receiver PCT; the auditor from its auditor PCT; another key reads nothing", () => {
    const payerSk = 987654321n;
    const receiverSk = 55555n;
    const auditorSk = 77777n;
    const tag = encodeTag({ cycle: 1, throughBlock: 40n, providerId: A });
    const built = transferInputs({
      sk: payerSk,
      value: 1n,
      balance: 500n,
      balanceCT: encryptElGamal(500n, publicKeyOf(payerSk)).ct,
      receiverPk: mulBase(receiverSk),
      auditorPk: mulBase(auditorSk),
      pct: payoutPCTOptions(OPERATOR_SK, tag),
    });
    expect(built.receiverPCT[6]).toBe(tag);
    expect(built.auditorPCT[6]).toBe(tag);
    const p: Payout = {
      ...payout(1, 40n, A, 1n, 41n),
      receiverPCT: built.receiverPCT,
      senderVTT: egctToWords(built.senderVTT),
      auditorPCT: built.auditorPCT,
    };
    expect(operatorAmount(OPERATOR_SK, p, mulBase(receiverSk))).toBe(1n);
    expect(decryptPCT(built.receiverPCT, receiverSk)).toBe(1n);
    expect(decryptPCT(built.auditorPCT, auditorSk)).toBe(1n);
    expect(() => operatorAmount(OPERATOR_SK + 1n, p, mulBase(receiverSk))).toThrow(PCTDecryptionError);
  });

  it("a payer's transfer counts once matched to a cycle and to the one provider with its slot paying out to the receiver; anything else is unattributed", () => {
    const accounts = [
      { providerId: A, payoutAccount: ACCOUNT, blockNumber: 1n },
      { providerId: B, payoutAccount: ACCOUNT, blockNumber: 1n },
      { providerId: providerIdOf("gamma") as ProviderId, payoutAccount: OTHER, blockNumber: 50n },
    ];
    const transfer = (nonce: bigint, to: Address, blockNumber: bigint, receiverNonce = nonce): PayerTransfer => ({
      txHash: `0x${blockNumber.toString(16).padStart(64, "0")}` as Hex,
      from: OTHER,
      to,
      auditorPCT: [0n, 0n, 0n, 0n, 0n, 0n, nonce],
      receiverPCT: [0n, 0n, 0n, 0n, 0n, 0n, receiverNonce],
      senderVTT: null,
      blockNumber,
      logIndex: 0,
    });
    const tagB = encodeTag({ cycle: 2, throughBlock: 30n, providerId: B });
    const { payouts, unattributed } = attributeTransfers(
      [
        transfer(tagB, ACCOUNT, 31n),
        transfer(987654321n, ACCOUNT, 32n),
        transfer(tagB, ACCOUNT, 33n, 1n),
        transfer(encodeTag({ cycle: 2, throughBlock: 30n, providerId: providerIdOf("gamma") as ProviderId }), OTHER, 34n),
        transfer(encodeTag({ cycle: 2, throughBlock: 30n, providerId: B }), OTHER, 60n),
      ],
      accounts,
    );
    expect(payouts.map((p) => [p.blockNumber, p.cycle, p.throughBlock, p.providerId])).toEqual([[31n, 2, 30n, B]]);
    expect(unattributed.map((u) => [u.blockNumber, u.reason])).toEqual([
      [32n, "its auditor PCT nonce is not a payout tag"],
      [33n, "its receiver and auditor PCTs carry different tags"],
      // gamma pays out to OTHER only from block 50.
      [34n, "no provider paying out to its receiver has its tag's provider slot"],
      [60n, "no provider paying out to its receiver has its tag's provider slot"],
    ]);
  });
});

describe("settlement", () => {
  it("a pricing change applies from the next pricing period, so earnings through a block never shrink", () => {
    const changes = [change(A, 1n, perCall(100n)), change(A, 5n, perCall(1n))];
    const batches = [batch(2n, JAN, [[A, 10n]]), batch(6n, JAN, [[A, 10n]]), batch(7n, FEB, [[A, 10n]])];
    const [c] = cyclesOf({ batches, providerChanges: changes });
    // January at 100 per call (20 calls), February at 1 (10 calls), 10% fee.
    expect(c!.earnedThrough.get(A)).toBe(1800n + 9n);
  });

  it("a cycle's pool is what the pool received in its blocks, split over the free usage committed in them", () => {
    const changes = [change(A, 1n, pool(1)), change(B, 1n, pool(3))];
    const batches = [
      batch(2n, JAN, [[A, 1n]]),
      batch(12n, JAN, [
        [A, 1n],
        [B, 1n],
      ]),
    ];
    const fees = [
      { amount: 1000n, blockNumber: 3n, logIndex: 0, timestamp: BigInt(JAN / 1000) },
      { amount: 400n, blockNumber: 11n, logIndex: 0, timestamp: BigInt(JAN / 1000) },
    ];
    const [c1, c2] = cyclesOf({
      batches,
      providerChanges: changes,
      poolFees: fees,
      boundaries: [
        { cycle: 1, throughBlock: 10n },
        { cycle: 2, throughBlock: 20n },
      ],
    });
    // Cycle 1: 1000 − 10% = 900; a reserve withheld, the rest to A alone.
    const r1 = poolReserve(secret, 1, 900n);
    expect(c1).toMatchObject({ poolMicro: 1000n, poolFeeMicro: 100n, carriedInMicro: 0n, carriedOutMicro: r1, splitMicro: 900n - r1 });
    expect(c1!.earnedThrough).toEqual(new Map([[A, 900n - r1]]));
    // Cycle 2: 400 − 10% = 360 plus cycle 1's reserve, less its own, split 1 : 3.
    const r2 = poolReserve(secret, 2, 360n);
    expect(c2).toMatchObject({ poolMicro: 400n, carriedInMicro: r1, carriedOutMicro: r2, splitMicro: 360n + r1 - r2 });
    const shares = allocatePool(
      360n + r1 - r2,
      new Map([
        [A, 1n],
        [B, 3n],
      ]),
    );
    expect(c2!.earnedThrough.get(A)).toBe(900n - r1 + shares.get(A)!);
    expect(c2!.earnedThrough.get(B)).toBe(shares.get(B));
  });

  it("the calls' levy (paid beyond their price) joins the pool of the cycle that commits them, under the fee: in = out + fee", () => {
    // alpha per-call at 10: 4 calls billed 40, paid 4 × (10 + 2) = 48, levy 8. beta free: 2 calls paid the surcharge only, levy 4.
    // A server that took less than the price has no levy: its provider is still owed the price.
    const changes = [change(A, 1n, perCall(10n)), change(B, 1n, pool(1))];
    const batches = [
      batch(2n, JAN, [
        [A, 4n, 40n, 48n],
        [B, 2n, 0n, 4n],
      ]),
      batch(3n, JAN, [[A, 1n, 10n, 7n]]),
    ];
    const [c1] = cyclesOf({ batches, providerChanges: changes });
    expect(c1).toMatchObject({ poolMicro: 0n, levyMicro: 12n, callRevenueMicro: 59n, usageMicro: 50n, usageFeeMicro: 5n });
    // The levy pays the pool's fee (10% of 12, floored), and the rest less the reserve goes to the free usage.
    const r1 = poolReserve(secret, 1, 11n);
    expect(c1).toMatchObject({ poolFeeMicro: 1n, carriedOutMicro: r1, splitMicro: 11n - r1 });
    expect(c1!.earnedThrough).toEqual(
      new Map([
        [A, 45n],
        [B, 11n - r1],
      ]),
    );
    const flow = cycleMoneyFlow(c1!, { paidMicro: 45n + 11n - r1, depositedMicro: 59n });
    expect(flow).toMatchObject({ levyMicro: 12n, callRevenueMicro: 59n, platformFeeMicro: 6n, ok: true });
    // Every billed call paid: what the calls brought in is what was paid, the fee and the carry (less the short payment of 3).
    expect(flow.callRevenueMicro + 3n).toBe(flow.paidMicro + flow.platformFeeMicro + flow.carriedOutMicro);
    // Lines without revenue (calls not paid through x402, or format version 1) add no levy.
    const [unpaid] = cyclesOf({ batches: [batch(2n, JAN, [[A, 4n, 40n, 0n]])], providerChanges: changes });
    expect(unpaid).toMatchObject({ levyMicro: 0n, callRevenueMicro: 0n, usageMicro: 40n });
  });

  it("docs/revenue.md's worked example: weather 10 paid calls, wiki 4, maps 3, at a 300 surcharge and a 10% fee", () => {
    const W = providerIdOf("weather") as ProviderId;
    const WIKI = providerIdOf("wiki") as ProviderId;
    const MAPS = providerIdOf("maps") as ProviderId;
    const changes = [change(W, 1n, perCall(2_000n)), change(WIKI, 1n, pool(1)), change(MAPS, 1n, pool(2))];
    const batches = [
      batch(2n, JAN, [
        [W, 10n, 20_000n, 23_000n],
        [WIKI, 4n, 0n, 1_200n],
        [MAPS, 3n, 0n, 900n],
      ]),
    ];
    const [c] = cyclesOf({ batches, providerChanges: changes, serverBindings: [binding(W), binding(WIKI), binding(MAPS)] });
    expect(c).toMatchObject({
      callRevenueMicro: 25_100n,
      usageMicro: 20_000n,
      usageFeeMicro: 2_000n,
      levyMicro: 5_100n,
      poolFeeMicro: 510n,
    });
    const reserve = poolReserve(secret, 1, 4_590n);
    expect(c!.carriedOutMicro).toBe(reserve);
    // 4,590 less the reserve, split 4 : 6 by billable calls × pool weight (largest remainder).
    const shares = allocatePool(
      4_590n - reserve,
      new Map([
        [WIKI, 4n],
        [MAPS, 6n],
      ]),
    );
    expect(c!.earnedThrough).toEqual(
      new Map(
        [
          [W, 18_000n],
          [WIKI, shares.get(WIKI)!],
          [MAPS, shares.get(MAPS)!],
        ].sort((a, b) => (a[0]! < b[0]! ? -1 : 1)) as [ProviderId, bigint][],
      ),
    );
    // With no reserve (R = 0) the shares are the document's 1,836 and 2,754.
    expect(
      allocatePool(
        4_590n,
        new Map([
          [WIKI, 4n],
          [MAPS, 6n],
        ]),
      ),
    ).toEqual(
      new Map([
        [WIKI, 1_836n],
        [MAPS, 2_754n],
      ]),
    );
    const paid = 18_000n + shares.get(WIKI)! + shares.get(MAPS)!;
    expect(cycleMoneyFlow(c!, { paidMicro: paid, depositedMicro: 25_100n })).toMatchObject({ platformFeeMicro: 2_510n, ok: true });
    expect(25_100n).toBe(paid + 2_510n + reserve);
  });

  it("the reserve is uniform over [0, the cycle's own pool after fee], the operator's and the auditor's secret, and different every cycle", () => {
    // Both derive the same secret from their own key; a competitor's key gives another.
    expect(poolSecret(AUDITOR_SK, mulBase(OPERATOR_SK))).toBe(secret);
    expect(poolSecret(55555n, mulBase(AUDITOR_SK))).not.toBe(secret);
    const reserves = Array.from({ length: 400 }, (_, i) => poolReserve(secret, i + 1, 1_000_000n));
    expect(reserves.every((r) => r >= 0n && r <= 1_000_000n)).toBe(true);
    expect(new Set(reserves).size).toBe(400);
    // Uniform: about a quarter in each quarter of the range (400 draws, each count within 100 ± 40).
    for (let q = 0n; q < 4n; q++) {
      const n = reserves.filter((r) => r >= q * 250_000n && r < (q + 1n) * 250_000n).length;
      expect(n, `quarter ${q}`).toBeGreaterThan(60);
      expect(n, `quarter ${q}`).toBeLessThan(140);
    }
    expect(poolReserve(secret, 1, 0n)).toBe(0n);
  });

  it("a cycle without free-pool usage carries its whole pool to the next; over any history nothing is lost or created", () => {
    const changes = [change(A, 1n, pool(2)), change(B, 1n, pool(1))];
    let seed = 7;
    const rand = (n: number) => (seed = (seed * 1103515245 + 12345) % 2 ** 31) % n;
    for (let run = 0; run < 40; run++) {
      const boundaries = Array.from({ length: 1 + rand(6) }, (_, i) => ({ cycle: i + 1, throughBlock: BigInt(10 * (i + 1)) }));
      const fees = boundaries.flatMap((b) =>
        rand(4) === 0
          ? []
          : [{ amount: BigInt(rand(5_000_000)), blockNumber: b.throughBlock - 5n, logIndex: 0, timestamp: BigInt(JAN / 1000) }],
      );
      const batches = boundaries.flatMap((b) =>
        rand(3) === 0
          ? []
          : [
              batch(b.throughBlock - 2n, JAN, [
                [A, BigInt(rand(5))],
                [B, BigInt(1 + rand(5))],
              ]),
            ],
      );
      const cycles = cyclesOf({ batches, providerChanges: changes, poolFees: fees, boundaries });
      let afterFee = 0n;
      for (const [i, c] of cycles.entries()) {
        afterFee += c.poolMicro - c.poolFeeMicro;
        expect(c.carriedInMicro).toBe(i === 0 ? 0n : cycles[i - 1]!.carriedOutMicro);
        if (!batches.some((b) => b.blockNumber > c.afterBlock && b.blockNumber <= c.throughBlock)) expect(c.splitMicro).toBe(0n);
      }
      const last = cycles.at(-1)!;
      const earned = [...last.earnedThrough.values()].reduce((a, b) => a + b, 0n);
      // Everything the pool took in after its fee is either earned by now or carried forward.
      expect(earned + last.carriedOutMicro, `run ${run}`).toBe(afterFee);
    }
  });

  it("the payouts of one cycle must agree on its boundary", () => {
    expect(() => boundariesOf([payout(1, 10n, A, 1n, 11n), payout(1, 11n, B, 1n, 12n)])).toThrow(CycleBoundaryConflictError);
  });

  it("an interrupted cycle is finished under its own boundary; an overpaid provider stops everything", () => {
    const changes = [change(A, 1n, perCall(10n)), change(B, 1n, perCall(10n))];
    const batches = [
      batch(2n, JAN, [
        [A, 1n],
        [B, 1n],
      ]),
      batch(15n, JAN, [[A, 1n]]),
    ];
    const args = {
      batches,
      serverBindings: BOUND,
      providerChanges: changes,
      poolFees: [],
      amountOf,
      schedule,
      poolSecret: poolSecretOf,
      through: 20n,
    };
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
    const earnings = cyclesOf({ batches, providerChanges: changes });
    expect(reconcileCycles(earnings, paymentsByCycle([payout(1, 10n, A, 9n, 11n)], amountOf))[0]!.ok).toBe(true);
    expect(reconcileCycles(earnings, paymentsByCycle([payout(1, 10n, A, 8n, 11n)], amountOf))[0]).toMatchObject({
      owedMicro: 9n,
      paidMicro: 8n,
      ok: false,
    });
    const split = [payout(1, 10n, A, 4n, 11n), payout(1, 10n, A, 5n, 12n)];
    expect(reconcileCycles(earnings, paymentsByCycle(split, amountOf))[0]).toMatchObject({ paidMicro: 9n, transfers: 2, ok: false });
    // Nothing owed to B: one zero-amount transfer (the agent's padding) is fine, two are not, nor any amount.
    const padded = (b: Payout[]) =>
      reconcileCycles(earnings, paymentsByCycle([payout(1, 10n, A, 9n, 11n), ...b], amountOf)).find((r) => r.providerId === B);
    expect(padded([payout(1, 10n, B, 0n, 12n)])).toMatchObject({ owedMicro: 0n, paidMicro: 0n, transfers: 1, ok: true });
    expect(padded([payout(1, 10n, B, 0n, 12n), payout(1, 10n, B, 0n, 13n)])).toMatchObject({ transfers: 2, ok: false });
    expect(padded([payout(1, 10n, B, 1n, 12n)])).toMatchObject({ owedMicro: 0n, paidMicro: 1n, ok: false });
  });
});

describe("which lines settlement counts: server bindings, caps and line commitments", () => {
  const OTHER_SERVER = "0x00000000000000000000000000000000000000cc" as Address;
  const changes = [change(A, 1n, perCall(10n)), change(B, 1n, perCall(10n))];
  const earned = (c: { earnedThrough: Map<ProviderId, bigint> } | undefined) => Object.fromEntries(c!.earnedThrough);

  it("ignores, and reports, the lines of a server for a provider it was not bound to at the batch's commit", () => {
    const batches = [
      batch(2n, JAN, [
        [A, 3n],
        [B, 5n],
      ]),
      batch(6n, JAN, [[B, 2n]]),
    ];
    // Bound to A from genesis; to B only from block 4 (after the first batch), and unbound again at block 8.
    const serverBindings = [binding(A), binding(B, 4n), binding(B, 8n, { bound: false })];
    const [c] = cyclesOf({ batches, providerChanges: changes, serverBindings });
    expect(earned(c)).toEqual({ [A]: 27n, [B]: 18n });
    const { alerts } = admitLines(batches, serverBindings, schedule);
    expect(alerts).toEqual([
      expect.objectContaining({ reason: "unbound", providerId: B, billableCalls: 5n, admittedCalls: 0n, blockNumber: 2n, period: 202601 }),
    ]);
    // A binding of another server does not count for this one; a server with no binding counts nothing.
    expect(earned(cyclesOf({ batches, providerChanges: changes, serverBindings: [binding(A, 0n, { server: OTHER_SERVER })] })[0])).toEqual(
      {},
    );
    expect(earned(cyclesOf({ batches, providerChanges: changes, serverBindings: [] })[0])).toEqual({});
    expect(admitLines(batches, [], schedule).alerts.map((a) => a.reason)).toEqual(["unbound", "unbound", "unbound"]);
    // The operator's view reports the same alerts, for the batches through its block.
    const state = ledgerState({
      batches,
      serverBindings,
      providerChanges: changes,
      poolFees: [],
      payouts: [],
      amountOf,
      schedule,
      poolSecret: poolSecretOf,
      through: 10n,
    });
    expect(state.alerts).toEqual(alerts);
    expect(state.next!.due).toEqual(
      new Map([
        [A, 27n],
        [B, 18n],
      ]),
    );
  });

  it("bills at most the caps: per batch, and per pricing period over the server's batches, in chain order", () => {
    const batches = [
      batch(2n, JAN, [[A, 7n, 70n, 91n]]),
      batch(3n, JAN, [[A, 4n, 40n, 40n]]),
      batch(4n, JAN, [[A, 4n, 40n, 40n]]),
      batch(5n, FEB, [[A, 6n, 60n, 60n]]),
    ];
    // At most 5 billable calls per batch and 8 per month.
    const serverBindings = [binding(A, 0n, { perBatch: 5n, perPeriod: 8n })];
    const [c] = cyclesOf({ batches, providerChanges: changes, serverBindings });
    // January: 5 (of 7) + 3 (of 4, the month's cap) + 0 (of 4); February: 5 (of 6). 13 calls at 10, less 10%.
    expect(earned(c)).toEqual({ [A]: 117n });
    expect(c!.billableCalls).toEqual(new Map([[A, 13n]]));
    // A capped line's revenue is cut in proportion (rounded down): 91 × 5/7 = 65, 40 × 3/4 = 30, 0, 60 × 5/6 = 50.
    expect(c!.callRevenueMicro).toBe(65n + 30n + 50n);
    const { alerts, batches: admitted } = admitLines(batches, serverBindings, schedule);
    expect(alerts.map((a) => [a.reason, a.period, a.billableCalls, a.admittedCalls])).toEqual([
      ["capped", 202601, 7n, 5n],
      ["capped", 202601, 4n, 3n],
      ["capped", 202601, 4n, 0n],
      ["capped", 202602, 6n, 5n],
    ]);
    expect(admitted.map((b) => b.lines)).toEqual([
      [{ providerId: A, calls: 7n, billableCalls: 5n, amountMicro: 50n, revenueMicro: 65n }],
      [{ providerId: A, calls: 4n, billableCalls: 3n, amountMicro: 30n, revenueMicro: 30n }],
      [],
      [{ providerId: A, calls: 6n, billableCalls: 5n, amountMicro: 50n, revenueMicro: 50n }],
    ]);
    // The caps in force at each batch apply: raised from block 4 on, the last two batches count in full (5 + 3 + 4 + 6 calls).
    const raised = [...serverBindings, binding(A, 4n, { perBatch: 100n, perPeriod: 100n })];
    expect(earned(cyclesOf({ batches, providerChanges: changes, serverBindings: raised })[0])).toEqual({ [A]: 162n });
    // Caps are per server: another server's batches have their own.
    const second = { ...batch(3n, JAN, [[A, 4n]]), server: OTHER_SERVER };
    const both = [...serverBindings, binding(A, 0n, { server: OTHER_SERVER, perBatch: 2n })];
    expect(earned(cyclesOf({ batches: [batches[0]!, second], providerChanges: changes, serverBindings: both })[0])).toEqual({
      [A]: 63n,
    });
  });

  it("ignores, and reports, a line whose reader's copy disagrees with the line's commitment", () => {
    const forged = batch(2n, JAN, [
      [A, 3n],
      [B, 50n],
    ]);
    const batches = [{ ...forged, lines: forged.lines.map((l) => (l.providerId === B ? { ...l, copyMismatch: true as const } : l)) }];
    const [c] = cyclesOf({ batches, providerChanges: changes });
    expect(earned(c)).toEqual({ [A]: 27n });
    expect(admitLines(batches, BOUND, schedule).alerts).toEqual([
      expect.objectContaining({ reason: "copy-mismatch", providerId: B, billableCalls: 50n, admittedCalls: 0n }),
    ]);
  });

  it("ignores, and reports, lines of a format before version 3, whose copies cannot be checked", () => {
    const v3 = batch(2n, JAN, [[A, 3n]]);
    const v2 = { ...batch(3n, JAN, [[A, 4n]]), encryptedLines: `0x${"2".padStart(64, "0")}` as Hex };
    expect(earned(cyclesOf({ batches: [v3, v2], providerChanges: changes })[0])).toEqual({ [A]: 27n });
    expect(admitLines([v3, v2], BOUND, schedule).alerts).toEqual([
      expect.objectContaining({ reason: "unchecked-format", batchId: v2.batchId, billableCalls: 4n, admittedCalls: 0n }),
    ]);
  });
});

describe("settlement settings recorded over time", () => {
  const at = (y: number, m: number, d: number, h = 0) => BigInt(Date.UTC(y, m, d, h) / 1000);
  const record = (blockNumber: bigint, feeBps: number, periodUnit: "month" | "day", effectiveFrom: bigint): SettlementRecord => ({
    feeBps,
    periodUnit,
    effectiveFrom,
    blockNumber,
    logIndex: 0,
  });
  const GENESIS = record(1n, 1000, "month", 0n);
  const cyclesUnder = (records: SettlementRecord[], facts: Parameters<typeof cyclesOf>[0]) =>
    cycleEarnings({
      serverBindings: BOUND,
      poolFees: [],
      boundaries: [{ cycle: 1, throughBlock: 10n }],
      ...facts,
      schedule: settlementSchedule(records),
      poolSecret: poolSecretOf,
    });

  it("a record starts at the next period start under both its unit and the unit before it; a later one at the same start replaces it", () => {
    const schedule = settlementSchedule([
      GENESIS,
      record(2n, 500, "month", at(2026, 0, 20)), // mid-January, monthly: from 1 February
      record(3n, 500, "day", at(2026, 1, 3)), // months to days on 3 February: from 1 March, February is not cut
      record(4n, 700, "day", at(2026, 2, 5)), // days to days: from its own day
      record(5n, 700, "month", at(2026, 2, 9)), // days to months: from 1 April
    ]);
    expect(schedule.map((t) => t.startsAt)).toEqual([0n, at(2026, 1, 1), at(2026, 2, 1), at(2026, 2, 5), at(2026, 3, 1)]);
    expect(termAt(schedule, at(2026, 0, 31, 23)).index).toBe(0);
    expect(termAt(schedule, at(2026, 1, 28, 23)).index).toBe(1);
    expect(termAt(schedule, at(2026, 2, 4, 23)).index).toBe(2);
    expect(termAt(schedule, at(2026, 2, 31, 23)).index).toBe(3);
    expect(termAt(schedule, at(2026, 3, 1)).index).toBe(4);
    // Two changes for the same next period: the later one is the one that applies.
    const replaced = settlementSchedule([GENESIS, record(2n, 300, "month", at(2026, 0, 20)), record(3n, 200, "month", at(2026, 0, 25))]);
    expect(termAt(replaced, at(2026, 1, 1)).feeBps).toBe(200);
    // Records a block has not seen yet do not apply to it.
    expect(termAt(replaced, at(2026, 1, 1), { blockNumber: 2n, logIndex: 0 }).feeBps).toBe(300);
  });

  it("nothing settles before the first record starts, nor without any record; the first counts from genesis, whatever its block", () => {
    // A pool payment may predate the deployment's first record (the fee token is older): it is settled under it.
    expect(termAt(settlementSchedule([record(9n, 1000, "month", 0n)]), at(2026, 0, 1), { blockNumber: 2n, logIndex: 0 }).index).toBe(0);
    const late = settlementSchedule([record(1n, 1000, "month", at(2026, 0, 1))]);
    expect(() => termAt(late, at(2025, 11, 31, 23))).toThrow(NoSettlementInForceError);
    expect(() => termAt(settlementSchedule([]), at(2026, 0, 1))).toThrow(NoSettlementInForceError);
    expect(() => cyclesUnder([], { batches: [batch(2n, JAN, [[A, 1n]])], providerChanges: [change(A, 1n, perCall(1n))] })).toThrow(
      NoSettlementInForceError,
    );
  });

  it("a fee change recorded mid-period applies from the next period", () => {
    const records = [GENESIS, record(4n, 500, "month", at(2026, 0, 20))];
    const batches = [
      batch(2n, JAN, [[A, 10n]]),
      batch(6n, JAN, [[A, 10n]]),
      batch(7n, Date.UTC(2026, 0, 25), [[A, 10n]]), // after effectiveFrom, but January had started
      batch(8n, FEB, [[A, 10n]]),
    ];
    const [c] = cyclesUnder(records, { batches, providerChanges: [change(A, 1n, perCall(100n))] });
    // January: 30 calls × 100 = 3000 − 10% = 2700; February: 1000 − 5% = 950.
    expect(c!.earnedThrough.get(A)).toBe(2700n + 950n);
  });

  it("a change from monthly to daily periods applies from the next month, where the free quota restarts every day", () => {
    const records = [GENESIS, record(3n, 1000, "day", at(2026, 0, 20))];
    const batches = [
      batch(2n, JAN, [[B, 4n]]),
      batch(4n, Date.UTC(2026, 0, 25), [[B, 4n]]),
      batch(5n, Date.UTC(2026, 1, 1, 10), [[B, 4n]]),
      batch(6n, Date.UTC(2026, 1, 2, 10), [[B, 4n]]),
      batch(7n, Date.UTC(2026, 1, 2, 11), [[B, 3n]]),
    ];
    const [c] = cyclesUnder(records, { batches, providerChanges: [change(B, 1n, freeQuotaThenPerCall(5n, 100n))] });
    // January, one month: 8 calls, 5 free, 3 × 100 = 300 − 10% = 270. 1 February: 4 calls, all free.
    // 2 February: 7 calls, 5 free, 2 × 100 = 200 − 10% = 180.
    expect(c!.earnedThrough.get(B)).toBe(270n + 180n);
  });

  it("pool payments pay the fee of the record in force at their block's timestamp", () => {
    const records = [GENESIS, record(2n, 500, "month", at(2026, 0, 20))];
    const fees = [
      { amount: 1000n, blockNumber: 4n, logIndex: 0, timestamp: at(2026, 0, 25) },
      { amount: 400n, blockNumber: 5n, logIndex: 0, timestamp: at(2026, 1, 2) },
    ];
    const [c] = cyclesUnder(records, { batches: [batch(3n, JAN, [[A, 1n]])], providerChanges: [change(A, 1n, pool(1))], poolFees: fees });
    // January's payment at 10% (the change starts in February): 100; February's at 5%: 20.
    expect(c).toMatchObject({ poolMicro: 1400n, poolFeeMicro: 120n });
  });

  it("earnings through a block never shrink when a change is recorded after it, even for a batch from a clock running ahead", () => {
    const changes = [change(A, 1n, perCall(100n))];
    const early = [batch(2n, JAN, [[A, 10n]]), batch(8n, Date.UTC(2026, 1, 1), [[A, 10n]])];
    const later = [batch(13n, FEB, [[A, 10n]]), batch(15n, Date.UTC(2026, 2, 2), [[A, 10n]])];
    const boundaries = [
      { cycle: 1, throughBlock: 10n },
      { cycle: 2, throughBlock: 20n },
    ];
    const before = cyclesUnder([GENESIS], { batches: early, providerChanges: changes, boundaries: [boundaries[0]!] });
    // January and February (the batch at block 8) at 10%: 900 + 900.
    expect(before[0]!.earnedThrough.get(A)).toBe(1800n);
    // At block 12 (chain time still in January) the fee goes to 20% from 1 February. February's first
    // line, at block 8, was settled before the change, so February keeps its 10%; March pays 20%.
    const after = cyclesUnder([GENESIS, record(12n, 2000, "month", at(2026, 1, 1))], {
      batches: [...early, ...later],
      providerChanges: changes,
      boundaries,
    });
    expect(after[0]!.earnedThrough).toEqual(before[0]!.earnedThrough);
    // Cycle 2: February's 20 calls at 10% (1800 in all), March's 10 at 20% (800).
    expect(after[1]!.earnedThrough.get(A)).toBe(900n + 1800n + 800n);
  });
});

describe("funding the payers from the revenue pool", () => {
  it("splits the pool evenly over the payers, the remainder to the first, and the parts sum to the pool", () => {
    expect(splitEvenly(1_000_000n, 1)).toEqual([1_000_000n]);
    // 1,000,001 over 3: 333,333 each, the first 2 more.
    expect(splitEvenly(1_000_001n, 3)).toEqual([333_335n, 333_333n, 333_333n]);
    // Fewer micro-USDC than payers: all of it to the first, nothing to the others.
    expect(splitEvenly(2n, 5)).toEqual([2n, 0n, 0n, 0n, 0n]);
    expect(splitEvenly(0n, 2)).toEqual([0n, 0n]);
  });

  it("split for any pool and payer count: parts sum to the pool, differ by less than the payer count, the first the largest", () => {
    let seed = 0x5eedn;
    const next = (bound: bigint) => {
      seed = (seed * 6364136223846793005n + 1442695040888963407n) % 2n ** 64n;
      return seed % bound;
    };
    for (let i = 0; i < 500; i++) {
      const pool = next(10n ** 12n);
      const payers = Number(next(9n)) + 1;
      const parts = splitEvenly(pool, payers);
      expect(parts).toHaveLength(payers);
      expect(parts.reduce((a, b) => a + b, 0n)).toBe(pool);
      for (const part of parts.slice(1)) expect(part).toBe(pool / BigInt(payers));
      expect(parts[0]! - parts.at(-1)!).toBeLessThan(BigInt(payers));
    }
  });

  it("refuses a split over no payer or of a negative amount", () => {
    expect(() => splitEvenly(1n, 0)).toThrow(/at least one payer/);
    expect(() => splitEvenly(-1n, 2)).toThrow(/non-negative/);
  });
});

describe("money flow", () => {
  // alpha sells calls at 10 micro-USDC, beta shares the free pool; 10% platform fee throughout.
  const changes = [change(A, 1n, perCall(10n)), change(B, 1n, pool(1))];
  const batches = [
    batch(2n, JAN, [
      [A, 7n],
      [B, 3n],
    ]),
    batch(12n, JAN, [[A, 3n]]),
  ];
  const fees = [
    { amount: 1000n, blockNumber: 3n, logIndex: 0, timestamp: BigInt(JAN / 1000) },
    { amount: 205n, blockNumber: 11n, logIndex: 0, timestamp: BigInt(JAN / 1000) },
    // After the last boundary: received, not settled yet.
    { amount: 50n, blockNumber: 21n, logIndex: 0, timestamp: BigInt(JAN / 1000) },
  ];
  const earnings = cyclesOf({
    batches,
    providerChanges: changes,
    poolFees: fees,
    boundaries: [
      { cycle: 1, throughBlock: 10n },
      { cycle: 2, throughBlock: 20n },
    ],
  });
  const [c1, c2] = earnings as [(typeof earnings)[0], (typeof earnings)[0]];
  const r1 = poolReserve(secret, 1, 900n);

  it("a cycle settles per-call usage gross, with its fee, and the pool: in = paid + platform fee + carry, to the micro", () => {
    // Cycle 1: alpha 7 × 10 = 70 billed, fee 7, 63 paid; the pool 1000, fee 100, beta splits 900 less the reserve.
    expect(c1).toMatchObject({ usageMicro: 70n, usageFeeMicro: 7n, poolMicro: 1000n, poolFeeMicro: 100n, carriedOutMicro: r1 });
    const paid1 = 63n + (900n - r1);
    expect(cycleMoneyFlow(c1, { paidMicro: paid1, depositedMicro: 1000n })).toEqual({
      feesMicro: 1000n,
      callRevenueMicro: 0n,
      usageMicro: 70n,
      levyMicro: 0n,
      depositedMicro: 1000n,
      paidMicro: paid1,
      platformFeeMicro: 107n,
      carriedInMicro: 0n,
      carriedOutMicro: r1,
      deferredInMicro: 0n,
      deferredOutMicro: 0n,
      unsettledMicro: 0n,
      differenceMicro: 0n,
      ok: true,
    });
    // Cycle 2: alpha 3 more calls, 30 billed, fee 3; the pool 205, fee 20 (floor of 20.5); no free usage: all of it carried.
    expect(c2).toMatchObject({ usageMicro: 30n, usageFeeMicro: 3n, poolFeeMicro: 20n, carriedInMicro: r1, carriedOutMicro: 185n + r1 });
    expect(cycleMoneyFlow(c2, { paidMicro: 27n, depositedMicro: 0n })).toMatchObject({
      platformFeeMicro: 23n,
      differenceMicro: 0n,
      ok: true,
    });
  });

  it("a micro-USDC paid too much or too little, or kept, is a mismatch by exactly that amount", () => {
    expect(cycleMoneyFlow(c2, { paidMicro: 28n, depositedMicro: 0n })).toMatchObject({ differenceMicro: -1n, ok: false });
    expect(cycleMoneyFlow(c2, { paidMicro: 26n, depositedMicro: 0n })).toMatchObject({ differenceMicro: 1n, ok: false });
    // Deposits are shown, not counted: they carry the pool's fees and the operator's own money alike.
    expect(cycleMoneyFlow(c2, { paidMicro: 27n, depositedMicro: 999n }).ok).toBe(true);
  });

  it("over all cycles: every fee received = paid + platform fees + the last carry + the fees after the last boundary", () => {
    const paid = 63n + (900n - r1) + 27n;
    const total = totalMoneyFlow(earnings, { feesMicro: 1255n, depositedMicro: 1205n, paidMicro: paid });
    // 1255 + 100 = (90 + 900 − r1) + (107 + 23) + (185 + r1) + 50.
    expect(total).toEqual({
      feesMicro: 1255n,
      callRevenueMicro: 0n,
      usageMicro: 100n,
      levyMicro: 0n,
      depositedMicro: 1205n,
      paidMicro: paid,
      platformFeeMicro: 130n,
      carriedInMicro: 0n,
      carriedOutMicro: 185n + r1,
      deferredInMicro: 0n,
      deferredOutMicro: 0n,
      unsettledMicro: 50n,
      differenceMicro: 0n,
      ok: true,
    });
    expect(totalMoneyFlow(earnings, { feesMicro: 1255n, depositedMicro: 0n, paidMicro: paid - 1n })).toMatchObject({
      differenceMicro: 1n,
      ok: false,
    });
  });
});

describe("reconciliation: a deferred payout against a short one", () => {
  // alpha and beta sell calls at 10 micro-USDC, 10% fee: each earns 9 per call. One call each in
  // cycle 1 (blocks ..10), one more each in cycle 2 (..20). alpha is paid in every cycle; beta
  // is paid nothing in cycle 1 and 18 (both calls) in cycle 2. The eERC caps queues at 300.
  const CAP = 300n;
  const changes = [change(A, 1n, perCall(10n)), change(B, 1n, perCall(10n))];
  const batches = [
    batch(2n, JAN, [
      [A, 1n],
      [B, 1n],
    ]),
    batch(12n, JAN, [
      [A, 1n],
      [B, 1n],
    ]),
  ];
  const earnings = cyclesOf({
    batches,
    providerChanges: changes,
    boundaries: [
      { cycle: 1, throughBlock: 10n },
      { cycle: 2, throughBlock: 20n },
    ],
  });
  const cycle1 = [payout(1, 10n, A, 9n, 11n)];
  const cycle2 = [payout(2, 20n, A, 9n, 21n), payout(2, 20n, B, 18n, 22n)];
  /** beta's queue right after cycle 1's last payout transfer (alpha's, block 11). */
  const queue = (pendingPCTs: bigint): Map<string, QueueReading> =>
    new Map([[queueKey(1, B), { account: OTHER, tokenId: 1n, pendingPCTs, blockNumber: 11n, logIndex: 0, txHash: cycle1[0]!.txHash }]]);
  const rowsOf = (payouts: Payout[], pendingCap: bigint | null, queues: Map<string, QueueReading>) =>
    reconcileCycles(earnings, paymentsByCycle(payouts, amountOf), { pendingCap, queues });
  const flowsOf = (rows: ReturnType<typeof rowsOf>, paid: bigint[]) =>
    earnings.map((e, i) =>
      cycleMoneyFlow(e, { paidMicro: paid[i]!, depositedMicro: 0n, ...deferredOf(rows.filter((r) => r.cycle === e.cycle)) }),
    );

  it("the rule: nothing paid to a queue holding the cap is deferred; any other shortfall is short", () => {
    const unpaid = { owedMicro: 9n, paidMicro: 0n, transfers: 0 };
    expect(payoutStatus(unpaid, { pendingPCTs: 300n }, CAP)).toBe("deferred");
    expect(payoutStatus(unpaid, { pendingPCTs: 301n }, CAP)).toBe("deferred");
    // A queue below the cap could take the credit; no known cap, or no reading, verifies nothing.
    expect(payoutStatus(unpaid, { pendingPCTs: 299n }, CAP)).toBe("short");
    expect(payoutStatus(unpaid, { pendingPCTs: 300n }, null)).toBe("short");
    expect(payoutStatus(unpaid, null, CAP)).toBe("short");
    // Part paid is short whatever the queue: a full queue takes no credit at all.
    expect(payoutStatus({ owedMicro: 9n, paidMicro: 5n, transfers: 1 }, { pendingPCTs: 300n }, CAP)).toBe("short");
    expect(payoutStatus({ owedMicro: 9n, paidMicro: 9n, transfers: 1 }, null, CAP)).toBe("ok");
    expect(payoutStatus({ owedMicro: 9n, paidMicro: 9n, transfers: 2 }, null, CAP)).toBe("split");
    expect(payoutStatus({ owedMicro: 9n, paidMicro: 10n, transfers: 1 }, null, CAP)).toBe("overpaid");
    expect(payoutStatus({ owedMicro: 0n, paidMicro: 0n, transfers: 1 }, null, CAP)).toBe("ok");
  });

  it("a deferred cycle balances with what it owes carried; the cycle that pays it shows the carry settled", () => {
    const rows = rowsOf([...cycle1, ...cycle2], CAP, queue(300n));
    expect(rows.map((r) => [r.cycle, r.providerId, r.owedMicro, r.paidMicro, r.status, r.deferredInMicro, r.settledInCycle])).toEqual([
      [1, A, 9n, 9n, "ok", 0n, null],
      [1, B, 9n, 0n, "deferred", 0n, 2],
      [2, A, 9n, 9n, "ok", 0n, null],
      // Owed is cumulative: the 9 deferred in cycle 1 and the 9 earned in cycle 2.
      [2, B, 18n, 18n, "ok", 9n, null],
    ]);
    expect(rows.every((r) => r.ok)).toBe(true);
    expect(rows[1]!.queue).toMatchObject({ pendingPCTs: 300n, blockNumber: 11n });
    // Cycle 1: usage 20 = paid 9 + fee 2 + deferred out 9. Cycle 2: usage 20 + deferred in 9 = paid 27 + fee 2.
    const [f1, f2] = flowsOf(rows, [9n, 27n]);
    expect(f1).toMatchObject({ usageMicro: 20n, paidMicro: 9n, platformFeeMicro: 2n, deferredInMicro: 0n, deferredOutMicro: 9n, ok: true });
    expect(f2).toMatchObject({
      usageMicro: 20n,
      paidMicro: 27n,
      platformFeeMicro: 2n,
      deferredInMicro: 9n,
      deferredOutMicro: 0n,
      ok: true,
    });
    expect(totalMoneyFlow(earnings, { feesMicro: 0n, depositedMicro: 0n, paidMicro: 36n })).toMatchObject({
      differenceMicro: 0n,
      ok: true,
    });
  });

  it("nothing paid while the queue was below the cap, or with no cap known, is short, and both cycles' books are off by it", () => {
    for (const [pendingCap, pendingPCTs] of [
      [CAP, 299n],
      [null, 300n],
    ] as const) {
      const rows = rowsOf([...cycle1, ...cycle2], pendingCap, queue(pendingPCTs));
      expect(rows.find((r) => r.cycle === 1 && r.providerId === B)).toMatchObject({
        owedMicro: 9n,
        status: "short",
        ok: false,
        settledInCycle: null,
      });
      // The later payment is what beta was owed, but nothing was carried: it pays 9 more than the cycle released.
      expect(rows.find((r) => r.cycle === 2 && r.providerId === B)).toMatchObject({ owedMicro: 18n, status: "ok", deferredInMicro: 0n });
      expect(flowsOf(rows, [9n, 27n]).map((f) => f.differenceMicro)).toEqual([9n, -9n]);
    }
  });

  it("deferred again, the amount is carried on and stays owed in the total", () => {
    const unpaid = [...cycle1, cycle2[0]!];
    const queues = queue(300n);
    queues.set(queueKey(2, B), { ...queues.get(queueKey(1, B))!, blockNumber: 21n, txHash: cycle2[0]!.txHash });
    const rows = rowsOf(unpaid, CAP, queues);
    expect(
      rows.filter((r) => r.providerId === B).map((r) => [r.cycle, r.owedMicro, r.status, r.deferredInMicro, r.settledInCycle]),
    ).toEqual([
      [1, 9n, "deferred", 0n, null],
      [2, 18n, "deferred", 9n, null],
    ]);
    // Cycle 2: usage 20 + deferred in 9 = paid 9 + fee 2 + deferred out 18; in all: usage 40 = paid 18 + fee 4 + 18 still owed.
    expect(flowsOf(rows, [9n, 9n])[1]).toMatchObject({ deferredInMicro: 9n, deferredOutMicro: 18n, ok: true });
    expect(totalMoneyFlow(earnings, { feesMicro: 0n, depositedMicro: 0n, paidMicro: 18n, deferredMicro: 18n })).toMatchObject({
      differenceMicro: 0n,
      ok: true,
    });
  });
});
