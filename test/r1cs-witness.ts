import { existsSync, readFileSync } from "node:fs";
import { type WitnessCalculator, WitnessCalculatorBuilder } from "circom_runtime";
import { type CircuitName, circuitArtifacts } from "../src/eerc/artifacts.js";
import type { CircuitInputs } from "../src/eerc/inputs.js";

/**
 * A compiled circuit as a prover sees it: the R1CS read from build/, the witness program, and
 * the name of every wire. The R1CS is evaluated here (A·w × B·w − C·w mod p per constraint), so
 * a witness with forged hint values can be checked and each failing constraint named.
 */

type Lc = Map<number, bigint>;
export type Constraint = { a: Lc; b: Lc; c: Lc };

export type R1cs = {
  prime: bigint;
  nWires: number;
  /** Wires 1..nPublic are the public signals; the private inputs follow. */
  nPublic: number;
  nPrivateInputs: number;
  constraints: Constraint[];
};

export function readR1cs(path: string): R1cs {
  const buf = readFileSync(path);
  if (buf.toString("ascii", 0, 4) !== "r1cs") throw new Error(`${path} is not an r1cs file`);
  let header: Omit<R1cs, "constraints"> | undefined;
  let n8 = 0;
  let nConstraints = 0;
  let body = -1;
  let pos = 12;
  for (let s = buf.readUInt32LE(8); s > 0; s--) {
    const type = buf.readUInt32LE(pos);
    const size = Number(buf.readBigUInt64LE(pos + 4));
    pos += 12;
    if (type === 1) {
      n8 = buf.readUInt32LE(pos);
      const o = pos + 4 + n8;
      const nOut = buf.readUInt32LE(o + 4);
      const nPubIn = buf.readUInt32LE(o + 8);
      header = {
        prime: readLe(buf, pos + 4, n8),
        nWires: buf.readUInt32LE(o),
        nPublic: nOut + nPubIn,
        nPrivateInputs: buf.readUInt32LE(o + 12),
      };
      nConstraints = buf.readUInt32LE(o + 24);
    }
    if (type === 2) body = pos;
    pos += size;
  }
  if (!header || body < 0) throw new Error(`${path}: header or constraints section missing`);
  let q = body;
  const lc = (): Lc => {
    const terms: Lc = new Map();
    for (let n = buf.readUInt32LE((q += 4) - 4); n > 0; n--) {
      terms.set(buf.readUInt32LE(q), readLe(buf, q + 4, n8));
      q += 4 + n8;
    }
    return terms;
  };
  const constraints: Constraint[] = [];
  for (let i = 0; i < nConstraints; i++) constraints.push({ a: lc(), b: lc(), c: lc() });
  return { ...header, constraints };
}

function readLe(buf: Buffer, at: number, n: number): bigint {
  let v = 0n;
  for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(buf[at + i]!);
  return v;
}

/** The circuit's symbol file from its build: every signal name with its wire (-1 when the optimiser removed it). */
function symbolFile(name: CircuitName): string {
  const { sym } = circuitArtifacts(name);
  if (!existsSync(sym)) throw new Error(`build/ holds no ${name}.sym: rebuild the circuits (npm run build:circuits)`);
  return sym;
}

export class CompiledCircuit {
  readonly r1cs: R1cs;
  /** Constraint indices by wire. */
  private readonly uses: number[][];
  private readonly wires = new Map<string, number>();
  private readonly names: string[][];

  private constructor(
    readonly name: CircuitName,
    private readonly calculator: WitnessCalculator,
  ) {
    this.r1cs = readR1cs(circuitArtifacts(name).r1cs);
    this.uses = Array.from({ length: this.r1cs.nWires }, () => []);
    this.r1cs.constraints.forEach(({ a, b, c }, i) => {
      for (const w of new Set([...a.keys(), ...b.keys(), ...c.keys()])) this.uses[w]!.push(i);
    });
    this.names = Array.from({ length: this.r1cs.nWires }, () => []);
    for (const line of readFileSync(symbolFile(name), "utf8").split("\n")) {
      const [, wire, , signal] = line.split(",");
      if (!signal || Number(wire) < 0) continue;
      this.wires.set(signal, Number(wire));
      this.names[Number(wire)]!.push(signal);
    }
  }

  static async load(name: CircuitName): Promise<CompiledCircuit> {
    return new CompiledCircuit(name, await WitnessCalculatorBuilder(readFileSync(circuitArtifacts(name).wasm)));
  }

  /** The honest witness: every hint computed by the circuit's own witness code. */
  witness(input: CircuitInputs): Promise<bigint[]> {
    return this.calculator.calculateWitness(input, true);
  }

