import { type Address, getAddress, type Hex } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { localKey } from "../chain/local.js";
import { DEFAULT_PROVING_KEY_CHECKS_FILE } from "../eerc/proving-key-checks.js";
import { PLAN_FAULT_STEPS, type PlanFaultStep } from "../payout/coordination.js";
import { FUNDING_FAULT_STEPS, type FundingFaultStep } from "../payout/funding.js";
import { FAULT_STEPS, type FaultStep } from "../payout/pipeline.js";
import { OPERATIONS_ENV, type OperationsSettings, operationsSettings } from "./operations.js";
import { isLocalChain, OPERATOR_ENV, type OperatorSettings, operatorSettings } from "./operator.js";
import { ConfigError, type Env, env, readEnv } from "./parse.js";

export const AGENT_ENV = {
  ...OPERATOR_ENV,
  ...OPERATIONS_ENV,
  RPC_URL: env.url(),
  INDEXER_URL: env.url(),
  PAYER_PRIVATE_KEYS: env.privateKeys(),
  REVENUE_POOL_PRIVATE_KEY: env.privateKey(),
  PAYOUT_FUND_FROM_POOL: env.flag(),
  PAYOUT_CONFIRMATIONS: env.integer(),
  PAYOUT_PIPELINE_DEPTH: env.integer({ min: 1, max: 64 }),
  PAYOUT_EVERY_PROVIDER: env.flag(),
  PAYOUT_INTERVAL_S: env.integer(),
  PAYOUT_PORT: env.integer({ max: 65_535 }),
  PAYOUT_AGENT_NAME: env.text(),
  PAYOUT_REQUESTS_FILE: env.text(),
  PAYOUT_CHECKPOINT_FILE: env.text(),
  PROVING_KEY_CHECKS_FILE: env.text(),
  PAYOUT_FAULT: env.text(),
  AGENT_CORS_ORIGIN: env.urls(),
  AGENT_DATABASE_URL: env.text(),
  AGENT_ID: env.text(),
  AGENT_CLAIM_SIZE: env.integer({ min: 1, max: 1000 }),
};

/** The payout agent's settings. */
export type AgentConfig = OperatorSettings &
  OperationsSettings & {
    rpcUrl: string;
    indexerUrl: string;
    /** Keys of the accounts that pay; the operator's when PAYER_PRIVATE_KEYS is unset. */
    payerKeys: Hex[];
    /** Move the revenue pool's USDC into the payers' encrypted balances before each cycle (PAYOUT_FUND_FROM_POOL, default 1). */
    fundFromPool: boolean;
    /** The revenue pool's wallet key (REVENUE_POOL_PRIVATE_KEY; anvil's account #7 on a local chain); not needed when the pool is a payer. */
    poolKey?: Hex;
    confirmations: number;
    depth: number;
    /** Pay every active provider every cycle, zero where nothing is owed (PAYOUT_EVERY_PROVIDER, default 1). */
    everyProvider: boolean;
    /** Seconds between scheduled cycles; 0 turns the schedule off. */
    intervalS: number;
    port: number;
    /** With the deployment, this agent's EIP-712 identity: a request signed for another agent is refused. */
    agentName: string;
    /** Where accepted request ids are kept until their deadline, so a replay after a restart is refused. */
    requestsFile: string;
    /** Where the settlement read so far is kept, sealed with the operator's key, so a restart reads on from it. */
    checkpointFile: string;
    /** The start-up checks of the proving keys that passed (`ProvingKeyChecks`). */
    provingKeyChecksFile: string;
    /**
     * Browser origins allowed to call the agent's HTTP API (AGENT_CORS_ORIGIN, comma-separated; default
     * none): the dashboard's origin, for its status reads and the operator-signed distribute request.
     */
    corsOrigins: string[];
    /**
     * Several agents sharing the cycles through one PostgreSQL database (AGENT_DATABASE_URL; unset:
     * this agent pays every cycle alone): its id there (AGENT_ID, default its first payer's
     * address) and how many providers it claims at a time (AGENT_CLAIM_SIZE, default 4 × payers × depth).
     */
    coordination?: { url: string; agentId: string; claimSize: number };
    /** Crash tests only: stop at `step` of the `seq`-th transfer (or pool transfer, deposit or plan). */
    fault?: { step: FaultStep | FundingFaultStep | PlanFaultStep; seq: number };
  };

function faultOf(text: string | undefined): AgentConfig["fault"] {
  if (text === undefined) return undefined;
  const m = /^([a-z_]+)@(\d+)$/.exec(text);
  if (!m) throw new ConfigError("PAYOUT_FAULT", `PAYOUT_FAULT must be <step>@<transfer>, got "${text}"`);
  const step = m[1] as FaultStep | FundingFaultStep | PlanFaultStep;
  const steps: readonly string[] = [...FAULT_STEPS, ...FUNDING_FAULT_STEPS, ...PLAN_FAULT_STEPS];
  if (!steps.includes(step)) {
    throw new ConfigError("PAYOUT_FAULT", `PAYOUT_FAULT: the step must be one of ${steps.join(", ")}, got "${m[1]}"`);
  }
  return { step, seq: Number(m[2]) };
}

