import type { CircuitName } from "./artifacts.js";
import type { ProofResult } from "./prover.js";

export type ProofPoints = {
  a: readonly [bigint, bigint];
  b: readonly [readonly [bigint, bigint], readonly [bigint, bigint]];
  c: readonly [bigint, bigint];
};

/** How many public signals each circuit's verifier takes (its `uint256[n]` input). */
export const PUBLIC_SIGNALS = { registration: 5, transfer: 32, withdraw: 16, mint: 24, burn: 19 } as const satisfies Record<
  CircuitName,
  number
>;

type Tuple<T, N extends number, R extends readonly T[] = readonly []> = R["length"] extends N ? R : Tuple<T, N, readonly [...R, T]>;

/** A circuit's public signals as its verifier takes them: a fixed-length array. */
export type PublicSignals<C extends CircuitName> = Tuple<bigint, (typeof PUBLIC_SIGNALS)[C]>;

export type ProofCalldata<C extends CircuitName = CircuitName> = { proofPoints: ProofPoints; publicSignals: PublicSignals<C> };

/**
 * snarkjs proof → the contracts' `{ proofPoints, publicSignals }` struct, checked against the
 * circuit's signal count. The G2 point's coordinates are swapped because the pairing precompile
 * takes (imaginary, real).
 */
export function proofToCalldata<C extends CircuitName>(circuit: C, { proof, publicSignals }: ProofResult): ProofCalldata<C> {
  if (publicSignals.length !== PUBLIC_SIGNALS[circuit]) {
    throw new RangeError(`a ${circuit} proof has ${PUBLIC_SIGNALS[circuit]} public signals, not ${publicSignals.length}`);
  }
  const n = (s: string | undefined) => BigInt(s!);
  return {
    proofPoints: {
      a: [n(proof.pi_a[0]), n(proof.pi_a[1])],
      b: [
        [n(proof.pi_b[0]![1]), n(proof.pi_b[0]![0])],
        [n(proof.pi_b[1]![1]), n(proof.pi_b[1]![0])],
      ],
      c: [n(proof.pi_c[0]), n(proof.pi_c[1])],
    },
    // The length was checked above.
    publicSignals: publicSignals.map((s) => BigInt(s)) as unknown as PublicSignals<C>,
  };
}
