import { type Abi, type Address, ContractFunctionRevertedError, erc20Abi, type Hex, BaseError as ViemBaseError } from "viem";
import type { PrivateKeyAccount } from "viem/accounts";
import { ProviderRegistryAbi } from "../../abis/ProviderRegistryAbi.js";
import { UsageLedgerAbi } from "../../abis/UsageLedgerAbi.js";
import { type ChainClients, connectChain } from "../chain/clients.js";
import { type DeploymentManifest, provingArtifactsOf } from "../deployment/manifest.js";
import { EercClient } from "../eerc/client.js";
import { checkProvingArtifacts } from "../eerc/deployment-check.js";
import { Prover } from "../eerc/prover.js";
import { provingKeyChecksFromEnv } from "../eerc/proving-key-checks.js";
import { BaseError } from "../errors.js";
import { assertKeyMatches } from "../history/decrypt.js";
import { IndexerClient } from "../indexer-client/client.js";
import { formatUsdc } from "../money/usdc.js";
import type { Pricing } from "../usage/pricing.js";
import {
  nonceKeyOf,
  providerIdOf,
  registerProviderTypedData,
  setActiveTypedData,
  setPayoutAccountTypedData,
  updatePricingTypedData,
} from "../usage/registry.js";
import type { CliIo, Command } from "./args.js";
import { type Identity, openDeployment, walletOf } from "./commands.js";
import { toJson } from "./output.js";

// The set-up steps of each role, as the README's deployment path runs them: register an eERC
// account, add and update providers, authorise metering servers, fund the payer.

/** What a contract's custom error means to the person who ran the command, and what to do next. */
const NEXT_STEP: Record<string, (args: readonly unknown[]) => string> = {
  PayoutAccountNotRegistered: ([a]) =>
    `the payout account ${a} has no eERC registration: the provider runs "npm run cli -- register --rpc URL" with its wallet key first`,
  ProviderAlreadyRegistered: () => `the provider is already registered: change it with "npm run cli -- provider update"`,
  UnknownProvider: () => `no provider has that namespace: add it with "npm run cli -- provider add"`,
  OwnableUnauthorizedAccount: ([a]) => `${a} is not the contract's owner: run this with the owner's wallet key`,
  InvalidNamespace: ([n]) => `"${n}" is not a valid namespace (1 to 64 ASCII letters or digits)`,
  ZeroPerCallPrice: () => "a per-call price must be more than 0 (a free API takes --free-pool)",
  TierNotIncreasing: ([i]) => `tier ${i}'s upToCalls must be above the previous tier's`,
  TooManyTiers: ([n]) => `${n} tiers is too many`,
  ZeroAddress: () => "the address must not be zero",
};

/** A revert, named by the contract's custom error, with the next step. */
export class ContractRefusedError extends BaseError {
  readonly code = "CONTRACT_REFUSED";
}

/** Simulates (to name a refusal by its custom error), sends, and waits; returns the receipt's hash and block. */
async function send(
  chain: ChainClients,
  account: PrivateKeyAccount,
  call: { address: Address; abi: Abi; functionName: string; args: readonly unknown[] },
): Promise<{ txHash: Hex; blockNumber: bigint }> {
  try {
    await chain.publicClient.simulateContract({ ...call, account } as never);
  } catch (e) {
    const reverted = e instanceof ViemBaseError ? e.walk((x) => x instanceof ContractFunctionRevertedError) : null;
    if (reverted instanceof ContractFunctionRevertedError && reverted.data?.errorName) {
      const explain = NEXT_STEP[reverted.data.errorName];
      const detail = explain ? explain(reverted.data.args ?? []) : reverted.data.errorName;
      throw new ContractRefusedError(`${call.functionName} refused: ${detail}`);
    }
    throw e;
  }
  const txHash = await chain.walletFor(account).writeContract(call as never);
  const receipt = await chain.publicClient.waitForTransactionReceipt({ hash: txHash });
  if (receipt.status !== "success") throw new Error(`${call.functionName} reverted (${txHash})`);
  return { txHash, blockNumber: receipt.blockNumber };
}

function print(io: CliIo, cmd: Command, json: object, text: string): void {
  io.stdout(cmd.json ? toJson(json) : text);
}

