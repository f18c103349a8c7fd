import { type Address, encodeFunctionData, type Hex, type PublicClient, type TransactionReceipt } from "viem";
import { ProviderRegistryAbi } from "../../abis/ProviderRegistryAbi.js";
import { RegistrarAbi } from "../../abis/RegistrarAbi.js";
import { ApiInputError, expectObject, type JsonObject, parseAddressField, parseBoolean, parseFixedHex, parseUint } from "../http/input.js";
import { parseDeadline, parseSignature } from "../http/signed.js";
import { InvalidPricingError } from "../usage/errors.js";
import { MAX_TIERS, type Pricing, PricingModel, validatePricing } from "../usage/pricing.js";
import {
  isValidNamespace,
  providerIdOf,
  registerProviderTypedData,
  setActiveTypedData,
  setPayoutAccountTypedData,
  updatePricingTypedData,
} from "../usage/registry.js";
import {
  ApiServiceError,
  chainRead,
  checkSigner,
  KeyedLock,
  type Relayer,
  type RevertMap,
  requestErrorFromRevert,
  withHeadroom,
} from "./relayer.js";

const MODEL_BY_NAME: Record<string, PricingModel> = {
  PerCall: PricingModel.PerCall,
  FreePool: PricingModel.FreePool,
  Tiered: PricingModel.Tiered,
};

/**
 * A `Pricing` from JSON: `model` by name ("PerCall", "FreePool", "Tiered") or number (0, 1, 2);
 * uint64 amounts as decimal strings; fields the model does not use may be left out (they are 0).
 */
export function parsePricing(field: string, value: unknown): Pricing {
  const p = expectObject(field, value, ["model", "pricePerCallMicro", "poolWeight", "tiers"]);
  const model =
    typeof p.model === "string" && p.model in MODEL_BY_NAME
      ? MODEL_BY_NAME[p.model]!
      : p.model === 0 || p.model === 1 || p.model === 2
        ? (p.model as PricingModel)
        : undefined;
  if (model === undefined) throw new ApiInputError(`${field}.model`, 'must be "PerCall", "FreePool" or "Tiered" (or 0, 1, 2)');
  const tiersValue = p.tiers ?? [];
  if (!Array.isArray(tiersValue)) throw new ApiInputError(`${field}.tiers`, "must be an array of { upToCalls, priceMicro }");
  if (tiersValue.length > MAX_TIERS) throw new ApiInputError(`${field}.tiers`, `must have at most ${MAX_TIERS} tiers`);
  const pricing: Pricing = {
    model,
    pricePerCallMicro: p.pricePerCallMicro === undefined ? 0n : parseUint(`${field}.pricePerCallMicro`, p.pricePerCallMicro, 64),
    poolWeight: p.poolWeight === undefined ? 0 : Number(parseUint(`${field}.poolWeight`, p.poolWeight, 32)),
    tiers: tiersValue.map((t, i) => {
      const tier = expectObject(`${field}.tiers[${i}]`, t, ["upToCalls", "priceMicro"]);
      return {
        upToCalls: parseUint(`${field}.tiers[${i}].upToCalls`, tier.upToCalls, 64),
        priceMicro: parseUint(`${field}.tiers[${i}].priceMicro`, tier.priceMicro, 64),
      };
    }),
  };
  try {
    return validatePricing(pricing);
  } catch (err) {
    if (err instanceof InvalidPricingError) throw new ApiInputError(`${field}.${err.field}`, err.reason);
    throw err;
  }
}

const REGISTRY_REVERTS: RevertMap = {
  InvalidNamespace: { field: "namespace", status: 400, message: "must be 1 to 64 ASCII letters or digits" },
  ProviderAlreadyRegistered: { field: "namespace", status: 409, message: "is already registered" },
  UnknownProvider: { field: "providerId", status: 404, message: "is not a registered provider" },
  PayoutAccountNotRegistered: { field: "payoutAccount", status: 422, message: "is not registered in the eERC Registrar" },
  ZeroAddress: { field: "payoutAccount", status: 400, message: "must not be the zero address" },
  ZeroPerCallPrice: { field: "pricing.pricePerCallMicro", status: 400, message: "must be positive for per-call pricing" },
  ZeroPoolWeight: { field: "pricing.poolWeight", status: 400, message: "must be positive for free-pool pricing" },
  EmptyTiers: { field: "pricing.tiers", status: 400, message: "must have at least one tier" },
  TooManyTiers: { field: "pricing.tiers", status: 400, message: `must have at most ${MAX_TIERS} tiers` },
  TierNotIncreasing: { field: "pricing.tiers", status: 400, message: "upToCalls must increase strictly" },
  UnusedPricingField: { field: "pricing", status: 400, message: "sets a field its model does not use" },
  SignatureExpired: { field: "deadline", status: 400, message: "has passed on chain" },
  InvalidSignature: { field: "signature", status: 401, message: "is not the registry owner's signature over this request" },
};

