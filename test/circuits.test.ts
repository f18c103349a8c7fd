import { readFileSync } from "node:fs";
import { join } from "node:path";
import { poseidonPerm } from "@zk-kit/poseidon-cipher";
import { poseidon5 } from "poseidon-lite";
import * as snarkjs from "snarkjs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CIRCUIT_NAMES, type CircuitName, circuitArtifacts, PROJECT_ROOT } from "../src/eerc/artifacts.js";
import { addPoints, FIELD_MODULUS, mulBase, mulPoint, type Point, SUBGROUP_ORDER } from "../src/eerc/curve.js";
import { addEGCT, type EGCT, encryptElGamal } from "../src/eerc/elgamal.js";
import { burnInputs, type CircuitInputs, mintInputs, registrationInputs, transferInputs, withdrawInputs } from "../src/eerc/inputs.js";
import { registrationHash } from "../src/eerc/keys.js";
import { decryptPCT } from "../src/eerc/pct.js";
import { terminateCurveWorkers } from "../src/eerc/prover.js";

const L = SUBGROUP_ORDER;
const P = FIELD_MODULUS;
const TWO_128 = 1n << 128n;
const mod = (a: bigint): bigint => ((a % P) + P) % P;
const dec = (v: bigint): string => v.toString(10);
const decs = (v: readonly bigint[]): string[] => v.map(dec);

// ---------------------------------------------------------------------------------------
// Failure sites. circom's witness code reports a failed constraint as a stack of
// "Error in template <T>_<id> line: <n>" frames, innermost first; each frame's line is the
// failing `===` (innermost) or the input assignment that ran the failing subcomponent.
// Expected frames are derived from the sources, so the tests pin the constraint that fails.

const SOURCES = Object.fromEntries(
  ["components", ...CIRCUIT_NAMES].map((f) => [f, readFileSync(join(PROJECT_ROOT, "circuits", `${f}.circom`), "utf8").split("\n")]),
);

function templateLines(template: string): { lines: string[]; first: number } {
  for (const lines of Object.values(SOURCES)) {
    const start = lines.findIndex((l) => l.startsWith(`template ${template}(`));
    if (start < 0) continue;
    let end = lines.findIndex((l, i) => i > start && l.startsWith("}"));
    if (end < 0) end = lines.length;
    return { lines: lines.slice(start, end + 1), first: start + 1 };
  }
  throw new Error(`template ${template} not found in circuits/`);
}

function uniqueLine(template: string, match: (line: string) => boolean, what: string, last = false): number {
  const { lines, first } = templateLines(template);
  const hits = lines.flatMap((l, i) => (match(l) ? [first + i] : []));
  if (hits.length === 0 || (!last && hits.length > 1)) {
    throw new Error(`${what} matches ${hits.length} lines of template ${template}`);
  }
  return hits[hits.length - 1]!;
}

type Frame = string;
const frame = (template: string, line: number | null): Frame => `Error in template ${template}_\\d+ line: ${line === null ? "\\d+" : line}`;
/** The innermost frame: the `===` containing `snippet` in `template`. */
const at = (template: string, snippet: string): Frame =>
  frame(
    template,
    uniqueLine(template, (l) => l.includes(snippet), JSON.stringify(snippet)),
  );
/** A caller frame: `template` running its subcomponent `instance`. */
const via = (template: string, instance: string): Frame => {
  const assign = new RegExp(`^\\s*${instance}(\\[[^\\]]*\\])?\\.\\w+(\\[[^\\]]*\\])?\\s*<==`);
  return frame(
    template,
    uniqueLine(template, (l) => assign.test(l), `input of ${instance}`, true),
  );
};
/** A frame inside a circomlib template. */
const lib = (template: string): Frame => frame(template, null);

const stack = (...frames: Frame[]): RegExp => new RegExp(`Assert Failed\\. ${frames.join("\\n")}\\n`);

// Recurring stacks, innermost part first.
const NONZERO = [at("NonZero", "inv * in === 1"), via("ScalarInRange", "nz")];
const SCALAR_TOO_BIG = [lib("Num2Bits"), via("LessThanSubgroupOrder", "shifted"), via("ScalarInRange", "lt")];
const AMOUNT_TOO_BIG = [lib("Num2Bits"), via("LessThanSubgroupOrder", "shifted")];
const AMOUNT_WRAPS = [lib("Num2Bits"), via("LessThanSubgroupOrder", "n2b")];
const NOT_IN_SUBGROUP = [at("InSubgroup", "dbl[2].xout === p[0]")];
const OFF_CURVE = [lib("BabyCheck"), via("OnCurve", "check"), via("InSubgroup", "qOnCurve")];
const DECRYPT_MISMATCH = at("ElGamalDecryptCheck", "c2 === sum.out");
const SENDER = (main: string) => via(main, "sender");
const BALANCE = (main: string) => [via("SenderBalanceCheck", "decrypt"), SENDER(main)];
const PCT_AMOUNT = at("PCTCheck", "pct[0] === first.out[1] + amount");

