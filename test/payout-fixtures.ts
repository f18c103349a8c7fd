import { type ChildProcess, spawn } from "node:child_process";
import { join } from "node:path";
import type { DeploymentManifest } from "../src/deployment/manifest.js";
import { PROJECT_ROOT } from "../src/eerc/artifacts.js";
import type { RunningIndexer } from "../src/indexer/process.js";
import { IndexerClient } from "../src/indexer-client/client.js";
import { type LocalWorld, localWorld } from "../src/local/world.js";
import { readSettlementFacts } from "../src/payout/facts.js";
import { freePool, freeQuotaThenPerCall, type Pricing, perCall } from "../src/usage/pricing.js";
import { deployForTests } from "./indexer-helpers.js";

/** The providers of the payout tests: commercial, hybrid (free quota then per call), a 1-micro price, and two free APIs. */
export const PROVIDERS: { namespace: string; pricing: Pricing }[] = [
  { namespace: "weather", pricing: perCall(1000n) },
  {
    namespace: "news",
    pricing: freeQuotaThenPerCall(5n, 250n),
  },
  { namespace: "tinyapi", pricing: perCall(1n) },
  { namespace: "wiki", pricing: freePool(1) },
  { namespace: "maps", pricing: freePool(3) },
];

export const FEE_BPS = 1000;

export type PayoutWorld = LocalWorld & { indexer: RunningIndexer };

/**
 * The payout tests' world (\`localWorld\`): the five providers above, the operator funded with
 * \`fundMicro\`, the indexer, and the deployment of \`deployForTests\` (the audited eERC in interop runs).
 */
export async function payoutWorld(options: {
  fundMicro: bigint;
  blockTime?: number;
  /** Extra environment of the indexer and its API (webhook settings, for example). */
  indexerEnv?: Record<string, string>;
}): Promise<PayoutWorld> {
  const world = await localWorld({
    providers: PROVIDERS,
    fundMicro: options.fundMicro,
    blockTime: options.blockTime,
    indexer: true,
    indexerEnv: options.indexerEnv,
    settlement: { feeBps: FEE_BPS, periodUnit: "month" },
    deploy: async (args) => (await deployForTests(args)) as DeploymentManifest,
  });
  return { ...world, indexer: world.indexer! };
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

export type AgentRun = { code: number | null; signal: NodeJS.Signals | null; output: string };

/** `scripts/agent.ts` as its own process on the world's deployment, chain and indexer, with `args` and extra `env`. */
export function spawnAgent(
  w: PayoutWorld,
  args: string[],
  env: Record<string, string> = {},
): { child: ChildProcess; done: Promise<AgentRun>; output: () => string } {
  const child = spawn(process.execPath, ["--import", "tsx", join(PROJECT_ROOT, "scripts/agent.ts"), ...args], {
    cwd: PROJECT_ROOT,
    env: {
      ...process.env,
      DEPLOYMENT_FILE: w.manifestPath,
      RPC_URL: w.rpcUrl,
      INDEXER_URL: w.indexer.url,
      PAYOUT_REQUESTS_FILE: join(w.dir, "payout-requests.jsonl"),
      PAYOUT_CHECKPOINT_FILE: join(w.dir, "payout-checkpoint.bin"),
      ...env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout!.on("data", (d) => (output += d));
  child.stderr!.on("data", (d) => (output += d));
  const done = new Promise<AgentRun>((resolve) => child.on("exit", (code, signal) => resolve({ code, signal, output })));
  return { child, done, output: () => output };
}