  /** The honest witness as a wtns file, for snarkjs. */
  wtns(input: CircuitInputs): Promise<Uint8Array> {
    return this.calculator.calculateWTNSBin(input, 1);
  }

  /** The wire of a signal (`main.sk.nz.inv`); throws if the optimiser removed it. */
  wire(signal: string): number {
    const w = this.wires.get(signal);
    if (w === undefined) throw new Error(`${this.name}: no wire for ${signal}`);
    return w;
  }

  /** The wires holding signals whose names match, past the public signals and private inputs. */
  hintWires(match: RegExp): number[] {
    const first = 1 + this.r1cs.nPublic + this.r1cs.nPrivateInputs;
    return [...new Set([...this.wires].filter(([s, w]) => w >= first && match.test(s)).map(([, w]) => w))].sort((x, y) => x - y);
  }

  signals(wire: number): readonly string[] {
    return this.names[wire] ?? [];
  }

  /** `witness` with some wires overwritten, by signal name or wire. */
  forge(witness: readonly bigint[], values: Record<string, bigint> | Map<number, bigint>): bigint[] {
    const out = [...witness];
    const entries = values instanceof Map ? [...values] : Object.entries(values).map(([s, v]) => [this.wire(s), v] as const);
    for (const [w, v] of entries) out[w] = ((v % this.r1cs.prime) + this.r1cs.prime) % this.r1cs.prime;
    return out;
  }

  /** Indices of the constraints `witness` violates, all of them or only those using `wires`. */
  violated(witness: readonly bigint[], wires?: readonly number[]): number[] {
    const candidates = wires ? [...new Set(wires.flatMap((w) => this.uses[w]!))].sort((x, y) => x - y) : this.r1cs.constraints.keys();
    const p = this.r1cs.prime;
    const value = (lc: Lc) => {
      let s = 0n;
      for (const [w, k] of lc) s += k * witness[w]!;
      return s % p;
    };
    const failing: number[] = [];
    for (const i of candidates) {
      const { a, b, c } = this.r1cs.constraints[i]!;
      if ((value(a) * value(b) - value(c)) % p !== 0n) failing.push(i);
    }
    return failing;
  }

  /**
   * A constraint as `A * B = C`, each wire named by its signal under `component` (relative to
   * it) when it has one there, else by its shortest name; small coefficients as signed integers.
   */
  describe(index: number, component: string): string {
    const p = this.r1cs.prime;
    const { a, b, c } = this.r1cs.constraints[index]!;
    const name = (w: number) => {
      if (w === 0) return "";
      const all = this.signals(w);
      const local = all.filter((s) => s.startsWith(`${component}.`)).map((s) => s.slice(component.length + 1));
      return [...(local.length > 0 ? local : all)].sort((x, y) => x.length - y.length || x.localeCompare(y))[0] ?? `w${w}`;
    };
    const lc = (terms: Lc) => {
      if (terms.size === 0) return "0";
      const parts = [...terms].map(([w, k]) => {
        const signed = k > p / 2n ? k - p : k;
        const n = name(w);
        if (n === "") return signed.toString();
        if (signed === 1n) return n;
        if (signed === -1n) return `-${n}`;
        return signed < 1n << 32n && signed > -(1n << 32n) ? `${signed}·${n}` : `k·${n}`;
      });
      if (parts.length === 1) return parts[0]!;
      if (parts.length <= 4) return `(${parts.join(" + ")})`;
      // A bit decomposition's sum: its signals, indices folded.
      const folded = [...new Set([...terms.keys()].map((w) => (w === 0 ? "1" : name(w).replace(/\[\d+\]$/, "[*]"))))].sort();
      return `Σ(${parts.length} terms: ${folded.join(", ")})`;
    };
    return `${lc(a)} * ${lc(b)} = ${lc(c)}`;
  }
}

/** A wtns file (version 2, as snarkjs writes it) with the witness's values in place. */
export function patchWtns(wtns: Uint8Array, witness: readonly bigint[]): Uint8Array {
  const out = Uint8Array.from(wtns);
  const view = new DataView(out.buffer);
  let pos = 12;
  let n8 = 0;
  for (let s = view.getUint32(8, true); s > 0; s--) {
    const type = view.getUint32(pos, true);
    const size = Number(view.getBigUint64(pos + 4, true));
    pos += 12;
    if (type === 1) n8 = view.getUint32(pos, true);
    if (type === 2) {
      witness.forEach((v, i) => {
        for (let j = 0; j < n8; j++) out[pos + i * n8 + j] = Number((v >> BigInt(8 * j)) & 0xffn);
      });
    }
    pos += size;
  }
  return out;
}