// ---------------------------------------------------------------------------------------
// Witness generation

const wasm = new Map<CircuitName, Uint8Array>();

beforeAll(() => {
  for (const name of CIRCUIT_NAMES) wasm.set(name, readFileSync(circuitArtifacts(name).wasm));
});

afterAll(async () => {
  await terminateCurveWorkers();
});

function witness(name: CircuitName, input: CircuitInputs): Promise<void> {
  return snarkjs.wtns.calculate(input, { type: "mem", data: wasm.get(name)! }, { type: "mem" });
}

async function rejects(name: CircuitName, input: CircuitInputs, ...frames: Frame[]): Promise<void> {
  await expect(witness(name, input)).rejects.toThrow(stack(...frames));
}

// ---------------------------------------------------------------------------------------
// Fixtures and hand-built ciphertexts (for inputs the SDK rightly refuses to build)

const senderSk = 0x1d2c3b4a59687766554433221100ffeeddccbbaa99887766554433221100ffn % L;
const receiverSk = 0x0badc0ffee0ddf00d123456789abcdef0123456789abcdef0123456789abcdn % L;
const auditorSk = 0x0a0d170f00ba5eba11fee1deadbeefcafe1234567890abcdef1234567890abn % L;
const otherSk = 0x05ca1ab1edeadc0debabe5000000000000000000000000000000000000000001n % L;
const senderPk = mulBase(senderSk);
const receiverPk = mulBase(receiverSk);
const auditorPk = mulBase(auditorSk);
const otherPk = mulBase(otherSk);
const IDENTITY: Point = [0n, 1n];
/** Adds the order-2 point (0, -1): on the curve, outside the prime subgroup. */
const withTorsion = ([x, y]: Point): Point => [mod(-x), mod(-y)];

const CHAIN_ID = 31337n;
const ADDRESS = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8" as const;
const BALANCE_AMOUNT = 1000n;
const VALUE = 300n;
// A balance as it accrues on chain: two credits added homomorphically.
const balanceCT: EGCT = addEGCT(encryptElGamal(600n, senderPk).ct, encryptElGamal(400n, senderPk).ct);

const R1 = 0x0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdn % L;
const R2 = 0x0fedcba9876543210fedcba9876543210fedcba9876543210fedcba98765432n % L;

/** Enc(m, r, pk) for any m and r, reducing only where the circuit's arithmetic does. */
function egct(m: bigint, pk: Point, r: bigint): EGCT {
  return { c1: mulBase(r), c2: addPoints(mulBase(m), mulPoint(pk, r % L)) };
}

function vttSignals(prefix: string, m: bigint, pk: Point, r: bigint): CircuitInputs {
  const ct = egct(m, pk, r);
  return { [`${prefix}VTTC1`]: decs(ct.c1), [`${prefix}VTTC2`]: decs(ct.c2), [`${prefix}VTTRandom`]: dec(r) };
}

/** The poseidon-cipher PCT of [amount] with a chosen random and nonce (any nonce, any random). */
function pctSignals(prefix: string, amount: bigint, pk: Point, random: bigint, nonce: bigint): CircuitInputs {
  const key = mulPoint(pk, random % L);
  const s = poseidonPerm([0n, key[0], key[1], mod(nonce + TWO_128)]);
  const c = [mod(s[1]! + amount), s[2]!, s[3]!];
  const t = poseidonPerm([s[0]!, ...c]);
  return {
    [`${prefix}PCT`]: decs([...c, t[1]!]),
    [`${prefix}PCTAuthKey`]: decs(mulBase(random)),
    [`${prefix}PCTNonce`]: dec(nonce),
    [`${prefix}PCTRandom`]: dec(random),
  };
}

const bump = (words: string[], i: number): string[] => words.map((w, j) => (j === i ? dec(mod(BigInt(w) + 1n)) : w));

// ---------------------------------------------------------------------------------------

