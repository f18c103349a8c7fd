import { readFileSync } from "node:fs";
import * as snarkjs from "snarkjs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CIRCUIT_NAMES, type CircuitName, circuitArtifacts } from "../src/eerc/artifacts.js";
import { addPoints, FIELD_MODULUS, IDENTITY, mulBase, mulPoint, type Point, SUBGROUP_ORDER } from "../src/eerc/curve.js";
import { addEGCT, encryptElGamal } from "../src/eerc/elgamal.js";
import { burnInputs, type CircuitInputs, mintInputs, registrationInputs, transferInputs, withdrawInputs } from "../src/eerc/inputs.js";
import { terminateCurveWorkers } from "../src/eerc/prover.js";
import { CompiledCircuit, patchWtns } from "./r1cs-witness.js";

// A prover runs its own witness code: every `<--` hint is a value it may choose. Each test here
// takes the honest witness of a valid statement, overwrites hint wires, and evaluates the R1CS:
// the forged witness must violate a constraint, and the constraint it violates is named.

const L = SUBGROUP_ORDER;
const P = FIELD_MODULUS;
const dec = (v: bigint): string => v.toString(10);
const decs = (v: readonly bigint[]): string[] => v.map(dec);

const senderSk = 0x1d2c3b4a59687766554433221100ffeeddccbbaa99887766554433221100ffn % L;
const receiverSk = 0x0badc0ffee0ddf00d123456789abcdef0123456789abcdef0123456789abcdn % L;
const auditorSk = 0x0a0d170f00ba5eba11fee1deadbeefcafe1234567890abcdef1234567890abn % L;
const senderPk = mulBase(senderSk);
const receiverPk = mulBase(receiverSk);
const auditorPk = mulBase(auditorSk);
const BALANCE = 1000n;
const VALUE = 300n;
const balanceCT = addEGCT(encryptElGamal(600n, senderPk).ct, encryptElGamal(400n, senderPk).ct);
const ADDRESS = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8" as const;
const CHAIN_ID = 31337n;

const VALID: Record<CircuitName, () => CircuitInputs> = {
  registration: () => registrationInputs({ sk: senderSk, address: ADDRESS, chainId: CHAIN_ID }).input,
  transfer: () => transferInputs({ sk: senderSk, value: VALUE, balance: BALANCE, balanceCT, receiverPk, auditorPk }).input,
  withdraw: () => withdrawInputs({ sk: senderSk, value: VALUE, balance: BALANCE, balanceCT, auditorPk }).input,
  mint: () => mintInputs({ value: VALUE, chainId: CHAIN_ID, receiverPk, auditorPk }).input,
  burn: () => burnInputs({ sk: senderSk, value: VALUE, balance: BALANCE, balanceCT, auditorPk }).input,
};

/**
 * Every `<--` the circuits run, in circuits/components.circom and in the circomlib templates
 * they use, with the names its signal takes in the symbol table. Num2Bits' bits are forged as
 * flipped bits as well as shifted by one, inverses as 0 (the hint an `in = 0` prover would need).
 */
const HINTS: { hint: string; signals: RegExp; alternative?: (honest: bigint) => bigint }[] = [
  { hint: "NonZero.inv (components.circom)", signals: /\.nz\.inv$/, alternative: () => 0n },
  { hint: "InSubgroup.q (components.circom)", signals: /\.q\[[01]\]$/ },
  { hint: "Num2Bits.out (bitify)", signals: /\.(n2b|shifted|nonceRange)\.out\[\d+\]$/, alternative: (b) => 1n - b },
  { hint: "IsZero.inv (comparators, in EscalarMulAny)", signals: /\.zeropoint\.inv$/, alternative: () => 0n },
  { hint: "BabyAdd.xout, yout (babyjub)", signals: /\.[xy]out$/ },
  { hint: "Edwards2Montgomery.out, Montgomery2Edwards.out (montgomery)", signals: /\.(e2m|m2e)\.out\[[01]\]$/ },
  { hint: "MontgomeryAdd.lamda, MontgomeryDouble.lamda (montgomery)", signals: /\.lamda$/ },
];

