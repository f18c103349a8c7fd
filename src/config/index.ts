import { AGENT_ENV } from "./agent.js";
import { API_ENV } from "./api.js";
import { DEPLOY_ENV } from "./deploy.js";
import { INDEXER_ENV } from "./indexer.js";

export { ANVIL_KEYS, FUJI_CHAIN_ID, LOCAL_CHAIN_ID, LOCAL_ROLES, localKey } from "../chain/local.js";
export { type AgentConfig, agentConfig } from "./agent.js";
export { type PayoutViewConfig, payoutViewConfig, type RelayerKey, relayerKey, type SqlOverHttp, sqlOverHttp } from "./api.js";
export { type DeploySettings, deploySettings } from "./deploy.js";
export { type IndexerSettings, indexerSettings, ponderRpcVariable } from "./indexer.js";
export { type OperationsSettings, operationsSettings } from "./operations.js";
export { ConfigError, type Env } from "./parse.js";

/** Every environment variable each process reads, by process: the README's configuration table lists them all. */
export const CONFIG_VARIABLES = {
  agent: Object.keys(AGENT_ENV),
  api: Object.keys(API_ENV),
  indexer: Object.keys(INDEXER_ENV),
  deploy: Object.keys(DEPLOY_ENV),
} as const;
