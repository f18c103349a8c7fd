import { encodeErrorResult, parseAbi } from "viem";
import { describe, expect, it } from "vitest";
import { EncryptedERCAbi } from "../abis/EncryptedERCAbi.js";
import { classifyRevert, revertDataOf } from "../src/payout/reverts.js";

// How the payout pipeline reads a reverted transfer (`src/payout/reverts.ts`).

const ours = (errorName: string, args?: readonly unknown[]) => encodeErrorResult({ abi: EncryptedERCAbi, errorName, args } as never);
const full = encodeErrorResult({ abi: parseAbi(["error PendingHistoryLimitReached()"]), errorName: "PendingHistoryLimitReached" });

describe("classifyRevert", () => {
  it("a stale snapshot is a moved balance, a full queue a deferral, whatever the proof was made from", () => {
    for (const from of ["chain", "predicted"] as const) {
      expect(classifyRevert(ours("InvalidBalanceSnapshot"), from)).toEqual({ kind: "stale_snapshot", error: "InvalidBalanceSnapshot" });
      expect(classifyRevert(full, from)).toEqual({ kind: "receiver_full", error: "PendingHistoryLimitReached" });
    }
  });

  it("the audited contract's InvalidProof: a moved balance after a predicted one, unknown after a chain read", () => {
    expect(classifyRevert(ours("InvalidProof"), "predicted").kind).toBe("stale_snapshot");
    expect(classifyRevert(ours("InvalidProof"), "chain").kind).toBe("unknown");
  });

  it("any other error stops the payer, named with its arguments; no data is unknown", () => {
    const receiver = "0x00000000000000000000000000000000000000AA";
    expect(classifyRevert(ours("UserNotRegistered", [receiver]), "chain")).toEqual({
      kind: "other",
      error: `UserNotRegistered(${receiver})`,
    });
    expect(classifyRevert("0xdeadbeef", "predicted")).toEqual({ kind: "other", error: "undecoded revert data 0xdeadbeef" });
    expect(classifyRevert(undefined, "predicted").kind).toBe("unknown");
  });
});

describe("revertDataOf", () => {
  it("finds the revert data down a viem error's causes", () => {
    const data = ours("InvalidBalanceSnapshot");
    expect(revertDataOf({ message: "call failed", cause: { message: "rpc", cause: { data } } })).toBe(data);
    expect(revertDataOf({ cause: { raw: full, data: { errorName: "x" } } })).toBe(full);
    expect(revertDataOf({ cause: { data: { data } } })).toBe(data);
    expect(revertDataOf(new Error("network down"))).toBeUndefined();
  });
});
