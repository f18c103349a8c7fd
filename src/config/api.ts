import type { Address, Hex } from "viem";
import { localKey } from "../chain/local.js";
import { OPERATOR_ENV, type OperatorSettings, operatorSettings } from "./operator.js";
import { ConfigError, type Env, env, readEnv } from "./parse.js";

/** The API's own variables, next to the indexer's (it runs in the indexer's process). */
export const API_ENV = {
  ...OPERATOR_ENV,
  PAYER_ADDRESSES: env.addresses(),
  RELAYER_PRIVATE_KEY: env.privateKey(),
  PORT: env.integer({ max: 65_535 }),
};

/** What the query API needs to serve pending amounts and per-cycle totals. */
export type PayoutViewConfig = Omit<OperatorSettings, "pastPayers"> & { payers: Address[] };

/**
 * The API's payout settings, or why they are off: without the operator key (OPERATOR_PRIVATE_KEY;
 * anvil's account #0 on a local chain) nothing can be decrypted to compute what is pending.
 * Payers are PAYER_ADDRESSES (default: the operator) plus PAST_PAYER_ADDRESSES.
 */
export function payoutViewConfig(
  source: Env,
  chainId: number,
  operatorAddress: (key: Hex) => Address,
): PayoutViewConfig | { disabled: string } {
  // The relayer key is read apart (relayerKey): a bad one turns the write routes off, not the API.
  const e = readEnv({ ...OPERATOR_ENV, PAYER_ADDRESSES: API_ENV.PAYER_ADDRESSES }, source);
  if (e.OPERATOR_PRIVATE_KEY === undefined && !localKey("operator", chainId)) {
    return { disabled: `OPERATOR_PRIVATE_KEY is not set: pending amounts and cycle totals need the operator key on chain ${chainId}` };
  }
  const { pastPayers, ...rest } = operatorSettings(e, chainId);
  const payers = e.PAYER_ADDRESSES?.length ? e.PAYER_ADDRESSES : [operatorAddress(rest.operatorKey)];
  return { ...rest, payers: [...payers, ...pastPayers] };
}

export type RelayerKey = { enabled: true; key: Hex; source: "env" | "anvil" } | { enabled: false; reason: string };

/**
 * The relayer's key: `RELAYER_PRIVATE_KEY`, or anvil's account #8 on a local chain only. On any
 * other chain without a key the write routes stay off. The key itself never appears in a message.
 */
export function relayerKey(source: Env, chainId: number): RelayerKey {
  let key: Hex | undefined;
  try {
    key = readEnv({ RELAYER_PRIVATE_KEY: API_ENV.RELAYER_PRIVATE_KEY }, source).RELAYER_PRIVATE_KEY;
  } catch (err) {
    if (err instanceof ConfigError) return { enabled: false, reason: err.message };
    throw err;
  }
  if (key) return { enabled: true, key, source: "env" };
  const local = localKey("relayer", chainId);
  if (local) return { enabled: true, key: local, source: "anvil" };
  return { enabled: false, reason: `RELAYER_PRIVATE_KEY is not set: the write routes need a funded relayer key on chain ${chainId}` };
}
