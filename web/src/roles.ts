import { type Address, getAddress, type Hex, isAddressEqual } from "viem";
import { rpcCall } from "./wallet.js";

/**
 * Which view suits the connected account: the eERC's current auditor (from the indexed
 * `AuditorChanged` events) gets the auditor's, the UsageLedger's operator (read from the RPC)
 * the operator's, anyone else the provider's. Public facts only: no key is involved.
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
 * The address in the word a view of `contract` returns (`selector`: a function without arguments
 * that returns an address). The page knows no contract address: a contract is the emitter of an
 * indexed event, found in that transaction's receipt (null: no such event is indexed yet).
 */
async function addressFromEmitter(rpcUrl: string, event: { txHash: Hex; logIndex: number } | undefined, selector: Hex) {
  if (!event) return null;
  const receipt = await rpcCall<{ logs: { address: Address; logIndex: Hex }[] } | null>(rpcUrl, "eth_getTransactionReceipt", [
    event.txHash,
  ]);
  const log = receipt?.logs.find((l) => Number(l.logIndex) === event.logIndex);
  if (!log) return null;
  const word = await rpcCall<Hex>(rpcUrl, "eth_call", [{ to: log.address, data: selector }, "latest"]);
  return getAddress(`0x${word.slice(-40)}`);
}

/**
 * The operator: the UsageLedger's `operator()` (the account whose eERC key reads the operator
 * copy of every usage line and pays), the ledger being the emitter of the first indexed server
 * authorisation. Before any server is authorised, the ProviderRegistry's `owner()`, which is the
 * operator unless the deployment gave ownership to another account.
 */
export async function ledgerOperator(apiUrl: string, rpcUrl: string): Promise<Address | null> {
  const data = await graphql<{
    serverAuthorisations: { items: { txHash: Hex; logIndex: number }[] };
    providerChanges: { items: { txHash: Hex; logIndex: number }[] };
  }>(
    apiUrl,
    `{ serverAuthorisations(orderBy: "blockNumber", limit: 1) { items { txHash logIndex } }
       providerChanges(orderBy: "blockNumber", limit: 1) { items { txHash logIndex } } }`,
  );
  // operator() of the UsageLedger; owner() of OpenZeppelin's Ownable.
  return (
    (await addressFromEmitter(rpcUrl, data.serverAuthorisations.items[0], "0x570ca735")) ??
    (await addressFromEmitter(rpcUrl, data.providerChanges.items[0], "0x8da5cb5b"))
  );
}

/** The view an account opens on: what it can decrypt and do. */
export async function viewFor(account: Address, apiUrl: string, rpcUrl: string): Promise<ViewKind> {
  const [auditor, operator] = await Promise.all([
    currentAuditor(apiUrl).catch(() => null),
    ledgerOperator(apiUrl, rpcUrl).catch(() => null),
  ]);
  if (auditor && isAddressEqual(auditor, account)) return "auditor";
  if (operator && isAddressEqual(operator, account)) return "operator";
  return "provider";
}
