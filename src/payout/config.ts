import { type Address, getAddress, type Hex, isAddress } from "viem";
import { BaseError } from "../errors.js";
import type { PeriodUnit } from "../meter/meter.js";
import { FAULT_STEPS, type FaultStep } from "./pipeline.js";

/** The payout agent's settings, from the environment. */
export type AgentConfig = {
  rpcUrl: string;
  indexerUrl: string;
  /** The operator's account key: its eERC key reads usage lines and memos; it signs distribute requests. */
  operatorKey: Hex;
  /** Keys of the accounts that pay; the operator's when PAYER_PRIVATE_KEYS is unset. */
  payerKeys: Hex[];
  pastPayers: Address[];
  feeBps: number;
  periodUnit: PeriodUnit;
  confirmations: number;
  depth: number;
  /** Pay every active provider every cycle, zero where nothing is owed (PAYOUT_EVERY_PROVIDER, default 1). */
  everyProvider: boolean;
  /** Seconds between scheduled cycles; 0 turns the schedule off. */
  intervalS: number;
  port: number;
  fault?: { step: FaultStep; seq: number };
};

export class AgentConfigError extends BaseError {
  readonly code = "INVALID_AGENT_CONFIG";
}

type Env = Record<string, string | undefined>;

/** anvil's account #0, the deployer and operator of a local deployment. Never used on another chain. */
const ANVIL_OPERATOR_KEY: Hex = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";

function integer(env: Env, name: string, fallback: number, max = Number.MAX_SAFE_INTEGER): number {
  const v = env[name];
  if (v === undefined || v === "") return fallback;
  if (!/^\d+$/.test(v) || Number(v) > max) throw new AgentConfigError(`${name} must be an integer from 0 to ${max}, got "${v}"`);
  return Number(v);
}

function key(name: string, value: string): Hex {
  if (!/^0x[0-9a-fA-F]{64}$/.test(value)) throw new AgentConfigError(`${name} must hold 32-byte hex private keys`);
  return value as Hex;
}

/** Reads the agent's settings; on a local chain (31337) the operator defaults to anvil's account #0. */
export function agentConfig(env: Env, chainId: number): AgentConfig {
  const operatorRaw = env.OPERATOR_PRIVATE_KEY ?? (chainId === 31337 ? ANVIL_OPERATOR_KEY : undefined);
  if (!operatorRaw) throw new AgentConfigError(`OPERATOR_PRIVATE_KEY must be set on chain ${chainId}`);
  const operatorKey = key("OPERATOR_PRIVATE_KEY", operatorRaw);
  const payerKeys = env.PAYER_PRIVATE_KEYS
    ? env.PAYER_PRIVATE_KEYS.split(",").map((k) => key("PAYER_PRIVATE_KEYS", k.trim()))
    : [operatorKey];
  const pastPayers = addresses(env, "PAST_PAYER_ADDRESSES");
  const periodUnit = env.PRICING_PERIOD ?? "month";
  if (periodUnit !== "month" && periodUnit !== "day")
    throw new AgentConfigError(`PRICING_PERIOD must be "month" or "day", got "${periodUnit}"`);
  let fault: AgentConfig["fault"];
  if (env.PAYOUT_FAULT) {
    const m = /^([a-z_]+)@(\d+)$/.exec(env.PAYOUT_FAULT);
    if (!m || !FAULT_STEPS.includes(m[1] as FaultStep)) {
      throw new AgentConfigError(`PAYOUT_FAULT must be <step>@<transfer>, step one of ${FAULT_STEPS.join(", ")}`);
    }
    fault = { step: m[1] as FaultStep, seq: Number(m[2]) };
  }
  return {
    rpcUrl: env.RPC_URL || "http://127.0.0.1:8545",
    indexerUrl: (env.INDEXER_URL || "http://127.0.0.1:42069").replace(/\/$/, ""),
    operatorKey,
    payerKeys,
    pastPayers,
    feeBps: integer(env, "PLATFORM_FEE_BPS", 1000, 10_000),
    periodUnit,
    confirmations: integer(env, "PAYOUT_CONFIRMATIONS", chainId === 31337 ? 0 : 1),
    depth: Math.max(1, integer(env, "PAYOUT_PIPELINE_DEPTH", 3, 64)),
    everyProvider: integer(env, "PAYOUT_EVERY_PROVIDER", 1, 1) === 1,
    intervalS: integer(env, "PAYOUT_INTERVAL_S", 0),
    port: integer(env, "PAYOUT_PORT", 42070, 65535),
    fault,
  };
}

/** What the query API needs to serve pending amounts and per-cycle totals: the operator's key, the payers and the pricing settings. */
export type PayoutViewConfig = { operatorKey: Hex; payers: Address[]; feeBps: number; periodUnit: PeriodUnit };

function addresses(env: Env, name: string): Address[] {
  return (env[name] ?? "")
    .split(",")
    .map((a) => a.trim())
    .filter((a) => a.length > 0)
    .map((a) => {
      if (!isAddress(a)) throw new AgentConfigError(`${name}: "${a}" is not an address`);
      return getAddress(a);
    });
}

/**
 * The API's payout settings, or why they are off: without the operator key (OPERATOR_PRIVATE_KEY;
 * anvil's account #0 on a local chain) nothing can be decrypted to compute what is pending.
 * Payers are PAYER_ADDRESSES (default: the operator) plus PAST_PAYER_ADDRESSES.
 */
export function payoutViewConfig(
  env: Env,
  chainId: number,
  operatorAddress: (key: Hex) => Address,
): PayoutViewConfig | { disabled: string } {
  const raw = env.OPERATOR_PRIVATE_KEY ?? (chainId === 31337 ? ANVIL_OPERATOR_KEY : undefined);
  if (!raw)
    return { disabled: `OPERATOR_PRIVATE_KEY is not set: pending amounts and cycle totals need the operator key on chain ${chainId}` };
  const operatorKey = key("OPERATOR_PRIVATE_KEY", raw);
  const payers = addresses(env, "PAYER_ADDRESSES");
  if (payers.length === 0) payers.push(operatorAddress(operatorKey));
  payers.push(...addresses(env, "PAST_PAYER_ADDRESSES"));
  const periodUnit = env.PRICING_PERIOD ?? "month";
  if (periodUnit !== "month" && periodUnit !== "day")
    throw new AgentConfigError(`PRICING_PERIOD must be "month" or "day", got "${periodUnit}"`);
  return { operatorKey, payers, feeBps: integer(env, "PLATFORM_FEE_BPS", 1000, 10_000), periodUnit };
}