describe("registration circuit", () => {
  const valid = registrationInputs({ sk: senderSk, address: ADDRESS, chainId: CHAIN_ID });
  const R = (i: string) => via("Registration", i);
  const withSk = (sk: bigint, pk: Point = mulBase(sk)): CircuitInputs => ({
    ...valid.input,
    SenderPrivateKey: dec(sk),
    SenderPublicKey: decs(pk),
    RegistrationHash: dec(registrationInputs({ sk, address: ADDRESS, chainId: CHAIN_ID }).registrationHash),
  });

  it("accepts a valid registration, with the SDK's key and hash", async () => {
    expect(valid.publicKey).toEqual(senderPk);
    expect(valid.registrationHash).toBe(registrationHash(CHAIN_ID, senderSk, ADDRESS));
    await expect(witness("registration", valid.input)).resolves.toBeUndefined();
  });

  it("rejects a registration hash over another chain id", async () => {
    const other = registrationInputs({ sk: senderSk, address: ADDRESS, chainId: CHAIN_ID + 1n });
    await rejects(
      "registration",
      { ...valid.input, RegistrationHash: other.input.RegistrationHash },
      at("Registration", "RegistrationHash === hash.out"),
    );
  });

  it("rejects a registration hash over another address", async () => {
    await rejects(
      "registration",
      { ...valid.input, SenderAddress: dec(BigInt(ADDRESS) + 1n) },
      at("Registration", "RegistrationHash === hash.out"),
    );
  });

  it("rejects a public key that is not sk·Base8", async () => {
    await rejects("registration", { ...valid.input, SenderPublicKey: decs(otherPk) }, at("Registration", "SenderPublicKey === pk.out"));
  });

  it("rejects sk = 0", async () => {
    await rejects("registration", withSk(0n, IDENTITY), ...NONZERO, R("sk"));
  });

  it("rejects sk ≥ l (same public key, different hash)", async () => {
    await rejects("registration", withSk(senderSk + L, senderPk), ...SCALAR_TOO_BIG, R("sk"));
  });

  it("rejects sk = p − 1", async () => {
    await rejects(
      "registration",
      withSk(P - 1n, mulBase(P - 1n)),
      lib("Num2Bits"),
      via("LessThanSubgroupOrder", "n2b"),
      via("ScalarInRange", "lt"),
      R("sk"),
    );
  });
});