export type ProviderWriteResult = { providerId: Hex; txHash: Hex };

export type ProviderWriterDeps = {
  relayer: Relayer;
  publicClient: PublicClient;
  chainId: number;
  registry: Address;
  registrar: Address;
  now?: () => number;
};

type Update =
  | { kind: "pricing"; pricing: Pricing }
  | { kind: "active"; active: boolean }
  | { kind: "payoutAccount"; payoutAccount: Address };

/**
 * `POST /providers/register` and `POST /providers/update`: relays the registry owner's signed
 * calls. Owner signatures carry the registry's sequential owner nonce, so these requests run one
 * at a time and each waits for its transaction to be mined before answering.
 */
export class ProviderWriter {
  private readonly lock = new KeyedLock();
  private readonly now: () => number;

  constructor(private readonly deps: ProviderWriterDeps) {
    this.now = deps.now ?? (() => Math.floor(Date.now() / 1000));
  }

  async register(body: unknown): Promise<ProviderWriteResult> {
    const b = expectObject("body", body, ["namespace", "payoutAccount", "pricing", "nonce", "deadline", "signature"]);
    if (!isValidNamespace(b.namespace)) throw new ApiInputError("namespace", "must be 1 to 64 ASCII letters or digits");
    const namespace = b.namespace;
    const payoutAccount = parseAddressField("payoutAccount", b.payoutAccount);
    const pricing = parsePricing("pricing", b.pricing);
    const signed = this.parseSigned(b);
    const providerId = providerIdOf(namespace);

    return this.lock.run("registry", async () => {
      const { owner, nonce } = await this.ownerNonce(signed.nonce);
      const { chainId, registry } = this.deps;
      const typedData = registerProviderTypedData(
        { namespace, payoutAccount, pricing, nonce, deadline: signed.deadline },
        { chainId, registry },
      );
      await checkSigner(this.deps.publicClient, owner, typedData, signed.signature, "the registry owner");
      const [exists, payoutRegistered] = await chainRead(() =>
        Promise.all([this.isProvider(providerId), this.isEercRegistered(payoutAccount)]),
      );
      if (exists) throw new ApiInputError("namespace", `is already registered (provider ${providerId})`, 409);
      if (!payoutRegistered) throw new ApiInputError("payoutAccount", "is not registered in the eERC Registrar", 422);
      const txHash = await this.relay(
        encodeFunctionData({
          abi: ProviderRegistryAbi,
          functionName: "registerProviderSigned",
          args: [namespace, payoutAccount, pricing, signed.deadline, signed.signature],
        }),
      );
      return { providerId, txHash };
    });
  }

