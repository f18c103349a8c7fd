import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createTestClient, custom, type Hex, type PrivateKeyAccount } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { type Anvil, startAnvil } from "../chain/anvil.js";
import { type ChainClients, connectChain } from "../chain/clients.js";
import { ANVIL_KEYS, LOCAL_ROLES } from "../chain/local.js";
import { deploy } from "../deployment/deploy.js";
import { type DeploymentManifest, usdcTokenId } from "../deployment/manifest.js";
import type { SettlementSettings } from "../deployment/settlement.js";
import type { EercClient } from "../eerc/client.js";
import { Prover } from "../eerc/prover.js";
import { type RunningIndexer, startIndexer } from "../indexer/process.js";
import { type AgentOptions, PayoutAgent } from "../payout/agent.js";
import type { PoolFunding } from "../payout/funding.js";
import type { Pricing } from "../usage/pricing.js";
import { authoriseServer, eercAccount, fundPayer, localAgentOptions, newFundedAccount, registerProvider } from "./marketplace.js";

export type LocalProvider = { namespace: string; pricing: Pricing };

export type LocalWorldOptions = {
  /** Providers to register, each paying out to its own registered account. */
  providers?: readonly LocalProvider[];
  /**
   * The providers' payout keys, in order (anvil's well-known keys, say, so the dashboard's demo
   * accounts can open them); a provider without one gets a fresh account.
   */
  payoutKeys?: readonly Hex[];
  /** Minted to the operator (the payer) and deposited into its encrypted balance: the operator's own money, as for per-call usage. */
  fundMicro?: bigint;
  /**
   * The agents fund their payers from the revenue pool (anvil's account #7, `pool`) before each
   * cycle, as `npm run agent` does by default; off, they pay from what the payers hold.
   */
  fundFromPool?: boolean;
  /** Start the indexer (needed by the agent). */
  indexer?: boolean;
  /** Extra environment of the indexer and its API. */
  indexerEnv?: Record<string, string>;
  /** Seconds per block once the world is set up (setup mines each transaction at once); blocks are mined on demand without it. */
  blockTime?: number;
  /** A running local chain to use instead of starting anvil (an anvil node: accounts are funded with its cheat code). */
  rpcUrl?: string;
  /** The settlement settings the deployment records (default 1000 bps, monthly periods). */
  settlement?: SettlementSettings;
  /** Deploys the contracts: this project's by default (tests swap in the audited eERC). */
  deploy?: (args: { rpcUrl: string; prover: Prover; settlement?: SettlementSettings }) => Promise<DeploymentManifest>;
};

export type LocalWorld = {
  /** The anvil the world started; undefined when it was given `rpcUrl`. */
  anvil: Anvil | undefined;
  rpcUrl: string;
  chain: ChainClients;
  prover: Prover;
  manifest: DeploymentManifest;
  manifestPath: string;
  dir: string;
  /** Present when started with `indexer: true`. */
  indexer: RunningIndexer | undefined;
  owner: PrivateKeyAccount;
  operator: EercClient;
  server: PrivateKeyAccount;
  user: PrivateKeyAccount;
  /** The revenue pool's wallet (anvil's account #7), where `payPoolFee` sends fees. */
  pool: PrivateKeyAccount;
  /** What an agent needs to move the pool's USDC into its payers' encrypted balances. */
  poolFunding: PoolFunding;
  tokenId: bigint;
  payoutAccounts: Map<string, { account: PrivateKeyAccount & { privateKey: Hex }; client: EercClient }>;
  agentOptions(extra?: Partial<AgentOptions>): AgentOptions;
  agent(extra?: Partial<AgentOptions>): PayoutAgent;
  close(): Promise<void>;
};

const deployOwn = ({ rpcUrl, prover, settlement }: { rpcUrl: string; prover: Prover; settlement?: SettlementSettings }) =>
  deploy({
    settlement,
    rpcUrl,
    network: "anvil-local",
    deployer: privateKeyToAccount(ANVIL_KEYS[LOCAL_ROLES.owner]),
    auditor: privateKeyToAccount(ANVIL_KEYS[LOCAL_ROLES.auditor]),
    prover,
    write: false,
  });

