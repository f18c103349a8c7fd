import { type Address, getAddress, type Hex, keccak256, stringToBytes } from "viem";
import { InvalidNamespaceError, InvalidPricingError } from "./errors.js";

/** ProviderRegistry's `PricingModel` enum. */
export const PricingModel = { PerCall: 0, FreePool: 1, Tiered: 2 } as const;
export type PricingModel = (typeof PricingModel)[keyof typeof PricingModel];

export type Tier = { upToCalls: bigint; priceMicro: bigint };

/** ProviderRegistry's `Pricing` struct, amounts in micro-USDC. */
export type Pricing = { model: PricingModel; pricePerCallMicro: bigint; poolWeight: number; tiers: Tier[] };

export const MAX_NAMESPACE_LENGTH = 64;
export const MAX_TIERS = 16;
const UINT64_MAX = (1n << 64n) - 1n;
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

const isUint = (v: unknown, max: bigint): v is bigint => typeof v === "bigint" && v >= 0n && v <= max;

/** Mirrors the registry's checks, so a relay can refuse before anything is signed or sent. */
export function validatePricing(pricing: Pricing): Pricing {
  const fail = (field: string, reason: string): never => {
    throw new InvalidPricingError(field, reason);
  };
  const { model, pricePerCallMicro, poolWeight, tiers } = pricing;
  if (!isUint(pricePerCallMicro, UINT64_MAX)) fail("pricePerCallMicro", "must be a uint64 bigint");
  if (!Number.isSafeInteger(poolWeight) || poolWeight < 0 || poolWeight > 0xffffffff) fail("poolWeight", "must be a uint32");
  if (!Array.isArray(tiers)) fail("tiers", "must be an array");
  const unused = (field: string) => fail(field, "must be zero (or empty) for this model");
  if (model === PricingModel.PerCall) {
    if (pricePerCallMicro === 0n) fail("pricePerCallMicro", "must be positive for per-call pricing");
    if (poolWeight !== 0) unused("poolWeight");
    if (tiers.length !== 0) unused("tiers");
  } else if (model === PricingModel.FreePool) {
    if (poolWeight === 0) fail("poolWeight", "must be positive for free-pool pricing");
    if (pricePerCallMicro !== 0n) unused("pricePerCallMicro");
    if (tiers.length !== 0) unused("tiers");
  } else if (model === PricingModel.Tiered) {
    if (tiers.length === 0) fail("tiers", "must have at least one tier");
    if (tiers.length > MAX_TIERS) fail("tiers", `must have at most ${MAX_TIERS} tiers`);
    if (pricePerCallMicro !== 0n) unused("pricePerCallMicro");
    if (poolWeight !== 0) unused("poolWeight");
    let previous = 0n;
    for (const [i, t] of tiers.entries()) {
      if (!isUint(t.upToCalls, UINT64_MAX)) fail(`tiers[${i}].upToCalls`, "must be a uint64 bigint");
      if (!isUint(t.priceMicro, UINT64_MAX)) fail(`tiers[${i}].priceMicro`, "must be a uint64 bigint");
      if (t.upToCalls <= previous) fail(`tiers[${i}].upToCalls`, "must be greater than the previous tier's");
      previous = t.upToCalls;
    }
  } else {
    fail("model", "must be PerCall (0), FreePool (1) or Tiered (2)");
  }
  return pricing;
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

/** Typed data the owner signs for `registerProviderSigned` (nonce = the registry's `nonces(owner)`). */
export function registerProviderTypedData(
  m: { namespace: string; payoutAccount: Address; pricing: Pricing } & SignedCommon,
  target: Target,
) {
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
