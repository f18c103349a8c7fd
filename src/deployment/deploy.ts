import { readFileSync } from "node:fs";
import { type Abi, type Account, type Address, getAddress, isAddressEqual } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { EncryptedERCAbi } from "../../abis/EncryptedERCAbi.js";
import { ProviderRegistryAbi } from "../../abis/ProviderRegistryAbi.js";
import { RegistrarAbi } from "../../abis/RegistrarAbi.js";
import { UsageLedgerAbi } from "../../abis/UsageLedgerAbi.js";
import { entropyContributions, MIN_CEREMONY_CONTRIBUTIONS, readZkeyContributions } from "../build/ceremony.js";
import { buildCircuits } from "../build/circuits.js";
import { buildContracts, loadArtifact } from "../build/contracts.js";
import { type ChainClients, connectChain } from "../chain/clients.js";
import { LOCAL_CHAIN_ID, localKey } from "../chain/local.js";
import { CIRCUIT_NAMES, type CircuitName, circuitArtifacts, defaultProvingArtifacts, type ProvingArtifacts } from "../eerc/artifacts.js";
import { EercClient } from "../eerc/client.js";
import { CONVERTER_CIRCUITS, checkProvingArtifacts, deployedVerifier, detectEerc, STANDALONE_CIRCUITS } from "../eerc/deployment-check.js";
import { Prover } from "../eerc/prover.js";
import { BaseError } from "../errors.js";
import { type DeploymentManifest, recordedArtifacts, writeManifest } from "./manifest.js";
import { DEFAULT_SETTLEMENT, type SettlementSettings, setSettlement } from "./settlement.js";

/** Sends a write from `account` and waits for it; a revert throws, naming `what`. */
async function sendWrite(
  chain: ChainClients,
  account: Account,
  what: string,
  call: { address: Address; abi: Abi; functionName: string; args: readonly unknown[] },
) {
  const hash = await chain.walletFor(account).writeContract(call as never);
  const receipt = await chain.publicClient.waitForTransactionReceipt({ hash });
  if (receipt.status !== "success") throw new Error(`${what} failed (${hash})`);
}

async function deployContract(chain: ChainClients, account: Account, name: string, args: readonly unknown[] = []): Promise<Address> {
  const { abi, bytecode } = await loadArtifact(name);
  const hash = await chain.walletFor(account).deployContract({ abi, bytecode, args });
  const receipt = await chain.publicClient.waitForTransactionReceipt({ hash });
  if (receipt.status !== "success" || !receipt.contractAddress) throw new Error(`deploying ${name} failed (${hash})`);
  return receipt.contractAddress;
}

export type DeployOptions = {
  rpcUrl: string;
  network: string;
  deployer: Account;
  auditor: Account;
  /** Converter mode wraps an ERC-20 (the default); standalone mode mints privately. */
  isConverter?: boolean;
  decimals?: number;
  /**
   * The account to own the ProviderRegistry and the UsageLedger (and this deployment's own
   * EncryptedERC), a multisig say; it needs no eERC key. Deploy names it the pending owner
   * (`transferOwnership`) once everything is set up; ownership moves when it calls
   * `acceptOwnership()` on each (`pendingOwnership` lists them). Default: the deployer keeps them.
   */
  owner?: Address;
  /**
   * The UsageLedger's operator: the account whose registered eERC key receives the operator copy
   * of every usage line, and which settles and pays (the agent's). Default: the deployer.
   */
  operator?: Address;
  /** Where users pay fees (the free-API revenue pool); anvil's account #7 when absent on anvil. */
  revenuePool?: Address;
  /** The ERC-20 to wrap; when absent a 6-decimal test USDC is deployed. */
  token?: Address;
  /**
   * An eERC already on chain (the audited deployment on Fuji, say): its contracts are used as they
   * are and only the ProviderRegistry and UsageLedger are deployed next to it. `startBlock` is the
   * block to index from, at or before the eERC's deployment.
   */
  eerc?: { encryptedERC: Address; registrar: Address; startBlock: number };
  /** With `eerc`: the proving artifacts of its circuits (default: CIRCUITS_DIR, else this project's build). */
  circuits?: ProvingArtifacts;
  prover?: Prover;
  /**
   * The platform fee and pricing period the ProviderRegistry records as its first settlement
   * settings, applying from genesis (default 1000 bps, monthly periods); later changes go through
   * `setSettlement`.
   */
  settlement?: SettlementSettings;
  /**
   * Deploy circuits set up with the development ptau on a chain other than anvil (throwaway test
   * deployments only). Their keys still need a multi-party ceremony there (`requireCeremonyKeys`).
   */
  allowDevelopmentPtau?: boolean;
  write?: boolean;
  log?: (line: string) => void;
};