const eercContracts = (m: DeploymentManifest) => ({ encryptedERC: m.contracts.encryptedERC, registrar: m.contracts.registrar });

/** Runs `use` with the wallet's eERC client on the deployment behind --rpc, and a prover it closes after. */
async function withEercWallet<T>(
  deployment: { manifest: DeploymentManifest; chain: ChainClients },
  account: PrivateKeyAccount,
  use: (client: EercClient, prover: Prover) => Promise<T>,
): Promise<T> {
  const { manifest: m, chain } = deployment;
  const prover = new Prover(provingArtifactsOf(m));
  try {
    const client = await EercClient.connect({
      publicClient: chain.publicClient,
      wallet: chain.walletFor(account),
      contracts: eercContracts(m),
      prover,
    });
    return await use(client, prover);
  } finally {
    await prover.close();
  }
}

/** Registers the wallet's eERC account, with a registration proof made here; already registered is fine when the key matches. */
export async function runRegister(cmd: Command, id: Identity, io: CliIo): Promise<void> {
  const account = walletOf(id, "register");
  const { manifest: m, url } = await openDeployment(cmd);
  const chain = await connectChain(url);
  await withEercWallet({ manifest: m, chain }, account, async (client, prover) => {
    const registered = await client.registeredPublicKey(account.address);
    if (registered) {
      assertKeyMatches(account.address, registered, id.sk);
      print(
        io,
        cmd,
        { account: account.address, registered: true, txHash: null },
        `${account.address} is already registered in the eERC, with this wallet's key`,
      );
      return;
    }
    await checkProvingArtifacts({
      publicClient: chain.publicClient,
      prover,
      contracts: eercContracts(m),
      circuits: ["registration"],
      record: provingKeyChecksFromEnv(),
    });
    const receipt = await client.register();
    print(
      io,
      cmd,
      { account: account.address, registered: true, txHash: receipt?.transactionHash ?? null, blockNumber: receipt?.blockNumber },
      `registered ${account.address} in the eERC (Registrar ${m.contracts.registrar}, tx ${receipt?.transactionHash}, block ${receipt?.blockNumber})`,
    );
  });
}

type ProviderChange =
  | { kind: "register"; namespace: string; payoutAccount: Address; pricing: Pricing }
  | { kind: "pricing"; providerId: Hex; pricing: Pricing }
  | { kind: "payout"; providerId: Hex; payoutAccount: Address }
  | { kind: "active"; providerId: Hex; active: boolean };

function changesOf(cmd: Command): ProviderChange[] {
  const namespace = cmd.target!;
  if (cmd.name === "provider add") return [{ kind: "register", namespace, payoutAccount: cmd.payout!, pricing: cmd.pricing! }];
  const providerId = providerIdOf(namespace);
  const out: ProviderChange[] = [];
  if (cmd.pricing) out.push({ kind: "pricing", providerId, pricing: cmd.pricing });
  if (cmd.payout) out.push({ kind: "payout", providerId, payoutAccount: cmd.payout });
  if (cmd.active !== undefined) out.push({ kind: "active", providerId, active: cmd.active });
  return out;
}

const CALLS = {
  register: (c: Extract<ProviderChange, { kind: "register" }>) => ({
    functionName: "registerProvider",
    args: [c.namespace, c.payoutAccount, c.pricing],
  }),
  pricing: (c: Extract<ProviderChange, { kind: "pricing" }>) => ({ functionName: "updatePricing", args: [c.providerId, c.pricing] }),
  payout: (c: Extract<ProviderChange, { kind: "payout" }>) => ({ functionName: "setPayoutAccount", args: [c.providerId, c.payoutAccount] }),
  active: (c: Extract<ProviderChange, { kind: "active" }>) => ({ functionName: "setActive", args: [c.providerId, c.active] }),
};

const pricingJson = (p: Pricing) => ({
  model: p.model,
  pricePerCallMicro: p.pricePerCallMicro.toString(),
  poolWeight: p.poolWeight,
  tiers: p.tiers.map((t) => ({ upToCalls: t.upToCalls.toString(), priceMicro: t.priceMicro.toString() })),
});

