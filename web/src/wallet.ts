import { type Address, getAddress, type Hex, toHex } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { ANVIL_KEYS, LOCAL_CHAIN_ID } from "../../src/chain/local.js";

/**
 * Where the wallet signature comes from. The eERC key is derived from it here, in the page, exactly
 * as the CLI and the eERC SDK derive it (`src/eerc/keys.ts`), and is held in memory only.
 */

/** An EIP-1193 provider, as injected at `window.ethereum`. */
export type Eip1193Provider = { request(args: { method: string; params?: unknown[] }): Promise<unknown> };

/** EIP-712 typed data as viem takes it (`distributeTypedData` of `src/payout/server.ts`). */
export type TypedData = {
  domain: { name: string; version: string; chainId: bigint; salt: Hex };
  types: Record<string, readonly { name: string; type: string }[]>;
  primaryType: string;
  message: Record<string, unknown>;
};

export type Signer = {
  address: Address;
  signMessage(args: { message: string }): Promise<Hex>;
  signTypedData(data: TypedData): Promise<Hex>;
};

/** A connected account and its eERC key, which never leaves this object. */
export type Session = { address: Address; chainId: number; source: "wallet" | "demo"; sk: bigint };

export const injectedProvider = (): Eip1193Provider | undefined => (globalThis as { ethereum?: Eip1193Provider }).ethereum ?? undefined;

/** EIP-1193's "user rejected the request". */
export const USER_REJECTED = 4001;

/** What the wallet was asked to do, for the message when it refuses. */
const ASKED: Record<string, string> = {
  eth_requestAccounts: "share an account",
  personal_sign: "sign the eERC registration message (the eERC key is derived from that signature)",
  eth_signTypedData_v4: "sign the request",
};

/** One wallet request; a refusal (code 4001) or any other wallet error becomes an Error that says what was asked. */
async function walletRequest(provider: Eip1193Provider, method: string, params?: unknown[]): Promise<unknown> {
  try {
    return await provider.request(params ? { method, params } : { method });
  } catch (e) {
    const { code, message } = (e ?? {}) as { code?: unknown; message?: unknown };
    const what = ASKED[method] ?? method;
    if (code === USER_REJECTED) throw new Error(`The wallet declined to ${what}: nothing was signed or changed.`);
    throw new Error(`The wallet could not ${what}: ${typeof message === "string" && message ? message : String(e)}`);
  }
}

/**
 * The injected wallet's first account, signing with `personal_sign` and `eth_signTypedData_v4`.
 * A wallet on another chain than the RPC endpoint's (`expectedChainId`, when known) is refused
 * before anything is signed: the page would read one chain and sign for another.
 */
export async function connectInjected(
  provider: Eip1193Provider,
  expectedChainId: number | null,
): Promise<{ signer: Signer; chainId: number }> {
  const accounts = (await walletRequest(provider, "eth_requestAccounts")) as string[];
  if (!accounts?.[0]) throw new Error("the wallet shared no account");
  const address = getAddress(accounts[0]);
  const chainId = Number(await walletRequest(provider, "eth_chainId"));
  if (expectedChainId !== null && chainId !== expectedChainId) {
    throw new Error(
      `The wallet is on chain ${chainId}, the RPC URL serves chain ${expectedChainId}: switch the wallet to chain ${expectedChainId} (or change the RPC URL) and connect again.`,
    );
  }
  const signer: Signer = {
    address,
    signMessage: async ({ message }) => (await walletRequest(provider, "personal_sign", [toHex(message), address])) as Hex,
    signTypedData: async (data) => (await walletRequest(provider, "eth_signTypedData_v4", [address, typedDataJson(data)])) as Hex,
  };
  return { signer, chainId };
}

/**
 * `eth_signTypedData_v4`'s JSON: the domain's fields declared in `EIP712Domain`, integers as
 * decimal strings (JSON has no bigint).
 */
export function typedDataJson(data: TypedData): string {
  const domainFields = [
    { name: "name", type: "string" },
    { name: "version", type: "string" },
    { name: "chainId", type: "uint256" },
    { name: "salt", type: "bytes32" },
  ];
  return JSON.stringify({ ...data, types: { EIP712Domain: domainFields, ...data.types } }, (_, v) =>
    typeof v === "bigint" ? v.toString() : v,
  );
}

/** One JSON-RPC call to `rpcUrl`; an error answer throws with its message. */
export async function rpcCall<T>(rpcUrl: string, method: string, params: unknown[] = []): Promise<T> {
  const res = await fetch(rpcUrl, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ jsonrpc: "2.0", id: 1, method, params }),
  });
  const body = (await res.json()) as { result?: T; error?: { message?: string } };
  if (body.result === undefined) throw new Error(`${rpcUrl}: ${method}: ${body.error?.message ?? `no result (HTTP ${res.status})`}`);
  return body.result;
}

/** The chain id the JSON-RPC endpoint serves. */
export const rpcChainId = async (rpcUrl: string): Promise<number> => Number(await rpcCall<string>(rpcUrl, "eth_chainId"));

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
