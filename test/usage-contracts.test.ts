/**
 * ProviderRegistry and UsageLedger on anvil, deployed by src/deployment/deploy.ts next to the eERC. Payout
 * accounts are registered in the real Registrar with real registration proofs.
 */
import { type Abi, type Address, getAddress, type Hex, parseEventLogs, type TransactionReceipt, zeroAddress } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ProviderRegistryAbi } from "../abis/ProviderRegistryAbi.js";
import { UsageLedgerAbi } from "../abis/UsageLedgerAbi.js";
import { loadArtifact } from "../src/build/contracts.js";
import { type Anvil, startAnvil } from "../src/chain/anvil.js";
import { type ChainClients, connectChain } from "../src/chain/clients.js";
import { ANVIL_KEYS } from "../src/chain/local.js";
import { deploy } from "../src/deployment/deploy.js";
import { SettlementChangeError, setSettlement, settlementInForce } from "../src/deployment/settlement.js";
import { EercClient } from "../src/eerc/client.js";
import { mulBase, randomScalar } from "../src/eerc/curve.js";
import { Prover } from "../src/eerc/prover.js";
import { registryPricing, UnknownProviderError } from "../src/meter/index.js";
import {
  batchHash,
  batchTypedData,
  buildBatch,
  type CallRecord,
  callRecordLeaf,
  decryptLinesFor,
  fetchLineKeys,
  freePool,
  type LineKeys,
  ledgerOperatorKey,
  NonceLaneMismatchError,
  nonceKeyOf,
  type Pricing,
  perCall,
  providerIdOf,
  recordProof,
  registerProviderTypedData,
  SETTLEMENT_NONCE_KEY,
  setActiveTypedData,
  setPayoutAccountTypedData,
  setSettlementTypedData,
  tiered,
  type UsageBatch,
  updatePricingTypedData,
  verifyBatchRecords,
} from "../src/usage/index.js";
import { nextPeriodStart } from "../src/usage/period.js";
import { revertChecker } from "./contract-helpers.js";

const accounts = ANVIL_KEYS.map((k) => privateKeyToAccount(k));
const [operator, providerA, providerB, competitor, unregistered, server, relayer, rogueServer, spare, auditorAccount] = accounts;
const UINT64_MAX = (1n << 64n) - 1n;

/** Tiers as [upToCalls, priceMicro] pairs. */
const tiers = (...pairs: [bigint, bigint][]): Pricing => tiered(pairs.map(([upToCalls, priceMicro]) => ({ upToCalls, priceMicro })));

