import { type Address, type Hex, type PublicClient, toFunctionSelector, zeroAddress } from "viem";
import { EncryptedERCAbi } from "../../abis/EncryptedERCAbi.js";
import { RegistrarAbi } from "../../abis/RegistrarAbi.js";
import { BaseError } from "../errors.js";
import type { CircuitName } from "./artifacts.js";
import { PUBLIC_SIGNALS, proofToCalldata } from "./calldata.js";
import { mulBase, randomScalar } from "./curve.js";
import { encryptElGamal } from "./elgamal.js";
import { burnInputs, mintInputs, registrationInputs, transferInputs, withdrawInputs } from "./inputs.js";
import { CircuitArtifactsMissingError, type Prover } from "./prover.js";
import { codeHash, type ProvingKeyChecks } from "./proving-key-checks.js";

/** The eERC at this address is not a version these tools can work with. */
export class UnsupportedEercError extends BaseError {
  readonly code = "UNSUPPORTED_EERC";
}

/** A proving key that does not match the deployment's verifier: every proof made with it would revert. */
export class CircuitVerifierMismatchError extends BaseError {
  readonly code = "CIRCUIT_VERIFIER_MISMATCH";
  constructor(
    readonly circuit: CircuitName,
    readonly verifier: Address,
    readonly zkey: string,
    options?: ErrorOptions,
  ) {
    super(
      `circuit ${circuit}: ${options?.cause ? `no proof can be made with ${zkey} and its witness program` : `a proof made with ${zkey} does not verify on the deployment's verifier ${verifier}`}: ` +
        "the proving key is not the one this deployment was set up with (set CIRCUITS_DIR or the manifest's circuits to its files)",
      options,
    );
  }
}

export type EercCapabilities = {
  /** The `bytes message` overloads and `PrivateMessage` (audited main from July 2025 on). */
  messages: boolean;
};

const MESSAGE_OVERLOADS = EncryptedERCAbi.filter(
  (x): x is Extract<(typeof EncryptedERCAbi)[number], { type: "function" }> =>
    x.type === "function" && ["transfer", "deposit", "withdraw"].includes(x.name) && x.inputs.at(-1)?.type === "bytes",
);

/**
 * Reads what the eERC at `address` offers. Its `balanceOf` must have the shape of the May 2025
 * and later versions (EGCT, nonce, amount PCTs with indexes, balancePCT, transactionIndex):
 * earlier versions keep balances differently and are refused. The message overloads are found by
 * their selectors in the contract's dispatcher.
 */
export async function detectEerc(publicClient: PublicClient, address: Address): Promise<EercCapabilities> {
  const code = await publicClient.getCode({ address });
  if (!code || code === "0x") throw new UnsupportedEercError(`no contract at ${address}: is the manifest for this chain?`);
  try {
    await publicClient.readContract({ address, abi: EncryptedERCAbi, functionName: "balanceOf", args: [zeroAddress, 0n] });
  } catch (e) {
    throw new UnsupportedEercError(
      `the eERC at ${address} does not answer balanceOf(address, uint256) as the May 2025 and later versions do ` +
        `(EGCT, nonce, amount PCTs, balancePCT, transactionIndex): ${(e as Error).message.split("\n")[0]}`,
    );
  }
  const has = (selector: Hex) => code.includes(`63${selector.slice(2)}`);
  return { messages: MESSAGE_OVERLOADS.every((f) => has(toFunctionSelector(f))) };
}

/** A valid witness for `circuit` under throwaway keys: enough to tell whether a proving key matches a verifier. */
function sampleInputs(circuit: CircuitName, chainId: bigint) {
  const sk = randomScalar();
  const pk = () => mulBase(randomScalar());
  const balance = { balance: 2n, balanceCT: encryptElGamal(2n, mulBase(sk)).ct };
  switch (circuit) {
    case "registration":
      return registrationInputs({ sk, address: zeroAddress, chainId }).input;
    case "transfer":
      return transferInputs({ sk, value: 1n, ...balance, receiverPk: pk(), auditorPk: pk() }).input;
    case "withdraw":
      return withdrawInputs({ sk, value: 1n, ...balance, auditorPk: pk() }).input;
    case "mint":
      return mintInputs({ value: 1n, chainId, receiverPk: pk(), auditorPk: pk() }).input;
    case "burn":
      return burnInputs({ sk, value: 1n, ...balance, auditorPk: pk() }).input;
  }
}

