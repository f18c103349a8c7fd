import { type Address, encodeFunctionData, type Hex, type PublicClient, type TransactionReceipt } from "viem";
import { ProviderRegistryAbi } from "../../abis/ProviderRegistryAbi.js";
import { RegistrarAbi } from "../../abis/RegistrarAbi.js";
import { ApiInputError } from "../http/input.js";
import { parseRequest } from "../http/schema.js";
import { checkDeadline } from "../http/signed.js";
import { type ProviderWriteResult, registerRequest, updateRequest } from "../indexer-client/schemas.js";
import { MAX_TIERS, type Pricing } from "../usage/pricing.js";
import {
  nonceKeyOf,
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
 * calls. Each provider's requests carry the owner nonce of the provider's own lane
 * (`nonces(owner, nonceKeyOf(providerId))`), so the requests of one provider run one at a time and
 * each waits for its transaction to be mined before answering, while another provider's go ahead.
 */
export class ProviderWriter {
  private readonly lock = new KeyedLock();
  private readonly now: () => number;

  constructor(private readonly deps: ProviderWriterDeps) {
    this.now = deps.now ?? (() => Math.floor(Date.now() / 1000));
  }

  async register(body: unknown): Promise<ProviderWriteResult> {
    const { namespace, payoutAccount, pricing, ...signed } = parseRequest(registerRequest, body);
    checkDeadline("deadline", signed.deadline, this.now());
    const providerId = providerIdOf(namespace);

    const key = nonceKeyOf(providerId);
    return this.lock.run(`lane:${key}`, async () => {
      const { owner, nonce } = await this.ownerNonce(key, signed.nonce);
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
    const { providerId, pricing, active, payoutAccount, ...signed } = parseRequest(updateRequest, body);
    checkDeadline("deadline", signed.deadline, this.now());
    const update: Update =
      pricing !== undefined
        ? { kind: "pricing", pricing }
        : active !== undefined
          ? { kind: "active", active }
          : { kind: "payoutAccount", payoutAccount: payoutAccount! };

    const key = nonceKeyOf(providerId);
    return this.lock.run(`lane:${key}`, async () => {
      const { owner, nonce } = await this.ownerNonce(key, signed.nonce);
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

  /** The registry's owner and the next nonce of lane `key`; a request naming another nonce cannot verify. */
  private async ownerNonce(key: bigint, requested: bigint | undefined): Promise<{ owner: Address; nonce: bigint }> {
    const { publicClient, registry } = this.deps;
    const owner = await chainRead(() => publicClient.readContract({ address: registry, abi: ProviderRegistryAbi, functionName: "owner" }));
    const nonce = await chainRead(() =>
      publicClient.readContract({ address: registry, abi: ProviderRegistryAbi, functionName: "nonces", args: [owner, key] }),
    );
    if (requested !== undefined && requested !== nonce) {
      throw new ApiInputError("nonce", `is not the next owner nonce of this provider's lane ${key} (${nonce}): sign again with it`, 409);
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