/** The API's relayed form of a change: the operator's EIP-712 signature over it, the nonce of its provider's lane and a deadline. */
async function relay(
  api: IndexerClient,
  change: ProviderChange,
  o: { account: PrivateKeyAccount; chainId: number; registry: Address; nonce: bigint },
): Promise<Hex> {
  const deadline = BigInt(Math.floor(Date.now() / 1000) + 600);
  const common = { nonce: o.nonce, deadline };
  const target = { chainId: o.chainId, registry: o.registry };
  const sign = (typed: unknown) => o.account.signTypedData(typed as Parameters<PrivateKeyAccount["signTypedData"]>[0]);
  const wire = { nonce: o.nonce.toString(), deadline: deadline.toString() };
  if (change.kind === "register") {
    const signature = await sign(registerProviderTypedData({ ...change, ...common }, target));
    const body = {
      namespace: change.namespace,
      payoutAccount: change.payoutAccount,
      pricing: pricingJson(change.pricing),
      ...wire,
      signature,
    };
    return (await api.registerProvider(body)).txHash;
  }
  const signature =
    change.kind === "pricing"
      ? await sign(updatePricingTypedData({ ...change, ...common }, target))
      : change.kind === "payout"
        ? await sign(setPayoutAccountTypedData({ ...change, ...common }, target))
        : await sign(setActiveTypedData({ ...change, ...common }, target));
  const field =
    change.kind === "pricing"
      ? { pricing: pricingJson(change.pricing) }
      : change.kind === "payout"
        ? { payoutAccount: change.payoutAccount }
        : { active: change.active };
  return (await api.updateProvider({ providerId: change.providerId, ...field, ...wire, signature })).txHash;
}

/**
 * `provider add` and `provider update`: the operator's wallet sends each change to the
 * ProviderRegistry, or, with --api, signs it and the API relays it (the relayer pays the gas).
 */
export async function runProvider(cmd: Command, id: Identity, io: CliIo): Promise<void> {
  const account = walletOf(id, cmd.name);
  const { manifest: m, url } = await openDeployment(cmd);
  const chain = await connectChain(url);
  const registry = m.contracts.providerRegistry;
  const done: { change: string; txHash: Hex }[] = [];
  for (const change of changesOf(cmd)) {
    let txHash: Hex;
    if (cmd.values.api !== undefined) {
      const nonce = await chain.publicClient.readContract({
        address: registry,
        abi: ProviderRegistryAbi,
        functionName: "nonces",
        args: [account.address, nonceKeyOf(change.kind === "register" ? providerIdOf(change.namespace) : change.providerId)],
      });
      txHash = await relay(new IndexerClient(cmd.values.api), change, { account, chainId: m.chainId, registry, nonce });
      const receipt = await chain.publicClient.waitForTransactionReceipt({ hash: txHash });
      if (receipt.status !== "success") throw new Error(`the relayed ${change.kind} change reverted (${txHash})`);
    } else {
      const call = (CALLS[change.kind] as (c: ProviderChange) => { functionName: string; args: readonly unknown[] })(change);
      ({ txHash } = await send(chain, account, { address: registry, abi: ProviderRegistryAbi as Abi, ...call }));
    }
    done.push({ change: change.kind, txHash });
  }
  const providerId = providerIdOf(cmd.target!);
  print(
    io,
    cmd,
    { namespace: cmd.target, providerId, changes: done },
    [
      `${cmd.name === "provider add" ? "registered" : "updated"} provider ${cmd.target} (${providerId})${cmd.values.api !== undefined ? ", relayed by the API" : ""}`,
      ...done.map((d) => `  ${d.change}: tx ${d.txHash}`),
      ...(cmd.pricing && cmd.name === "provider update" ? ["the new pricing applies from the next pricing period"] : []),
    ].join("\n"),
  );
}

/**
 * `server authorise` and `server revoke`: which metering servers may commit usage batches, and for
 * which providers (with caps) their lines count. With --providers, `server authorise` also binds
 * the server to them and `server revoke` only unbinds them (the server stays authorised).
 */