const VERIFIER_GETTERS = {
  transfer: "transferVerifier",
  withdraw: "withdrawVerifier",
  mint: "mintVerifier",
  burn: "burnVerifier",
} as const;

/** The verifier the deployment itself uses for `circuit`, read from the eERC and Registrar. */
export async function deployedVerifier(
  publicClient: PublicClient,
  contracts: { encryptedERC: Address; registrar: Address },
  circuit: CircuitName,
): Promise<Address> {
  if (circuit === "registration") {
    return publicClient.readContract({ address: contracts.registrar, abi: RegistrarAbi, functionName: "registrationVerifier" });
  }
  return publicClient.readContract({ address: contracts.encryptedERC, abi: EncryptedERCAbi, functionName: VERIFIER_GETTERS[circuit] });
}

/** How a circuit's proving key was found to match the deployment: proved now (`recordedAt` null), or by the record of a check that passed at `recordedAt`. */
export type ProvingKeyCheckResult = { circuit: CircuitName; verifier: Address; recordedAt: string | null };

/**
 * Checks that the prover's keys match the deployment: for each circuit, a proof of a throwaway
 * witness must verify in one `eth_call` to the verifier the eERC (or Registrar) itself calls.
 * With `record`, a check of the same witness program and key against the same verifier code that
 * passed before is not proved again, and a check that passes now is recorded.
 * Throws CircuitVerifierMismatchError naming the first circuit that does not.
 */
export async function checkProvingArtifacts(args: {
  publicClient: PublicClient;
  prover: Prover;
  contracts: { encryptedERC: Address; registrar: Address };
  circuits: readonly CircuitName[];
  record?: ProvingKeyChecks;
}): Promise<ProvingKeyCheckResult[]> {
  const chainId = BigInt(await args.publicClient.getChainId());
  const results: ProvingKeyCheckResult[] = [];
  for (const circuit of args.circuits) {
    const verifier = await deployedVerifier(args.publicClient, args.contracts, circuit);
    const { wasm, zkey } = args.prover.artifacts[circuit];
    const check = args.record && {
      circuit,
      chainId,
      verifier,
      verifierCode: codeHash(await args.publicClient.getCode({ address: verifier })),
      wasm,
      zkey,
    };
    const recordedAt = check ? await args.record!.passedAt(check) : null;
    if (recordedAt === null) {
      await proveOnVerifier(args.prover, circuit, chainId, verifier, args.publicClient);
      if (check) await args.record!.record(check);
    }
    results.push({ circuit, verifier, recordedAt });
  }
  return results;
}

async function proveOnVerifier(prover: Prover, circuit: CircuitName, chainId: bigint, verifier: Address, publicClient: PublicClient) {
  const zkey = prover.artifacts[circuit].zkey;
  const proof = await prover.prove(circuit, sampleInputs(circuit, chainId)).catch((cause: unknown) => {
    if (cause instanceof CircuitArtifactsMissingError) throw cause;
    throw new CircuitVerifierMismatchError(circuit, verifier, zkey, { cause });
  });
  const { proofPoints, publicSignals } = proofToCalldata(circuit, proof);
  const abi = [
    {
      type: "function",
      name: "verifyProof",
      stateMutability: "view",
      inputs: [
        { name: "a", type: "uint256[2]" },
        { name: "b", type: "uint256[2][2]" },
        { name: "c", type: "uint256[2]" },
        { name: "input", type: `uint256[${PUBLIC_SIGNALS[circuit]}]` },
      ],
      outputs: [{ type: "bool" }],
    },
  ] as const;
  const ok = await publicClient
    .readContract({
      address: verifier,
      abi,
      functionName: "verifyProof",
      args: [proofPoints.a, proofPoints.b, proofPoints.c, publicSignals],
    })
    .catch(() => false);
  if (ok !== true) throw new CircuitVerifierMismatchError(circuit, verifier, zkey);
}

export const CONVERTER_CIRCUITS: readonly CircuitName[] = ["registration", "transfer", "withdraw"];
export const STANDALONE_CIRCUITS: readonly CircuitName[] = ["registration", "transfer", "mint", "burn"];
