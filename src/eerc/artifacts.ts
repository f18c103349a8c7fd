import { existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export const CIRCUIT_NAMES = ["registration", "transfer", "withdraw", "mint", "burn"] as const;
export type CircuitName = (typeof CIRCUIT_NAMES)[number];

function findProjectRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, "package.json"))) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error("project root not found");
    dir = parent;
  }
  return dir;
}

export const PROJECT_ROOT = process.env.BACKENDSHIELD_ROOT ?? findProjectRoot();
export const BUILD_DIR = resolve(PROJECT_ROOT, "build");

/** Where the circuit pipeline writes a circuit's compiled and set-up files. */
export function circuitArtifacts(name: CircuitName) {
  const dir = join(BUILD_DIR, "circuits", name);
  return {
    dir,
    source: join(PROJECT_ROOT, "circuits", `${name}.circom`),
    r1cs: join(dir, `${name}.r1cs`),
    /** Every signal's name and wire, for the tests that forge witnesses (`test/r1cs-witness.ts`). */
    sym: join(dir, `${name}.sym`),
    wasm: join(dir, `${name}_js`, `${name}.wasm`),
    zkey: join(dir, `${name}.zkey`),
    vkey: join(dir, "verification_key.json"),
    stamp: join(dir, "stamp.json"),
    verifierName: `${name[0]!.toUpperCase()}${name.slice(1)}Verifier`,
    verifierSol: join(BUILD_DIR, "verifiers", `${name[0]!.toUpperCase()}${name.slice(1)}Verifier.sol`),
  };
}

/** Where a prover finds each circuit's witness program and proving key. */
export type ProvingArtifacts = Record<CircuitName, { wasm: string; zkey: string }>;

/**
 * The proving artifacts used unless a deployment manifest names its own: the folder in
 * CIRCUITS_DIR (holding `<circuit>.wasm` and `<circuit>.zkey`, e.g. the audited deployment's
 * keys), else this project's circuit build.
 */
export function defaultProvingArtifacts(env: Record<string, string | undefined> = process.env): ProvingArtifacts {
  const dir = env.CIRCUITS_DIR;
  const entries = CIRCUIT_NAMES.map((name) => {
    if (dir) return [name, { wasm: resolve(dir, `${name}.wasm`), zkey: resolve(dir, `${name}.zkey`) }] as const;
    const a = circuitArtifacts(name);
    return [name, { wasm: a.wasm, zkey: a.zkey }] as const;
  });
  return Object.fromEntries(entries) as ProvingArtifacts;
}
