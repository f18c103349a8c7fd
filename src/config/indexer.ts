import { isAbsolute, join } from "node:path";
import type { Address } from "viem";
import { CHAIN_NAMES, FUJI_CHAIN_ID, FUJI_USDC, LOCAL_CHAIN_ID } from "../chain/local.js";
import { manifestPath, readManifest } from "../deployment/manifest.js";
import { PROJECT_ROOT } from "../eerc/artifacts.js";
import { type Env, readEnv, required, env as variable } from "./parse.js";

/** What ponder.config.ts needs: one chain, the eERC and usage contracts on it, and a database. */
export type IndexerSettings = {
  /** `manifest`: a deployment manifest (local runs); `env`: addresses from the environment (Fuji, the audited eERC). */
  source: "manifest" | "env";
  chainName: string;
  chainId: number;
  /** The first RPC URL: writes and single reads go here. */
  rpcUrl: string;
  /** Every RPC URL for indexing; Ponder spreads requests over them, each with its own rate limit. */
  rpcUrls: string[];
  /**
   * Rate-limit buckets per RPC URL: Ponder gives each entry of a chain's `rpc` list its own
   * adaptive limit, starting at 20 requests/s, so each URL is listed this many times.
   */
  rpcBuckets: number;
  pollingInterval: number;
  startBlock: number;
  contracts: { encryptedERC: Address; registrar: Address; providerRegistry: Address; usageLedger: Address; token: Address };
  /** The address users pay fees to in `contracts.token`: its incoming transfers fund the free-API pool. */
  revenuePool: Address;
  database: { kind: "pglite"; directory: string } | { kind: "postgres"; connectionString: string };
};

export const INDEXER_ENV = {
  NETWORK: variable.text(),
  DEPLOYMENT_FILE: variable.text(),
  EERC_ADDRESS: variable.address(),
  REGISTRAR_ADDRESS: variable.address(),
  PROVIDER_REGISTRY_ADDRESS: variable.address(),
  USAGE_LEDGER_ADDRESS: variable.address(),
  USDC_ADDRESS: variable.address(),
  REVENUE_POOL_ADDRESS: variable.address(),
  CHAIN_ID: variable.integer({ min: 1 }),
  START_BLOCK: variable.integer(),
  RPC_URL: variable.urls(),
  PONDER_RPC_BUCKETS: variable.integer({ min: 1, max: 64 }),
  PONDER_POLLING_INTERVAL: variable.integer({ min: 1 }),
  DATABASE_URL: variable.text(),
  PONDER_PGLITE_DIR: variable.text(),
};

/** The indexer's RPC URLs variable for a chain: Ponder's own convention. */
export const ponderRpcVariable = (chainId: number) => `PONDER_RPC_URL_${chainId}`;

/**
 * Reads the indexer's settings. With `EERC_ADDRESS` set, the contracts, chain and start block come
 * from the environment (the audited eERC on Fuji by default, with our ProviderRegistry and
 * UsageLedger from `PROVIDER_REGISTRY_ADDRESS` and `USAGE_LEDGER_ADDRESS`); otherwise from the
 * deployment manifest (`DEPLOYMENT_FILE`, or `deployments/<NETWORK>.json`).
 */