describe("transfer circuit", () => {
  const base = { sk: senderSk, value: VALUE, balance: BALANCE_AMOUNT, balanceCT, receiverPk, auditorPk };
  const valid = transferInputs(base);
  const T = (i: string) => via("Transfer", i);

  it("accepts a valid transfer", async () => {
    await expect(witness("transfer", valid.input)).resolves.toBeUndefined();
    expect(decryptPCT(valid.receiverPCT, receiverSk)).toBe(VALUE);
    expect(decryptPCT(valid.auditorPCT, auditorSk)).toBe(VALUE);
  });

  it("accepts a transfer of the whole balance", async () => {
    await expect(witness("transfer", transferInputs({ ...base, value: BALANCE_AMOUNT }).input)).resolves.toBeUndefined();
  });

  it("accepts hand-built ciphertexts (the fixtures below are faithful)", async () => {
    const input = {
      ...valid.input,
      ...vttSignals("Receiver", VALUE, receiverPk, R1),
      ...pctSignals("Receiver", VALUE, receiverPk, R2, 12345n),
      ...pctSignals("Auditor", VALUE, auditorPk, R1, TWO_128 - 1n),
    };
    await expect(witness("transfer", input)).resolves.toBeUndefined();
  });

  it("rejects overspending (value > balance)", async () => {
    const input = transferInputs({ ...base, value: BALANCE_AMOUNT + 1n }).input;
    await rejects("transfer", input, at("SenderBalanceCheck", "enough.out === 1"), SENDER("Transfer"));
  });

  it("rejects value = l", async () => {
    await rejects(
      "transfer",
      { ...valid.input, ValueToTransfer: dec(L) },
      ...AMOUNT_TOO_BIG,
      via("SenderBalanceCheck", "valueRange"),
      SENDER("Transfer"),
    );
  });

  it("rejects value = p − 1 (a negative amount)", async () => {
    await rejects(
      "transfer",
      { ...valid.input, ValueToTransfer: dec(P - 1n) },
      ...AMOUNT_WRAPS,
      via("SenderBalanceCheck", "valueRange"),
      SENDER("Transfer"),
    );
  });

  it("rejects a claimed balance ≥ l that decrypts correctly (balance + l)", async () => {
    const input = { ...valid.input, SenderBalance: dec(BALANCE_AMOUNT + L) };
    await rejects("transfer", input, ...AMOUNT_TOO_BIG, via("SenderBalanceCheck", "balanceRange"), SENDER("Transfer"));
  });

  it("rejects a private key that does not match the public key", async () => {
    await rejects(
      "transfer",
      { ...valid.input, SenderPrivateKey: dec(otherSk) },
      at("SenderBalanceCheck", "pk === pkCheck.out"),
      SENDER("Transfer"),
    );
  });

  it("rejects another key pair against this balance", async () => {
    const input = { ...valid.input, SenderPrivateKey: dec(otherSk), SenderPublicKey: decs(otherPk) };
    await rejects("transfer", input, DECRYPT_MISMATCH, ...BALANCE("Transfer"));
  });

  it("rejects a balance ciphertext that does not decrypt to the claimed balance", async () => {
    await rejects("transfer", { ...valid.input, SenderBalance: dec(BALANCE_AMOUNT - 1n) }, DECRYPT_MISMATCH, ...BALANCE("Transfer"));
  });

  it("rejects a balance ciphertext under another key", async () => {
    const ct = encryptElGamal(BALANCE_AMOUNT, otherPk).ct;
    const input = { ...valid.input, SenderBalanceC1: decs(ct.c1), SenderBalanceC2: decs(ct.c2) };
    await rejects("transfer", input, DECRYPT_MISMATCH, ...BALANCE("Transfer"));
  });

  it("rejects a sender VTT of another amount", async () => {
    const ct = egct(VALUE + 1n, senderPk, R1);
    await rejects("transfer", { ...valid.input, SenderVTTC1: decs(ct.c1), SenderVTTC2: decs(ct.c2) }, DECRYPT_MISMATCH, T("senderVTT"));
  });

  it("rejects a sender VTT under another key", async () => {
    const ct = egct(VALUE, receiverPk, R1);
    await rejects("transfer", { ...valid.input, SenderVTTC1: decs(ct.c1), SenderVTTC2: decs(ct.c2) }, DECRYPT_MISMATCH, T("senderVTT"));
  });

  it("rejects a receiver VTT of another amount", async () => {
    const input = { ...valid.input, ...vttSignals("Receiver", VALUE + 1n, receiverPk, R1) };
    await rejects("transfer", input, at("ElGamalEncryptCheck", "c2 === sum.out"), T("receiverVTT"));
  });

  it("rejects a receiver VTT under another key", async () => {
    const input = { ...valid.input, ...vttSignals("Receiver", VALUE, auditorPk, R1) };
    await rejects("transfer", input, at("ElGamalEncryptCheck", "c2 === sum.out"), T("receiverVTT"));
  });

  it("rejects a receiver VTT whose C1 is not ReceiverVTTRandom·Base8", async () => {
    const input = { ...valid.input, ...vttSignals("Receiver", VALUE, receiverPk, R1), ReceiverVTTRandom: dec(R2) };
    await rejects("transfer", input, at("ElGamalEncryptCheck", "c1 === rG.out"), T("receiverVTT"));
  });

  it("rejects a receiver PCT of another amount", async () => {
    const input = { ...valid.input, ...pctSignals("Receiver", VALUE + 1n, receiverPk, R1, 7n) };
    await rejects("transfer", input, PCT_AMOUNT, T("receiverPCT"));
  });

  it("rejects a receiver PCT under the auditor's key", async () => {
    const input = { ...valid.input, ...pctSignals("Receiver", VALUE, auditorPk, R1, 7n) };
    await rejects("transfer", input, PCT_AMOUNT, T("receiverPCT"));
  });

  it("rejects an auditor PCT of another amount", async () => {
    const input = { ...valid.input, ...pctSignals("Auditor", VALUE - 1n, auditorPk, R1, 7n) };
    await rejects("transfer", input, PCT_AMOUNT, T("auditorPCT"));
  });

  it("rejects an auditor PCT with a tampered tag", async () => {
    const input = { ...valid.input, AuditorPCT: bump(valid.input.AuditorPCT as string[], 3) };
    await rejects("transfer", input, at("PCTCheck", "pct[3] === tag.out[1]"), T("auditorPCT"));
  });

  it("rejects a PCT authKey that is not random·Base8", async () => {
    const input = { ...valid.input, ReceiverPCTAuthKey: decs(mulBase(R2)) };
    await rejects("transfer", input, at("PCTCheck", "authKey === rG.out"), T("receiverPCT"));
  });

  it("rejects a zero receiver VTT random", async () => {
    const input = { ...valid.input, ...vttSignals("Receiver", VALUE, receiverPk, 0n) };
    await rejects("transfer", input, ...NONZERO, T("receiverRandom"));
  });

  it("rejects a zero receiver PCT random", async () => {
    const input = { ...valid.input, ...pctSignals("Receiver", VALUE, receiverPk, 0n, 7n) };
    await rejects("transfer", input, ...NONZERO, via("PCTCheck", "r"), T("receiverPCT"));
  });

  it("rejects a zero auditor PCT random", async () => {
    const input = { ...valid.input, ...pctSignals("Auditor", VALUE, auditorPk, 0n, 7n) };
    await rejects("transfer", input, ...NONZERO, via("PCTCheck", "r"), T("auditorPCT"));
  });

  it("rejects a receiver VTT random ≥ l", async () => {
    const input = { ...valid.input, ...vttSignals("Receiver", VALUE, receiverPk, R1 + L) };
    await rejects("transfer", input, ...SCALAR_TOO_BIG, T("receiverRandom"));
  });

  it("rejects an auditor PCT random ≥ l", async () => {
    const input = { ...valid.input, ...pctSignals("Auditor", VALUE, auditorPk, R1 + L, 7n) };
    await rejects("transfer", input, ...SCALAR_TOO_BIG, via("PCTCheck", "r"), T("auditorPCT"));
  });

  it("rejects a receiver PCT nonce = 2^128", async () => {
    const input = { ...valid.input, ...pctSignals("Receiver", VALUE, receiverPk, R1, TWO_128) };
    await rejects("transfer", input, lib("Num2Bits"), via("PCTCheck", "nonceRange"), T("receiverPCT"));
  });

  it("rejects an auditor PCT nonce = p − 1", async () => {
    const input = { ...valid.input, ...pctSignals("Auditor", VALUE, auditorPk, R1, P - 1n) };
    await rejects("transfer", input, lib("Num2Bits"), via("PCTCheck", "nonceRange"), T("auditorPCT"));
  });

  it("rejects sk = 0 (balance and VTT consistent with the identity key)", async () => {
    const balance = egct(BALANCE_AMOUNT, IDENTITY, R1);
    const vtt = egct(VALUE, IDENTITY, R2);
    const input = {
      ...valid.input,
      SenderPrivateKey: "0",
      SenderPublicKey: decs(IDENTITY),
      SenderBalanceC1: decs(balance.c1),
      SenderBalanceC2: decs(balance.c2),
      SenderVTTC1: decs(vtt.c1),
      SenderVTTC2: decs(vtt.c2),
    };
    await rejects("transfer", input, ...NONZERO, via("SenderBalanceCheck", "skRange"), SENDER("Transfer"));
  });

  it("rejects sk ≥ l (sk + l: same public key, decrypts the same)", async () => {
    await rejects(
      "transfer",
      { ...valid.input, SenderPrivateKey: dec(senderSk + L) },
      ...SCALAR_TOO_BIG,
      via("SenderBalanceCheck", "skRange"),
      SENDER("Transfer"),
    );
  });

  it("rejects a receiver public key outside the prime subgroup", async () => {
    await rejects("transfer", { ...valid.input, ReceiverPublicKey: decs(withTorsion(receiverPk)) }, ...NOT_IN_SUBGROUP, T("receiverPk"));
  });

  it("rejects an auditor public key outside the prime subgroup", async () => {
    await rejects("transfer", { ...valid.input, AuditorPublicKey: decs(withTorsion(auditorPk)) }, ...NOT_IN_SUBGROUP, T("auditorPk"));
  });

  it("rejects a balance C1 outside the prime subgroup", async () => {
    const input = { ...valid.input, SenderBalanceC1: decs(withTorsion(balanceCT.c1)) };
    await rejects("transfer", input, ...NOT_IN_SUBGROUP, via("ElGamalDecryptCheck", "c1Sub"), ...BALANCE("Transfer"));
  });

  it("rejects a sender VTT C1 off the curve", async () => {
    await rejects(
      "transfer",
      { ...valid.input, SenderVTTC1: ["5", "6"] },
      ...OFF_CURVE,
      via("ElGamalDecryptCheck", "c1Sub"),
      T("senderVTT"),
    );
  });
});