describe("ProviderRegistry and UsageLedger", () => {
  let anvil: Anvil;
  let chain: ChainClients;
  const prover = new Prover();
  let manifest: Awaited<ReturnType<typeof deploy>>;
  let registry: Address, ledger: Address;
  const eerc: Record<string, EercClient> = {};

  const wallet = (account: (typeof accounts)[number]) => chain.walletFor(account);

  async function send(
    from: (typeof accounts)[number],
    address: Address,
    abi: Abi | readonly unknown[],
    functionName: string,
    args: readonly unknown[],
  ): Promise<TransactionReceipt> {
    const hash = await wallet(from).writeContract({ address, abi, functionName, args } as never);
    const receipt = await chain.publicClient.waitForTransactionReceipt({ hash });
    expect(receipt.status).toBe("success");
    return receipt;
  }

  async function read<T>(address: Address, abi: Abi | readonly unknown[], functionName: string, args: readonly unknown[] = []): Promise<T> {
    return (await chain.publicClient.readContract({ address, abi, functionName, args } as never)) as T;
  }

  const expectRevert = revertChecker(() => chain.publicClient);
  /** A relayed registry call that must revert, by default with InvalidSignature. */
  const refusedRelay = (functionName: string, args: readonly unknown[], errorName = "InvalidSignature", errorArgs?: readonly unknown[]) =>
    expectRevert(relayer, registry, ProviderRegistryAbi, functionName, args, errorName, errorArgs);

  function events(receipt: TransactionReceipt, abi: Abi | readonly unknown[], eventName: string): Record<string, unknown>[] {
    return (parseEventLogs({ abi: abi as Abi, logs: receipt.logs, eventName }) as { args: Record<string, unknown> }[]).map((e) => e.args);
  }

  const latestTimestamp = async () => (await chain.publicClient.getBlock()).timestamp;
  const target = () => ({ chainId: chain.chain.id, registry });
  /** The owner's next nonce in lane `key` (key included). */
  const ownerNonce = (key: bigint) => read<bigint>(registry, ProviderRegistryAbi, "nonces", [operator.address, key]);
  const laneOf = (namespace: string) => nonceKeyOf(providerIdOf(namespace));

  beforeAll(async () => {
    anvil = await startAnvil();
    chain = await connectChain(anvil.rpcUrl);
    manifest = await deploy({
      rpcUrl: anvil.rpcUrl,
      network: "anvil-usage-test",
      deployer: operator,
      auditor: auditorAccount,
      prover,
      write: false,
    });
    registry = manifest.contracts.providerRegistry;
    ledger = manifest.contracts.usageLedger;
    for (const [name, account] of Object.entries({ operator, providerA, providerB, competitor, spare, auditor: auditorAccount })) {
      eerc[name] = await EercClient.connect({
        publicClient: chain.publicClient,
        wallet: wallet(account),
        contracts: { encryptedERC: manifest.contracts.encryptedERC, registrar: manifest.contracts.registrar },
        prover,
      });
      if (name !== "auditor") await eerc[name].register();
    }
  });

  afterAll(async () => {
    await prover.close();
    await anvil?.stop();
  });

  it("is deployed by the deploy script, owned by the operator and bound to the Registrar", async () => {
    expect(await read(registry, ProviderRegistryAbi, "owner")).toBe(getAddress(operator.address));
    expect(await read(registry, ProviderRegistryAbi, "registrar")).toBe(getAddress(manifest.contracts.registrar));
    expect(await read(ledger, UsageLedgerAbi, "owner")).toBe(getAddress(operator.address));
  });

  describe("ownership", () => {
    for (const [name, contract, abi] of [
      ["ProviderRegistry", () => registry, ProviderRegistryAbi],
      ["UsageLedger", () => ledger, UsageLedgerAbi],
    ] as const) {
      it(`${name}: ownership moves only when the new owner accepts it, and cannot be renounced`, async () => {
        const address = contract();
        await expectRevert(operator, address, abi, "renounceOwnership", [], "RenounceOwnershipDisabled");
        await expectRevert(spare, address, abi, "transferOwnership", [spare.address], "OwnableUnauthorizedAccount", [spare.address]);

        await send(operator, address, abi, "transferOwnership", [spare.address]);
        // Nothing has moved yet: the operator still owns it, and only the named account can accept.
        expect(await read(address, abi, "owner")).toBe(getAddress(operator.address));
        expect(await read(address, abi, "pendingOwner")).toBe(getAddress(spare.address));
        await expectRevert(competitor, address, abi, "acceptOwnership", [], "OwnableUnauthorizedAccount", [competitor.address]);
        await send(spare, address, abi, "acceptOwnership", []);
        expect(await read(address, abi, "owner")).toBe(getAddress(spare.address));
        expect(await read(address, abi, "pendingOwner")).toBe(zeroAddress);
        await expectRevert(operator, address, abi, "transferOwnership", [operator.address], "OwnableUnauthorizedAccount", [
          operator.address,
        ]);
        await expectRevert(spare, address, abi, "renounceOwnership", [], "RenounceOwnershipDisabled");

        // Back to the operator, the same way, for the other tests.
        await send(spare, address, abi, "transferOwnership", [operator.address]);
        await send(operator, address, abi, "acceptOwnership", []);
        expect(await read(address, abi, "owner")).toBe(getAddress(operator.address));
      });
    }
  });

  describe("UsageLedger operator", () => {
    it("is the deployer until the owner names another account; nobody else can, and never the zero address", async () => {
      expect(await read(ledger, UsageLedgerAbi, "operator")).toBe(getAddress(operator.address));
      const created = await chain.publicClient.getContractEvents({
        address: ledger,
        abi: UsageLedgerAbi,
        eventName: "OperatorChanged",
        fromBlock: 0n,
        strict: true,
      });
      expect(created.map((e) => e.args)).toEqual([{ previousOperator: zeroAddress, newOperator: getAddress(operator.address) }]);

      await expectRevert(spare, ledger, UsageLedgerAbi, "setOperator", [spare.address], "OwnableUnauthorizedAccount", [spare.address]);
      await expectRevert(operator, ledger, UsageLedgerAbi, "setOperator", [zeroAddress], "ZeroAddress");

      const receipt = await send(operator, ledger, UsageLedgerAbi, "setOperator", [spare.address]);
      expect(events(receipt, UsageLedgerAbi, "OperatorChanged")).toEqual([
        { previousOperator: getAddress(operator.address), newOperator: getAddress(spare.address) },
      ]);
      expect(await read(ledger, UsageLedgerAbi, "operator")).toBe(getAddress(spare.address));
      // Lines are now encrypted to the new operator's registered key; it has none of the owner's powers.
      expect(await ledgerOperatorKey(chain.publicClient, { usageLedger: ledger, registrar: manifest.contracts.registrar })).toEqual({
        operator: getAddress(spare.address),
        publicKey: eerc.spare.publicKey,
      });
      await expectRevert(spare, ledger, UsageLedgerAbi, "setServer", [server.address, true], "OwnableUnauthorizedAccount", [spare.address]);
      expect(await read(ledger, UsageLedgerAbi, "owner")).toBe(getAddress(operator.address));

      // Back to the operator for the other tests.
      await send(operator, ledger, UsageLedgerAbi, "setOperator", [operator.address]);
      expect(await read(ledger, UsageLedgerAbi, "operator")).toBe(getAddress(operator.address));
    });

    it("stays where it is when ownership moves", async () => {
      await send(operator, ledger, UsageLedgerAbi, "transferOwnership", [spare.address]);
      await send(spare, ledger, UsageLedgerAbi, "acceptOwnership", []);
      expect(await read(ledger, UsageLedgerAbi, "operator")).toBe(getAddress(operator.address));
      // The new owner names operators; the former owner (still the operator) no longer can.
      await expectRevert(operator, ledger, UsageLedgerAbi, "setOperator", [spare.address], "OwnableUnauthorizedAccount", [
        operator.address,
      ]);
      const receipt = await send(spare, ledger, UsageLedgerAbi, "setOperator", [operator.address]);
      expect(events(receipt, UsageLedgerAbi, "OperatorChanged")).toEqual([
        { previousOperator: getAddress(operator.address), newOperator: getAddress(operator.address) },
      ]);
      await send(spare, ledger, UsageLedgerAbi, "transferOwnership", [operator.address]);
      await send(operator, ledger, UsageLedgerAbi, "acceptOwnership", []);
      expect(await read(ledger, UsageLedgerAbi, "owner")).toBe(getAddress(operator.address));
    });
  });

  describe("ProviderRegistry", () => {
    it("registers a provider with everything an indexer needs in the event", async () => {
      const id = providerIdOf("coingecko");
      expect(await read(registry, ProviderRegistryAbi, "providerIdOf", ["coingecko"])).toBe(id);
      const receipt = await send(operator, registry, ProviderRegistryAbi, "registerProvider", [
        "coingecko",
        providerA.address,
        perCall(1_500n),
      ]);
      expect(events(receipt, ProviderRegistryAbi, "ProviderRegistered")).toEqual([
        { providerId: id, namespace: "coingecko", payoutAccount: providerA.address, pricing: perCall(1_500n) },
      ]);
      expect(await read(registry, ProviderRegistryAbi, "getProvider", [id])).toEqual({
        namespace: "coingecko",
        payoutAccount: providerA.address,
        active: true,
        pricing: perCall(1_500n),
      });
      expect(await read(registry, ProviderRegistryAbi, "isProvider", [id])).toBe(true);
      await expectRevert(
        operator,
        registry,
        ProviderRegistryAbi,
        "registerProvider",
        ["coingecko", providerB.address, perCall(1n)],
        "ProviderAlreadyRegistered",
        [id],
      );
    });

    it("stores tiered and free-pool pricing exactly, including an open-ended last tier", async () => {
      const tierPricing = tiers([1_000n, 0n], [100_000n, 20n], [UINT64_MAX, 10n]);
      await send(operator, registry, ProviderRegistryAbi, "registerProvider", ["etherscan", providerB.address, tierPricing]);
      expect((await read<{ pricing: Pricing }>(registry, ProviderRegistryAbi, "getProvider", [providerIdOf("etherscan")])).pricing).toEqual(
        tierPricing,
      );
      await send(operator, registry, ProviderRegistryAbi, "registerProvider", ["defillama", competitor.address, freePool(3)]);
      expect((await read<{ pricing: Pricing }>(registry, ProviderRegistryAbi, "getProvider", [providerIdOf("defillama")])).pricing).toEqual(
        freePool(3),
      );
    });

    it("requires the payout account to be registered in the eERC Registrar", async () => {
      await expectRevert(
        operator,
        registry,
        ProviderRegistryAbi,
        "registerProvider",
        ["dune", unregistered.address, perCall(1n)],
        "PayoutAccountNotRegistered",
        [unregistered.address],
      );
      await expectRevert(operator, registry, ProviderRegistryAbi, "registerProvider", ["dune", zeroAddress, perCall(1n)], "ZeroAddress");
      await expectRevert(
        operator,
        registry,
        ProviderRegistryAbi,
        "setPayoutAccount",
        [providerIdOf("coingecko"), unregistered.address],
        "PayoutAccountNotRegistered",
      );
    });

    it("validates namespaces and pricing", async () => {
      for (const ns of ["", "coin-gecko", "coin gecko", "x".repeat(65), "münze"]) {
        await expectRevert(
          operator,
          registry,
          ProviderRegistryAbi,
          "registerProvider",
          [ns, providerA.address, perCall(1n)],
          "InvalidNamespace",
        );
      }
      const cases: [Pricing, string, unknown[]?][] = [
        [perCall(0n), "ZeroPerCallPrice"],
        [{ ...perCall(1n), poolWeight: 1 }, "UnusedPricingField"],
        [freePool(0), "ZeroPoolWeight"],
        [{ ...freePool(1), pricePerCallMicro: 1n }, "UnusedPricingField"],
        [tiers(), "EmptyTiers"],
        [tiers([10n, 1n], [10n, 2n]), "TierNotIncreasing", [1n]],
        [tiers([0n, 1n]), "TierNotIncreasing", [0n]],
        [{ ...tiers([10n, 1n]), poolWeight: 2 }, "UnusedPricingField"],
        [tiers(...Array.from({ length: 17 }, (_, i) => [BigInt(i + 1), 1n] as [bigint, bigint])), "TooManyTiers", [17n]],
      ];
      for (const [pricing, error, args] of cases) {
        await expectRevert(operator, registry, ProviderRegistryAbi, "registerProvider", ["dune", providerA.address, pricing], error, args);
        await expectRevert(operator, registry, ProviderRegistryAbi, "updatePricing", [providerIdOf("coingecko"), pricing], error, args);
      }
    });

    it("updates pricing and payout account, deactivates and reactivates, with events", async () => {
      const id = providerIdOf("coingecko");
      let receipt = await send(operator, registry, ProviderRegistryAbi, "updatePricing", [id, tiers([100n, 0n], [UINT64_MAX, 1_200n])]);
      expect(events(receipt, ProviderRegistryAbi, "ProviderPricingUpdated")).toEqual([
        { providerId: id, pricing: tiers([100n, 0n], [UINT64_MAX, 1_200n]) },
      ]);
      receipt = await send(operator, registry, ProviderRegistryAbi, "updatePricing", [id, perCall(1_500n)]);
      expect((await read<{ pricing: Pricing }>(registry, ProviderRegistryAbi, "getProvider", [id])).pricing).toEqual(perCall(1_500n));

      receipt = await send(operator, registry, ProviderRegistryAbi, "setPayoutAccount", [id, spare.address]);
      expect(events(receipt, ProviderRegistryAbi, "ProviderPayoutAccountChanged")).toEqual([
        { providerId: id, oldPayoutAccount: providerA.address, newPayoutAccount: spare.address },
      ]);
      await send(operator, registry, ProviderRegistryAbi, "setPayoutAccount", [id, providerA.address]);

      receipt = await send(operator, registry, ProviderRegistryAbi, "setActive", [id, false]);
      expect(events(receipt, ProviderRegistryAbi, "ProviderActiveChanged")).toEqual([{ providerId: id, active: false }]);
      expect((await read<{ active: boolean }>(registry, ProviderRegistryAbi, "getProvider", [id])).active).toBe(false);
      await send(operator, registry, ProviderRegistryAbi, "setActive", [id, true]);
      expect((await read<{ active: boolean }>(registry, ProviderRegistryAbi, "getProvider", [id])).active).toBe(true);

      const unknown = providerIdOf("nobody");
      await expectRevert(operator, registry, ProviderRegistryAbi, "getProvider", [unknown], "UnknownProvider", [unknown]);
      await expectRevert(operator, registry, ProviderRegistryAbi, "updatePricing", [unknown, perCall(1n)], "UnknownProvider", [unknown]);
      await expectRevert(operator, registry, ProviderRegistryAbi, "setPayoutAccount", [unknown, providerA.address], "UnknownProvider", [
        unknown,
      ]);
      await expectRevert(operator, registry, ProviderRegistryAbi, "setActive", [unknown, false], "UnknownProvider", [unknown]);
    });

    it("refuses every change from anyone but the owner", async () => {
      const id = providerIdOf("coingecko");
      const calls: [string, unknown[]][] = [
        ["registerProvider", ["dune", providerA.address, perCall(1n)]],
        ["updatePricing", [id, perCall(1n)]],
        ["setPayoutAccount", [id, providerB.address]],
        ["setActive", [id, false]],
      ];
      for (const [fn, args] of calls) {
        await expectRevert(providerA, registry, ProviderRegistryAbi, fn, args, "OwnableUnauthorizedAccount", [providerA.address]);
      }
    });

    it("accepts owner-signed changes from a relay, once each", async () => {
      const deadline = (await latestTimestamp()) + 3_600n;
      const nonce = await ownerNonce(laneOf("dune"));
      const message = { namespace: "dune", payoutAccount: providerB.address, pricing: freePool(2), nonce, deadline };
      const signature = await operator.signTypedData(registerProviderTypedData(message, target()));
      const args = ["dune", providerB.address, freePool(2), deadline, signature];

      await refusedRelay("registerProviderSigned", ["dune", providerB.address, freePool(3), deadline, signature]);
      await refusedRelay("registerProviderSigned", ["Dune", providerB.address, freePool(2), deadline, signature]);
      await refusedRelay("registerProviderSigned", ["dune", providerA.address, freePool(2), deadline, signature]);
      await refusedRelay("registerProviderSigned", ["dune", providerB.address, freePool(2), deadline + 1n, signature]);

      const receipt = await send(relayer, registry, ProviderRegistryAbi, "registerProviderSigned", args);
      expect(events(receipt, ProviderRegistryAbi, "ProviderRegistered")).toEqual([
        { providerId: providerIdOf("dune"), namespace: "dune", payoutAccount: providerB.address, pricing: freePool(2) },
      ]);
      expect(await ownerNonce(laneOf("dune"))).toBe(nonce + 1n);
      await refusedRelay("registerProviderSigned", args);

      // Signed by someone else than the owner, expired, or not a signature at all.
      const next = { ...message, namespace: "nansen", nonce: await ownerNonce(laneOf("nansen")) };
      const byProvider = await providerA.signTypedData(registerProviderTypedData(next, target()));
      await refusedRelay("registerProviderSigned", ["nansen", providerB.address, freePool(2), deadline, byProvider]);
      const past = (await latestTimestamp()) - 1n;
      const expired = await operator.signTypedData(registerProviderTypedData({ ...next, deadline: past }, target()));
      await refusedRelay("registerProviderSigned", ["nansen", providerB.address, freePool(2), past, expired], "SignatureExpired", [past]);
      await refusedRelay("registerProviderSigned", ["nansen", providerB.address, freePool(2), deadline, "0x1234"]);
      // Another chain's domain does not verify here.
      const otherChain = await operator.signTypedData(registerProviderTypedData(next, { chainId: 43113, registry }));
      await refusedRelay("registerProviderSigned", ["nansen", providerB.address, freePool(2), deadline, otherChain]);
    });

    it("relays signed pricing, payout and activity changes", async () => {
      const id = providerIdOf("dune");
      const deadline = (await latestTimestamp()) + 3_600n;
      let nonce = await ownerNonce(laneOf("dune"));
      const pricing = tiers([50n, 0n], [UINT64_MAX, 3n]);
      let sig = await operator.signTypedData(updatePricingTypedData({ providerId: id, pricing, nonce, deadline }, target()));
      await refusedRelay("updatePricingSigned", [id, perCall(3n), deadline, sig]);
      await send(relayer, registry, ProviderRegistryAbi, "updatePricingSigned", [id, pricing, deadline, sig]);
      expect((await read<{ pricing: Pricing }>(registry, ProviderRegistryAbi, "getProvider", [id])).pricing).toEqual(pricing);

      nonce += 1n;
      sig = await operator.signTypedData(
        setPayoutAccountTypedData({ providerId: id, payoutAccount: spare.address, nonce, deadline }, target()),
      );
      await refusedRelay("setPayoutAccountSigned", [id, providerA.address, deadline, sig]);
      await send(relayer, registry, ProviderRegistryAbi, "setPayoutAccountSigned", [id, spare.address, deadline, sig]);
      expect((await read<{ payoutAccount: Address }>(registry, ProviderRegistryAbi, "getProvider", [id])).payoutAccount).toBe(
        spare.address,
      );

      nonce += 1n;
      sig = await operator.signTypedData(setActiveTypedData({ providerId: id, active: false, nonce, deadline }, target()));
      await refusedRelay("setActiveSigned", [id, true, deadline, sig]);
      const receipt = await send(relayer, registry, ProviderRegistryAbi, "setActiveSigned", [id, false, deadline, sig]);
      expect(events(receipt, ProviderRegistryAbi, "ProviderActiveChanged")).toEqual([{ providerId: id, active: false }]);
      await refusedRelay("setActiveSigned", [id, false, deadline, sig]);
    });

    it("keeps a nonce lane per provider: a signed request that never lands blocks only its own provider", async () => {
      const deadline = (await latestTimestamp()) + 3_600n;
      const dune = providerIdOf("dune");
      const coingecko = providerIdOf("coingecko");
      // The lane is the id's top 192 bits, on chain as here; nonces carry their lane above a 64-bit sequence.
      expect(await read(registry, ProviderRegistryAbi, "nonceKeyOf", [dune])).toBe(BigInt(dune) >> 64n);
      const duneNonce = await ownerNonce(laneOf("dune"));
      expect(duneNonce >> 64n).toBe(laneOf("dune"));
      const coingeckoNonce = await ownerNonce(laneOf("coingecko"));

      // A pricing change for dune is signed and handed to a relay that never sends it.
      const pending = await operator.signTypedData(
        updatePricingTypedData({ providerId: dune, pricing: perCall(9n), nonce: duneNonce, deadline }, target()),
      );
      // coingecko's own next request goes through meanwhile, and so does a settlement change.
      const toCoingecko = await operator.signTypedData(
        setActiveTypedData({ providerId: coingecko, active: true, nonce: coingeckoNonce, deadline }, target()),
      );
      await send(relayer, registry, ProviderRegistryAbi, "setActiveSigned", [coingecko, true, deadline, toCoingecko]);
      expect(await ownerNonce(laneOf("coingecko"))).toBe(coingeckoNonce + 1n);
      // A settlement change would go through as well (simulated: the settlement tests count the records).
      const settlementNonce = await ownerNonce(SETTLEMENT_NONCE_KEY);
      const records = await read<bigint>(registry, ProviderRegistryAbi, "settlementCount");
      const last = await read<{ effectiveFrom: bigint }>(registry, ProviderRegistryAbi, "settlementAt", [records - 1n]);
      const DAY = 86_400n;
      const from = ((last.effectiveFrom > deadline ? last.effectiveFrom : deadline) / DAY + 1n) * DAY;
      const settlement = await operator.signTypedData(
        setSettlementTypedData({ feeBps: 900, periodUnit: 0, effectiveFrom: from, nonce: settlementNonce, deadline }, target()),
      );
      await chain.publicClient.simulateContract({
        account: relayer,
        address: registry,
        abi: ProviderRegistryAbi,
        functionName: "setSettlementSigned",
        args: [900, 0, from, deadline, settlement],
      });

      // Within dune's lane the sequence holds: the next request waits for the pending one…
      const after = await operator.signTypedData(
        setActiveTypedData({ providerId: dune, active: true, nonce: duneNonce + 1n, deadline }, target()),
      );
      await refusedRelay("setActiveSigned", [dune, true, deadline, after]);
      // …which still lands, then the next one does.
      await send(relayer, registry, ProviderRegistryAbi, "updatePricingSigned", [dune, perCall(9n), deadline, pending]);
      await send(relayer, registry, ProviderRegistryAbi, "setActiveSigned", [dune, true, deadline, after]);
      expect(await ownerNonce(laneOf("dune"))).toBe(duneNonce + 2n);

      // A nonce from another lane is refused before anything is signed.
      expect(() => updatePricingTypedData({ providerId: dune, pricing: perCall(9n), nonce: coingeckoNonce, deadline }, target())).toThrow(
        NonceLaneMismatchError,
      );
      expect(() => setSettlementTypedData({ feeBps: 1, periodUnit: 0, effectiveFrom: from, nonce: duneNonce, deadline }, target())).toThrow(
        NonceLaneMismatchError,
      );
    });

    it("live pricing for the meter follows the registry, a change applying from the next pricing period", async () => {
      const id = providerIdOf("livepriced");
      await send(operator, registry, ProviderRegistryAbi, "registerProvider", ["livepriced", providerB.address, perCall(1_000n)]);
      const live = await registryPricing({ publicClient: chain.publicClient, registry, namespaces: ["livepriced"], refreshMs: 50 });
      try {
        expect(live.priceFor("livepriced", 0, 202611)).toBe(1_000n);
        await send(operator, registry, ProviderRegistryAbi, "updatePricing", [id, tiers([1n, 0n], [UINT64_MAX, 2_500n])]);
        await live.refresh();
        // November was pinned at 1,000 by its first call: the change applies from December.
        expect(live.priceFor("livepriced", 1, 202611)).toBe(1_000n);
        expect([0, 1].map((i) => live.priceFor("livepriced", i, 202612))).toEqual([0n, 2_500n]);
        // Deactivated: the refresh timer picks it up off the call path; each poll is a new period, so nothing stays pinned.
        await send(operator, registry, ProviderRegistryAbi, "setActive", [id, false]);
        let period = 202701;
        const deadline = Date.now() + 10_000;
        while (live.priceFor("livepriced", 3, period) !== 0n && Date.now() < deadline) {
          period += 1;
          await new Promise((r) => setTimeout(r, 50));
        }
        expect(live.priceFor("livepriced", 3, period)).toBe(0n);
        expect(() => live.priceFor("dune2", 0, 202701)).toThrow(UnknownProviderError);
      } finally {
        live.close();
      }
      await expect(registryPricing({ publicClient: chain.publicClient, registry, namespaces: ["neverregistered"] })).rejects.toThrow(
        UnknownProviderError,
      );
    });
  });

  describe("ProviderRegistry settlement settings", () => {
    const DAY = 86_400n;
    const nextDay = async () => ((await latestTimestamp()) / DAY + 1n) * DAY;
    const record = (i: bigint) =>
      read<{ feeBps: number; periodUnit: number; effectiveFrom: bigint }>(registry, ProviderRegistryAbi, "settlementAt", [i]);
    const count = () => read<bigint>(registry, ProviderRegistryAbi, "settlementCount");

    it("the deployment recorded the first settings, 1000 bps by month from genesis", async () => {
      expect(await count()).toBe(1n);
      expect(await record(0n)).toEqual({ feeBps: 1000, periodUnit: 0, effectiveFrom: 0n });
      await expectRevert(operator, registry, ProviderRegistryAbi, "settlementAt", [1n], "UnknownSettlementRecord", [1n]);
    });

    it("refuses a fee over 10,000, an unknown unit, and an effectiveFrom off a day start, not in the future or not after the last", async () => {
      const day = await nextDay();
      const refused = (args: readonly unknown[], error: string, errorArgs?: readonly unknown[]) =>
        expectRevert(operator, registry, ProviderRegistryAbi, "setSettlement", args, error, errorArgs);
      await refused([10_001, 0, day], "FeeTooHigh", [10_001]);
      await refused([500, 2, day], "UnknownPeriodUnit", [2]);
      await refused([500, 0, day + 3_600n], "EffectiveFromNotDayStart", [day + 3_600n]);
      // Only the first record may start at genesis; any other must start in the future.
      await refused([500, 0, 0n], "EffectiveFromNotInFuture");
      await refused([500, 0, day - DAY], "EffectiveFromNotInFuture");
      await expectRevert(providerA, registry, ProviderRegistryAbi, "setSettlement", [500, 0, day], "OwnableUnauthorizedAccount", [
        providerA.address,
      ]);
      expect(await count()).toBe(1n);
      // The library names the contract's error and sends nothing.
      await expect(
        setSettlement({ publicClient: chain.publicClient, wallet: wallet(operator), registry, feeBps: 10_001, periodUnit: "month" }),
      ).rejects.toThrow(new SettlementChangeError("the ProviderRegistry refuses the settlement record: FeeTooHigh(10001)"));
    });

    it("keeps the history in order, with an event per record, directly, through the library and relayed", async () => {
      const day = await nextDay();
      const receipt = await send(operator, registry, ProviderRegistryAbi, "setSettlement", [800, 1, day]);
      expect(events(receipt, ProviderRegistryAbi, "SettlementChanged")).toEqual([{ feeBps: 800, periodUnit: 1, effectiveFrom: day }]);
      await expectRevert(operator, registry, ProviderRegistryAbi, "setSettlement", [700, 1, day], "EffectiveFromNotAfterPrevious", [
        day,
        day,
      ]);
      // By default the library picks the next period start under the unit in force (months), after the last record.
      const now = await latestTimestamp();
      const set = await setSettlement({
        publicClient: chain.publicClient,
        wallet: wallet(operator),
        registry,
        feeBps: 600,
        periodUnit: "day",
      });
      const nextMonth = nextPeriodStart(now, "month");
      expect(set.effectiveFrom).toBe(nextMonth > day ? nextMonth : day + DAY);
      expect(set.records.map((r) => r.feeBps)).toEqual([1000, 800, 600]);
      expect(await record(2n)).toEqual({ feeBps: 600, periodUnit: 1, effectiveFrom: set.effectiveFrom });

      const deadline = now + 3_600n;
      const effectiveFrom = set.effectiveFrom + DAY;
      const message = { feeBps: 400, periodUnit: 1, effectiveFrom, nonce: await ownerNonce(SETTLEMENT_NONCE_KEY), deadline };
      const signature = await operator.signTypedData(setSettlementTypedData(message, target()));
      await refusedRelay("setSettlementSigned", [500, 1, effectiveFrom, deadline, signature]);
      const byProvider = await providerA.signTypedData(setSettlementTypedData(message, target()));
      await refusedRelay("setSettlementSigned", [400, 1, effectiveFrom, deadline, byProvider]);
      await send(relayer, registry, ProviderRegistryAbi, "setSettlementSigned", [400, 1, effectiveFrom, deadline, signature]);
      await refusedRelay("setSettlementSigned", [400, 1, effectiveFrom, deadline, signature]);
      expect(await count()).toBe(4n);
      // The record in force is still the first: every later one starts in the future.
      expect(await settlementInForce({ publicClient: chain.publicClient, registry })).toMatchObject({ index: 0, feeBps: 1000 });
    });
  });

  describe("UsageLedger", () => {
    let counter = 0;
    const record = (provider: string, overrides: Partial<CallRecord> = {}): CallRecord => {
      counter += 1;
      return {
        eventId: `call-${counter}`,
        provider,
        tool: "lookup",
        startedAt: 1_700_000_000_000 + counter * 10,
        endedAt: 1_700_000_000_000 + counter * 10 + 5,
        durationMs: 5,
        outcome: "ok",
        requestBytes: 100,
        responseBytes: 900,
        billable: true,
        priceMicro: 1_500n,
        ...overrides,
      };
    };
    const period = { periodStart: 1_700_000_000_000, periodEnd: 1_700_001_000_000 };
    let keys: LineKeys;
    let sequence = 0;
    const nextBatch = (records: CallRecord[], from: Address = server.address, lineKeys: LineKeys = keys) =>
      buildBatch({ server: from, sequence: ++sequence, ...period, records, keys: lineKeys });
    const commitLog = (receipt: TransactionReceipt) => events(receipt, UsageLedgerAbi, "UsageCommitted");

    beforeAll(async () => {
      keys = await fetchLineKeys(chain.publicClient, { ...manifest.contracts }, operator.address, [
        providerIdOf("coingecko"),
        providerIdOf("etherscan"),
        providerIdOf("defillama"),
      ]);
    });

    it("authorises servers (owner only), with an event", async () => {
      await expectRevert(providerA, ledger, UsageLedgerAbi, "setServer", [server.address, true], "OwnableUnauthorizedAccount", [
        providerA.address,
      ]);
      await expectRevert(operator, ledger, UsageLedgerAbi, "setServer", [zeroAddress, true], "ZeroAddress");
      const receipt = await send(operator, ledger, UsageLedgerAbi, "setServer", [server.address, true]);
      expect(events(receipt, UsageLedgerAbi, "ServerAuthorisationChanged")).toEqual([{ server: server.address, authorised: true }]);
      expect(await read(ledger, UsageLedgerAbi, "isAuthorisedServer", [server.address])).toBe(true);
    });

    it("binds servers to providers with caps (owner only), one event per provider, and refuses bad bindings", async () => {
      const ids = [providerIdOf("coingecko"), providerIdOf("etherscan")];
      const MAX = (1n << 64n) - 1n;
      await expectRevert(
        providerA,
        ledger,
        UsageLedgerAbi,
        "setServerProviders",
        [server.address, ids, true, 10n, 100n],
        "OwnableUnauthorizedAccount",
        [providerA.address],
      );
      await expectRevert(operator, ledger, UsageLedgerAbi, "setServerProviders", [zeroAddress, ids, true, 10n, 100n], "ZeroAddress");
      await expectRevert(operator, ledger, UsageLedgerAbi, "setServerProviders", [server.address, [], true, 10n, 100n], "NoProviders");
      const tooMany = Array.from({ length: 65 }, (_, i) => providerIdOf(`p${i}`));
      await expectRevert(
        operator,
        ledger,
        UsageLedgerAbi,
        "setServerProviders",
        [server.address, tooMany, true, 1n, 1n],
        "TooManyProviders",
        [65n],
      );
      await expectRevert(
        operator,
        ledger,
        UsageLedgerAbi,
        "setServerProviders",
        [server.address, [`0x${"0".repeat(64)}`], true, 1n, 1n],
        "ZeroProviderId",
      );
      await expectRevert(operator, ledger, UsageLedgerAbi, "setServerProviders", [server.address, ids, true, 0n, 100n], "ZeroCap");
      await expectRevert(operator, ledger, UsageLedgerAbi, "setServerProviders", [server.address, ids, true, 10n, 0n], "ZeroCap");
      await expectRevert(operator, ledger, UsageLedgerAbi, "setServerProviders", [server.address, ids, false, 1n, 0n], "CapOnUnbound");
      const receipt = await send(operator, ledger, UsageLedgerAbi, "setServerProviders", [server.address, ids, true, 10n, 100n]);
      expect(events(receipt, UsageLedgerAbi, "ServerProviderBound")).toEqual(
        ids.map((providerId) => ({ server: server.address, providerId, bound: true, maxCallsPerBatch: 10n, maxCallsPerPeriod: 100n })),
      );
      expect(await read(ledger, UsageLedgerAbi, "bindingOf", [server.address, ids[0]])).toEqual([true, 10n, 100n]);
      await send(operator, ledger, UsageLedgerAbi, "setServerProviders", [server.address, [ids[1]], false, 0n, 0n]);
      expect(await read(ledger, UsageLedgerAbi, "bindingOf", [server.address, ids[1]])).toEqual([false, 0n, 0n]);
      await send(operator, ledger, UsageLedgerAbi, "setServerProviders", [server.address, ids, true, MAX, MAX]);
      expect(await read(ledger, UsageLedgerAbi, "bindingOf", [server.address, ids[1]])).toEqual([true, MAX, MAX]);
    });

    it("commits a batch sent by its server; the log carries it and each party reads only its lines", async () => {
      const records = [
        record("coingecko"),
        record("coingecko"),
        record("coingecko", { outcome: "tool_error", billable: false, priceMicro: 0n }),
        record("etherscan", { priceMicro: 20n }),
      ];
      const { batch, lines } = nextBatch(records);
      const receipt = await send(server, ledger, UsageLedgerAbi, "commit", [batch]);
      const [log] = commitLog(receipt);
      expect(log).toEqual({
        server: batch.server,
        batchId: batch.batchId,
        periodStart: batch.periodStart,
        periodEnd: batch.periodEnd,
        merkleRoot: batch.merkleRoot,
        encryptedLines: batch.encryptedLines,
      });
      expect(await read(ledger, UsageLedgerAbi, "batchHashOf", [server.address, batch.batchId])).toBe(batchHash(batch));
      expect(await read(ledger, UsageLedgerAbi, "hashBatch", [batch])).toBe(batchHash(batch));
      expect(await read(ledger, UsageLedgerAbi, "isCommitted", [server.address, batch.batchId])).toBe(true);

      // From the log alone, with its own wallet-derived key, each party reads its share.
      const fromLog = log.encryptedLines as Hex;
      const coingecko = decryptLinesFor(fromLog, eerc.providerA.exportPrivateKey(), "provider");
      expect(coingecko).toEqual([
        { providerId: providerIdOf("coingecko"), calls: 3n, billableCalls: 2n, amountMicro: 3_000n, revenueMicro: 0n },
      ]);
      expect(decryptLinesFor(fromLog, eerc.providerB.exportPrivateKey(), "provider")).toEqual([
        { providerId: providerIdOf("etherscan"), calls: 1n, billableCalls: 1n, amountMicro: 20n, revenueMicro: 0n },
      ]);
      expect(decryptLinesFor(fromLog, eerc.competitor.exportPrivateKey(), "provider")).toEqual([]);
      expect(decryptLinesFor(fromLog, eerc.operator.exportPrivateKey(), "operator")).toEqual(lines);
      expect(decryptLinesFor(fromLog, eerc.auditor.exportPrivateKey(), "auditor")).toEqual(lines);
      expect(verifyBatchRecords([...records].reverse(), log.merkleRoot as Hex)).toBe(true);

      // The Merkle proofs verify with OpenZeppelin's MerkleProof on chain.
      const { abi, bytecode } = await loadArtifact("MerkleProofHarness");
      const deployHash = await wallet(operator).deployContract({ abi: abi as Abi, bytecode });
      const harness = (await chain.publicClient.waitForTransactionReceipt({ hash: deployHash })).contractAddress!;
      const { tree } = nextBatch(records);
      for (const r of records) {
        expect(await read(harness, abi, "verify", [recordProof(tree, r), tree.root, callRecordLeaf(r)])).toBe(true);
      }
      expect(await read(harness, abi, "verify", [recordProof(tree, records[0]), tree.root, callRecordLeaf(records[1])])).toBe(false);
    });

    it("refuses a reused batch id, another sender, an unauthorised server and malformed batches", async () => {
      const { batch } = nextBatch([record("coingecko")]);
      await send(server, ledger, UsageLedgerAbi, "commit", [batch]);
      await expectRevert(server, ledger, UsageLedgerAbi, "commit", [batch], "BatchAlreadyCommitted", [batch.server, batch.batchId]);
      await expectRevert(
        server,
        ledger,
        UsageLedgerAbi,
        "commit",
        [{ ...batch, merkleRoot: `0x${"11".repeat(32)}` }],
        "BatchAlreadyCommitted",
      );

      const fresh = nextBatch([record("coingecko")]).batch;
      await expectRevert(relayer, ledger, UsageLedgerAbi, "commit", [fresh], "NotBatchServer", [relayer.address, server.address]);
      const rogue = nextBatch([record("coingecko")], rogueServer.address).batch;
      await expectRevert(rogueServer, ledger, UsageLedgerAbi, "commit", [rogue], "UnauthorisedServer", [rogueServer.address]);

      const bad: [Partial<UsageBatch>, string][] = [
        [{ periodStart: fresh.periodEnd + 1n }, "InvalidPeriod"],
        [{ merkleRoot: `0x${"00".repeat(32)}` }, "EmptyMerkleRoot"],
        [{ encryptedLines: "0x" }, "EmptyLines"],
      ];
      for (const [change, error] of bad) await expectRevert(server, ledger, UsageLedgerAbi, "commit", [{ ...fresh, ...change }], error);
    });

    it("commits a batch relayed with the server's signature; refuses expired, tampered and foreign signatures", async () => {
      const { batch } = nextBatch([record("coingecko"), record("defillama", { priceMicro: 0n })]);
      const deadline = (await latestTimestamp()) + 600n;
      const typed = batchTypedData(batch, deadline, { chainId: chain.chain.id, ledger });
      const signature = await server.signTypedData(typed);

      const tampered = `${signature.slice(0, 40)}${signature[40] === "0" ? "1" : "0"}${signature.slice(41)}` as Hex;
      await expectRevert(relayer, ledger, UsageLedgerAbi, "commitSigned", [batch, deadline, tampered], "InvalidSignature");
      await expectRevert(
        relayer,
        ledger,
        UsageLedgerAbi,
        "commitSigned",
        [{ ...batch, periodEnd: batch.periodEnd + 1n }, deadline, signature],
        "InvalidSignature",
      );
      const otherLines = nextBatch([record("coingecko")]).batch.encryptedLines;
      await expectRevert(
        relayer,
        ledger,
        UsageLedgerAbi,
        "commitSigned",
        [{ ...batch, encryptedLines: otherLines }, deadline, signature],
        "InvalidSignature",
      );
      await expectRevert(relayer, ledger, UsageLedgerAbi, "commitSigned", [batch, deadline + 1n, signature], "InvalidSignature");
      const byRelayer = await relayer.signTypedData(typed);
      await expectRevert(relayer, ledger, UsageLedgerAbi, "commitSigned", [batch, deadline, byRelayer], "InvalidSignature");
      const past = (await latestTimestamp()) - 1n;
      const expired = await server.signTypedData(batchTypedData(batch, past, { chainId: chain.chain.id, ledger }));
      await expectRevert(relayer, ledger, UsageLedgerAbi, "commitSigned", [batch, past, expired], "SignatureExpired", [past]);

      const receipt = await send(relayer, ledger, UsageLedgerAbi, "commitSigned", [batch, deadline, signature]);
      expect(commitLog(receipt)).toEqual([
        {
          server: server.address,
          batchId: batch.batchId,
          periodStart: batch.periodStart,
          periodEnd: batch.periodEnd,
          merkleRoot: batch.merkleRoot,
          encryptedLines: batch.encryptedLines,
        },
      ]);
      await expectRevert(relayer, ledger, UsageLedgerAbi, "commitSigned", [batch, deadline, signature], "BatchAlreadyCommitted", [
        server.address,
        batch.batchId,
      ]);
      await expectRevert(server, ledger, UsageLedgerAbi, "commit", [batch], "BatchAlreadyCommitted");

      const rogue = nextBatch([record("coingecko")], rogueServer.address).batch;
      const rogueSig = await rogueServer.signTypedData(batchTypedData(rogue, deadline, { chainId: chain.chain.id, ledger }));
      await expectRevert(relayer, ledger, UsageLedgerAbi, "commitSigned", [rogue, deadline, rogueSig], "UnauthorisedServer", [
        rogueServer.address,
      ]);
    });

    it("stops accepting a revoked server and keeps its earlier batches", async () => {
      const earlier = nextBatch([record("etherscan")]).batch;
      await send(server, ledger, UsageLedgerAbi, "commit", [earlier]);
      const receipt = await send(operator, ledger, UsageLedgerAbi, "setServer", [server.address, false]);
      expect(events(receipt, UsageLedgerAbi, "ServerAuthorisationChanged")).toEqual([{ server: server.address, authorised: false }]);
      await expectRevert(server, ledger, UsageLedgerAbi, "commit", [nextBatch([record("etherscan")]).batch], "UnauthorisedServer", [
        server.address,
      ]);
      expect(await read(ledger, UsageLedgerAbi, "isCommitted", [server.address, earlier.batchId])).toBe(true);
      await send(operator, ledger, UsageLedgerAbi, "setServer", [server.address, true]);
    });

    it("commits batches of 1, 10 and 100 provider lines, directly and signed, each under 5M gas", async () => {
      const randomKeys: LineKeys = { ...keys, providerPk: () => mulBase(randomScalar()) };
      for (const providers of [1, 10, 100]) {
        const records = Array.from({ length: providers * 3 }, (_, i) => record(`gasprovider${i % providers}`));
        const { batch } = nextBatch(records, server.address, randomKeys);
        const direct = await send(server, ledger, UsageLedgerAbi, "commit", [batch]);
        const signed = nextBatch(records, server.address, randomKeys).batch;
        const deadline = (await latestTimestamp()) + 600n;
        const signature = await server.signTypedData(batchTypedData(signed, deadline, { chainId: chain.chain.id, ledger }));
        const relayed = await send(relayer, ledger, UsageLedgerAbi, "commitSigned", [signed, deadline, signature]);
        expect(direct.gasUsed).toBeLessThan(5_000_000n);
        expect(relayed.gasUsed).toBeLessThan(5_000_000n);
      }
    });
  });
});
