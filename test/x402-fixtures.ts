import { type Account, type Address, getAddress } from "viem";
import { loadArtifact } from "../src/build/contracts.js";
import type { ChainClients } from "../src/chain/clients.js";

/** A fresh TestUSDC (EIP-3009) on `chain`, deployed by `from`. */
export async function deployTestUsdc(chain: ChainClients, from: Account): Promise<Address> {
  const { abi, bytecode } = await loadArtifact("TestUSDC");
  const hash = await chain.walletFor(from).deployContract({ abi, bytecode, args: [] });
  const receipt = await chain.publicClient.waitForTransactionReceipt({ hash });
  if (receipt.status !== "success" || !receipt.contractAddress) throw new Error(`deploying TestUSDC failed (${hash})`);
  return getAddress(receipt.contractAddress);
}
