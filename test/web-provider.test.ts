import type { Address, Hex } from "viem";
import { describe, expect, it } from "vitest";
import { randomScalar } from "../src/eerc/curve.js";
import { publicKeyOf } from "../src/eerc/keys.js";
import { encryptPCT } from "../src/eerc/pct.js";
import { decryptHistory } from "../src/history/decrypt.js";
import type { EarningsResponse } from "../src/history/types.js";
import { encodeTag } from "../src/payout/tag.js";
import { providerIdOf } from "../src/usage/registry.js";
import { earningsPerCycle, receivedPayouts } from "../web/src/provider.js";

// The dashboard's payouts per cycle: each incoming transfer labelled with the cycle its receiver
// PCT's nonce names, summed per cycle with the running total; a transfer without a payout tag is
// listed and never counted as paid.

const sk = randomScalar();
const account = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8" as Address;
const payer = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266" as Address;
const weather = providerIdOf("weather");
const tx = (n: number) => `0x${n.toString(16).padStart(64, "0")}` as Hex;

/** An incoming transfer of `amount` micro to the account, tagged as cycle `cycle`'s payout (untagged when null). */
function transfer(n: number, amount: bigint, cycle: number | null, tokenId = 1n) {
  const nonce = cycle === null ? 12345n : encodeTag({ cycle, throughBlock: BigInt(10 * (cycle || 1)), providerId: weather });
  return {
    from: payer,
    tokenId,
    blockNumber: BigInt(100 + n),
    txHash: tx(n),
    amountPCT: encryptPCT(amount, publicKeyOf(sk), { nonce }).pct,
  };
}

function response(transfers: ReturnType<typeof transfer>[]): EarningsResponse {
  return {
    account,
    publicKey: publicKeyOf(sk),
    tokens: [{ tokenId: 1n, tokenAddress: null }],
    balanceHistory: [],
    receivedTransfers: transfers,
    pending: null,
  };
}

describe("payouts per cycle", () => {
  it("sums each cycle's payouts in cycle order with the running total, leaving untagged transfers out", () => {
    // cycle 1: 2700; cycle 2: two payouts (two namespaces paying out to one account) 1000 + 800 = 1800;
    // cycle 3: 0 (a zero-amount payout to an idle provider); the untagged 500 is not a payout.
    const r = response([transfer(1, 2700n, 1), transfer(2, 500n, null), transfer(3, 1000n, 2), transfer(4, 800n, 2), transfer(5, 0n, 3)]);
    const received = receivedPayouts(r, decryptHistory(r, sk));
    expect(received.map((p) => [p.txHash, p.cycle, p.amountMicro])).toEqual([
      [tx(1), 1, 2700n],
      [tx(2), null, 500n],
      [tx(3), 2, 1000n],
      [tx(4), 2, 800n],
      [tx(5), 3, 0n],
    ]);
    expect(earningsPerCycle(received).map((c) => [c.cycle, c.throughBlock, c.transfers, c.amountMicro, c.cumulativeMicro])).toEqual([
      [1, 10n, 1, 2700n, 2700n],
      [2, 20n, 2, 1800n, 4500n],
      [3, 30n, 1, 0n, 4500n],
    ]);
  });

  it("keeps a running total per token", () => {
    const r = response([transfer(1, 100n, 1, 2n), transfer(2, 7n, 1), transfer(3, 5n, 2), transfer(4, 50n, 2, 2n)]);
    r.tokens.push({ tokenId: 2n, tokenAddress: null });
    const cycles = earningsPerCycle(receivedPayouts(r, decryptHistory(r, sk)));
    expect(cycles.map((c) => [c.tokenId, c.cycle, c.amountMicro, c.cumulativeMicro])).toEqual([
      [1n, 1, 7n, 7n],
      [1n, 2, 5n, 12n],
      [2n, 1, 100n, 100n],
      [2n, 2, 50n, 150n],
    ]);
  });
});
