import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, isAbsolute, join, relative, resolve } from "node:path";
import { type Address, getAddress, isAddress } from "viem";
import { EncryptedERCAbi } from "../../abis/EncryptedERCAbi.js";
import type { ChainClients } from "../chain/clients.js";
import { CIRCUIT_NAMES, defaultProvingArtifacts, PROJECT_ROOT, type ProvingArtifacts } from "../eerc/artifacts.js";
import { BaseError } from "../errors.js";

/** What a deployment put on chain; ponder.config.ts and every tool read it. */
export type DeploymentManifest = {
  network: string;
  chainId: number;
  startBlock: number;
  decimals: number;
  isConverter: boolean;
  owner: Address;
  auditor: Address;
  /**
   * Where users pay fees in `contracts.token`; what it receives funds the free-API revenue pool
   * (absent in manifests written before it existed).
   */
  revenuePool?: Address;
  contracts: {
    registrar: Address;
    encryptedERC: Address;
    /** The ERC-20 wrapped by the converter (the 6-decimal test USDC locally, USDC on Fuji). */
    token: Address;
    verifiers: { registration: Address; transfer: Address; withdraw: Address; mint: Address; burn: Address };
    providerRegistry: Address;
    usageLedger: Address;
  };
  /**
   * Each circuit's witness program and proving key, matching the deployment's verifiers; paths
   * are relative to the project root unless absolute. Absent: CIRCUITS_DIR or the project's build.
   */
  circuits?: ProvingArtifacts;
  /** What the eERC contract offers, detected at deploy: the `bytes message` overloads and `PrivateMessage` (July 2025 on) or not. */
  eerc?: { messages: boolean };
  deployedAt: string;
};

/** The proving artifacts of a deployment, as absolute paths. */
export function provingArtifactsOf(manifest: Pick<DeploymentManifest, "circuits">): ProvingArtifacts {
  if (!manifest.circuits) return defaultProvingArtifacts();
  const abs = (p: string) => (isAbsolute(p) ? p : resolve(PROJECT_ROOT, p));
  return Object.fromEntries(
    CIRCUIT_NAMES.map((n) => [n, { wasm: abs(manifest.circuits![n].wasm), zkey: abs(manifest.circuits![n].zkey) }]),
  ) as ProvingArtifacts;
}

/** Proving artifacts as a manifest records them: inside the project, relative to its root. */
export function recordedArtifacts(artifacts: ProvingArtifacts): ProvingArtifacts {
  const rel = (p: string) => {
    const r = relative(PROJECT_ROOT, p);
    return r.startsWith("..") || isAbsolute(r) ? p : r;
  };
  return Object.fromEntries(
    CIRCUIT_NAMES.map((n) => [n, { wasm: rel(artifacts[n].wasm), zkey: rel(artifacts[n].zkey) }]),
  ) as ProvingArtifacts;
}

export class ManifestError extends BaseError {
  readonly code = "INVALID_DEPLOYMENT_MANIFEST";
}

/** `DEPLOYMENT_FILE` if set, otherwise `deployments/<network>.json`. */
export function manifestPath(network = process.env.NETWORK ?? "anvil"): string {
  return process.env.DEPLOYMENT_FILE ?? join(PROJECT_ROOT, "deployments", `${network}.json`);
}

export function writeManifest(manifest: DeploymentManifest, path = manifestPath(manifest.network)): string {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, `${JSON.stringify(manifest, null, 2)}\n`);
  return path;
}

function addressOrThrow(value: unknown, message: string): Address {
  if (typeof value !== "string" || !isAddress(value)) throw new ManifestError(message);
  return getAddress(value);
}

export function readManifest(path = manifestPath()): DeploymentManifest {
  if (!existsSync(path))
    throw new ManifestError(
      `no deployment manifest at ${path}: pass the operator's deployment file (deployments/<network>.json) with --manifest or DEPLOYMENT_FILE; an operator writes it with npm run deploy`,
    );
  const m = JSON.parse(readFileSync(path, "utf8")) as DeploymentManifest;
  const addresses: [string, unknown][] = [
    ["owner", m.owner],
    ["auditor", m.auditor],
    ["contracts.registrar", m.contracts?.registrar],
    ["contracts.encryptedERC", m.contracts?.encryptedERC],
    ["contracts.token", m.contracts?.token],
    ["contracts.providerRegistry", m.contracts?.providerRegistry],
    ["contracts.usageLedger", m.contracts?.usageLedger],
  ];
  for (const [field, value] of addresses) {
    if (typeof value !== "string" || !isAddress(value)) throw new ManifestError(`${path}: ${field} is not an address`);
  }
  if (!Number.isInteger(m.chainId) || !Number.isInteger(m.startBlock) || !Number.isInteger(m.decimals)) {
    throw new ManifestError(`${path}: chainId, startBlock and decimals must be integers`);
  }
  if (m.circuits !== undefined) {
    for (const n of CIRCUIT_NAMES) {
      const c = m.circuits[n];
      if (typeof c?.wasm !== "string" || typeof c?.zkey !== "string")
        throw new ManifestError(`${path}: circuits.${n} must name a wasm and a zkey file`);
    }
  }
  return {
    ...m,
    owner: getAddress(m.owner),
    auditor: getAddress(m.auditor),
    revenuePool: m.revenuePool === undefined ? undefined : addressOrThrow(m.revenuePool, `${path}: revenuePool is not an address`),
    contracts: {
      ...m.contracts,
      registrar: getAddress(m.contracts.registrar),
      encryptedERC: getAddress(m.contracts.encryptedERC),
      token: getAddress(m.contracts.token),
      providerRegistry: getAddress(m.contracts.providerRegistry),
      usageLedger: getAddress(m.contracts.usageLedger),
    },
  };
}

/** The eERC token id of the manifest's token (converter mode). */
export async function usdcTokenId(chain: Pick<ChainClients, "publicClient">, manifest: DeploymentManifest): Promise<bigint> {
  return chain.publicClient.readContract({
    address: manifest.contracts.encryptedERC,
    abi: EncryptedERCAbi,
    functionName: "tokenIds",
    args: [getAddress(manifest.contracts.token)],
  });
}
