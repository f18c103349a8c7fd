import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Hex, PrivateKeyAccount } from "viem";
import { type Anvil, startAnvil } from "../src/chain/anvil.js";
import { type ChainClients, connectChain } from "../src/chain/clients.js";
import type { DeploymentManifest } from "../src/deployment/manifest.js";
import { usdcTokenId } from "../src/deployment/manifest.js";
import type { EercClient } from "../src/eerc/client.js";
import { Prover } from "../src/eerc/prover.js";
import { type RunningIndexer, startIndexer } from "../src/indexer/process.js";
import { IndexerClient } from "../src/indexer-client/client.js";
import {
  authoriseServer,
  eercAccount,
  fundPayer,
  localAgentOptions,
  newFundedAccount,
  registerProvider,
} from "../src/local/marketplace.js";
import { OPEN_ENDED_TIER } from "../src/meter/pricing.js";
import { type AgentOptions, PayoutAgent } from "../src/payout/agent.js";
import { readSettlementFacts } from "../src/payout/facts.js";
import { type Pricing, PricingModel } from "../src/usage/registry.js";
import { accounts, deployForIndexer } from "./indexer-helpers.js";

/** The providers of the payout tests: commercial, hybrid (free quota then per call), a 1-micro price, and two free APIs. */
export const PROVIDERS: { namespace: string; pricing: Pricing }[] = [
  { namespace: "weather", pricing: { model: PricingModel.PerCall, pricePerCallMicro: 1000n, poolWeight: 0, tiers: [] } },
  {
    namespace: "news",
    pricing: {
      model: PricingModel.Tiered,
      pricePerCallMicro: 0n,
      poolWeight: 0,
      tiers: [
        { upToCalls: 5n, priceMicro: 0n },
        { upToCalls: OPEN_ENDED_TIER, priceMicro: 250n },
      ],
    },
  },
  { namespace: "tinyapi", pricing: { model: PricingModel.PerCall, pricePerCallMicro: 1n, poolWeight: 0, tiers: [] } },
  { namespace: "wiki", pricing: { model: PricingModel.FreePool, pricePerCallMicro: 0n, poolWeight: 1, tiers: [] } },
  { namespace: "maps", pricing: { model: PricingModel.FreePool, pricePerCallMicro: 0n, poolWeight: 3, tiers: [] } },
];

export const FEE_BPS = 1000;

export type PayoutWorld = {
  anvil: Anvil;
  chain: ChainClients;
  prover: Prover;
  manifest: DeploymentManifest;
  manifestPath: string;
  dir: string;
  indexer: RunningIndexer;
  owner: PrivateKeyAccount;
  operator: EercClient;
  server: PrivateKeyAccount;
  user: PrivateKeyAccount;
  tokenId: bigint;
  payoutAccounts: Map<string, { account: PrivateKeyAccount & { privateKey: Hex }; client: EercClient }>;
  agentOptions(extra?: Partial<AgentOptions>): AgentOptions;
  agent(extra?: Partial<AgentOptions>): PayoutAgent;
  close(): Promise<void>;
};

/**
 * anvil with the contracts, the indexer, the operator (account #0, the payer) registered in the
 * eERC and funded with `fundMicro`, the five providers each paying out to its own registered
 * account, an authorised usage server and a fee-paying user.
 */
export async function payoutWorld(options: { fundMicro: bigint; blockTime?: number }): Promise<PayoutWorld> {
  const anvil = await startAnvil({ blockTime: options.blockTime });
  const chain = await connectChain(anvil.rpcUrl);
  const prover = new Prover();
  const { manifest, manifestPath, dir } = await deployForIndexer({ rpcUrl: anvil.rpcUrl, prover });
  const owner = accounts[0]!;
  const operator = await eercAccount(chain, manifest, prover, owner);
  const server = await newFundedAccount(chain);
  const user = await newFundedAccount(chain);
  await authoriseServer(chain, manifest, owner, server.address);
  const payoutAccounts = new Map<string, { account: PrivateKeyAccount & { privateKey: Hex }; client: EercClient }>();
  for (const p of PROVIDERS) {
    const account = await newFundedAccount(chain);
    const client = await eercAccount(chain, manifest, prover, account);
    await registerProvider(chain, manifest, owner, { namespace: p.namespace, payoutAccount: account.address, pricing: p.pricing });
    payoutAccounts.set(p.namespace, { account, client });
  }
  await fundPayer(chain, manifest, operator, owner, options.fundMicro);
  const tokenId = await usdcTokenId(chain, manifest);
  const indexer = await startIndexer({
    manifestPath,
    env: { RPC_URL: anvil.rpcUrl },
    pgliteDir: join(mkdtempSync(join(tmpdir(), "bs-payout-")), "pglite"),
    logFile: join(dir, "ponder.log"),
  });
  const agentOptions = (extra: Partial<AgentOptions> = {}): AgentOptions =>
    localAgentOptions({ operator, indexerUrl: indexer.url, tokenId, feeBps: FEE_BPS }, { waitMs: 60_000, ...extra });
  return {
    anvil,
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
    tokenId,
    payoutAccounts,
    agentOptions,
    agent: (extra) => new PayoutAgent(agentOptions(extra)),
    close: async () => {
      await indexer.stop();
      await prover.close();
      await anvil.stop();
    },
  };
}

/** Payout transfers per "cycle:providerId", read from the indexer once it has the chain head. */
export async function transfersPerCycleAndProvider(w: PayoutWorld): Promise<Map<string, number>> {
  await new IndexerClient(w.indexer.url).waitForBlock(await w.chain.publicClient.getBlockNumber({ cacheTime: 0 }));
  const facts = await readSettlementFacts(new IndexerClient(w.indexer.url), [w.operator.address]);
  const counts = new Map<string, number>();
  for (const p of facts.payouts) {
    const key = `${p.cycle}:${p.providerId}`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return counts;
}
