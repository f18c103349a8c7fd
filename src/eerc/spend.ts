import { encodeFunctionData, type Hex } from "viem";
import { EncryptedERCAbi } from "../../abis/EncryptedERCAbi.js";
import { type ProofCalldata, proofToCalldata } from "./calldata.js";
import { mulBase, type Point } from "./curve.js";
import type { EGCT } from "./elgamal.js";
import { InsufficientBalanceError, validateAmount } from "./errors.js";
import { burnInputs, type CircuitInputs, withdrawInputs } from "./inputs.js";
import { encryptPCT } from "./pct.js";
import type { ProofResult } from "./prover.js";

/**
 * A spend that leaves the owner's encrypted balance (withdraw or burn), without a chain or a
 * prover: the checks before proving, the circuit's inputs, and the arguments the eERC takes with
 * the proof. `EercClient` runs it with its Node prover; the dashboard with snarkjs in the browser.
 */

export type SpendCircuit = "withdraw" | "burn";

/** A balance as a spend is proved against: its EGCT and what it decrypts to. */
export type SpendBalance = { eGCT: EGCT; plain: bigint };

export type Words7 = readonly [bigint, bigint, bigint, bigint, bigint, bigint, bigint];

export const words7 = (w: readonly bigint[]): Words7 => w.map(BigInt) as unknown as Words7;

/**
 * The checks every spend makes before proving: an amount in [1, l) (or [0, l) with `allowZero`)
 * and no more than the balance. Throws InvalidAmountError or InsufficientBalanceError.
 */
export function checkSpend(address: Hex, amount: bigint, balance: bigint, options: { allowZero?: boolean } = {}): bigint {
  validateAmount(amount, options);
  if (amount > balance) throw new InsufficientBalanceError(address, balance, amount);
  return amount;
}

/**
 * What proves that `amount` leaves `current`: the circuit's inputs (the key among them: they stay
 * with the prover) and the PCT of the balance left, sent with the proof.
 */
export function spendProofInputs(
  circuit: SpendCircuit,
  args: { sk: bigint; amount: bigint; current: SpendBalance; auditorPk: Point },
): { input: CircuitInputs; balancePCT: Words7 } {
  const inputs = circuit === "withdraw" ? withdrawInputs : burnInputs;
  const { input } = inputs({
    sk: args.sk,
    value: args.amount,
    balance: args.current.plain,
    balanceCT: args.current.eGCT,
    auditorPk: args.auditorPk,
  });
  return { input, balancePCT: words7(encryptPCT(args.current.plain - args.amount, mulBase(args.sk)).pct) };
}

/** A spend's proof as the eERC takes it: `{ proofPoints, publicSignals }`. */
export function spendProof<C extends SpendCircuit>(circuit: C, result: ProofResult): ProofCalldata<C> {
  const { proofPoints, publicSignals } = proofToCalldata(circuit, result);
  return { proofPoints, publicSignals };
}

/** The arguments of the eERC's `withdraw(tokenId, proof, balancePCT)` (converter mode). */
export const withdrawArgs = (tokenId: bigint, proof: ProofCalldata<"withdraw">, balancePCT: Words7) =>
  [tokenId, { proofPoints: proof.proofPoints, publicSignals: proof.publicSignals }, balancePCT] as const;

/** The calldata of that `withdraw`, for a wallet that sends raw transactions. */
export const withdrawCalldata = (tokenId: bigint, proof: ProofCalldata<"withdraw">, balancePCT: Words7): Hex =>
  encodeFunctionData({ abi: EncryptedERCAbi, functionName: "withdraw", args: withdrawArgs(tokenId, proof, balancePCT) });