/** Hint wires per circuit after circom's --O2 (a hint merged into another wire is counted there). */
const HINT_WIRES: Record<CircuitName, number[]> = {
  registration: [1, 0, 250, 0, 0, 0, 84],
  transfer: [4, 8, 2005, 5, 46, 0, 2999],
  withdraw: [2, 4, 1378, 2, 20, 0, 1334],
  mint: [3, 4, 1254, 3, 26, 0, 1833],
  burn: [2, 6, 1378, 3, 30, 0, 1833],
};

const circuits = new Map<CircuitName, CompiledCircuit>();
const honest = new Map<CircuitName, bigint[]>();

beforeAll(async () => {
  for (const name of CIRCUIT_NAMES) {
    const circuit = await CompiledCircuit.load(name);
    circuits.set(name, circuit);
    honest.set(name, await circuit.witness(VALID[name]()));
  }
});

afterAll(async () => {
  await terminateCurveWorkers();
});

const circuit = (name: CircuitName) => circuits.get(name)!;
const witnessOf = (name: CircuitName) => honest.get(name)!;

/** Forges `values` into the honest witness and names the constraints that fail, relative to `component`. */
function violations(name: CircuitName, component: string, values: Record<string, bigint>): string[] {
  const c = circuit(name);
  const forged = c.forge(witnessOf(name), values);
  const failing = c.violated(
    forged,
    Object.keys(values).map((s) => c.wire(s)),
  );
  // Only constraints using a forged wire can change; the full check must agree.
  expect(c.violated(forged)).toEqual(failing);
  return failing.map((i) => c.describe(i, component));
}

describe.each(CIRCUIT_NAMES)("%s: every hint, forged, breaks a constraint", (name) => {
  it("the honest witness satisfies every constraint", () => {
    expect(circuit(name).violated(witnessOf(name))).toEqual([]);
  });

  it("counts the hint wires of each `<--`", () => {
    expect(HINTS.map(({ signals }) => circuit(name).hintWires(signals).length)).toEqual(HINT_WIRES[name]);
  });

  it("rejects every private wire shifted by one, whatever template computed it", () => {
    const c = circuit(name);
    const w = witnessOf(name);
    const accepted: number[] = [];
    for (let wire = 1 + c.r1cs.nPublic + c.r1cs.nPrivateInputs; wire < c.r1cs.nWires; wire++) {
      if (c.violated(c.forge(w, new Map([[wire, w[wire]! + 1n]])), [wire]).length === 0) accepted.push(wire);
    }
    expect(accepted).toEqual([]);
  });

  it("rejects each hint wire shifted by one, bits flipped and inverses zeroed", () => {
    const c = circuit(name);
    const w = witnessOf(name);
    const accepted: string[] = [];
    for (const { signals, alternative } of HINTS) {
      for (const wire of c.hintWires(signals)) {
        for (const forgedValue of [w[wire]! + 1n, ...(alternative ? [alternative(w[wire]!)] : [])]) {
          if (forgedValue === w[wire]) continue;
          if (c.violated(c.forge(w, new Map([[wire, forgedValue]])), [wire]).length === 0) accepted.push(c.signals(wire).join(" = "));
        }
      }
    }
    expect(accepted).toEqual([]);
  });
});

