import { type Address, createTestClient, custom, type Hex, type PrivateKeyAccount, parseEther } from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { ProviderRegistryAbi } from "../../abis/ProviderRegistryAbi.js";
import { TestUSDCAbi } from "../../abis/TestUSDCAbi.js";
import { UsageLedgerAbi } from "../../abis/UsageLedgerAbi.js";
import type { ChainClients } from "../chain/clients.js";
import type { DeploymentManifest } from "../deployment/manifest.js";
import { EercClient } from "../eerc/client.js";
import type { Prover } from "../eerc/prover.js";
import { IndexerClient } from "../indexer-client/client.js";
import { NO_CAP } from "../payout/admission.js";
import type { AgentOptions } from "../payout/agent.js";
import { buildBatch, type CallRecord, fetchLineKeys, type Pricing, providerIdOf } from "../usage/index.js";

// Building blocks of a local marketplace on anvil (the demo, the benchmarks and the end-to-end
// tests): accounts, eERC registration, providers, usage commitments, fees and payer funding.
// Every step is a real transaction; only the account funding uses an anvil cheat code.

/** A fresh account with 100 ETH for gas (anvil only), with its key so a demo can hand it to the CLI. */
export async function newFundedAccount(chain: ChainClients): Promise<PrivateKeyAccount & { privateKey: Hex }> {
  const privateKey = generatePrivateKey();
  const account = Object.assign(privateKeyToAccount(privateKey), { privateKey });
  const anvil = createTestClient({ mode: "anvil", chain: chain.chain, transport: custom(chain.publicClient) });
  await anvil.setBalance({ address: account.address, value: parseEther("100") });
  return account;
}

const contractsOf = (m: DeploymentManifest) => ({ encryptedERC: m.contracts.encryptedERC, registrar: m.contracts.registrar });

/** The account's eERC client, registered (with a real registration proof) if it was not. */
export async function eercAccount(
  chain: ChainClients,
  manifest: DeploymentManifest,
  prover: Prover,
  account: PrivateKeyAccount,
): Promise<EercClient> {
  const client = await EercClient.connect({
    publicClient: chain.publicClient,
    wallet: chain.walletFor(account),
    contracts: contractsOf(manifest),
    prover,
  });
  if (!(await client.isRegistered())) await client.register();
  return client;
}

/** Waits for a sent write; a revert throws, naming `what`. */
async function mined(chain: ChainClients, what: string, sent: Promise<Hex>): Promise<Hex> {
  const hash = await sent;
  const receipt = await chain.publicClient.waitForTransactionReceipt({ hash });
  if (receipt.status !== "success") throw new Error(`${what} reverted (${hash})`);
  return hash;
}

/**
 * Registers a provider as the registry owner; returns its id. The local marketplace's servers
 * serve every provider: each server the ledger authorises is bound to the new provider, uncapped.
 */
export async function registerProvider(
  chain: ChainClients,
  manifest: DeploymentManifest,
  owner: PrivateKeyAccount,
  p: { namespace: string; payoutAccount: Address; pricing: Pricing },
): Promise<Hex> {
  await mined(
    chain,
    "registerProvider",
    chain.walletFor(owner).writeContract({
      address: manifest.contracts.providerRegistry,
      abi: ProviderRegistryAbi,
      functionName: "registerProvider",
      args: [p.namespace, p.payoutAccount, p.pricing],
    }),
  );
  for (const server of await authorisedServers(chain, manifest)) await bindServer(chain, manifest, owner, server, [p.namespace]);
  return providerIdOf(p.namespace);
}

/** The servers the ledger authorises now, from its `ServerAuthorisationChanged` events. */
export async function authorisedServers(chain: ChainClients, manifest: DeploymentManifest): Promise<Address[]> {
  const logs = await chain.publicClient.getContractEvents({
    address: manifest.contracts.usageLedger,
    abi: UsageLedgerAbi,
    eventName: "ServerAuthorisationChanged",
    fromBlock: 0n,
  });
  const authorised = new Map<Address, boolean>();
  for (const log of logs) authorised.set(log.args.server!, log.args.authorised!);
  return [...authorised].filter(([, on]) => on).map(([server]) => server);
}

/** Authorises a server to commit usage and binds it to `namespaces` (every provider registered later too: `registerProvider`). */
export async function authoriseServer(
  chain: ChainClients,
  manifest: DeploymentManifest,
  owner: PrivateKeyAccount,
  server: Address,
  namespaces: readonly string[] = [],
): Promise<void> {
  await mined(
    chain,
    "setServer",
    chain.walletFor(owner).writeContract({
      address: manifest.contracts.usageLedger,
      abi: UsageLedgerAbi,
      functionName: "setServer",
      args: [server, true],
    }),
  );
  if (namespaces.length > 0) await bindServer(chain, manifest, owner, server, namespaces);
}

/**
 * Binds (or, with `bound` false, unbinds) a server to the providers of `namespaces`, with caps on
 * the billable calls its lines count per batch and per pricing period (default: none).
 */