export async function runServer(cmd: Command, id: Identity, io: CliIo): Promise<void> {
  const account = walletOf(id, cmd.name);
  const { manifest: m, url } = await openDeployment(cmd);
  const chain = await connectChain(url);
  const authorise = cmd.name === "server authorise";
  const server = cmd.target as Address;
  const providers = cmd.providers ?? [];
  const txs: { change: string; txHash: Hex; blockNumber: bigint }[] = [];
  if (authorise || providers.length === 0) {
    const sent = await send(chain, account, {
      address: m.contracts.usageLedger,
      abi: UsageLedgerAbi as Abi,
      functionName: "setServer",
      args: [server, authorise],
    });
    txs.push({ change: authorise ? "authorised" : "revoked", ...sent });
  }
  if (providers.length > 0) {
    const caps = authorise ? cmd.caps! : { perBatch: 0n, perPeriod: 0n };
    const sent = await send(chain, account, {
      address: m.contracts.usageLedger,
      abi: UsageLedgerAbi as Abi,
      functionName: "setServerProviders",
      args: [server, providers.map((n) => providerIdOf(n)), authorise, caps.perBatch, caps.perPeriod],
    });
    txs.push({ change: authorise ? "bound" : "unbound", ...sent });
  }
  const capText = (n: bigint) => (n === (1n << 64n) - 1n ? "no cap" : String(n));
  print(
    io,
    cmd,
    {
      server,
      // Unbinding providers leaves the authorisation as it was.
      ...(authorise || providers.length === 0 ? { authorised: authorise } : {}),
      providers: providers.map((namespace) => ({ namespace, providerId: providerIdOf(namespace), bound: authorise })),
      ...(authorise && providers.length > 0 ? { maxCallsPerBatch: cmd.caps!.perBatch, maxCallsPerPeriod: cmd.caps!.perPeriod } : {}),
      txHash: txs[0]!.txHash,
      blockNumber: txs[0]!.blockNumber,
      txs,
    },
    txs
      .map((t) => {
        const what =
          t.change === "bound"
            ? `bound server ${server} to ${providers.join(", ")} (per batch: ${capText(cmd.caps!.perBatch)}, per period: ${capText(cmd.caps!.perPeriod)})`
            : t.change === "unbound"
              ? `unbound server ${server} from ${providers.join(", ")}`
              : `${t.change} server ${server}`;
        return `${what} on UsageLedger ${m.contracts.usageLedger} (tx ${t.txHash}, block ${t.blockNumber})`;
      })
      .join("\n") +
      (authorise && providers.length === 0
        ? "\nnote: the server is bound to no provider yet; its lines earn nothing until bound (--providers a,b)"
        : ""),
  );
}

/** `payer fund`: deposits USDC from the wallet into its encrypted balance, from which the agent pays. */
export async function runPayerFund(cmd: Command, id: Identity, io: CliIo): Promise<void> {
  const account = walletOf(id, "payer fund");
  const amount = cmd.amount!;
  const { manifest: m, url } = await openDeployment(cmd);
  const chain = await connectChain(url);
  const token = m.contracts.token;
  const held = await chain.publicClient.readContract({ address: token, abi: erc20Abi, functionName: "balanceOf", args: [account.address] });
  if (held < amount)
    throw new Error(
      `the wallet ${account.address} holds ${formatUsdc(held)} USDC of ${token}, less than the ${formatUsdc(amount)} USDC asked: send USDC to it first`,
    );
  await withEercWallet({ manifest: m, chain }, account, async (client) => {
    if (!(await client.isRegistered()))
      throw new Error(`${account.address} has no eERC registration: run "npm run cli -- register --rpc URL" with this wallet's key first`);
    const receipt = await client.deposit({ token, amount });
    const tokenId = await client.tokenId(token);
    const balance = await client.balance(tokenId);
    print(
      io,
      cmd,
      {
        account: account.address,
        amountMicro: amount,
        txHash: receipt.transactionHash,
        blockNumber: receipt.blockNumber,
        balanceMicro: balance,
      },
      `deposited ${formatUsdc(amount)} USDC into ${account.address}'s encrypted balance (tx ${receipt.transactionHash}); it now holds ${formatUsdc(balance)} USDC`,
    );
  });
}