describe("forged hints fail at their own constraint", () => {
  it("NonZero.inv: no inverse other than 1/sk passes `inv * in === 1` (registration, transfer)", () => {
    const sk = BigInt(VALID.registration().SenderPrivateKey as string);
    for (const inv of [0n, 1n, sk, 1n + witnessOf("registration")[circuit("registration").wire("main.sk.nz.inv")]!]) {
      expect(violations("registration", "main.sk.nz", { "main.sk.nz.inv": inv })).toEqual(["inv * main.SenderPrivateKey = 1"]);
    }
    expect(violations("transfer", "main.receiverRandom.nz", { "main.receiverRandom.nz.inv": 7n })).toEqual([
      "inv * main.ReceiverVTTRandom = 1",
    ]);
  });

  it("Num2Bits.out: a flipped bit, or a bit set to 2, fails the decomposition (sk + 2^251 − l)", () => {
    const n2b = "main.sk.lt.shifted";
    const bit0 = witnessOf("registration")[circuit("registration").wire(`${n2b}.out[0]`)]!;
    // --O2 folds the sum Σ out[i]·2^i = in into the booleanity constraint of the last bit.
    const sum = "Σ(252 terms: 1, main.SenderPrivateKey, out[*]) * Σ(252 terms: 1, main.SenderPrivateKey, out[*]) = 0";
    expect(violations("registration", n2b, { [`${n2b}.out[0]`]: 1n - bit0 })).toEqual([sum]);
    expect(violations("registration", n2b, { [`${n2b}.out[7]`]: 2n })).toEqual(["(-1 + out[7]) * out[7] = 0", sum]);
  });

  it("LessEqThan's bits: forging a bit of 2^252 + value − balance fails the decomposition", () => {
    const c = circuit("transfer");
    const bits = c.hintWires(/\.enough\.lt\.n2b\.out\[\d+\]$/);
    expect(bits).toHaveLength(251);
    for (const wire of [bits[0]!, bits[250]!]) {
      const [signal] = c.signals(wire);
      const failing = violations("transfer", "main.sender.enough.lt.n2b", { [signal!]: 1n - witnessOf("transfer")[wire]! });
      expect(failing).toEqual(expect.arrayContaining([expect.stringMatching(/^Σ\(\d+ terms: .*out\[\*\]/)]));
    }
  });

  it("IsZero.inv: claiming a variable base point is zero (inv = 0, out = 1) fails `in * out === 0`", () => {
    const zero = "main.auditorPCT.key.mul.zeropoint";
    expect(violations("transfer", zero, { [`${zero}.inv`]: 0n })).toEqual(["main.AuditorPublicKey[0] * inv = (1 + -out)"]);
    expect(violations("transfer", zero, { [`${zero}.inv`]: 0n, [`${zero}.out`]: 1n })).toEqual(
      expect.arrayContaining(["main.AuditorPublicKey[0] * out = 0"]),
    );
  });

  it("InSubgroup.q: another point for q fails its on-curve check and the first doubling", () => {
    const c = circuit("transfer");
    const w = witnessOf("transfer");
    const q: Point = [w[c.wire("main.receiverPk.q[0]")]!, w[c.wire("main.receiverPk.q[1]")]!];
    // −q is on the curve, and 8·(−q) = −p: the doublings below no longer end at p.
    const failing = violations("transfer", "main.receiverPk", { "main.receiverPk.q[0]": P - q[0] });
    expect(failing).toEqual(expect.arrayContaining(["-q[0] * q[1] = -dbl[0].adder.beta"]));
    // A point off the curve fails BabyCheck.
    expect(violations("transfer", "main.receiverPk", { "main.receiverPk.q[1]": q[1] + 1n })).toEqual(
      expect.arrayContaining([expect.stringContaining("qOnCurve.check")]),
    );
  });

  it("BabyAdd.xout and Montgomery lamda: a shifted division hint fails its defining product", () => {
    const add = "main.auditorPCT.key.mul.adders[0]";
    const x = witnessOf("transfer")[circuit("transfer").wire(`${add}.xout`)]!;
    expect(violations("transfer", add, { [`${add}.xout`]: x + 1n })).toEqual(
      expect.arrayContaining(["(1 + 168696·tau) * xout = (beta + gamma)"]),
    );
    const dbl = "main.auditorPCT.key.mul.doublers[0]";
    const lamda = witnessOf("transfer")[circuit("transfer").wire(`${dbl}.lamda`)]!;
    expect(violations("transfer", dbl, { [`${dbl}.lamda`]: lamda + 1n })).toEqual(
      expect.arrayContaining(["2·in[1] * lamda = (1 + 337396·in[0] + 3·x1_2)"]),
    );
  });
});

describe("a forged witness yields no valid proof (registration)", () => {
  it("snarkjs' witness check refuses it and the Groth16 proof made from it does not verify", async () => {
    const c = circuit("registration");
    const a = circuitArtifacts("registration");
    const wtns = await c.wtns(VALID.registration());
    const forged = patchWtns(wtns, c.forge(witnessOf("registration"), { "main.sk.nz.inv": 1n }));
    const quiet = { info: () => {}, warn: () => {} };
    expect(await snarkjs.wtns.check(a.r1cs, { type: "mem", data: wtns }, quiet)).toBe(true);
    expect(await snarkjs.wtns.check(a.r1cs, { type: "mem", data: forged }, quiet)).toBe(false);
    const vkey = JSON.parse(readFileSync(a.vkey, "utf8"));
    const { proof, publicSignals } = await snarkjs.groth16.prove(a.zkey, { type: "mem", data: forged });
    expect(await snarkjs.groth16.verify(vkey, publicSignals, proof)).toBe(false);
  });
});

// ---------------------------------------------------------------------------------------
// The identity (0, 1) where a point is expected. It is in the prime subgroup (8·(0,1) = (0,1)),
// so InSubgroup lets it through; where a scalar fixes the point (pk = sk·Base8, C1 = r·Base8
// with sk, r in [1, l)) the circuit rejects it, elsewhere the contracts keep it out or it only
// weakens the sender's own privacy (docs/security.md, "Circuits: forged hints").

const identityEG = (m: bigint) => ({ c1: IDENTITY, c2: mulBase(m) });

async function accepts(name: CircuitName, input: CircuitInputs): Promise<boolean> {
  try {
    await circuit(name).witness(input);
    return true;
  } catch {
    return false;
  }
}

describe("the identity point", () => {
  it("is rejected as the sender's or registrant's public key (pk = sk·Base8, sk in [1, l))", async () => {
    expect(await accepts("registration", { ...VALID.registration(), SenderPublicKey: decs(IDENTITY) })).toBe(false);
    for (const name of ["transfer", "withdraw", "burn"] as const) {
      expect(await accepts(name, { ...VALID[name](), SenderPublicKey: decs(IDENTITY) })).toBe(false);
    }
  });

  it("is rejected as a receiver VTT's C1 (C1 = r·Base8, r in [1, l))", async () => {
    const vtt = { ReceiverVTTC1: decs(IDENTITY), ReceiverVTTC2: decs(addPoints(mulBase(VALUE), receiverPk)) };
    expect(await accepts("transfer", { ...VALID.transfer(), ...vtt })).toBe(false);
    expect(await accepts("mint", { ...VALID.mint(), ...vtt })).toBe(false);
  });

  it("is accepted as the balance C1 only with C2 = balance·Base8: the claimed balance stays bound", async () => {
    for (const name of ["transfer", "withdraw", "burn"] as const) {
      const ct = identityEG(BALANCE);
      const input = { ...VALID[name](), SenderBalanceC1: decs(ct.c1), SenderBalanceC2: decs(ct.c2) };
      expect(await accepts(name, input)).toBe(true);
      expect(await accepts(name, { ...input, SenderBalance: dec(BALANCE + 1n) })).toBe(false);
      expect(await accepts(name, { ...input, SenderBalanceC2: decs(mulBase(BALANCE + 1n)) })).toBe(false);
    }
  });

  it("is accepted as the sender's VTT/VTB C1 only with C2 = value·Base8", async () => {
    const vtt = identityEG(VALUE);
    const transfer = { ...VALID.transfer(), SenderVTTC1: decs(vtt.c1), SenderVTTC2: decs(vtt.c2) };
    expect(await accepts("transfer", transfer)).toBe(true);
    expect(await accepts("transfer", { ...transfer, SenderVTTC2: decs(mulBase(VALUE + 1n)) })).toBe(false);
    const burn = { ...VALID.burn(), SenderVTBC1: decs(vtt.c1), SenderVTBC2: decs(vtt.c2) };
    expect(await accepts("burn", burn)).toBe(true);
    expect(await accepts("burn", { ...burn, SenderVTBC2: decs(mulBase(VALUE - 1n)) })).toBe(false);
  });

  it("is accepted by the circuits as a receiver or auditor public key (the Registrar refuses to register it)", async () => {
    const r = 0x0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdn % L;
    const vtt = { ReceiverVTTC1: decs(mulBase(r)), ReceiverVTTC2: decs(addPoints(mulBase(VALUE), mulPoint(IDENTITY, r))) };
    const input = transferInputs({ sk: senderSk, value: VALUE, balance: BALANCE, balanceCT, receiverPk: IDENTITY, auditorPk }).input;
    expect(await accepts("transfer", { ...input, ...vtt, ReceiverVTTRandom: dec(r) })).toBe(true);
    const audited = transferInputs({ sk: senderSk, value: VALUE, balance: BALANCE, balanceCT, receiverPk, auditorPk: IDENTITY }).input;
    expect(await accepts("transfer", audited)).toBe(true);
  });
});