// Withdraw and burn spend from the sender's balance with the same checks.
const SPENDS = [
  { circuit: "withdraw", template: "Withdraw", valueSignal: "ValueToWithdraw", build: withdrawInputs },
  { circuit: "burn", template: "Burn", valueSignal: "ValueToBurn", build: burnInputs },
] as const;

describe.each(SPENDS)("$circuit circuit: the spending checks", ({ circuit, template, valueSignal, build }) => {
  const base = { sk: senderSk, value: VALUE, balance: BALANCE_AMOUNT, balanceCT, auditorPk };
  const valid = build(base);
  const auditorPCT = via(template, "auditorPCT");

  it("accepts a valid spend; the auditor decrypts its amount", async () => {
    await expect(witness(circuit, valid.input)).resolves.toBeUndefined();
    expect(decryptPCT(valid.auditorPCT, auditorSk)).toBe(VALUE);
  });

  it("rejects overspending", async () => {
    await rejects(
      circuit,
      build({ ...base, value: BALANCE_AMOUNT + 1n }).input,
      at("SenderBalanceCheck", "enough.out === 1"),
      SENDER(template),
    );
  });

  it("rejects value = l and value = p − 1", async () => {
    const range = via("SenderBalanceCheck", "valueRange");
    await rejects(circuit, { ...valid.input, [valueSignal]: dec(L) }, ...AMOUNT_TOO_BIG, range, SENDER(template));
    await rejects(circuit, { ...valid.input, [valueSignal]: dec(P - 1n) }, ...AMOUNT_WRAPS, range, SENDER(template));
  });

  it("rejects a wrong private key", async () => {
    await rejects(
      circuit,
      { ...valid.input, SenderPrivateKey: dec(otherSk) },
      at("SenderBalanceCheck", "pk === pkCheck.out"),
      SENDER(template),
    );
  });

  it("rejects a balance ciphertext that does not decrypt to the claimed balance (one more, one less)", async () => {
    await rejects(circuit, { ...valid.input, SenderBalance: dec(BALANCE_AMOUNT + 1n) }, DECRYPT_MISMATCH, ...BALANCE(template));
    await rejects(circuit, { ...valid.input, SenderBalance: dec(BALANCE_AMOUNT - 1n) }, DECRYPT_MISMATCH, ...BALANCE(template));
  });

  it("rejects an auditor PCT of another amount", async () => {
    await rejects(circuit, { ...valid.input, ...pctSignals("Auditor", VALUE + 1n, auditorPk, R1, 7n) }, PCT_AMOUNT, auditorPCT);
  });

  it("rejects a zero auditor PCT random", async () => {
    const zero = pctSignals("Auditor", VALUE, auditorPk, 0n, 7n);
    await rejects(circuit, { ...valid.input, ...zero }, ...NONZERO, via("PCTCheck", "r"), auditorPCT);
  });

  it("rejects an auditor PCT nonce ≥ 2^128", async () => {
    for (const nonce of [TWO_128, TWO_128 + 5n]) {
      const big = pctSignals("Auditor", VALUE, auditorPk, R1, nonce);
      await rejects(circuit, { ...valid.input, ...big }, lib("Num2Bits"), via("PCTCheck", "nonceRange"), auditorPCT);
    }
  });

  it("rejects sk ≥ l (sk + l: same public key, decrypts the same)", async () => {
    const skRange = via("SenderBalanceCheck", "skRange");
    await rejects(circuit, { ...valid.input, SenderPrivateKey: dec(senderSk + L) }, ...SCALAR_TOO_BIG, skRange, SENDER(template));
  });
});

