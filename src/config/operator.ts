import type { Address, Hex } from "viem";
import type { z } from "zod";
import { LOCAL_CHAIN_ID, localKey } from "../chain/local.js";
import type { PeriodUnit } from "../usage/period.js";
import { env, required } from "./parse.js";

/** What the agent and the API both read: the operator's key and the settlement rules. */
export const OPERATOR_ENV = {
  OPERATOR_PRIVATE_KEY: env.privateKey(),
  PAST_PAYER_ADDRESSES: env.addresses(),
  PLATFORM_FEE_BPS: env.integer({ max: 10_000 }),
  PRICING_PERIOD: env.oneOf(["month", "day"] as const satisfies readonly PeriodUnit[]),
};

/** The settlement rules and the payers of the past, which need no key. */
export type SettlementSettings = {
  pastPayers: Address[];
  feeBps: number;
  periodUnit: PeriodUnit;
};

export type OperatorSettings = SettlementSettings & {
  /** The operator's account key: its eERC key reads usage lines and payout amounts; it signs distribute requests. */
  operatorKey: Hex;
};

export const DEFAULT_FEE_BPS = 1000;
export const DEFAULT_PERIOD_UNIT: PeriodUnit = "month";

type OperatorEnv = z.infer<z.ZodObject<typeof OPERATOR_ENV>>;

/**
 * The operator's settings from its variables, read once with the process's schema; on a local
 * chain the operator defaults to anvil's account #0, elsewhere its key must be set.
 */
export function operatorSettings(e: OperatorEnv, chainId: number): OperatorSettings {
  return {
    operatorKey: required(e.OPERATOR_PRIVATE_KEY ?? localKey("operator", chainId), "OPERATOR_PRIVATE_KEY", `on chain ${chainId}`),
    ...settlementSettings(e),
  };
}

export function settlementSettings(e: OperatorEnv): SettlementSettings {
  return {
    pastPayers: e.PAST_PAYER_ADDRESSES ?? [],
    feeBps: e.PLATFORM_FEE_BPS ?? DEFAULT_FEE_BPS,
    periodUnit: e.PRICING_PERIOD ?? DEFAULT_PERIOD_UNIT,
  };
}

export const isLocalChain = (chainId: number) => chainId === LOCAL_CHAIN_ID;
