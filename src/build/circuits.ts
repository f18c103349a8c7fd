import { execFileSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { BUILD_DIR, CIRCUIT_NAMES, type CircuitName, circuitArtifacts, PROJECT_ROOT } from "../eerc/artifacts.js";
import { terminateCurveWorkers } from "../eerc/prover.js";
import { loadSnarkjs } from "../eerc/snarkjs.js";

/** Development-only powers of tau (2^15), generated locally and committed with its sha256. */
export const DEV_PTAU = join(PROJECT_ROOT, "circuits", "ptau", "dev-pot15.ptau");
const DEV_PTAU_SHA256 = join(PROJECT_ROOT, "circuits", "ptau", "dev-pot15.ptau.sha256");

function sha256(data: Uint8Array | string): string {
  return createHash("sha256").update(data).digest("hex");
}

export type Ptau = { path: string; digest: string; development: boolean };

/** `file` (by default PTAU_FILE), or the development ptau checked against its committed sha256. */
export function resolvePtau(file: string | undefined = process.env.PTAU_FILE, field = "PTAU_FILE"): Ptau {
  if (file) {
    if (!existsSync(file)) throw new Error(`${field} ${file} does not exist`);
    const digest = sha256(readFileSync(file));
    const expected = readFileSync(DEV_PTAU_SHA256, "utf8").split(/\s+/)[0];
    return { path: file, digest, development: digest === expected };
  }
  const expected = readFileSync(DEV_PTAU_SHA256, "utf8").split(/\s+/)[0];
  const digest = sha256(readFileSync(DEV_PTAU));
  if (digest !== expected) throw new Error(`${DEV_PTAU} sha256 ${digest} does not match ${expected}`);
  return { path: DEV_PTAU, digest, development: true };
}

/** The circuit's own sources: its file and, transitively, the local files it includes. */
function localSources(file: string, seen = new Set<string>()): string[] {
  if (seen.has(file)) return [];
  seen.add(file);
  const text = readFileSync(file, "utf8");
  const includes = [...text.matchAll(/include\s+"([^"]+)"/g)].map((m) => m[1]!).filter((i) => !i.startsWith("circomlib/"));
  return [file, ...includes.flatMap((i) => localSources(join(dirname(file), i), seen))];
}

/** Hash of everything a circuit's artifacts depend on: its sources, circomlib, circom, the ptau. */
export function sourceDigest(name: CircuitName, ptauDigest: string): string {
  const h = createHash("sha256");
  for (const file of localSources(circuitArtifacts(name).source).sort()) {
    h.update(relative(PROJECT_ROOT, file)).update(readFileSync(file));
  }
  const version = (pkg: string) => JSON.parse(readFileSync(join(PROJECT_ROOT, "node_modules", pkg, "package.json"), "utf8")).version;
  h.update(`${name}|circomlib@${version("circomlib")}|circom2@${version("circom2")}|snarkjs@${version("snarkjs")}|${ptauDigest}`);
  return h.digest("hex");
}

/** circom on a circuit's source, writing `outputs` into `outDir`. */
function circom(name: CircuitName, outputs: string[], outDir: string): void {
  // circom2 only sees files below its working directory, so it runs from the project root.
  execFileSync(
    process.execPath,
    [
      join(PROJECT_ROOT, "node_modules/circom2/cli.js"),
      relative(PROJECT_ROOT, circuitArtifacts(name).source),
      ...outputs,
      "--O2",
      "-l",
      "node_modules",
      "-o",
      relative(PROJECT_ROOT, outDir),
    ],
    { cwd: PROJECT_ROOT, stdio: ["ignore", "ignore", "inherit"] },
  );
}

function compile(name: CircuitName): void {
  const a = circuitArtifacts(name);
  rmSync(a.dir, { recursive: true, force: true });
  mkdirSync(a.dir, { recursive: true });
  circom(name, ["--r1cs", "--wasm", "--sym"], a.dir);
}

/**
 * Adds the symbol table to a build made without one, keeping its keys (a ceremony's, say): the
 * circuit is compiled again beside it, and its r1cs must equal the built one byte for byte.
 */
function addSymbols(name: CircuitName): void {
  const a = circuitArtifacts(name);
  const tmp = join(a.dir, ".sym");
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  try {
    circom(name, ["--r1cs", "--sym"], tmp);
    if (!readFileSync(join(tmp, `${name}.r1cs`)).equals(readFileSync(a.r1cs))) {
      throw new Error(`circuit ${name}: build/ holds an r1cs its sources no longer compile to: rebuild the circuits`);
    }
    renameSync(join(tmp, `${name}.sym`), a.sym);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

/**
 * The build's own Groth16 setup: one contribution ("BackendShield build"), checked against the
 * r1cs and ptau it was made from. Enough for anvil; deploy refuses it elsewhere (`npm run ceremony`).
 */
async function setup(name: CircuitName, ptau: string): Promise<void> {
  const snarkjs = await loadSnarkjs();
  const a = circuitArtifacts(name);
  const initial = join(a.dir, `${name}_0000.zkey`);
  await snarkjs.zKey.newZKey(a.r1cs, ptau, initial);
  await snarkjs.zKey.contribute(initial, a.zkey, BUILD_CONTRIBUTION, randomBytes(32).toString("hex"));
  // The initial key was made from the r1cs and the ptau just now: verifying from it is verifying from them.
  const errors: string[] = [];
  const logger = { error: (m: string) => errors.push(m), warn() {}, info() {}, debug() {} };
  if (!(await snarkjs.zKey.verifyFromInit(initial, ptau, a.zkey, logger))) {
    throw new Error(
      `circuit ${name}: ${a.zkey} does not verify against ${a.r1cs} and ${ptau}: ${errors.join("; ") || "invalid contribution"}`,
    );
  }
  rmSync(initial);
  await exportKeys(name);
}

/** Name of the build's single contribution to each circuit's setup. */
export const BUILD_CONTRIBUTION = "BackendShield build";

/** Writes a circuit's verification key and Solidity verifier from its proving key in build/. */
export async function exportKeys(name: CircuitName): Promise<void> {
  const snarkjs = await loadSnarkjs();
  const a = circuitArtifacts(name);
  writeFileSync(a.vkey, JSON.stringify(await snarkjs.zKey.exportVerificationKey(a.zkey), null, 2));
  const template = readFileSync(join(PROJECT_ROOT, "node_modules/snarkjs/templates/verifier_groth16.sol.ejs"), "utf8");
  const verifier = (await snarkjs.zKey.exportSolidityVerifier(a.zkey, { groth16: template })).replace(
    /contract Groth16Verifier/,
    `contract ${a.verifierName}`,
  );
  mkdirSync(join(BUILD_DIR, "verifiers"), { recursive: true });
  writeFileSync(a.verifierSol, verifier);
}

export type BuildCircuitsOptions = {
  names?: readonly CircuitName[];
  /** Run the Groth16 setup (zkey, verification key, Solidity verifier) as well as compiling. */
  keys?: boolean;
  /** The powers of tau (default: PTAU_FILE, else the development ptau). */
  ptau?: string;
  log?: (line: string) => void;
};

/** One build at a time per checkout: concurrent test runs would otherwise clobber each other's files. */
export async function withBuildLock<T>(lock: string, fn: () => Promise<T>): Promise<T> {
  mkdirSync(dirname(lock), { recursive: true });
  for (;;) {
    try {
      mkdirSync(lock);
      break;
    } catch {
      const age = Date.now() - (statSync(lock, { throwIfNoEntry: false })?.mtimeMs ?? Date.now());
      if (age > 20 * 60_000) rmSync(lock, { recursive: true, force: true });
      await new Promise((r) => setTimeout(r, 500));
    }
  }
  try {
    return await fn();
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}

/** The lock every writer of build/circuits holds. */
export const CIRCUITS_LOCK = join(BUILD_DIR, ".circuits.lock");

/** Compiles and sets up the circuits whose sources changed since their last build. */
export function buildCircuits(options: BuildCircuitsOptions = {}): Promise<{ built: CircuitName[] }> {
  return withBuildLock(CIRCUITS_LOCK, () => buildStaleCircuits(options));
}

/** `buildCircuits` for a caller that already holds CIRCUITS_LOCK. */
export async function buildStaleCircuits(options: BuildCircuitsOptions): Promise<{ built: CircuitName[] }> {
  const snarkjs = await loadSnarkjs();
  const { names = CIRCUIT_NAMES, keys = true, log = (l: string) => console.log(l) } = options;
  const ptau = resolvePtau(options.ptau);
  const built: CircuitName[] = [];
  for (const name of names) {
    const a = circuitArtifacts(name);
    const digest = sourceDigest(name, ptau.digest);
    const stamp = existsSync(a.stamp) ? JSON.parse(readFileSync(a.stamp, "utf8")) : undefined;
    const compiled = stamp?.digest === digest && existsSync(a.wasm) && existsSync(a.r1cs);
    if (compiled && !existsSync(a.sym)) addSymbols(name);
    const keyed = compiled && stamp?.keys === true && existsSync(a.zkey) && existsSync(a.verifierSol);
    if (keyed || (compiled && !keys)) continue;
    const started = Date.now();
    if (!compiled) compile(name);
    const info = await snarkjs.r1cs.info(a.r1cs);
    if (keys) await setup(name, ptau.path);
    writeFileSync(a.stamp, JSON.stringify({ digest, keys, constraints: info.nConstraints, developmentPtau: ptau.development }));
    log(
      `circuit ${name}: ${info.nConstraints} constraints, ${keys ? "compiled and set up" : "compiled"} in ${Date.now() - started} ms` +
        (ptau.development && keys ? " (development ptau)" : ""),
    );
    built.push(name);
  }
  if (built.length > 0 && keys) await terminateCurveWorkers();
  return { built };
}

/** Constraint count recorded by the last build of a circuit. */
export function constraintCount(name: CircuitName): number {
  return JSON.parse(readFileSync(circuitArtifacts(name).stamp, "utf8")).constraints;
}
