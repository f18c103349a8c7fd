import type { ProofResult } from "./prover.js";

export type ProofPoints = {
  a: readonly [bigint, bigint];
  b: readonly [readonly [bigint, bigint], readonly [bigint, bigint]];
  c: readonly [bigint, bigint];
};

export type ProofCalldata = { proofPoints: ProofPoints; publicSignals: readonly bigint[] };

/**
 * snarkjs proof → the contracts' `{ proofPoints, publicSignals }` struct. The G2 point's
 * coordinates are swapped because the pairing precompile takes (imaginary, real).
 */
export function proofToCalldata({ proof, publicSignals }: ProofResult): ProofCalldata {
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
    publicSignals: publicSignals.map((s) => BigInt(s)),
  };
}
