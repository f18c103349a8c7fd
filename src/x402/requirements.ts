/**
 * What one paid tool call costs and how it is paid: x402's "exact" scheme on an EVM chain,
 * settled by an EIP-3009 `transferWithAuthorization` of USDC. The rules:
 * - the amount is the provider's price for the call (the meter's PricingSource, given the
 *   provider's billable calls so far in the period) plus the platform surcharge, in micro-USDC,
 *   which are USDC's atomic units (6 decimals);
 * - a call whose amount is 0 (a free quota call, a free-pool provider, no surcharge) needs no payment;
 * - the payee (`payTo`) is the revenue pool, the network `eip155:<chainId>`, the asset the USDC
 *   contract, and `extra` carries that contract's EIP-712 domain name and version, which the payer
 *   signs over and the facilitator checks against the contract;
 * - the authorization must stay valid `maxTimeoutSeconds` (default 60) after it is signed.
 * Pure: no I/O, shared by the meter, the agent-side client and the tests.
 */
import type { PaymentRequirements } from "@x402/core/types";
import { type Address, getAddress, isAddress } from "viem";
import { InvalidPaymentTermsError } from "./errors.js";

export const X402_VERSION = 2;
export const EXACT_SCHEME = "exact";
export const DEFAULT_MAX_TIMEOUT_SECONDS = 60;
const UINT256_LIMIT = 1n << 256n;

/** How a server charges for its tools: where the money goes and in which token. */
export type PaymentTerms = {
  chainId: number;
  /** The USDC contract (EIP-3009). */
  asset: Address;
  /** The revenue pool. */
  payTo: Address;
  /** The EIP-712 domain of `asset`: `name()` and `version()` of the contract. */
  domain: { name: string; version: string };
  /** Platform surcharge added to every paid call, micro-USDC (default 0). */
  surchargeMicro?: bigint;
  maxTimeoutSeconds?: number;
};

/** `eip155:<chainId>`, the CAIP-2 network id x402 uses. */
export function networkOf(chainId: number): `eip155:${number}` {
  if (!Number.isSafeInteger(chainId) || chainId <= 0) throw new InvalidPaymentTermsError("chainId", "must be a positive integer");
  return `eip155:${chainId}`;
}

/** Checked terms, addresses checksummed and defaults filled in. */
export function validatePaymentTerms(terms: PaymentTerms): Required<PaymentTerms> {
  networkOf(terms.chainId);
  for (const field of ["asset", "payTo"] as const) {
    if (typeof terms[field] !== "string" || !isAddress(terms[field])) throw new InvalidPaymentTermsError(field, "must be an address");
  }
  const { name, version } = terms.domain ?? {};
  if (typeof name !== "string" || name.length === 0) throw new InvalidPaymentTermsError("domain.name", "must be a non-empty string");
  if (typeof version !== "string" || version.length === 0)
    throw new InvalidPaymentTermsError("domain.version", "must be a non-empty string");
  const surchargeMicro = terms.surchargeMicro ?? 0n;
  if (typeof surchargeMicro !== "bigint" || surchargeMicro < 0n)
    throw new InvalidPaymentTermsError("surchargeMicro", "must be a non-negative bigint");
  const maxTimeoutSeconds = terms.maxTimeoutSeconds ?? DEFAULT_MAX_TIMEOUT_SECONDS;
  if (!Number.isSafeInteger(maxTimeoutSeconds) || maxTimeoutSeconds <= 0) {
    throw new InvalidPaymentTermsError("maxTimeoutSeconds", "must be a positive integer");
  }
  return {
    chainId: terms.chainId,
    asset: getAddress(terms.asset),
    payTo: getAddress(terms.payTo),
    domain: { name, version },
    surchargeMicro,
    maxTimeoutSeconds,
  };
}

/** What the payer pays for a call the provider prices at `priceMicro`: the price plus the surcharge. */
export function paymentAmount(priceMicro: bigint, surchargeMicro = 0n): bigint {
  if (typeof priceMicro !== "bigint" || priceMicro < 0n) throw new InvalidPaymentTermsError("priceMicro", "must be a non-negative bigint");
  if (surchargeMicro < 0n) throw new InvalidPaymentTermsError("surchargeMicro", "must be a non-negative bigint");
  const amount = priceMicro + surchargeMicro;
  if (amount >= UINT256_LIMIT) throw new InvalidPaymentTermsError("priceMicro", "is beyond uint256");
  return amount;
}

/**
 * The single requirement a call priced `priceMicro` is offered with, or undefined when it is
 * free (amount 0): the call then runs unpaid, as any metered call.
 */
export function paymentRequirementsFor(terms: PaymentTerms, priceMicro: bigint): PaymentRequirements | undefined {
  const t = validatePaymentTerms(terms);
  const amount = paymentAmount(priceMicro, t.surchargeMicro);
  if (amount === 0n) return undefined;
  return {
    scheme: EXACT_SCHEME,
    network: networkOf(t.chainId),
    asset: t.asset,
    amount: amount.toString(),
    payTo: t.payTo,
    maxTimeoutSeconds: t.maxTimeoutSeconds,
    extra: { name: t.domain.name, version: t.domain.version },
  };
}

/**
 * Whether the requirement a payload says it accepted is the one offered: same scheme, network,
 * asset, payee and amount. The facilitator checks the signature against the offered one; this
 * keeps a payload signed for another tool's (cheaper) price from being used for this one.
 */
export function acceptsRequirements(accepted: PaymentRequirements, offered: PaymentRequirements): boolean {
  const same = (a: string, b: string) => a.toLowerCase() === b.toLowerCase();
  return (
    accepted.scheme === offered.scheme &&
    accepted.network === offered.network &&
    same(accepted.asset, offered.asset) &&
    same(accepted.payTo, offered.payTo) &&
    accepted.amount === offered.amount
  );
}