describe("withdraw circuit", () => {
  const valid = withdrawInputs({ sk: senderSk, value: VALUE, balance: BALANCE_AMOUNT, balanceCT, auditorPk });

  it("rejects an auditor public key outside the prime subgroup", async () => {
    const torsion = decs(withTorsion(auditorPk));
    await rejects("withdraw", { ...valid.input, AuditorPublicKey: torsion }, ...NOT_IN_SUBGROUP, via("Withdraw", "auditorPk"));
  });
});

describe("burn circuit", () => {
  const valid = burnInputs({ sk: senderSk, value: VALUE, balance: BALANCE_AMOUNT, balanceCT, auditorPk });

  it("rejects a sender VTB of another amount", async () => {
    const ct = egct(VALUE + 1n, senderPk, R1);
    await rejects(
      "burn",
      { ...valid.input, SenderVTBC1: decs(ct.c1), SenderVTBC2: decs(ct.c2) },
      DECRYPT_MISMATCH,
      via("Burn", "senderVTB"),
    );
  });

  it("rejects sk = 0", async () => {
    const balance = egct(BALANCE_AMOUNT, IDENTITY, R1);
    const vtb = egct(VALUE, IDENTITY, R2);
    const input = {
      ...valid.input,
      SenderPrivateKey: "0",
      SenderPublicKey: decs(IDENTITY),
      SenderBalanceC1: decs(balance.c1),
      SenderBalanceC2: decs(balance.c2),
      SenderVTBC1: decs(vtb.c1),
      SenderVTBC2: decs(vtb.c2),
    };
    await rejects("burn", input, ...NONZERO, via("SenderBalanceCheck", "skRange"), SENDER("Burn"));
  });
});