function coordinationOf(
  e: { AGENT_DATABASE_URL?: string; AGENT_ID?: string; AGENT_CLAIM_SIZE?: number },
  payerKeys: readonly Hex[],
  depth: number,
): AgentConfig["coordination"] {
  const url = e.AGENT_DATABASE_URL;
  if (!url) {
    for (const v of ["AGENT_ID", "AGENT_CLAIM_SIZE"] as const) {
      if (e[v] !== undefined) throw new ConfigError(v, `${v} is only read with AGENT_DATABASE_URL (several agents)`);
    }
    return undefined;
  }
  // The URL may hold a password: it is never echoed.
  if (!/^postgres(ql)?:\/\/./.test(url))
    throw new ConfigError("AGENT_DATABASE_URL", "AGENT_DATABASE_URL must be a postgres:// or postgresql:// URL");
  return {
    url,
    agentId: e.AGENT_ID ?? privateKeyToAccount(payerKeys[0]!).address,
    claimSize: e.AGENT_CLAIM_SIZE ?? 4 * payerKeys.length * depth,
  };
}

/** The agent's name when PAYOUT_AGENT_NAME is not set: with the UsageLedger, its EIP-712 salt (agentIdOf). */
export const DEFAULT_AGENT_NAME = "payout";

/** Reads the agent's settings for a deployment on `chainId` (from its manifest). */
export function agentConfig(source: Env, chainId: number): AgentConfig {
  const e = readEnv(AGENT_ENV, source);
  const operator = operatorSettings(e, chainId);
  const payerKeys = e.PAYER_PRIVATE_KEYS ?? [operator.operatorKey];
  const depth = e.PAYOUT_PIPELINE_DEPTH ?? 3;
  return {
    ...operator,
    ...operationsSettings(source),
    rpcUrl: e.RPC_URL ?? "http://127.0.0.1:8545",
    indexerUrl: e.INDEXER_URL ?? "http://127.0.0.1:42069",
    payerKeys,
    fundFromPool: e.PAYOUT_FUND_FROM_POOL ?? true,
    poolKey: e.REVENUE_POOL_PRIVATE_KEY ?? localKey("revenuePool", chainId),
    confirmations: e.PAYOUT_CONFIRMATIONS ?? (isLocalChain(chainId) ? 0 : 1),
    depth,
    everyProvider: e.PAYOUT_EVERY_PROVIDER ?? true,
    intervalS: e.PAYOUT_INTERVAL_S ?? 0,
    port: e.PAYOUT_PORT ?? 42070,
    agentName: e.PAYOUT_AGENT_NAME ?? DEFAULT_AGENT_NAME,
    requestsFile: e.PAYOUT_REQUESTS_FILE ?? `data/payout-requests-${chainId}.jsonl`,
    checkpointFile: e.PAYOUT_CHECKPOINT_FILE ?? `data/payout-checkpoint-${chainId}.bin`,
    provingKeyChecksFile: e.PROVING_KEY_CHECKS_FILE ?? DEFAULT_PROVING_KEY_CHECKS_FILE,
    corsOrigins: (e.AGENT_CORS_ORIGIN ?? []).map((u) => new URL(u).origin),
    coordination: coordinationOf(e, payerKeys, depth),
    fault: faultOf(e.PAYOUT_FAULT),
  };
}

/**
 * The key that moves the revenue pool's USDC when the agent funds the payers (null: funding is
 * off): the payer's own when the pool is a payer, else REVENUE_POOL_PRIVATE_KEY, which must be
 * the pool's. `revenuePool` is the deployment manifest's.
 */
export function poolFundingKey(
  config: Pick<AgentConfig, "fundFromPool" | "poolKey" | "payerKeys">,
  revenuePool: Address | undefined,
): Hex | null {
  if (!config.fundFromPool) return null;
  if (!revenuePool) {
    throw new ConfigError(
      "PAYOUT_FUND_FROM_POOL",
      "PAYOUT_FUND_FROM_POOL is on but the deployment manifest names no revenuePool: record one (REVENUE_POOL_ADDRESS at deploy) or set PAYOUT_FUND_FROM_POOL=0",
    );
  }
  const pool = getAddress(revenuePool);
  const payerKey = config.payerKeys.find((k) => privateKeyToAccount(k).address === pool);
  if (payerKey) return payerKey;
  if (!config.poolKey) {
    throw new ConfigError(
      "REVENUE_POOL_PRIVATE_KEY",
      `REVENUE_POOL_PRIVATE_KEY must be set to fund the payers from the revenue pool ${pool}, which is not a payer; or set PAYOUT_FUND_FROM_POOL=0`,
    );
  }
  const holder = privateKeyToAccount(config.poolKey).address;
  if (holder !== pool) {
    throw new ConfigError(
      "REVENUE_POOL_PRIVATE_KEY",
      `REVENUE_POOL_PRIVATE_KEY is the key of ${holder}, not of the deployment's revenue pool ${pool}`,
    );
  }
  return config.poolKey;
}