/**
 * A local marketplace on a fresh anvil, for tests, benchmarks and the demo: the contracts, the
 * operator (anvil's account #0, the owner and the payer) registered in the eERC and funded
 * (`fundMicro`, and with `fundFromPool` from the fees in the revenue pool, anvil's account #7),
 * the providers each paying out to its own registered account, an authorised usage server (bound
 * to every provider registered, here or later with `registerProvider`, without caps), a
 * fee-paying user, and (optionally) the indexer. `close()` stops all of it.
 */
export async function localWorld(options: LocalWorldOptions = {}): Promise<LocalWorld> {
  const anvil = options.rpcUrl ? undefined : await startAnvil({ blockTime: options.blockTime });
  const rpcUrl = anvil ? anvil.rpcUrl : options.rpcUrl!;
  const prover = new Prover();
  let indexer: RunningIndexer | undefined;
  const close = async () => {
    await indexer?.stop();
    await prover.close();
    await anvil?.stop();
  };
  try {
    const chain = await connectChain(rpcUrl);
    const testClient = createTestClient({ mode: "anvil", chain: chain.chain, transport: custom(chain.publicClient) });
    if (anvil && options.blockTime) await testClient.setAutomine(true);
    const dir = mkdtempSync(join(tmpdir(), "bs-world-"));
    const manifest = await (options.deploy ?? deployOwn)({ rpcUrl, prover, settlement: options.settlement });
    const manifestPath = join(dir, "deployment.json");
    writeFileSync(manifestPath, JSON.stringify(manifest, null, 2));
    const owner = privateKeyToAccount(ANVIL_KEYS[LOCAL_ROLES.owner]);
    const operator = await eercAccount(chain, manifest, prover, owner);
    const server = await newFundedAccount(chain);
    const user = await newFundedAccount(chain);
    await authoriseServer(chain, manifest, owner, server.address);
    const payoutAccounts: LocalWorld["payoutAccounts"] = new Map();
    for (const [i, p] of (options.providers ?? []).entries()) {
      const key = options.payoutKeys?.[i];
      const account = key ? Object.assign(privateKeyToAccount(key), { privateKey: key }) : await newFundedAccount(chain);
      const client = await eercAccount(chain, manifest, prover, account);
      await registerProvider(chain, manifest, owner, { namespace: p.namespace, payoutAccount: account.address, pricing: p.pricing });
      payoutAccounts.set(p.namespace, { account, client });
    }
    if (options.fundMicro) await fundPayer(chain, manifest, operator, owner, options.fundMicro);
    const pool = privateKeyToAccount(ANVIL_KEYS[LOCAL_ROLES.revenuePool]);
    if (options.fundFromPool && manifest.revenuePool !== pool.address)
      throw new Error(`the local deployment's revenue pool is not anvil's account #7 (${pool.address})`);
    const poolFunding: PoolFunding = { token: manifest.contracts.token, pool: chain.walletFor(pool) };
    const tokenId = await usdcTokenId(chain, manifest);
    if (anvil && options.blockTime) await testClient.setIntervalMining({ interval: options.blockTime });
    if (options.indexer) {
      indexer = await startIndexer({
        manifestPath,
        env: { RPC_URL: rpcUrl, ...options.indexerEnv },
        pgliteDir: join(dir, "pglite"),
        logFile: join(dir, "ponder.log"),
      });
    }
    const agentOptions = (extra: Partial<AgentOptions> = {}): AgentOptions => {
      if (!indexer) throw new Error("the agent reads the indexer: start the world with indexer: true");
      return localAgentOptions(
        { operator, indexerUrl: indexer.url, tokenId },
        { waitMs: 60_000, ...(options.fundFromPool && { funding: poolFunding }), ...extra },
      );
    };
    return {
      anvil,
      rpcUrl,
      chain,
      prover,
      manifest,
      manifestPath,
      dir,
      indexer,
      owner,
      operator,
      server,
      user,
      pool,
      poolFunding,
      tokenId,
      payoutAccounts,
      agentOptions,
      agent: (extra) => new PayoutAgent(agentOptions(extra)),
      close,
    };
  } catch (e) {
    await close();
    throw e;
  }
}