export async function bindServer(
  chain: ChainClients,
  manifest: DeploymentManifest,
  owner: PrivateKeyAccount,
  server: Address,
  namespaces: readonly string[],
  options: { bound?: boolean; maxCallsPerBatch?: bigint; maxCallsPerPeriod?: bigint } = {},
): Promise<Hex> {
  const bound = options.bound ?? true;
  return mined(
    chain,
    "setServerProviders",
    chain.walletFor(owner).writeContract({
      address: manifest.contracts.usageLedger,
      abi: UsageLedgerAbi,
      functionName: "setServerProviders",
      args: [
        server,
        namespaces.map((n) => providerIdOf(n)),
        bound,
        bound ? (options.maxCallsPerBatch ?? NO_CAP) : 0n,
        bound ? (options.maxCallsPerPeriod ?? NO_CAP) : 0n,
      ],
    }),
  );
}

let eventCounter = 0;

/** `count` call records of one provider, `billable` of them billable at `priceMicro`, all at `at` (Unix ms). */
export function callRecords(
  provider: string,
  count: number,
  options: { at: number; billable?: number; priceMicro?: bigint },
): CallRecord[] {
  const billable = options.billable ?? count;
  return Array.from({ length: count }, (_, i) => ({
    eventId: `evt-${process.pid}-${Date.now()}-${eventCounter++}`,
    provider,
    tool: `${provider}_get`,
    startedAt: options.at,
    endedAt: options.at,
    durationMs: 0,
    outcome: i < billable ? "ok" : "tool_error",
    requestBytes: 32,
    responseBytes: 64,
    billable: i < billable,
    priceMicro: i < billable ? (options.priceMicro ?? 0n) : 0n,
  }));
}

/** Commits one usage batch of `records` from an authorised server; lines are encrypted to each provider, the operator and the auditor. */
export async function commitRecords(
  chain: ChainClients,
  manifest: DeploymentManifest,
  server: PrivateKeyAccount,
  operator: Address,
  sequence: number,
  records: readonly CallRecord[],
): Promise<{ batchId: Hex; blockNumber: bigint }> {
  const providerIds = [...new Set(records.map((r) => providerIdOf(r.provider)))];
  const keys = await fetchLineKeys(chain.publicClient, manifest.contracts, operator, providerIds);
  const times = records.map((r) => r.startedAt);
  const { batch } = buildBatch({
    server: server.address,
    sequence,
    periodStart: Math.min(...times),
    periodEnd: Math.max(...times),
    records,
    keys,
  });
  const hash = await mined(
    chain,
    "commit",
    chain.walletFor(server).writeContract({
      address: manifest.contracts.usageLedger,
      abi: UsageLedgerAbi,
      functionName: "commit",
      args: [batch],
    }),
  );
  const receipt = await chain.publicClient.getTransactionReceipt({ hash });
  return { batchId: batch.batchId, blockNumber: receipt.blockNumber };
}

/** Mints test USDC to `to` (the test token lets anyone mint). */
export async function mintUsdc(
  chain: ChainClients,
  manifest: DeploymentManifest,
  from: PrivateKeyAccount,
  to: Address,
  amount: bigint,
): Promise<void> {
  await mined(
    chain,
    "mint",
    chain.walletFor(from).writeContract({ address: manifest.contracts.token, abi: TestUSDCAbi, functionName: "mint", args: [to, amount] }),
  );
}

/** A user pays a fee into the revenue pool: a plain USDC transfer the indexer sees. */
export async function payPoolFee(
  chain: ChainClients,
  manifest: DeploymentManifest,
  user: PrivateKeyAccount,
  amount: bigint,
): Promise<void> {
  if (!manifest.revenuePool) throw new Error("the deployment manifest names no revenuePool");
  await mintUsdc(chain, manifest, user, user.address, amount);
  await mined(
    chain,
    "transfer",
    chain.walletFor(user).writeContract({
      address: manifest.contracts.token,
      abi: TestUSDCAbi,
      functionName: "transfer",
      args: [manifest.revenuePool, amount],
    }),
  );
}

/** Funds a payer: mints `amount` test USDC to it and deposits it into its encrypted balance. */
export async function fundPayer(
  chain: ChainClients,
  manifest: DeploymentManifest,
  payer: EercClient,
  payerAccount: PrivateKeyAccount,
  amount: bigint,
): Promise<void> {
  await mintUsdc(chain, manifest, payerAccount, payer.address, amount);
  await payer.deposit({ token: manifest.contracts.token, amount });
}

/** The options of a payout agent over the local indexer with the operator as its only payer. */
export function localAgentOptions(
  args: { operator: EercClient; indexerUrl: string; tokenId: bigint },
  extra: Partial<AgentOptions> = {},
): AgentOptions {
  return {
    operator: args.operator,
    payers: [args.operator],
    indexer: new IndexerClient(args.indexerUrl),
    tokenId: args.tokenId,
    ...extra,
  };
}
