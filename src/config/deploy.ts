import { type Address, type Hex, zeroAddress } from "viem";
import { ANVIL_KEYS, LOCAL_ROLES } from "../chain/local.js";
import type { PeriodUnit } from "../usage/period.js";
import { DEFAULT_FEE_BPS, DEFAULT_PERIOD_UNIT, OPERATOR_ENV } from "./operator.js";
import { ConfigError, type Env, readEnv, required, env as variable } from "./parse.js";

export const DEPLOY_ENV = {
  RPC_URL: variable.url(),
  NETWORK: variable.text(),
  DEPLOYMENT_FILE: variable.text(),
  DEPLOYER_PRIVATE_KEY: variable.privateKey(),
  AUDITOR_PRIVATE_KEY: variable.privateKey(),
  OWNER_ADDRESS: variable.address(),
  OPERATOR_ADDRESS: variable.address(),
  USDC_ADDRESS: variable.address(),
  REVENUE_POOL_ADDRESS: variable.address(),
  EERC_ADDRESS: variable.address(),
  REGISTRAR_ADDRESS: variable.address(),
  START_BLOCK: variable.integer(),
  PTAU_FILE: variable.text(),
  ALLOW_DEVELOPMENT_PTAU: variable.flag(),
  CIRCUITS_DIR: variable.text(),
  PLATFORM_FEE_BPS: OPERATOR_ENV.PLATFORM_FEE_BPS,
  PRICING_PERIOD: OPERATOR_ENV.PRICING_PERIOD,
};

export type DeploySettings = {
  rpcUrl: string;
  network: string;
  deployerKey: Hex;
  auditorKey: Hex;
  /** OWNER_ADDRESS: offered ownership of the ProviderRegistry and UsageLedger (and our own eERC); unset, the deployer keeps it. */
  owner?: Address;
  /** OPERATOR_ADDRESS: the UsageLedger's operator, whose registered eERC key reads the operator copy of the lines; unset, the deployer. */
  operator?: Address;
  token?: Address;
  revenuePool?: Address;
  /** Attach to an eERC deployed elsewhere (the audited one on Fuji) instead of deploying one. */
  eerc?: { encryptedERC: Address; registrar: Address; startBlock: number };
  allowDevelopmentPtau: boolean;
  /** The settlement settings the ProviderRegistry records at deploy, applying from genesis. */
  settlement: { feeBps: number; periodUnit: PeriodUnit };
};

const notZero = (address: Address | undefined, variable: string): Address | undefined => {
  if (address === zeroAddress) throw new ConfigError(variable, `${variable} must not be the zero address`);
  return address;
};

/**
 * `npm run deploy`'s settings; on the `anvil` network the deployer and auditor default to anvil's
 * accounts #0 and #9. The deployer owns the contracts and is the UsageLedger's operator unless
 * OWNER_ADDRESS or OPERATOR_ADDRESS name other accounts.
 */
export function deploySettings(source: Env): DeploySettings {
  const e = readEnv(DEPLOY_ENV, source);
  const network = e.NETWORK ?? "anvil";
  const local = network === "anvil";
  const notLocal = `on network ${network}`;
  let eerc: DeploySettings["eerc"];
  if (e.EERC_ADDRESS || e.REGISTRAR_ADDRESS) {
    eerc = {
      encryptedERC: required(e.EERC_ADDRESS, "EERC_ADDRESS", "with REGISTRAR_ADDRESS"),
      registrar: required(e.REGISTRAR_ADDRESS, "REGISTRAR_ADDRESS", "with EERC_ADDRESS"),
      startBlock: required(e.START_BLOCK, "START_BLOCK", "with EERC_ADDRESS: the block to index from (at or before the eERC's deployment)"),
    };
  }
  return {
    rpcUrl: e.RPC_URL ?? "http://127.0.0.1:8545",
    network,
    deployerKey: required(e.DEPLOYER_PRIVATE_KEY ?? (local ? ANVIL_KEYS[LOCAL_ROLES.owner] : undefined), "DEPLOYER_PRIVATE_KEY", notLocal),
    auditorKey: required(e.AUDITOR_PRIVATE_KEY ?? (local ? ANVIL_KEYS[LOCAL_ROLES.auditor] : undefined), "AUDITOR_PRIVATE_KEY", notLocal),
    owner: notZero(e.OWNER_ADDRESS, "OWNER_ADDRESS"),
    operator: notZero(e.OPERATOR_ADDRESS, "OPERATOR_ADDRESS"),
    token: e.USDC_ADDRESS,
    revenuePool: e.REVENUE_POOL_ADDRESS,
    eerc,
    allowDevelopmentPtau: e.ALLOW_DEVELOPMENT_PTAU ?? false,
    settlement: { feeBps: e.PLATFORM_FEE_BPS ?? DEFAULT_FEE_BPS, periodUnit: e.PRICING_PERIOD ?? DEFAULT_PERIOD_UNIT },
  };
}
