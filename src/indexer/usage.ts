import type { Hex } from "viem";
import type { PricingModelName } from "../../ponder.schema.js";
import { MalformedLinesError } from "../usage/errors.js";
import { decodeEncryptedLines, WORDS_PER_LINE } from "../usage/lines.js";

// Row shapes for the ProviderRegistry and UsageLedger tables (ponder.schema.ts).

const MODEL_NAMES: readonly PricingModelName[] = ["PerCall", "FreePool", "Tiered"];

/** The `Pricing` struct of a ProviderRegistry event as decoded by viem. */
export type EventPricing = {
  model: number;
  pricePerCallMicro: bigint;
  poolWeight: number;
  tiers: readonly { upToCalls: bigint; priceMicro: bigint }[];
};

export function pricingColumns(pricing: EventPricing) {
  const pricingModel = MODEL_NAMES[pricing.model];
  // The registry only stores the three models of its enum; anything else is a different contract.
  if (!pricingModel) throw new Error(`unknown pricing model ${pricing.model}`);
  return {
    pricingModel,
    pricePerCallMicro: pricing.pricePerCallMicro,
    poolWeight: pricing.poolWeight,
    tierUpToCalls: pricing.tiers.map((t) => t.upToCalls),
    tierPriceMicro: pricing.tiers.map((t) => t.priceMicro),
  };
}

export type EncryptedLineRow = {
  position: number;
  ephemeralKey: bigint[];
  nonce: bigint;
  providerCiphertext: bigint[];
  operatorCiphertext: bigint[];
  auditorCiphertext: bigint[];
};

/**
 * A batch's encrypted lines split into rows (src/usage/lines.ts, format version 1), or undefined
 * when the bytes do not follow the format: the ledger accepts any non-empty bytes.
 */
export function splitEncryptedLines(encryptedLines: Hex): EncryptedLineRow[] | undefined {
  let lines: bigint[][];
  try {
    lines = decodeEncryptedLines(encryptedLines);
  } catch (err) {
    if (err instanceof MalformedLinesError) return undefined;
    throw err;
  }
  if (lines.some((w) => w.length !== WORDS_PER_LINE)) return undefined;
  return lines.map((w, position) => ({
    position,
    ephemeralKey: [w[0]!, w[1]!],
    nonce: w[2]!,
    providerCiphertext: w.slice(3, 7),
    operatorCiphertext: w.slice(7, 11),
    auditorCiphertext: w.slice(11, 15),
  }));
}