describe("mint circuit", () => {
  const base = { value: VALUE, chainId: CHAIN_ID, receiverPk, auditorPk };
  const valid = mintInputs(base);
  const M = (i: string) => via("Mint", i);
  const nullifier = (input: CircuitInputs, chainId = CHAIN_ID) => dec(poseidon5([chainId, ...(input.AuditorPCT as string[]).map(BigInt)]));
  /** Replaces the auditor PCT and recomputes the nullifier over it. */
  const withAuditorPCT = (pct: CircuitInputs): CircuitInputs => {
    const input = { ...valid.input, ...pct };
    return { ...input, NullifierHash: nullifier(input) };
  };

  it("accepts a valid mint", async () => {
    await expect(witness("mint", valid.input)).resolves.toBeUndefined();
    expect(valid.nullifierHash).toBe(BigInt(nullifier(valid.input)));
    expect(decryptPCT(valid.receiverPCT, receiverSk)).toBe(VALUE);
  });

  it("rejects value = l with every ciphertext consistent with it", async () => {
    const input = withAuditorPCT({
      ...vttSignals("Receiver", L, receiverPk, R1),
      ...pctSignals("Receiver", L, receiverPk, R2, 1n),
      ...pctSignals("Auditor", L, auditorPk, R1, 2n),
    });
    await rejects("mint", { ...input, ValueToMint: dec(L) }, ...AMOUNT_TOO_BIG, M("value"));
  });

  it("rejects value = p − 1", async () => {
    await rejects("mint", { ...valid.input, ValueToMint: dec(P - 1n) }, ...AMOUNT_WRAPS, M("value"));
  });

  it("rejects a nullifier over another chain id", async () => {
    await rejects(
      "mint",
      { ...valid.input, NullifierHash: nullifier(valid.input, CHAIN_ID + 1n) },
      at("Mint", "NullifierHash === nullifier.out"),
    );
  });

  it("rejects a receiver VTT of another amount", async () => {
    await rejects(
      "mint",
      { ...valid.input, ...vttSignals("Receiver", VALUE + 1n, receiverPk, R1) },
      at("ElGamalEncryptCheck", "c2 === sum.out"),
      M("receiverVTT"),
    );
  });

  it("rejects a receiver PCT of another amount", async () => {
    await rejects("mint", { ...valid.input, ...pctSignals("Receiver", VALUE + 1n, receiverPk, R1, 7n) }, PCT_AMOUNT, M("receiverPCT"));
  });

  it("rejects an auditor PCT of another amount (nullifier recomputed)", async () => {
    await rejects("mint", withAuditorPCT(pctSignals("Auditor", VALUE + 1n, auditorPk, R1, 7n)), PCT_AMOUNT, M("auditorPCT"));
  });

  it("rejects a zero receiver VTT random", async () => {
    await rejects("mint", { ...valid.input, ...vttSignals("Receiver", VALUE, receiverPk, 0n) }, ...NONZERO, M("receiverRandom"));
  });

  it("rejects zero PCT randoms", async () => {
    await rejects(
      "mint",
      { ...valid.input, ...pctSignals("Receiver", VALUE, receiverPk, 0n, 7n) },
      ...NONZERO,
      via("PCTCheck", "r"),
      M("receiverPCT"),
    );
    await rejects(
      "mint",
      withAuditorPCT(pctSignals("Auditor", VALUE, auditorPk, 0n, 7n)),
      ...NONZERO,
      via("PCTCheck", "r"),
      M("auditorPCT"),
    );
  });

  it("rejects a receiver PCT nonce ≥ 2^128", async () => {
    await rejects(
      "mint",
      { ...valid.input, ...pctSignals("Receiver", VALUE, receiverPk, R1, TWO_128) },
      lib("Num2Bits"),
      via("PCTCheck", "nonceRange"),
      M("receiverPCT"),
    );
  });

  it("rejects a receiver public key outside the prime subgroup", async () => {
    await rejects("mint", { ...valid.input, ReceiverPublicKey: decs(withTorsion(receiverPk)) }, ...NOT_IN_SUBGROUP, M("receiverPk"));
  });
});

// ---------------------------------------------------------------------------------------
// One Groth16 proof per circuit, checked against the interface's public signal order.

