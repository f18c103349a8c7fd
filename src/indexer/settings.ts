import { isAbsolute, join } from "node:path";
import { type Address, getAddress, isAddress } from "viem";
import { manifestPath, readManifest } from "../deployment/manifest.js";
import { PROJECT_ROOT } from "../eerc/artifacts.js";
import { BaseError } from "../errors.js";

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
  pollingInterval: number;
  startBlock: number;
  contracts: { encryptedERC: Address; registrar: Address; providerRegistry: Address; usageLedger: Address; token: Address };
  /** The address users pay fees to in `contracts.token`: its incoming transfers fund the free-API pool. */
  revenuePool: Address;
  database: { kind: "pglite"; directory: string } | { kind: "postgres"; connectionString: string };
};

export class IndexerSettingsError extends BaseError {
  readonly code = "INVALID_INDEXER_SETTINGS";
}

type Env = Record<string, string | undefined>;

const FUJI_CHAIN_ID = 43113;
const ANVIL_CHAIN_ID = 31337;

/** Circle's USDC on Fuji. */
const FUJI_USDC: Address = "0x5425890298aed601595a70AB815c96711a31Bc65";

const CHAIN_NAMES: Record<number, string> = { [FUJI_CHAIN_ID]: "fuji", [ANVIL_CHAIN_ID]: "anvil", 43114: "avalanche" };

function envAddress(env: Env, name: string): Address {
  const value = env[name];
  if (!value || !isAddress(value)) throw new IndexerSettingsError(`${name} must be set to a contract address`);
  return getAddress(value);
}

function envInteger(env: Env, name: string, fallback: number): number {
  const value = env[name];
  if (value === undefined || value === "") return fallback;
  if (!/^\d+$/.test(value)) throw new IndexerSettingsError(`${name} must be a non-negative integer, got "${value}"`);
  return Number(value);
}

/**
 * Reads the indexer's settings. With `EERC_ADDRESS` set, the contracts, chain and start block come
 * from the environment (the audited eERC on Fuji by default, with our ProviderRegistry and
 * UsageLedger from `PROVIDER_REGISTRY_ADDRESS` and `USAGE_LEDGER_ADDRESS`); otherwise from the
 * deployment manifest (`DEPLOYMENT_FILE`, or `deployments/<NETWORK>.json`).
 */
export function indexerSettings(env: Env = process.env): IndexerSettings {
  let source: IndexerSettings["source"];
  let chainId: number;
  let startBlock: number;
  let contracts: IndexerSettings["contracts"];
  let revenuePool: Address;
  let network: string | undefined;
  if (env.EERC_ADDRESS) {
    source = "env";
    chainId = envInteger(env, "CHAIN_ID", FUJI_CHAIN_ID);
    startBlock = envInteger(env, "START_BLOCK", 0);
    contracts = {
      encryptedERC: envAddress(env, "EERC_ADDRESS"),
      registrar: envAddress(env, "REGISTRAR_ADDRESS"),
      providerRegistry: envAddress(env, "PROVIDER_REGISTRY_ADDRESS"),
      usageLedger: envAddress(env, "USAGE_LEDGER_ADDRESS"),
      token: env.USDC_ADDRESS || chainId !== FUJI_CHAIN_ID ? envAddress(env, "USDC_ADDRESS") : FUJI_USDC,
    };
    revenuePool = envAddress(env, "REVENUE_POOL_ADDRESS");
  } else {
    source = "manifest";
    const manifest = readManifest(env.DEPLOYMENT_FILE || manifestPath(env.NETWORK));
    chainId = manifest.chainId;
    startBlock = manifest.startBlock;
    contracts = {
      encryptedERC: manifest.contracts.encryptedERC,
      registrar: manifest.contracts.registrar,
      providerRegistry: manifest.contracts.providerRegistry,
      usageLedger: manifest.contracts.usageLedger,
      token: manifest.contracts.token,
    };
    if (env.REVENUE_POOL_ADDRESS) revenuePool = envAddress(env, "REVENUE_POOL_ADDRESS");
    else if (manifest.revenuePool) revenuePool = manifest.revenuePool;
    else
      throw new IndexerSettingsError(
        "the deployment manifest names no revenuePool: set REVENUE_POOL_ADDRESS (the address users pay fees to)",
      );
    network = manifest.network;
  }
  const chainName = CHAIN_NAMES[chainId] ?? (network && /^[a-z][a-z0-9_]*$/.test(network) ? network : `chain_${chainId}`);
  const rpcUrls = (env[`PONDER_RPC_URL_${chainId}`] || env.RPC_URL || "http://127.0.0.1:8545")
    .split(",")
    .map((u) => u.trim())
    .filter((u) => u.length > 0);
  const rpcUrl = rpcUrls[0]!;
  // anvil mines on demand: poll fast so an event is visible within a few hundred milliseconds.
  const pollingInterval = envInteger(env, "PONDER_POLLING_INTERVAL", chainId === ANVIL_CHAIN_ID ? 100 : 1_000);

  const databaseUrl = env.DATABASE_URL;
  const pgliteDir = env.PONDER_PGLITE_DIR || join(".ponder", "pglite");
  const database: IndexerSettings["database"] = databaseUrl
    ? { kind: "postgres", connectionString: databaseUrl }
    : { kind: "pglite", directory: isAbsolute(pgliteDir) ? pgliteDir : join(PROJECT_ROOT, pgliteDir) };

  return { source, chainName, chainId, rpcUrl, rpcUrls, pollingInterval, startBlock, contracts, revenuePool, database };
}
