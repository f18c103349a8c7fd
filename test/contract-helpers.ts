import { type Abi, type Account, type Address, BaseError, ContractFunctionRevertedError, type PublicClient } from "viem";
import { expect } from "vitest";

export type ExpectRevert = (
  from: Account | Address,
  address: Address,
  abi: Abi | readonly unknown[],
  functionName: string,
  args: readonly unknown[],
  errorName: string,
  errorArgs?: readonly unknown[],
) => Promise<void>;

/**
 * An `expectRevert(from, address, abi, functionName, args, errorName, errorArgs?)` on the client
 * `client()` returns: it simulates the call and asserts that it reverts with the named custom
 * error (and its arguments, when given).
 */
export function revertChecker(client: () => PublicClient): ExpectRevert {
  return async (from, address, abi, functionName, args, errorName, errorArgs) => {
    try {
      await client().simulateContract({ account: from, address, abi, functionName, args } as never);
    } catch (err) {
      const revert = err instanceof BaseError ? err.walk((e) => e instanceof ContractFunctionRevertedError) : null;
      if (!(revert instanceof ContractFunctionRevertedError)) throw err;
      expect(revert.data?.errorName).toBe(errorName);
      if (errorArgs) expect(revert.data?.args).toEqual(errorArgs);
      return;
    }
    throw new Error(`${functionName} did not revert (expected ${errorName})`);
  };
}

/** A Groth16 proof of zeros: for calls that must fail before (or regardless of) verification. */
export const NO_PROOF = {
  a: [0n, 0n],
  b: [
    [0n, 0n],
    [0n, 0n],
  ],
  c: [0n, 0n],
} as const;