export class DeployError extends BaseError {
  readonly code = "DEPLOY_REFUSED";
}

/**
 * Our own circuits' proving keys hold fewer than two contributions of entropy (the build's own
 * setup has one): whoever made that contribution could forge proofs. Anvil aside, deploying our
 * eERC needs the keys of a multi-party ceremony (`npm run ceremony`).
 */
export class SetupCeremonyRequiredError extends BaseError {
  readonly code = "SETUP_CEREMONY_REQUIRED";
  constructor(
    readonly chainId: number,
    readonly keys: { circuit: CircuitName; zkey: string; contributions: number }[],
  ) {
    const first = keys[0]!;
    super(
      `circuit ${first.circuit}: ${first.zkey} holds ${first.contributions} contribution(s) of entropy, and deploying to chain ${chainId} ` +
        `needs at least ${MIN_CEREMONY_CONTRIBUTIONS} from a multi-party setup: run \`npm run ceremony\` and export its keys ` +
        `(docs/security.md, Trusted setup); circuits whose keys lack one: ${keys.map((k) => k.circuit).join(", ")}`,
      { field: first.zkey },
    );
  }
}

/**
 * Refuses, on any chain but anvil, proving keys of our own circuits that no multi-party ceremony
 * produced: fewer than MIN_CEREMONY_CONTRIBUTIONS contributions of entropy in the zkey itself.
 */
export function requireCeremonyKeys(chainId: number, artifacts: ProvingArtifacts): void {
  if (chainId === LOCAL_CHAIN_ID) return;
  const short = CIRCUIT_NAMES.map((circuit) => ({
    circuit,
    zkey: artifacts[circuit].zkey,
    contributions: entropyContributions(readZkeyContributions(artifacts[circuit].zkey)),
  })).filter((k) => k.contributions < MIN_CEREMONY_CONTRIBUTIONS);
  if (short.length > 0) throw new SetupCeremonyRequiredError(chainId, short);
}

/** The eERC of this project: verifiers from the local circuit build, Registrar and EncryptedERC. */
export async function deployOwnEerc(chain: ChainClients, d: Account, isConverter: boolean, decimals: number) {
  const verifiers = {
    registration: await deployContract(chain, d, "RegistrationVerifier"),
    transfer: await deployContract(chain, d, "TransferVerifier"),
    withdraw: await deployContract(chain, d, "WithdrawVerifier"),
    mint: await deployContract(chain, d, "MintVerifier"),
    burn: await deployContract(chain, d, "BurnVerifier"),
  };
  const registrar = await deployContract(chain, d, "Registrar", [verifiers.registration]);
  const encryptedERC = await deployContract(chain, d, "EncryptedERC", [
    {
      registrar,
      isConverter,
      name: isConverter ? "Encrypted USDC" : "Encrypted Token",
      symbol: isConverter ? "eUSDC" : "eTKN",
      decimals,
      mintVerifier: verifiers.mint,
      withdrawVerifier: verifiers.withdraw,
      transferVerifier: verifiers.transfer,
      burnVerifier: verifiers.burn,
    },
  ]);
  return { registrar, encryptedERC, verifiers };
}

export type DeployResult = DeploymentManifest & {
  manifestPath?: string;
  /** With `owner`: the contracts whose ownership waits for the owner's `acceptOwnership()`. */
  pendingOwnership?: { owner: Address; contracts: { name: string; address: Address }[] };
};

