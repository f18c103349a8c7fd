import { BaseError, InvalidFieldError } from "../errors.js";
import type { ProviderId } from "./types.js";

/** Input the revenue engine refuses; `field` names the offending input. */
export class InvalidRevenueInputError extends InvalidFieldError {
  readonly code = "INVALID_REVENUE_INPUT";
  constructor(field: string, reason: string) {
    super("invalid revenue input", field, reason);
  }
}

/** Usage of a provider the pricing lookup does not know: its usage cannot be priced. */
export class UnknownProviderPricingError extends BaseError {
  readonly code = "UNKNOWN_PROVIDER_PRICING";
  constructor(
    readonly providerId: ProviderId,
    readonly period: number,
  ) {
    super(`no pricing for provider ${providerId} in period ${period}`);
  }
}

/** A time before the first recorded settlement settings start: nothing says how to settle it. */
export class NoSettlementInForceError extends BaseError {
  readonly code = "NO_SETTLEMENT_IN_FORCE";
  constructor(
    readonly timestampS: bigint,
    readonly records: number,
  ) {
    super(
      records === 0
        ? "no settlement settings are recorded (ProviderRegistry.setSettlement): the fee and the pricing period are unknown"
        : `no recorded settlement settings apply at ${new Date(Number(timestampS) * 1000).toISOString()}: the first record starts later`,
    );
  }
}

/** A positive pool with no positive weight to split it by. */
export class UnallocatablePoolError extends BaseError {
  readonly code = "UNALLOCATABLE_POOL";
  constructor(readonly poolMicro: bigint) {
    super(`cannot allocate a pool of ${poolMicro} micro-USDC: every weight is zero`);
  }
}

export type Overpayment = { providerId: ProviderId; earnedMicro: bigint; paidMicro: bigint };

/** Providers paid more than they earned: an invariant breach, never a negative amount owed. */
export class OverpaidError extends BaseError {
  readonly code = "OVERPAID";
  constructor(readonly overpaid: readonly Overpayment[]) {
    super(
      `${overpaid.length} provider(s) paid more than earned: ` +
        overpaid.map((o) => `${o.providerId} earned ${o.earnedMicro}, paid ${o.paidMicro}`).join("; "),
    );
  }

  /** Logs and status answers name the providers, never their earnings. */
  override get summary(): string {
    return `${this.overpaid.length} provider(s) paid more than earned: ${this.overpaid.map((o) => o.providerId).join(", ")}`;
  }
}