export function indexerSettings(env: Env = process.env): IndexerSettings {
  const e = readEnv(INDEXER_ENV, env);
  let source: IndexerSettings["source"];
  let chainId: number;
  let startBlock: number;
  let contracts: IndexerSettings["contracts"];
  let revenuePool: Address;
  let network: string | undefined;
  const withEerc = "with EERC_ADDRESS";
  if (e.EERC_ADDRESS) {
    source = "env";
    chainId = e.CHAIN_ID ?? FUJI_CHAIN_ID;
    startBlock = e.START_BLOCK ?? 0;
    contracts = {
      encryptedERC: e.EERC_ADDRESS,
      registrar: required(e.REGISTRAR_ADDRESS, "REGISTRAR_ADDRESS", withEerc),
      providerRegistry: required(e.PROVIDER_REGISTRY_ADDRESS, "PROVIDER_REGISTRY_ADDRESS", withEerc),
      usageLedger: required(e.USAGE_LEDGER_ADDRESS, "USAGE_LEDGER_ADDRESS", withEerc),
      token: required(e.USDC_ADDRESS ?? (chainId === FUJI_CHAIN_ID ? FUJI_USDC : undefined), "USDC_ADDRESS", `on chain ${chainId}`),
    };
    revenuePool = required(e.REVENUE_POOL_ADDRESS, "REVENUE_POOL_ADDRESS", withEerc);
  } else {
    source = "manifest";
    const manifest = readManifest(e.DEPLOYMENT_FILE ?? manifestPath(e.NETWORK));
    chainId = manifest.chainId;
    startBlock = manifest.startBlock;
    contracts = {
      encryptedERC: manifest.contracts.encryptedERC,
      registrar: manifest.contracts.registrar,
      providerRegistry: manifest.contracts.providerRegistry,
      usageLedger: manifest.contracts.usageLedger,
      token: manifest.contracts.token,
    };
    revenuePool = required(
      e.REVENUE_POOL_ADDRESS ?? manifest.revenuePool ?? undefined,
      "REVENUE_POOL_ADDRESS",
      "(the address users pay fees to): the deployment manifest names no revenuePool",
    );
    network = manifest.network;
  }
  const chainName = CHAIN_NAMES[chainId] ?? (network && /^[a-z][a-z0-9_]*$/.test(network) ? network : `chain_${chainId}`);
  const rpcVariable = ponderRpcVariable(chainId);
  const chainRpc = readEnv({ [rpcVariable]: variable.urls() }, env)[rpcVariable] as string[] | undefined;
  const rpcUrls = chainRpc?.length ? chainRpc : e.RPC_URL?.length ? e.RPC_URL : ["http://127.0.0.1:8545"];
  const rpcUrl = rpcUrls[0]!;
  // anvil mines on demand: poll fast so an event is visible within a few hundred milliseconds.
  const pollingInterval = e.PONDER_POLLING_INTERVAL ?? (chainId === LOCAL_CHAIN_ID ? 100 : 1_000);
  // A local node has no rate limit, and one bucket's 20 requests/s (half of it spent on polling
  // every 100 ms) would cap live indexing at a few blocks per second on a chain that mines one
  // block per transaction. A remote endpoint keeps one bucket per URL unless told otherwise.
  const rpcBuckets = e.PONDER_RPC_BUCKETS ?? (chainId === LOCAL_CHAIN_ID ? LOCAL_RPC_BUCKETS : 1);

  const databaseUrl = e.DATABASE_URL;
  const pgliteDir = e.PONDER_PGLITE_DIR ?? join(".ponder", "pglite");
  const database: IndexerSettings["database"] = databaseUrl
    ? { kind: "postgres", connectionString: databaseUrl }
    : { kind: "pglite", directory: isAbsolute(pgliteDir) ? pgliteDir : join(PROJECT_ROOT, pgliteDir) };

  return { source, chainName, chainId, rpcUrl, rpcUrls, rpcBuckets, pollingInterval, startBlock, contracts, revenuePool, database };
}

/** Rate-limit buckets per RPC URL on the local chain (anvil). */
export const LOCAL_RPC_BUCKETS = 16;

/** The chain's `rpc` for Ponder: every URL `rpcBuckets` times, one bucket each (a lone URL as a string). */
export function ponderRpc(settings: Pick<IndexerSettings, "rpcUrls" | "rpcBuckets">): string | string[] {
  const urls = settings.rpcUrls.flatMap((url) => Array.from({ length: settings.rpcBuckets }, () => url));
  return urls.length === 1 ? urls[0]! : urls;
}