/**
 * Deploys the eERC contracts (or attaches to `options.eerc`), registers and sets the auditor
 * unless the eERC has one, deploys the ProviderRegistry and UsageLedger, writes the manifest. On
 * an attached eERC it first checks what the eERC offers and that the proving keys match its
 * verifiers, and refuses otherwise. Our own eERC, on any chain but anvil, needs proving keys from
 * a multi-party ceremony (`requireCeremonyKeys`). Last, it names the UsageLedger's operator
 * (`options.operator`) and offers ownership to `options.owner`, which must accept it.
 */
export async function deploy(options: DeployOptions): Promise<DeployResult> {
  const log = options.log ?? (() => {});
  // Our own eERC's verifiers come out of the circuit build, and are compiled with the contracts.
  if (!options.eerc) await buildCircuits({ log });
  await buildContracts();
  const chain = await connectChain(options.rpcUrl);
  const d = options.deployer;
  const read = <const F extends "isConverter" | "decimals" | "isAuditorKeySet" | "auditor" | "owner">(functionName: F) =>
    chain.publicClient.readContract({ address: eerc.encryptedERC, abi: EncryptedERCAbi, functionName });

  let eerc: { encryptedERC: Address; registrar: Address; verifiers: DeploymentManifest["contracts"]["verifiers"] };
  let startBlock: number;
  let artifacts: ProvingArtifacts;
  if (options.eerc) {
    eerc = { ...options.eerc, verifiers: {} as DeploymentManifest["contracts"]["verifiers"] };
    startBlock = options.eerc.startBlock;
    artifacts = options.circuits ?? defaultProvingArtifacts();
  } else {
    refuseDevelopmentKeysOnRealChains(chain.chain.id, options.allowDevelopmentPtau ?? false);
    artifacts = defaultProvingArtifacts({});
    requireCeremonyKeys(chain.chain.id, artifacts);
    startBlock = Number(await chain.publicClient.getBlockNumber());
    eerc = await deployOwnEerc(chain, d, options.isConverter ?? true, options.decimals ?? 6);
  }
  const capabilities = await detectEerc(chain.publicClient, eerc.encryptedERC);
  const isConverter = await read("isConverter");
  const decimals = Number(await read("decimals"));
  if (options.eerc) {
    for (const c of CIRCUIT_NAMES) eerc.verifiers[c] = await deployedVerifier(chain.publicClient, eerc, c);
  }
  const token = options.token ?? (isConverter ? await deployContract(chain, d, "TestUSDC") : "0x0000000000000000000000000000000000000000");
  log(
    `${options.eerc ? "using" : "deployed"} Registrar ${eerc.registrar}, EncryptedERC ${eerc.encryptedERC} ` +
      `(decimals ${decimals}, messages ${capabilities.messages ? "yes" : "no"}), token ${token}`,
  );

  const prover = options.prover ?? new Prover(artifacts);
  let auditor: Address;
  try {
    if (options.eerc) {
      await checkProvingArtifacts({
        publicClient: chain.publicClient,
        prover,
        contracts: eerc,
        circuits: isConverter ? CONVERTER_CIRCUITS : STANDALONE_CIRCUITS,
      });
      log("proving keys match the deployment's verifiers");
    }
    if (await read("isAuditorKeySet")) {
      auditor = getAddress(await read("auditor"));
      log(`auditor ${auditor} already set`);
    } else {
      const client = await EercClient.connect({
        publicClient: chain.publicClient,
        wallet: chain.walletFor(options.auditor),
        contracts: eerc,
        prover,
      });
      await client.register();
      const hash = await chain.walletFor(d).writeContract({
        address: eerc.encryptedERC,
        abi: EncryptedERCAbi,
        functionName: "setAuditorPublicKey",
        args: [client.address],
      });
      const receipt = await chain.publicClient.waitForTransactionReceipt({ hash });
      if (receipt.status !== "success") throw new Error(`setAuditorPublicKey failed (${hash})`);
      auditor = client.address;
      log(`auditor ${auditor} registered and set`);
    }
  } finally {
    if (!options.prover) await prover.close();
  }

  const providerRegistry = await deployContract(chain, d, "ProviderRegistry", [eerc.registrar]);
  const usageLedger = await deployContract(chain, d, "UsageLedger");
  log(`deployed ProviderRegistry ${providerRegistry}, UsageLedger ${usageLedger}`);
  const settlement = options.settlement ?? DEFAULT_SETTLEMENT;
  await setSettlement({
    publicClient: chain.publicClient,
    wallet: chain.walletFor(d),
    registry: providerRegistry,
    ...settlement,
    effectiveFrom: 0n,
  });
  log(`recorded the settlement settings: platform fee ${settlement.feeBps} bps, ${settlement.periodUnit}ly pricing periods, from genesis`);

  const operator = getAddress(options.operator ?? d.address);
  if (!isAddressEqual(operator, d.address)) {
    await sendWrite(chain, d, "setOperator", { address: usageLedger, abi: UsageLedgerAbi, functionName: "setOperator", args: [operator] });
  }
  const registered = await chain.publicClient.readContract({
    address: eerc.registrar,
    abi: RegistrarAbi,
    functionName: "isUserRegistered",
    args: [operator],
  });
  log(
    `the UsageLedger's operator is ${operator}: the operator copy of every usage line is encrypted to its registered eERC key` +
      `${registered ? "" : " (not registered yet: it registers before the first usage batch, npm run cli -- register)"}`,
  );

  let pendingOwnership: DeployResult["pendingOwnership"];
  if (options.owner && !isAddressEqual(options.owner, d.address)) {
    const owner = getAddress(options.owner);
    // The eERC's owner sets the auditor: ours moves with the rest; an attached eERC is left alone.
    const owned: { name: string; address: Address; abi: Abi }[] = [
      { name: "ProviderRegistry", address: providerRegistry, abi: ProviderRegistryAbi },
      { name: "UsageLedger", address: usageLedger, abi: UsageLedgerAbi },
      ...(options.eerc ? [] : [{ name: "EncryptedERC", address: eerc.encryptedERC, abi: EncryptedERCAbi }]),
    ];
    for (const c of owned) {
      await sendWrite(chain, d, `transferOwnership of ${c.name}`, {
        address: c.address,
        abi: c.abi,
        functionName: "transferOwnership",
        args: [owner],
      });
    }
    pendingOwnership = { owner, contracts: owned.map(({ name, address }) => ({ name, address })) };
    log(
      `offered ownership to ${owner}: ${owned.map((c) => `${c.name} ${c.address}`).join(", ")}; ` +
        "the deployer owns them until that account calls acceptOwnership() on each",
    );
  }

  const manifest: DeploymentManifest = {
    network: options.network,
    chainId: chain.chain.id,
    startBlock,
    decimals,
    isConverter,
    owner: getAddress(await read("owner")),
    auditor,
    revenuePool: getAddress(options.revenuePool ?? localRevenuePool(chain.chain.id)),
    contracts: {
      registrar: eerc.registrar,
      encryptedERC: eerc.encryptedERC,
      token,
      verifiers: eerc.verifiers,
      providerRegistry,
      usageLedger,
    },
    circuits: recordedArtifacts(artifacts),
    eerc: capabilities,
    deployedAt: new Date().toISOString(),
  };
  const manifestPath = options.write === false ? undefined : writeManifest(manifest);
  return { ...manifest, manifestPath, ...(pendingOwnership && { pendingOwnership }) };
}

/** anvil's account #7 receives user fees on a local chain; anywhere else the pool must be named. */
export function localRevenuePool(chainId: number): Address {
  const key = localKey("revenuePool", chainId);
  if (!key)
    throw new DeployError(`on chain ${chainId} the revenue pool must be named (REVENUE_POOL_ADDRESS): the address that receives user fees`);
  return privateKeyToAccount(key).address;
}

/** Proofs under keys set up with the development ptau can be forged by whoever generated it. */
function refuseDevelopmentKeysOnRealChains(chainId: number, allowed: boolean): void {
  if (chainId === LOCAL_CHAIN_ID || allowed) return;
  const dev = CIRCUIT_NAMES.filter((n) => JSON.parse(readFileSync(circuitArtifacts(n).stamp, "utf8")).developmentPtau);
  if (dev.length > 0) {
    throw new DeployError(
      `circuits ${dev.join(", ")} were set up with the development ptau: set PTAU_FILE to a public ceremony file and rebuild ` +
        `before deploying to chain ${chainId} (ALLOW_DEVELOPMENT_PTAU=1 overrides, for throwaway test deployments only)`,
    );
  }
}
