import { type Address, getAddress, type Hex } from "viem";
import type { z } from "zod";
import { LOCAL_CHAIN_ID, localKey } from "../chain/local.js";
import { DEFAULT_SETTLEMENT } from "../deployment/settlement.js";
import { type Point, pointEquals } from "../eerc/curve.js";
import { type AssertedSettlement, describeTerm, type SettlementTerm, settlementMismatches } from "../revenue/schedule.js";
import type { PeriodUnit } from "../usage/period.js";
import { ConfigError, env, required } from "./parse.js";

/**
 * What the agent and the API both read: the operator's key, the past payers and, optionally, the
 * settlement settings they expect to be in force. The settings themselves are recorded on chain
 * (ProviderRegistry) at deploy and read from there; given here, they are only checked against it.
 */
export const OPERATOR_ENV = {
  OPERATOR_PRIVATE_KEY: env.privateKey(),
  PAST_PAYER_ADDRESSES: env.addresses(),
  PLATFORM_FEE_BPS: env.integer({ max: 10_000 }),
  PRICING_PERIOD: env.oneOf(["month", "day"] as const satisfies readonly PeriodUnit[]),
};

/** The payers of the past, which need no key, and the settlement settings the process was told to expect. */
export type SettlementSettings = {
  pastPayers: Address[];
  /** PLATFORM_FEE_BPS and PRICING_PERIOD when set: each must match the record in force on chain. */
  asserted: AssertedSettlement;
};

export type OperatorSettings = SettlementSettings & {
  /** The operator's account key: its eERC key reads usage lines and payout amounts; it signs distribute requests. */
  operatorKey: Hex;
};

/** What `npm run deploy` records when PLATFORM_FEE_BPS and PRICING_PERIOD are unset. */
export const DEFAULT_FEE_BPS = DEFAULT_SETTLEMENT.feeBps;
export const DEFAULT_PERIOD_UNIT: PeriodUnit = DEFAULT_SETTLEMENT.periodUnit;

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
    asserted: {
      ...(e.PLATFORM_FEE_BPS !== undefined && { feeBps: e.PLATFORM_FEE_BPS }),
      ...(e.PRICING_PERIOD !== undefined && { periodUnit: e.PRICING_PERIOD }),
    },
  };
}

/**
 * Refuses settings a process was given that disagree with the settlement record in force: the
 * chain's record is what every party settles with, so a process told otherwise is misconfigured.
 */
export function checkRecordedSettlement(asserted: AssertedSettlement, inForce: SettlementTerm): void {
  const [m] = settlementMismatches(asserted, inForce);
  if (!m) return;
  const variable = m.setting === "feeBps" ? "PLATFORM_FEE_BPS" : "PRICING_PERIOD";
  throw new ConfigError(
    variable,
    `${variable} is ${m.asserted} but the ProviderRegistry records ${m.recorded} (${describeTerm(inForce)}): ` +
      `the settlement settings are read from the chain; unset ${variable}, or record a change (setSettlement)`,
  );
}

/**
 * Refuses an operator key other than the one the UsageLedger's operator (`operator()`) registered
 * in the eERC: the operator copy of every usage line is encrypted to that key, and any other key
 * reads none of them, so the process would settle nothing owed. `variable` holds the key.
 */
export function checkLedgerOperator(
  variable: string,
  publicKey: Point,
  onChain: { ledger: Address; operator: Address; publicKey: Point | null },
): void {
  const who = `the UsageLedger's operator ${getAddress(onChain.operator)} (ledger ${getAddress(onChain.ledger)})`;
  if (!onChain.publicKey) {
    throw new ConfigError(
      variable,
      `${who} has no eERC registration, so no usage line can be read: register that account (npm run cli -- register), ` +
        `or have the ledger's owner name the operator whose key ${variable} holds (setOperator)`,
    );
  }
  if (pointEquals(onChain.publicKey, publicKey)) return;
  throw new ConfigError(
    variable,
    `${variable} is not the eERC key of ${who}: the operator copy of every usage line is encrypted to that account's ` +
      `registered key and this key reads none of them; set ${variable} to the operator's key, or have the ledger's owner ` +
      "name this key's account as the operator (setOperator)",
  );
}

export const isLocalChain = (chainId: number) => chainId === LOCAL_CHAIN_ID;
