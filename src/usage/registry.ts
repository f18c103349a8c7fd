import { type Address, getAddress, type Hex, keccak256, stringToBytes } from "viem";
import { InvalidNamespaceError, NonceLaneMismatchError } from "./errors.js";
import type { Pricing } from "./pricing.js";

export const MAX_NAMESPACE_LENGTH = 64;
const NAMESPACE_RE = /^[A-Za-z0-9]{1,64}$/;

/** The namespace rule the registry enforces: 1 to 64 ASCII letters or digits, case-sensitive. */
export function isValidNamespace(namespace: unknown): namespace is string {
  return typeof namespace === "string" && NAMESPACE_RE.test(namespace);
}

/** Provider id = keccak256(bytes(namespace)), the namespace exactly as given. */
export function providerIdOf(namespace: string): Hex {
  if (!isValidNamespace(namespace)) throw new InvalidNamespaceError(namespace);
  return keccak256(stringToBytes(namespace));
}

/**
 * Nonce lanes of the registry's owner-signed requests (the registry's NoncesKeyed): a nonce is a
 * 192-bit key above a 64-bit sequence, and each lane counts on its own. A provider's requests
 * (register, pricing, payout account, active flag) use the lane of its id's top 192 bits; settlement
 * changes use lane 0. The next nonce of a lane, key included, is `nonces(owner, key)`.
 */
export const SETTLEMENT_NONCE_KEY = 0n;

/** The nonce lane of a provider's signed requests: the top 192 bits of its id (the registry's `nonceKeyOf`). */
export function nonceKeyOf(providerId: Hex): bigint {
  return BigInt(providerId) >> 64n;
}

/** The lane a nonce belongs to. */
export function nonceLaneOf(nonce: bigint): bigint {
  return nonce >> 64n;
}

function checkLane(nonce: bigint, key: bigint): void {
  if (nonce < 0n || nonceLaneOf(nonce) !== key) throw new NonceLaneMismatchError(nonce, key);
}

/** EIP-712 domain of a ProviderRegistry deployment. */
export function registryDomain(o: { chainId: number | bigint; registry: Address }) {
  return {
    name: "BackendShield ProviderRegistry",
    version: "1",
    chainId: BigInt(o.chainId),
    verifyingContract: getAddress(o.registry),
  } as const;
}

const PRICING_TYPES = {
  Pricing: [
    { name: "model", type: "uint8" },
    { name: "pricePerCallMicro", type: "uint64" },
    { name: "poolWeight", type: "uint32" },
    { name: "tiers", type: "Tier[]" },
  ],
  Tier: [
    { name: "upToCalls", type: "uint64" },
    { name: "priceMicro", type: "uint64" },
  ],
} as const;

type SignedCommon = { nonce: bigint; deadline: bigint };
type Target = { chainId: number | bigint; registry: Address };

/**
 * Typed data the owner signs for `registerProviderSigned`; nonce = `nonces(owner, nonceKeyOf(providerIdOf(namespace)))`.
 * Each builder refuses a nonce from another lane (NonceLaneMismatchError): the registry would reject its signature.
 */
export function registerProviderTypedData(
  m: { namespace: string; payoutAccount: Address; pricing: Pricing } & SignedCommon,
  target: Target,
) {
  checkLane(m.nonce, nonceKeyOf(providerIdOf(m.namespace)));
  return {
    domain: registryDomain(target),
    types: {
      RegisterProvider: [
        { name: "namespace", type: "string" },
        { name: "payoutAccount", type: "address" },
        { name: "pricing", type: "Pricing" },
        { name: "nonce", type: "uint256" },
        { name: "deadline", type: "uint256" },
      ],
      ...PRICING_TYPES,
    },
    primaryType: "RegisterProvider",
    message: { ...m, payoutAccount: getAddress(m.payoutAccount) },
  } as const;
}

export function updatePricingTypedData(m: { providerId: Hex; pricing: Pricing } & SignedCommon, target: Target) {
  checkLane(m.nonce, nonceKeyOf(m.providerId));
  return {
    domain: registryDomain(target),
    types: {
      UpdatePricing: [
        { name: "providerId", type: "bytes32" },
        { name: "pricing", type: "Pricing" },
        { name: "nonce", type: "uint256" },
        { name: "deadline", type: "uint256" },
      ],
      ...PRICING_TYPES,
    },
    primaryType: "UpdatePricing",
    message: m,
  } as const;
}

export function setPayoutAccountTypedData(m: { providerId: Hex; payoutAccount: Address } & SignedCommon, target: Target) {
  checkLane(m.nonce, nonceKeyOf(m.providerId));
  return {
    domain: registryDomain(target),
    types: {
      SetPayoutAccount: [
        { name: "providerId", type: "bytes32" },
        { name: "payoutAccount", type: "address" },
        { name: "nonce", type: "uint256" },
        { name: "deadline", type: "uint256" },
      ],
    },
    primaryType: "SetPayoutAccount",
    message: { ...m, payoutAccount: getAddress(m.payoutAccount) },
  } as const;
}

export function setActiveTypedData(m: { providerId: Hex; active: boolean } & SignedCommon, target: Target) {
  checkLane(m.nonce, nonceKeyOf(m.providerId));
  return {
    domain: registryDomain(target),
    types: {
      SetActive: [
        { name: "providerId", type: "bytes32" },
        { name: "active", type: "bool" },
        { name: "nonce", type: "uint256" },
        { name: "deadline", type: "uint256" },
      ],
    },
    primaryType: "SetActive",
    message: m,
  } as const;
}

/** Typed data the owner signs for `setSettlementSigned` (nonce lane 0); `periodUnit` is the registry's code (0 month, 1 day). */
export function setSettlementTypedData(m: { feeBps: number; periodUnit: number; effectiveFrom: bigint } & SignedCommon, target: Target) {
  checkLane(m.nonce, SETTLEMENT_NONCE_KEY);
  return {
    domain: registryDomain(target),
    types: {
      SetSettlement: [
        { name: "feeBps", type: "uint16" },
        { name: "periodUnit", type: "uint8" },
        { name: "effectiveFrom", type: "uint64" },
        { name: "nonce", type: "uint256" },
        { name: "deadline", type: "uint256" },
      ],
    },
    primaryType: "SetSettlement",
    message: m,
  } as const;
}
