import { type AbiFunction, type Address, decodeAbiParameters, getAddress, type Hex, toFunctionSelector } from "viem";
import { EncryptedERCAbi } from "../../abis/EncryptedERCAbi.js";
import type { EGCT } from "../eerc/elgamal.js";

/**
 * What an eERC call carries beyond its event. `PrivateTransfer` has neither the token nor the
 * receiver's data, `Deposit` lacks the depositor's PCT, and no spend event has the new balancePCT
 * or the balance snapshot it was proven against: they are only in the calldata.
 */
export type EercCall =
  | { fn: "deposit"; amount: bigint; tokenAddress: Address; amountPCT: bigint[] }
  | {
      fn: "transfer";
      to: Address;
      tokenId: bigint;
      senderBalance: EGCT;
      senderVTT: EGCT;
      receiverVTT: EGCT;
      receiverPCT: bigint[];
      auditorPCT: bigint[];
      balancePCT: bigint[];
    }
  | { fn: "withdraw"; tokenId: bigint; value: bigint; senderBalance: EGCT; auditorPCT: bigint[]; balancePCT: bigint[] }
  | { fn: "privateMint"; user: Address; nullifierHash: bigint; receiverVTT: EGCT; receiverPCT: bigint[]; auditorPCT: bigint[] }
  | { fn: "privateBurn"; senderBalance: EGCT; burnVTT: EGCT; auditorPCT: bigint[]; balancePCT: bigint[] };

/** The EGCT in public signals s[i..i+3] = (C1.x, C1.y, C2.x, C2.y). */
const egctAt = (s: readonly bigint[], i: number): EGCT => ({ c1: [s[i]!, s[i + 1]!], c2: [s[i + 2]!, s[i + 3]!] });
/** The 7-word PCT in public signals s[i..i+6] = (ciphertext[4], authKey.x, authKey.y, nonce). */
const pctAt = (s: readonly bigint[], i: number): bigint[] => s.slice(i, i + 7);

type ProofArg = { publicSignals: readonly bigint[] };

const DECODED: ReadonlySet<string> = new Set<EercCall["fn"]>(["deposit", "transfer", "withdraw", "privateMint", "privateBurn"]);

/**
 * The eERC functions decoded here (every overload), by selector. Hashed once: viem's
 * `decodeFunctionData` hashes the ABI's signatures on every call until one matches, which cost
 * more than the rest of a deposit's indexing.
 */
const FUNCTIONS = new Map<string, AbiFunction>(
  (EncryptedERCAbi as readonly { type: string }[])
    .filter((item): item is AbiFunction => item.type === "function" && DECODED.has((item as AbiFunction).name))
    .map((item) => [toFunctionSelector(item), item]),
);

/**
 * Decodes a transaction input addressed to the eERC (both overloads of each function, with and
 * without the trailing `bytes message`). Public-signal offsets follow the circuits' declaration
 * order (`eerc-interface.md`). Returns undefined for anything else.
 */
export function decodeEercCall(input: Hex): EercCall | undefined {
  const fn = FUNCTIONS.get(input.slice(0, 10).toLowerCase());
  if (!fn) return undefined;
  let args: readonly unknown[];
  try {
    args = decodeAbiParameters(fn.inputs, `0x${input.slice(10)}`);
  } catch {
    return undefined;
  }
  switch (fn.name) {
    case "deposit": {
      const [amount, tokenAddress, amountPCT] = args as [bigint, Address, readonly bigint[]];
      return { fn: "deposit", amount, tokenAddress: getAddress(tokenAddress), amountPCT: [...amountPCT] };
    }
    case "transfer": {
      const [to, tokenId, proof, balancePCT] = args as [Address, bigint, ProofArg, readonly bigint[]];
      const s = proof.publicSignals;
      return {
        fn: "transfer",
        to: getAddress(to),
        tokenId,
        senderBalance: egctAt(s, 2),
        senderVTT: egctAt(s, 6),
        receiverVTT: egctAt(s, 12),
        receiverPCT: pctAt(s, 16),
        auditorPCT: pctAt(s, 25),
        balancePCT: [...balancePCT],
      };
    }
    case "withdraw": {
      const [tokenId, proof, balancePCT] = args as [bigint, ProofArg, readonly bigint[]];
      const s = proof.publicSignals;
      return { fn: "withdraw", tokenId, value: s[0]!, senderBalance: egctAt(s, 3), auditorPCT: pctAt(s, 9), balancePCT: [...balancePCT] };
    }
    case "privateMint": {
      const [user, proof] = args as [Address, ProofArg];
      const s = proof.publicSignals;
      return {
        fn: "privateMint",
        user: getAddress(user),
        nullifierHash: s[1]!,
        receiverVTT: egctAt(s, 4),
        receiverPCT: pctAt(s, 8),
        auditorPCT: pctAt(s, 17),
      };
    }
    case "privateBurn": {
      // The overload with a message takes `address user` first.
      const [proof, balancePCT] = (args.length === 4 ? args.slice(1) : args) as [ProofArg, readonly bigint[]];
      const s = proof.publicSignals;
      return {
        fn: "privateBurn",
        senderBalance: egctAt(s, 2),
        burnVTT: egctAt(s, 6),
        auditorPCT: pctAt(s, 12),
        balancePCT: [...balancePCT],
      };
    }
    default:
      return undefined;
  }
}

export const egctToWords = (ct: EGCT): bigint[] => [ct.c1[0], ct.c1[1], ct.c2[0], ct.c2[1]];
export const wordsToEGCT = (w: readonly bigint[]): EGCT => ({ c1: [w[0]!, w[1]!], c2: [w[2]!, w[3]!] });
