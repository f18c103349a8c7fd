import { type Address, getAddress, type Hex, toHex } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { ANVIL_KEYS, LOCAL_CHAIN_ID } from "../../src/chain/local.js";

/**
 * Where the wallet signature comes from. The eERC key is derived from it here, in the page, exactly
 * as the CLI and the eERC SDK derive it (`src/eerc/keys.ts`), and is held in memory only.
 */

/** An EIP-1193 provider, as injected at `window.ethereum`. */
export type Eip1193Provider = { request(args: { method: string; params?: unknown[] }): Promise<unknown> };

export type Signer = { address: Address; signMessage(args: { message: string }): Promise<Hex> };

/** A connected account and its eERC key, which never leaves this object. */
export type Session = { address: Address; chainId: number; source: "wallet" | "demo"; sk: bigint };

export const injectedProvider = (): Eip1193Provider | undefined => (globalThis as { ethereum?: Eip1193Provider }).ethereum ?? undefined;

/** The injected wallet's first account, signing with `personal_sign`. */
export async function connectInjected(provider: Eip1193Provider): Promise<{ signer: Signer; chainId: number }> {
  const accounts = (await provider.request({ method: "eth_requestAccounts" })) as string[];
  if (!accounts?.[0]) throw new Error("the wallet shared no account");
  const address = getAddress(accounts[0]);
  const chainId = Number(await provider.request({ method: "eth_chainId" }));
  const signer: Signer = {
    address,
    signMessage: async ({ message }) => (await provider.request({ method: "personal_sign", params: [toHex(message), address] })) as Hex,
  };
  return { signer, chainId };
}

/** The chain id the JSON-RPC endpoint serves. */
export async function rpcChainId(rpcUrl: string): Promise<number> {
  const res = await fetch(rpcUrl, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "eth_chainId", params: [] }),
  });
  const body = (await res.json()) as { result?: string; error?: { message?: string } };
  if (!body.result) throw new Error(`${rpcUrl}: ${body.error?.message ?? `no chain id (HTTP ${res.status})`}`);
  return Number(body.result);
}

/** anvil's well-known accounts, for a local chain only: their keys are public. */
export const DEMO_ACCOUNTS: readonly { index: number; address: Address }[] = ANVIL_KEYS.map((key, index) => ({
  index,
  address: privateKeyToAccount(key).address,
}));

/** A demo account's signer; refused on any chain but anvil's. */
export function demoSigner(index: number, chainId: number): Signer {
  if (chainId !== LOCAL_CHAIN_ID) throw new Error(`demo accounts are for a local chain (${LOCAL_CHAIN_ID}) only; this is chain ${chainId}`);
  const key = ANVIL_KEYS[index];
  if (!key) throw new Error(`no demo account #${index}`);
  return privateKeyToAccount(key);
}