const PUBLIC_SIGNALS: Record<CircuitName, string[]> = {
  registration: ["SenderPublicKey", "SenderAddress", "ChainID", "RegistrationHash"],
  transfer: [
    "SenderPublicKey",
    "SenderBalanceC1",
    "SenderBalanceC2",
    "SenderVTTC1",
    "SenderVTTC2",
    "ReceiverPublicKey",
    "ReceiverVTTC1",
    "ReceiverVTTC2",
    "ReceiverPCT",
    "ReceiverPCTAuthKey",
    "ReceiverPCTNonce",
    "AuditorPublicKey",
    "AuditorPCT",
    "AuditorPCTAuthKey",
    "AuditorPCTNonce",
  ],
  withdraw: [
    "ValueToWithdraw",
    "SenderPublicKey",
    "SenderBalanceC1",
    "SenderBalanceC2",
    "AuditorPublicKey",
    "AuditorPCT",
    "AuditorPCTAuthKey",
    "AuditorPCTNonce",
  ],
  mint: [
    "ChainID",
    "NullifierHash",
    "ReceiverPublicKey",
    "ReceiverVTTC1",
    "ReceiverVTTC2",
    "ReceiverPCT",
    "ReceiverPCTAuthKey",
    "ReceiverPCTNonce",
    "AuditorPublicKey",
    "AuditorPCT",
    "AuditorPCTAuthKey",
    "AuditorPCTNonce",
  ],
  burn: [
    "SenderPublicKey",
    "SenderBalanceC1",
    "SenderBalanceC2",
    "SenderVTBC1",
    "SenderVTBC2",
    "AuditorPublicKey",
    "AuditorPCT",
    "AuditorPCTAuthKey",
    "AuditorPCTNonce",
  ],
};
const PUBLIC_COUNT: Record<CircuitName, number> = { registration: 5, transfer: 32, withdraw: 16, mint: 24, burn: 19 };

describe("Groth16 proofs", () => {
  const cases: Record<CircuitName, () => { input: CircuitInputs; pcts: { words: bigint[]; at: string }[] }> = {
    registration: () => ({ input: registrationInputs({ sk: senderSk, address: ADDRESS, chainId: CHAIN_ID }).input, pcts: [] }),
    transfer: () => {
      const b = transferInputs({ sk: senderSk, value: VALUE, balance: BALANCE_AMOUNT, balanceCT, receiverPk, auditorPk });
      return {
        input: b.input,
        pcts: [
          { words: b.receiverPCT, at: "ReceiverPCT" },
          { words: b.auditorPCT, at: "AuditorPCT" },
        ],
      };
    },
    withdraw: () => {
      const b = withdrawInputs({ sk: senderSk, value: VALUE, balance: BALANCE_AMOUNT, balanceCT, auditorPk });
      return { input: b.input, pcts: [{ words: b.auditorPCT, at: "AuditorPCT" }] };
    },
    mint: () => {
      const b = mintInputs({ value: VALUE, chainId: CHAIN_ID, receiverPk, auditorPk });
      return {
        input: b.input,
        pcts: [
          { words: b.receiverPCT, at: "ReceiverPCT" },
          { words: b.auditorPCT, at: "AuditorPCT" },
        ],
      };
    },
    burn: () => {
      const b = burnInputs({ sk: senderSk, value: VALUE, balance: BALANCE_AMOUNT, balanceCT, auditorPk });
      return { input: b.input, pcts: [{ words: b.auditorPCT, at: "AuditorPCT" }] };
    },
  };

  for (const name of CIRCUIT_NAMES) {
    it(`${name}: proves, verifies, and exposes the interface's public signals in order`, async () => {
      const { input, pcts } = cases[name]();
      const a = circuitArtifacts(name);
      const { proof, publicSignals } = await snarkjs.groth16.fullProve(input, a.wasm, a.zkey);
      const vkey = JSON.parse(readFileSync(a.vkey, "utf8"));
      expect(await snarkjs.groth16.verify(vkey, publicSignals, proof)).toBe(true);

      const expected = PUBLIC_SIGNALS[name].flatMap((s) => input[s]!);
      expect(expected).toHaveLength(PUBLIC_COUNT[name]);
      expect(publicSignals).toEqual(expected);
      // A PCT's 7 words are its four ciphertext words, authKey and nonce, contiguous in the signals.
      for (const { words, at: first } of pcts) {
        const names = PUBLIC_SIGNALS[name];
        const i = names.slice(0, names.indexOf(first)).flatMap((s) => input[s]!).length;
        expect(publicSignals.slice(i, i + 7)).toEqual(decs(words));
      }

      const tampered = [...publicSignals];
      tampered[0] = dec(mod(BigInt(tampered[0]!) + 1n));
      expect(await snarkjs.groth16.verify(vkey, tampered, proof)).toBe(false);
    });
  }
});
