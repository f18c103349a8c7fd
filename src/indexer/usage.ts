import type { Hex } from "viem";
import type { PricingModelName } from "../../ponder.schema.js";
import { MalformedLinesError } from "../usage/errors.js";
import { decodeVersionedLines } from "../usage/lines.js";

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
  /** The line's public commitment (format version 3); null for older versions. */
  lineCommitment: bigint | null;
  providerCiphertext: bigint[];
  operatorCiphertext: bigint[];
  auditorCiphertext: bigint[];
};

/**
 * A batch's encrypted lines split into rows (src/usage/lines.ts, format versions 1 to 3), or
 * undefined when the bytes do not follow the format: the ledger accepts any non-empty bytes.
 */
export function splitEncryptedLines(encryptedLines: Hex): EncryptedLineRow[] | undefined {
  let decoded: { version: bigint; lines: bigint[][] };
  try {
    decoded = decodeVersionedLines(encryptedLines);
  } catch (err) {
    if (err instanceof MalformedLinesError) return undefined;
    throw err;
  }
  const first = decoded.version >= 3n ? 4 : 3;
  return decoded.lines.map((w, position) => ({
    position,
    ephemeralKey: [w[0]!, w[1]!],
    nonce: w[2]!,
    lineCommitment: first === 4 ? w[3]! : null,
    providerCiphertext: w.slice(first, first + 4),
    operatorCiphertext: w.slice(first + 4, first + 8),
    auditorCiphertext: w.slice(first + 8, first + 12),
  }));
}
