declare module "snarkjs" {
  export type Groth16Proof = {
    pi_a: string[];
    pi_b: string[][];
    pi_c: string[];
    protocol: string;
    curve: string;
  };
  export type MemFile = { type: "mem"; data?: Uint8Array };
  type FileRef = string | MemFile;
  export const groth16: {
    fullProve(
      input: Record<string, unknown>,
      wasm: FileRef,
      zkey: FileRef,
      logger?: unknown,
      wtnsCalcOptions?: { memorySize?: number },
    ): Promise<{ proof: Groth16Proof; publicSignals: string[] }>;
    prove(
      zkey: FileRef,
      witness: FileRef,
      logger?: unknown,
    ): Promise<{ proof: Groth16Proof; publicSignals: string[] }>;
    verify(vkey: unknown, publicSignals: string[], proof: Groth16Proof, logger?: unknown): Promise<boolean>;
  };
  export const wtns: {
    calculate(input: Record<string, unknown>, wasm: FileRef, wtns: FileRef, options?: unknown): Promise<void>;
    check(r1cs: FileRef, wtns: FileRef, logger?: unknown): Promise<boolean>;
  };
  export const zKey: {
    newZKey(r1cs: string, ptau: string, zkey: string, logger?: unknown): Promise<unknown>;
    /** Returns the new contribution's hash (64 bytes). */
    contribute(zkeyOld: string, zkeyNew: string, name: string, entropy: string, logger?: unknown): Promise<Uint8Array>;
    /** Returns the beacon contribution's hash (64 bytes), or false on a bad beacon hash or iteration count. */
    beacon(zkeyOld: string, zkeyNew: string, name: string, beaconHash: string, numIterationsExp: number, logger?: unknown): Promise<Uint8Array | false>;
    verifyFromR1cs(r1cs: string, ptau: string, zkey: string, logger?: unknown): Promise<boolean>;
    verifyFromInit(zkeyInit: string, ptau: string, zkey: string, logger?: unknown): Promise<boolean>;
    exportVerificationKey(zkey: FileRef, logger?: unknown): Promise<Record<string, unknown>>;
    exportSolidityVerifier(zkey: string, templates: Record<string, string>, logger?: unknown): Promise<string>;
  };
  export const r1cs: {
    info(r1cs: string, logger?: unknown): Promise<{ nConstraints: number; nPubInputs: number; nOutputs: number }>;
  };
}

declare module "circom_runtime" {
  export type WitnessCalculator = {
    calculateWTNSBin(input: Record<string, unknown>, sanityCheck?: number): Promise<Uint8Array>;
    calculateWitness(input: Record<string, unknown>, sanityCheck?: boolean): Promise<bigint[]>;
  };
  export function WitnessCalculatorBuilder(
    code: Uint8Array,
    options?: { memorySize?: number; sanityCheck?: boolean },
  ): Promise<WitnessCalculator>;
}

declare module "ffjavascript" {
  export function buildBn128(singleThread?: boolean): Promise<{ terminate(): Promise<void> }>;
}
