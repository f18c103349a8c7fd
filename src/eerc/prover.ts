import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { type WitnessCalculator, WitnessCalculatorBuilder } from "circom_runtime";
import type { Groth16Proof as SnarkjsProof } from "snarkjs";
import { BaseError } from "../errors.js";
import { type CircuitName, defaultProvingArtifacts, type ProvingArtifacts } from "./artifacts.js";
import { loadSnarkjs } from "./snarkjs.js";

export type Groth16Proof = SnarkjsProof;
export type ProofResult = { proof: Groth16Proof; publicSignals: string[] };
export type CircuitInput = Record<string, string | string[] | bigint | bigint[]>;

type LoadedCircuit = {
  witness: WitnessCalculator;
  zkey: Uint8Array;
  vkey?: Promise<Record<string, unknown>>;
  /** The last witness computation queued on this circuit's one wasm instance. */
  witnessTail: Promise<unknown>;
};

// circom 2 witness code brings its own memory; the runtime's default 2 GiB import is never used.
const WITNESS_MEMORY_PAGES = 1;

export class CircuitArtifactsMissingError extends BaseError {
  readonly code = "CIRCUIT_ARTIFACTS_MISSING";
  constructor(
    readonly circuit: CircuitName,
    readonly paths: { wasm: string; zkey: string },
  ) {
    super(
      `circuit ${circuit}: no ${existsSync(paths.wasm) ? `proving key at ${paths.zkey}` : `witness program at ${paths.wasm}`} ` +
        "(run npm run build:circuits, or point CIRCUITS_DIR or the manifest's circuits at the deployment's files)",
    );
  }
}

/**
 * A long-lived Groth16 prover: each circuit's wasm is compiled once and its zkey held in
 * memory, so a proof costs only witness generation and the prover's multi-exponentiations. It
 * proves with the artifacts it is given: a deployment's (`provingArtifactsOf(manifest)`), else
 * CIRCUITS_DIR or this project's build.
 */
export class Prover {
  private readonly circuits = new Map<CircuitName, Promise<LoadedCircuit>>();
  private closed = false;

  constructor(readonly artifacts: ProvingArtifacts = defaultProvingArtifacts()) {}

  private load(name: CircuitName): Promise<LoadedCircuit> {
    let loaded = this.circuits.get(name);
    if (!loaded) {
      loaded = (async () => {
        const a = this.artifacts[name];
        if (!existsSync(a.wasm) || !existsSync(a.zkey)) throw new CircuitArtifactsMissingError(name, a);
        const [wasm, zkey] = await Promise.all([readFile(a.wasm), readFile(a.zkey)]);
        const witness = await WitnessCalculatorBuilder(new Uint8Array(wasm), { memorySize: WITNESS_MEMORY_PAGES });
        return { witness, zkey: new Uint8Array(zkey), witnessTail: Promise.resolve() };
      })();
      loaded.catch(() => this.circuits.delete(name));
      this.circuits.set(name, loaded);
    }
    return loaded;
  }

  /** Loads the circuits ahead of the first proof. */
  async warm(names: readonly CircuitName[]): Promise<void> {
    await Promise.all(names.map((n) => this.load(n)));
  }

  async prove(name: CircuitName, input: CircuitInput): Promise<ProofResult> {
    const snarkjs = await loadSnarkjs();
    if (this.closed) throw new Error("prover is closed");
    const circuit = await this.load(name);
    const wtns = await this.witness(circuit, input);
    return snarkjs.groth16.prove({ type: "mem", data: circuit.zkey }, { type: "mem", data: wtns });
  }

  /**
   * One witness at a time per circuit: the runtime writes the inputs into its wasm instance, then
   * yields before it reads the witness out, so a second proof started in between would hand the
   * first one its own witness (a proof of the other sender's transfer).
   */
  private witness(circuit: LoadedCircuit, input: CircuitInput): Promise<Uint8Array> {
    const computed = circuit.witnessTail.then(() => circuit.witness.calculateWTNSBin(input, 0));
    circuit.witnessTail = computed.catch(() => {});
    return computed;
  }

  async verify(name: CircuitName, result: ProofResult): Promise<boolean> {
    const snarkjs = await loadSnarkjs();
    const circuit = await this.load(name);
    circuit.vkey ??= snarkjs.zKey.exportVerificationKey({ type: "mem", data: circuit.zkey });
    return snarkjs.groth16.verify(await circuit.vkey, result.publicSignals, result.proof);
  }

  /** Stops the curve's worker threads so the process can exit. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.circuits.clear();
    await terminateCurveWorkers();
  }
}

/** snarkjs shares one bn128 curve (with its worker threads) per process. */
export async function terminateCurveWorkers(): Promise<void> {
  const cached = (globalThis as { curve_bn128?: { terminate(): Promise<void> } | null }).curve_bn128;
  if (cached) await cached.terminate();
}
