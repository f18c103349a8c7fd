/**
 * Builds Ava Labs' audited eERC from a local checkout of its repository, for interoperability tests:
 * compiles its contracts with solc 0.8.27 and its circuits with circom2, runs a Groth16 setup of
 * those circuits (the checkout ships no proving keys) and deploys the result on a chain.
 *
 * The checkout is only read; output goes to build/interop/{circuits,contracts}/<sha256 of inputs>/.
 */
import { execFileSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, relative, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import * as snarkjs from "snarkjs";
import { type Abi, type Account, type Address, type Hex, keccak256, stringToHex } from "viem";
import { resolvePtau, withBuildLock } from "../../src/build/circuits.js";
import type { ChainClients } from "../../src/chain/clients.js";
import { BUILD_DIR, CIRCUIT_NAMES, type CircuitName, PROJECT_ROOT } from "../../src/eerc/artifacts.js";
import { terminateCurveWorkers } from "../../src/eerc/prover.js";
import { run } from "../run.js";

export type CompiledContract = { abi: Abi; bytecode: Hex };
export type AuditedEerc = {
  source: { dir: string; commit: string | null };
  /** The checkout has the `bytes message` overloads (EncryptedERC emits PrivateMessage). */
  messages: boolean;
  contracts: {
    Registrar: CompiledContract;
    /** Still holds the BabyJubJub link placeholder: deployAuditedEerc links it. */
    EncryptedERC: CompiledContract;
    BabyJubJub: CompiledContract;
    /** Verifiers of our own Groth16 setup of the audited circuits. */
    verifiers: Record<CircuitName, CompiledContract>;
  };
  circuits: Record<CircuitName, { wasm: string; zkey: string; constraints: number }>;
};

type CircuitBuild = {
  circuits: Record<CircuitName, { constraints: number; ms: number }>;
  verifiers: Record<CircuitName, CompiledContract>;
};
type ContractBuild = Pick<AuditedEerc["contracts"], "Registrar" | "EncryptedERC" | "BabyJubJub">;

const INTEROP_DIR = join(BUILD_DIR, "interop");
const BABYJUBJUB = "contracts/libraries/BabyJubJub.sol:BabyJubJub";
// The audited hardhat config: solc 0.8.27, optimizer on with 200 runs, no viaIR (cancun is 0.8.27's default EVM).
const SOLC_SETTINGS = {
  optimizer: { enabled: true, runs: 200 },
  evmVersion: "cancun",
  viaIR: false,
  outputSelection: { "*": { "*": ["abi", "evm.bytecode.object", "evm.bytecode.linkReferences"] } },
};

const version = (pkg: string): string => JSON.parse(readFileSync(join(PROJECT_ROOT, "node_modules", pkg, "package.json"), "utf8")).version;
const verifierName = (name: CircuitName) => `Audited${name[0]!.toUpperCase()}${name.slice(1)}Verifier`;
const readJson = <T>(file: string): T | undefined => (existsSync(file) ? (JSON.parse(readFileSync(file, "utf8")) as T) : undefined);

/** Relative paths (with `/`) of the files below `root` whose names end in `ext`, sorted. */
function filesUnder(root: string, ext: string, recursive = true): string[] {
  return readdirSync(root, { recursive, withFileTypes: true })
    .filter((e) => e.isFile() && e.name.endsWith(ext))
    .map((e) => relative(root, join(e.parentPath, e.name)).split("\\").join("/"))
    .sort();
}

function digestOf(root: string, files: string[], extra: string): string {
  const h = createHash("sha256").update(extra);
  for (const f of files) h.update(`\0${f}\0`).update(readFileSync(join(root, f)));
  return h.digest("hex");
}

// Loaded only when something must be compiled: soljson takes a while to start.
type Solc = { compile(input: string, callbacks: { import(path: string): { contents: string } | { error: string } }): string };
let solc: Solc | undefined;

function findImport(path: string): { contents: string } | { error: string } {
  const file = join(PROJECT_ROOT, "node_modules", path.replace(/^@openzeppelin\/contracts\//, "@openzeppelin/contracts-5.1.0/"));
  return path.startsWith("@openzeppelin/contracts/") && existsSync(file)
    ? { contents: readFileSync(file, "utf8") }
    : { error: `File not found: ${path}` };
}

type SolcContract = { abi: Abi; evm: { bytecode: { object: string } } };
function compileSolidity(
  sources: Record<string, { content: string }>,
  log: (line: string) => void,
): Record<string, Record<string, SolcContract>> {
  solc ??= createRequire(import.meta.url)("solc-0.8.27") as Solc;
  const input = JSON.stringify({ language: "Solidity", sources, settings: SOLC_SETTINGS });
  const output = JSON.parse(solc.compile(input, { import: findImport })) as {
    errors?: { severity: string; formattedMessage: string; sourceLocation?: { file: string } }[];
    contracts?: Record<string, Record<string, SolcContract>>;
  };
  const errors = (output.errors ?? []).filter((e) => e.severity === "error");
  if (errors.length > 0) throw new Error(`solc ${version("solc-0.8.27")} failed:\n${errors.map((e) => e.formattedMessage).join("\n")}`);
  for (const w of output.errors ?? []) {
    if (w.severity === "warning" && !w.sourceLocation?.file.startsWith("@openzeppelin/"))
      log(`solc warning: ${w.formattedMessage.split("\n")[0]} (${w.sourceLocation?.file})`);
  }
  return output.contracts ?? {};
}

const compiled = (c: SolcContract | undefined, name: string): CompiledContract => {
  if (!c?.evm.bytecode.object) throw new Error(`contract ${name} missing from the compiler output`);
  return { abi: c.abi, bytecode: `0x${c.evm.bytecode.object}` };
};

function buildContracts(dir: string, files: string[], out: string, log: (line: string) => void): ContractBuild {
  const sources = Object.fromEntries(files.map((f) => [f, { content: readFileSync(join(dir, f), "utf8") }]));
  const c = compileSolidity(sources, log);
  const result: ContractBuild = {
    Registrar: compiled(c["contracts/Registrar.sol"]?.Registrar, "Registrar"),
    EncryptedERC: compiled(c["contracts/EncryptedERC.sol"]?.EncryptedERC, "EncryptedERC"),
    BabyJubJub: compiled(c["contracts/libraries/BabyJubJub.sol"]?.BabyJubJub, "BabyJubJub"),
  };
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, JSON.stringify(result));
  return result;
}

async function buildCircuits(
  circom: string,
  files: string[],
  root: string,
  ptauPath: string,
  log: (line: string) => void,
): Promise<CircuitBuild> {
  rmSync(root, { recursive: true, force: true });
  for (const f of files) {
    mkdirSync(dirname(join(root, "src", f)), { recursive: true });
    writeFileSync(join(root, "src", f), readFileSync(join(circom, f)));
  }
  const build = { circuits: {}, verifiers: {} } as CircuitBuild;
  const verifierSources: Record<string, { content: string }> = {};
  for (const name of CIRCUIT_NAMES) {
    const source = join(root, "src", `${name}.circom`);
    if (!/^\s*component\s+main\b/m.test(readFileSync(source, "utf8"))) throw new Error(`${name}.circom has no component main`);
    const started = Date.now();
    const out = join(root, name);
    mkdirSync(out, { recursive: true });
    // circom2 only sees files below its working directory, so it runs from the project root.
    execFileSync(
      process.execPath,
      [
        join(PROJECT_ROOT, "node_modules/circom2/cli.js"),
        relative(PROJECT_ROOT, source),
        "--r1cs",
        "--wasm",
        "--O2",
        "-o",
        relative(PROJECT_ROOT, out),
      ],
      { cwd: PROJECT_ROOT, stdio: ["ignore", "ignore", "inherit"] },
    );
    const r1cs = join(out, `${name}.r1cs`);
    const { nConstraints } = await snarkjs.r1cs.info(r1cs);
    const initial = join(out, `${name}_0000.zkey`);
    const zkey = join(out, `${name}.zkey`);
    await snarkjs.zKey.newZKey(r1cs, ptauPath, initial);
    await snarkjs.zKey.contribute(initial, zkey, "BackendShield interop build", randomBytes(32).toString("hex"));
    rmSync(initial);
    writeFileSync(join(out, "verification_key.json"), JSON.stringify(await snarkjs.zKey.exportVerificationKey(zkey), null, 2));
    const template = readFileSync(join(PROJECT_ROOT, "node_modules/snarkjs/templates/verifier_groth16.sol.ejs"), "utf8");
    const verifier = (await snarkjs.zKey.exportSolidityVerifier(zkey, { groth16: template })).replace(
      /contract Groth16Verifier/,
      `contract ${verifierName(name)}`,
    );
    writeFileSync(join(out, `${verifierName(name)}.sol`), verifier);
    verifierSources[`${name}.sol`] = { content: verifier };
    build.circuits[name] = { constraints: nConstraints, ms: Date.now() - started };
    log(`circuit ${name}: ${nConstraints} constraints, compiled and set up in ${build.circuits[name].ms} ms`);
  }
  await terminateCurveWorkers();
  const c = compileSolidity(verifierSources, log);
  for (const name of CIRCUIT_NAMES) build.verifiers[name] = compiled(c[`${name}.sol`]?.[verifierName(name)], verifierName(name));
  writeFileSync(join(root, "build.json"), JSON.stringify(build)); // written last: marks the folder complete
  return build;
}

function commitOf(dir: string): string | null {
  if (existsSync(join(dir, ".source-commit"))) return readFileSync(join(dir, ".source-commit"), "utf8").trim() || null;
  try {
    return execFileSync("git", ["-C", dir, "rev-parse", "HEAD"], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim();
  } catch {
    return null;
  }
}

/** Builds (or finds in the cache) the audited contracts, circuits, proving keys and verifiers of a checkout. */
export async function buildAudited(dir: string, options: { log?: (line: string) => void } = {}): Promise<AuditedEerc> {
  const log = options.log ?? ((line: string) => console.log(line));
  dir = resolve(dir);
  const circom = join(dir, "circom");
  if (!existsSync(join(dir, "contracts")) || !existsSync(circom))
    throw new Error(`${dir} is not an eERC checkout: contracts/ or circom/ missing`);
  const circomFiles = [
    ...filesUnder(circom, ".circom", false),
    ...filesUnder(join(circom, "circomlib"), ".circom").map((f) => `circomlib/${f}`),
  ];
  const { path: ptauPath, digest: ptauDigest } = resolvePtau();
  const tools = `circom2@${version("circom2")}|snarkjs@${version("snarkjs")}|solc@${version("solc-0.8.27")}|${JSON.stringify(SOLC_SETTINGS)}`;
  const circuitRoot = join(INTEROP_DIR, "circuits", digestOf(circom, circomFiles, `${tools}|${ptauDigest}`));
  const solFiles = filesUnder(join(dir, "contracts"), ".sol").map((f) => `contracts/${f}`);
  const contractsKey = digestOf(dir, solFiles, `${tools}|openzeppelin@${version("@openzeppelin/contracts-5.1.0")}`);
  const contractsFile = join(INTEROP_DIR, "contracts", contractsKey, "contracts.json");

  const cachedCircuits = () => readJson<CircuitBuild>(join(circuitRoot, "build.json"));
  let circuits = cachedCircuits();
  let contracts = readJson<ContractBuild>(contractsFile);
  let builtNow = false;
  if (!circuits || !contracts) {
    await withBuildLock(join(INTEROP_DIR, ".lock"), async () => {
      contracts = readJson<ContractBuild>(contractsFile) ?? buildContracts(dir, solFiles, contractsFile, log);
      circuits = cachedCircuits();
      if (!circuits) {
        circuits = await buildCircuits(circom, circomFiles, circuitRoot, ptauPath, log);
        builtNow = true;
      }
    });
  }
  const c = circuits!;
  if (!builtNow)
    for (const n of CIRCUIT_NAMES) log(`circuit ${n}: ${c.circuits[n].constraints} constraints (cached; built in ${c.circuits[n].ms} ms)`);
  return {
    source: { dir, commit: commitOf(dir) },
    messages: contracts!.EncryptedERC.abi.some((e) => e.type === "event" && e.name === "PrivateMessage"),
    contracts: { ...contracts!, verifiers: c.verifiers },
    circuits: Object.fromEntries(
      CIRCUIT_NAMES.map((n) => [
        n,
        {
          wasm: join(circuitRoot, n, `${n}_js`, `${n}.wasm`),
          zkey: join(circuitRoot, n, `${n}.zkey`),
          constraints: c.circuits[n].constraints,
        },
      ]),
    ) as AuditedEerc["circuits"],
  };
}

/**
 * The build's proving artifacts in the layout CIRCUITS_DIR expects (`<circuit>.wasm`,
 * `<circuit>.zkey`), as links in a folder next to the build; returns the folder.
 */
export function circuitsDirOf(build: AuditedEerc): string {
  const dir = join(dirname(dirname(build.circuits.transfer.zkey)), "circuits-dir");
  mkdirSync(dir, { recursive: true });
  for (const n of CIRCUIT_NAMES) {
    for (const [ext, target] of [
      ["wasm", build.circuits[n].wasm],
      ["zkey", build.circuits[n].zkey],
    ] as const) {
      const link = join(dir, `${n}.${ext}`);
      rmSync(link, { force: true });
      symlinkSync(target, link);
    }
  }
  return dir;
}

/** Replaces solc's `__$<34 hex of keccak256(name)>$__` placeholders of one library with its address. */
function linkLibrary(bytecode: Hex, fullyQualifiedName: string, address: Address): Hex {
  const placeholder = `__$${keccak256(stringToHex(fullyQualifiedName)).slice(2, 36)}$__`;
  const linked = bytecode.split(placeholder).join(address.slice(2).toLowerCase()) as Hex;
  if (/__\$[0-9a-f]{34}\$__/.test(linked)) throw new Error(`bytecode links a library other than ${fullyQualifiedName}`);
  return linked;
}

/** Deploys the verifiers, BabyJubJub, Registrar and EncryptedERC; registers nobody and sets no auditor. */
export async function deployAuditedEerc(args: {
  chain: ChainClients;
  deployer: Account;
  build: AuditedEerc;
  decimals?: number;
  isConverter?: boolean;
  /** Verifiers to use instead of the build's (a test's fixed-answer verifier, say). */
  verifiers?: Record<CircuitName, Address>;
}): Promise<{ registrar: Address; encryptedERC: Address; babyJubJub: Address; verifiers: Record<CircuitName, Address> }> {
  const { chain, deployer, build, decimals = 6, isConverter = true } = args;
  const deploy = async (label: string, { abi, bytecode }: CompiledContract, constructorArgs: readonly unknown[] = []): Promise<Address> => {
    const hash = await chain.walletFor(deployer).deployContract({ abi, bytecode, args: constructorArgs } as never);
    const receipt = await chain.publicClient.waitForTransactionReceipt({ hash });
    if (receipt.status !== "success" || !receipt.contractAddress) throw new Error(`deploying the audited ${label} failed (${hash})`);
    return receipt.contractAddress;
  };
  const verifiers = {} as Record<CircuitName, Address>;
  for (const name of CIRCUIT_NAMES)
    verifiers[name] = args.verifiers?.[name] ?? (await deploy(`${name} verifier`, build.contracts.verifiers[name]));
  const babyJubJub = await deploy("BabyJubJub library", build.contracts.BabyJubJub);
  const linked = (c: CompiledContract) => ({ ...c, bytecode: linkLibrary(c.bytecode, BABYJUBJUB, babyJubJub) });
  const registrar = await deploy("Registrar", linked(build.contracts.Registrar), [verifiers.registration]);
  // CreateEncryptedERCParams of the audited contracts/types/Types.sol (viem encodes the tuple by field name).
  const params = {
    registrar,
    isConverter,
    name: isConverter ? "Encrypted USDC" : "Encrypted Token",
    symbol: isConverter ? "eUSDC" : "eTKN",
    decimals,
  };
  const verifierParams = {
    mintVerifier: verifiers.mint,
    withdrawVerifier: verifiers.withdraw,
    transferVerifier: verifiers.transfer,
    burnVerifier: verifiers.burn,
  };
  const encryptedERC = await deploy("EncryptedERC", linked(build.contracts.EncryptedERC), [{ ...params, ...verifierParams }]);
  return { registrar, encryptedERC, babyJubJub, verifiers };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const dir = process.argv[2];
  if (!dir) {
    console.error("usage: npx tsx scripts/interop/build-audited.ts <eERC checkout>");
    process.exit(2);
  }
  const started = Date.now();
  run(async () => {
    const b = await buildAudited(dir);
    const overloads = b.messages ? "with" : "without";
    console.log(
      `audited eERC ${b.source.commit ?? "(commit unknown)"}, ${overloads} message overloads: ready in ${Date.now() - started} ms`,
    );
  });
}
