import { BaseError } from "../errors.js";
/** USDC amounts are integer micro-USDC (6 decimals) everywhere; these convert at the edges. */
export const USDC_DECIMALS = 6;
const UNIT = 10n ** BigInt(USDC_DECIMALS);

export class InvalidUsdcAmountError extends BaseError {
  readonly code = "INVALID_USDC_AMOUNT";
  constructor(readonly input: string) {
    super(`"${input}" is not a USDC amount with at most ${USDC_DECIMALS} decimals`);
  }
}

/** "12.345678" → 12345678n. Rejects more than 6 decimals instead of rounding. */
export function parseUsdc(text: string): bigint {
  const m = /^(-?)(\d+)(?:\.(\d{1,6}))?$/.exec(text.trim());
  if (!m) throw new InvalidUsdcAmountError(text);
  const micro = BigInt(m[2]!) * UNIT + BigInt((m[3] ?? "").padEnd(USDC_DECIMALS, "0"));
  return m[1] ? -micro : micro;
}

/** 12345678n → "12.345678". */
export function formatUsdc(micro: bigint): string {
  const sign = micro < 0n ? "-" : "";
  const abs = micro < 0n ? -micro : micro;
  return `${sign}${abs / UNIT}.${(abs % UNIT).toString().padStart(USDC_DECIMALS, "0")}`;
}