  async update(body: unknown): Promise<ProviderWriteResult> {
    const b = expectObject("body", body, ["providerId", "pricing", "active", "payoutAccount", "nonce", "deadline", "signature"]);
    const providerId = parseFixedHex("providerId", b.providerId, 32);
    const given = (["pricing", "active", "payoutAccount"] as const).filter((k) => b[k] !== undefined);
    if (given.length !== 1) throw new ApiInputError("body", "must set exactly one of pricing, active, payoutAccount");
    const update: Update =
      given[0] === "pricing"
        ? { kind: "pricing", pricing: parsePricing("pricing", b.pricing) }
        : given[0] === "active"
          ? { kind: "active", active: parseBoolean("active", b.active) }
          : { kind: "payoutAccount", payoutAccount: parseAddressField("payoutAccount", b.payoutAccount) };
    const signed = this.parseSigned(b);

    return this.lock.run("registry", async () => {
      const { owner, nonce } = await this.ownerNonce(signed.nonce);
      const { chainId, registry, publicClient } = this.deps;
      const target = { chainId, registry };
      const common = { providerId, nonce, deadline: signed.deadline };
      if (!(await chainRead(() => this.isProvider(providerId)))) throw new ApiInputError("providerId", "is not a registered provider", 404);
      let txHash: Hex;
      if (update.kind === "pricing") {
        await checkSigner(
          publicClient,
          owner,
          updatePricingTypedData({ ...common, pricing: update.pricing }, target),
          signed.signature,
          "the registry owner",
        );
        txHash = await this.relay(
          encodeFunctionData({
            abi: ProviderRegistryAbi,
            functionName: "updatePricingSigned",
            args: [providerId, update.pricing, signed.deadline, signed.signature],
          }),
        );
      } else if (update.kind === "active") {
        await checkSigner(
          publicClient,
          owner,
          setActiveTypedData({ ...common, active: update.active }, target),
          signed.signature,
          "the registry owner",
        );
        txHash = await this.relay(
          encodeFunctionData({
            abi: ProviderRegistryAbi,
            functionName: "setActiveSigned",
            args: [providerId, update.active, signed.deadline, signed.signature],
          }),
        );
      } else {
        const typedData = setPayoutAccountTypedData({ ...common, payoutAccount: update.payoutAccount }, target);
        await checkSigner(publicClient, owner, typedData, signed.signature, "the registry owner");
        if (!(await chainRead(() => this.isEercRegistered(update.payoutAccount)))) {
          throw new ApiInputError("payoutAccount", "is not registered in the eERC Registrar", 422);
        }
        txHash = await this.relay(
          encodeFunctionData({
            abi: ProviderRegistryAbi,
            functionName: "setPayoutAccountSigned",
            args: [providerId, update.payoutAccount, signed.deadline, signed.signature],
          }),
        );
      }
      return { providerId, txHash };
    });
  }

  private parseSigned(b: JsonObject) {
    return {
      nonce: b.nonce === undefined ? undefined : parseUint("nonce", b.nonce, 256),
      deadline: parseDeadline("deadline", b.deadline, this.now()),
      signature: parseSignature("signature", b.signature),
    };
  }

  /** The registry's owner and its next nonce; a request naming another nonce cannot verify. */
  private async ownerNonce(requested: bigint | undefined): Promise<{ owner: Address; nonce: bigint }> {
    const { publicClient, registry } = this.deps;
    const owner = await chainRead(() => publicClient.readContract({ address: registry, abi: ProviderRegistryAbi, functionName: "owner" }));
    const nonce = await chainRead(() =>
      publicClient.readContract({ address: registry, abi: ProviderRegistryAbi, functionName: "nonces", args: [owner] }),
    );
    if (requested !== undefined && requested !== nonce) {
      throw new ApiInputError("nonce", `is not the registry's next owner nonce (${nonce}): sign again with it`, 409);
    }
    return { owner, nonce };
  }

  private isProvider(providerId: Hex): Promise<boolean> {
    return this.deps.publicClient.readContract({
      address: this.deps.registry,
      abi: ProviderRegistryAbi,
      functionName: "isProvider",
      args: [providerId],
    });
  }

  private isEercRegistered(account: Address): Promise<boolean> {
    return this.deps.publicClient.readContract({
      address: this.deps.registrar,
      abi: RegistrarAbi,
      functionName: "isUserRegistered",
      args: [account],
    });
  }

  /** Simulates (estimates gas for) the encoded registry call, sends it and waits for it to be mined. */
  private async relay(data: Hex): Promise<Hex> {
    const { publicClient, registry, relayer } = this.deps;
    let txHash: Hex;
    try {
      const gas = await publicClient.estimateGas({ account: relayer.address, to: registry, data });
      txHash = await relayer.send({ to: registry, data, gas: withHeadroom(gas) });
    } catch (err) {
      throw requestErrorFromRevert(err, REGISTRY_REVERTS);
    }
    let receipt: TransactionReceipt;
    try {
      receipt = await publicClient.waitForTransactionReceipt({ hash: txHash, timeout: 120_000 });
    } catch {
      throw new ApiServiceError(502, `transaction ${txHash} was sent but not mined within 120 s`);
    }
    if (receipt.status !== "success") throw new ApiServiceError(502, `transaction ${txHash} reverted`);
    return txHash;
  }
}
