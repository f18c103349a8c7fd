import { type Address, getAddress, type Hex, isAddressEqual } from "viem";
import { rpcCall } from "./wallet.js";

/**
 * Which view suits the connected account: the eERC's current auditor (from the indexed
 * `AuditorChanged` events) gets the auditor's, the ProviderRegistry's owner (the operator, read
 * from the RPC) the operator's, anyone else the provider's. Public facts only: no key is involved.
 */

export type ViewKind = "provider" | "auditor" | "operator";

async function graphql<T>(apiUrl: string, query: string): Promise<T> {
  const res = await fetch(new URL("graphql", apiUrl.endsWith("/") ? apiUrl : `${apiUrl}/`), {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ query }),
  });
  const body = (await res.json()) as { data?: T; errors?: { message: string }[] };
  if (!body.data) throw new Error(`GraphQL: ${body.errors?.[0]?.message ?? `HTTP ${res.status}`}`);
  return body.data;
}

/** The eERC's current auditor, as the indexer last saw it set (null: none yet). */
export async function currentAuditor(apiUrl: string): Promise<Address | null> {
  const data = await graphql<{ auditorChanges: { items: { newAuditor: Hex }[] } }>(
    apiUrl,
    `{ auditorChanges(orderBy: "blockNumber", orderDirection: "desc", limit: 1) { items { newAuditor } } }`,
  );
  const a = data.auditorChanges.items[0]?.newAuditor;
  return a ? getAddress(a) : null;
}

/**
 * The ProviderRegistry's `owner()`, the operator. The page knows no contract address: the
 * registry is the contract that emitted the first indexed provider change, found in that
 * transaction's receipt (null: no provider is registered yet).
 */
export async function registryOwner(apiUrl: string, rpcUrl: string): Promise<Address | null> {
  const data = await graphql<{ providerChanges: { items: { txHash: Hex; logIndex: number }[] } }>(
    apiUrl,
    `{ providerChanges(orderBy: "blockNumber", limit: 1) { items { txHash logIndex } } }`,
  );
  const first = data.providerChanges.items[0];
  if (!first) return null;
  const receipt = await rpcCall<{ logs: { address: Address; logIndex: Hex }[] } | null>(rpcUrl, "eth_getTransactionReceipt", [
    first.txHash,
  ]);
  const log = receipt?.logs.find((l) => Number(l.logIndex) === first.logIndex);
  if (!log) return null;
  // owner() of OpenZeppelin's Ownable: the address in the last 20 bytes of the word.
  const word = await rpcCall<Hex>(rpcUrl, "eth_call", [{ to: log.address, data: "0x8da5cb5b" }, "latest"]);
  return getAddress(`0x${word.slice(-40)}`);
}

/** The view an account opens on: what it can decrypt and do. */
export async function viewFor(account: Address, apiUrl: string, rpcUrl: string): Promise<ViewKind> {
  const [auditor, owner] = await Promise.all([currentAuditor(apiUrl).catch(() => null), registryOwner(apiUrl, rpcUrl).catch(() => null)]);
  if (auditor && isAddressEqual(auditor, account)) return "auditor";
  if (owner && isAddressEqual(owner, account)) return "operator";
  return "provider";
}
