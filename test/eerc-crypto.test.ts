import { babyjubjub } from "@noble/curves/misc.js";
import { blake512 } from "@noble/hashes/blake1.js";
import { poseidonDecrypt, poseidonEncrypt, poseidonPerm } from "@zk-kit/poseidon-cipher";
import * as lite from "poseidon-lite";
import type { Hex } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { describe, expect, it } from "vitest";
import { decryptBalance } from "../src/eerc/balance.js";
import {
  addPoints,
  BASE8,
  FIELD_MODULUS,
  IDENTITY,
  isInSubgroup,
  isOnCurve,
  mulBase,
  mulBasePublic,
  mulFixedPoint,
  mulPoint,
  negPoint,
  type Point,
  pointEquals,
  randomScalar,
  SUBGROUP_ORDER,
  subPoints,
  sumPoints,
} from "../src/eerc/curve.js";
import {
  addEGCT,
  addPublicAmount,
  decryptElGamalPoint,
  type EGCT,
  encryptElGamal,
  encryptPublicAmount,
  isZeroEGCT,
  subEGCT,
  ZERO_EGCT,
} from "../src/eerc/elgamal.js";
import {
  BalanceViewCorruptError,
  EercError,
  InsufficientBalanceError,
  InvalidAmountError,
  InvalidPrivateKeyError,
  KeyMismatchError,
  PCTDecryptionError,
  validateAmount,
} from "../src/eerc/errors.js";
import { egctToStruct, pointToStruct, structToEGCT, structToPoint, toDecimalStrings } from "../src/eerc/format.js";
import {
  deriveKeyFromSignature,
  deriveKeyFromWallet,
  groundKeyHex,
  publicKeyOf,
  registrationHash,
  registrationMessage,
  validatePrivateKey,
} from "../src/eerc/keys.js";
import { decryptPCT, encryptPCT, isEmptyPCT, type PCT } from "../src/eerc/pct.js";
import {
  poseidonDecrypt as poseidonDecryptFast,
  poseidonEncrypt as poseidonEncryptFast,
  poseidonHash,
  poseidonPermutation,
} from "../src/eerc/poseidon.js";

const l = SUBGROUP_ORDER;

// Deterministic splitmix64 so failing property cases are reproducible.
function rng(seed: bigint) {
  let s = seed;
  const M = (1n << 64n) - 1n;
  const next64 = (): bigint => {
    s = (s + 0x9e3779b97f4a7c15n) & M;
    let z = s;
    z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & M;
    z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & M;
    return z ^ (z >> 31n);
  };
  /** uniform-ish in [0, n) for small n relative to 2^128 */
  const below = (n: bigint): bigint => ((next64() << 64n) | next64()) % n;
  return { next64, below };
}

const keypair = () => {
  const sk = randomScalar();
  return { sk, pk: mulBase(sk) };
};

describe("curve", () => {
  it("multiplies public scalars (variable time) exactly as the constant-time path", () => {
    for (const k of [0n, 1n, 2n, 1_000_000n, 12_345_678n, 2n ** 96n - 1n, 2n ** 96n, 2n ** 200n + 7n, l - 1n, l, l + 5n]) {
      expect(mulBasePublic(k)).toEqual(mulBase(k));
    }
  });

  it("sums points with a public multiple of Base8 as chained additions do", () => {
    const [p, q] = [mulBase(randomScalar()), mulBase(randomScalar())];
    expect(sumPoints([p, q])).toEqual(addPoints(p, q));
    expect(sumPoints([p], 5n)).toEqual(addPoints(p, mulBase(5n)));
    expect(sumPoints([p, q], 2n ** 100n + 3n)).toEqual(addPoints(addPoints(p, q), mulBase(2n ** 100n + 3n)));
    expect(sumPoints([])).toEqual(IDENTITY);
    expect(sumPoints([negPoint(BASE8)], 1n)).toEqual(IDENTITY);
    expect(() => sumPoints([[1n, 2n]])).toThrow(RangeError);
  });

  it("matches noble's Base8 and subgroup order", () => {
    const B = babyjubjub.Point.BASE.toAffine();
    expect([B.x, B.y]).toEqual(BASE8);
    expect(babyjubjub.Point.CURVE().n).toBe(l);
    expect(babyjubjub.Point.CURVE().p).toBe(FIELD_MODULUS);
    expect(isOnCurve(BASE8)).toBe(true);
    expect(isInSubgroup(BASE8)).toBe(true);
    expect(mulBase(l)).toEqual(IDENTITY);
  });

  it("group laws hold and zero scalars give the identity", () => {
    const a = randomScalar();
    const b = randomScalar();
    expect(addPoints(mulBase(a), mulBase(b))).toEqual(mulBase((a + b) % l));
    expect(subPoints(mulBase(a), mulBase(b))).toEqual(mulBase((a - b + l) % l));
    expect(addPoints(mulBase(a), negPoint(mulBase(a)))).toEqual(IDENTITY);
    expect(mulPoint(mulBase(a), b)).toEqual(mulBase((a * b) % l));
    expect(mulPoint(mulBase(a), 0n)).toEqual(IDENTITY);
    expect(mulBase(0n)).toEqual(IDENTITY);
    expect(mulPoint(IDENTITY, b)).toEqual(IDENTITY);
    expect(pointEquals(mulBase(a), mulBase(a))).toBe(true);
  });

  it("multiplies a long-lived point exactly as mulPoint does, past the tables it keeps", () => {
    // (0, -1) has order 2: a point outside the subgroup, multiplied by the integer k as mulPoint does.
    const outside = addPoints(mulBase(randomScalar()), [0n, FIELD_MODULUS - 1n]);
    const points = [...Array.from({ length: 20 }, () => mulBase(randomScalar())), outside, IDENTITY];
    for (const round of [1, 2]) {
      for (const P of points) {
        for (const k of [0n, 1n, 2n, 15n, 16n, l - 1n, randomScalar(), randomScalar() >> 128n]) {
          expect(mulFixedPoint(P, k), `round ${round}`).toEqual(mulPoint(P, k));
        }
      }
    }
    expect(() => mulFixedPoint(BASE8, l)).toThrow(RangeError);
    expect(() => mulFixedPoint([1n, 2n], 5n)).toThrow(RangeError);
  });

  it("rejects off-curve points and out-of-range scalars", () => {
    expect(isOnCurve([1n, 2n])).toBe(false);
    expect(isOnCurve([BASE8[0] + FIELD_MODULUS, BASE8[1]])).toBe(false);
    expect(() => mulPoint([1n, 2n], 5n)).toThrow(RangeError);
    expect(() => addPoints([0n, 0n], BASE8)).toThrow(RangeError);
    expect(() => mulPoint(BASE8, l)).toThrow(RangeError);
    expect(() => mulPoint(BASE8, -1n)).toThrow(RangeError);
    // (0, -1) has order 2: on the curve, outside the subgroup
    expect(isOnCurve([0n, FIELD_MODULUS - 1n])).toBe(true);
    expect(isInSubgroup([0n, FIELD_MODULUS - 1n])).toBe(false);
  });

  it("randomScalar stays in [1, l)", () => {
    for (let i = 0; i < 200; i++) {
      const k = randomScalar();
      expect(k >= 1n && k < l).toBe(true);
    }
  });
});

describe("key derivation", () => {
  const ANVIL_1_KEY: Hex = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d";
  const ANVIL_1_ADDR: Hex = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8";
  const SIG: Hex =
    "0xe4ad5577ea9e856fe3b2017ee0bd9c765398b379e67b0357c9b5749840d4a6f4103a3f1bf42a493794bbfc0d55b1f3a281dc986cd483de4b828999d330782b9e1c";
  const GROUND = "3dae8078731053357a9544fd68cbd05fafb95cc6494d89bf899cc86afc50436";
  const PK: Point = [
    16887138593123882947883534981969625779152838814765497030325487440806769818612n,
    19022938303835151396099503355078598936749586147885469346794394777386918080344n,
  ];

  it("builds the registration message with a lowercased address", () => {
    expect(registrationMessage(ANVIL_1_ADDR)).toBe("eERC\nRegistering user with\n Address:0x70997970c51812dc3a010c7d01b50e0d17dc79c8");
  });

  it("reproduces the official vector from the signature", () => {
    expect(groundKeyHex(SIG)).toBe(GROUND);
    expect(GROUND.length).toBe(63);
    expect(publicKeyOf(deriveKeyFromSignature(SIG))).toEqual(PK);
  });

  it("the wallet signs the vector's signature and derives the same key", async () => {
    const account = privateKeyToAccount(ANVIL_1_KEY);
    expect(account.address).toBe(ANVIL_1_ADDR);
    expect(await account.signMessage({ message: registrationMessage(account.address) })).toBe(SIG);
    const sk = await deriveKeyFromWallet(account);
    expect(sk).toBe(deriveKeyFromSignature(SIG));
    expect(publicKeyOf(sk)).toEqual(PK);
  });

  it("drops the unpaired last nibble exactly like Buffer.from(hex, 'hex')", () => {
    // Independent formatting through Node's Buffer, over signatures of both hex parities.
    const viaBuffer = (sig: Hex): bigint => {
      const h = blake512(Buffer.from(groundKeyHex(sig), "hex")).slice(0, 32);
      h[0] &= 0xf8;
      h[31] = (h[31] & 0x7f) | 0x40;
      return (BigInt(`0x${Buffer.from(h).reverse().toString("hex")}`) >> 3n) % l;
    };
    const r = rng(7n);
    const parities = new Set<number>();
    for (let i = 0; i < 150; i++) {
      const words = Array.from({ length: 9 }, () => r.next64().toString(16).padStart(16, "0"));
      const sig = `0x${words.join("").slice(0, 130)}` as Hex;
      parities.add(groundKeyHex(sig).length % 2);
      expect(deriveKeyFromSignature(sig)).toBe(viaBuffer(sig));
    }
    expect(parities).toEqual(new Set([0, 1]));
    // Keeping the nibble (e.g. by left-padding to even length) would give another key.
    const padded = blake512(Buffer.from(`0${GROUND}`, "hex"));
    expect(padded).not.toEqual(blake512(Buffer.from(GROUND, "hex")));
  });

  it("validates private keys and computes the registration hash", () => {
    for (const bad of [0n, -1n, l, l + 1n]) expect(() => validatePrivateKey(bad)).toThrow(InvalidPrivateKeyError);
    validatePrivateKey(1n);
    validatePrivateKey(l - 1n);
    const sk = deriveKeyFromSignature(SIG);
    // The circuit's own output is compared with registrationHash in test/circuits.test.ts; here, what it binds.
    const hash = registrationHash(43113n, sk, ANVIL_1_ADDR);
    expect(registrationHash(31337n, sk, ANVIL_1_ADDR)).not.toBe(hash);
    expect(registrationHash(43113n, sk + 1n, ANVIL_1_ADDR)).not.toBe(hash);
    expect(registrationHash(43113n, sk, "0x0000000000000000000000000000000000000001")).not.toBe(hash);
    expect(() => registrationHash(1n, 0n, ANVIL_1_ADDR)).toThrow(InvalidPrivateKeyError);
  });
});

describe("ElGamal", () => {
  it("round-trips m·Base8", () => {
    const { sk, pk } = keypair();
    for (const m of [0n, 1n, 1_000_000n, l - 1n]) {
      const { ct, random } = encryptElGamal(m, pk);
      expect(ct.c1).toEqual(mulBase(random));
      expect(decryptElGamalPoint(ct, sk)).toEqual(mulBase(m));
    }
  });

  it("is additively homomorphic", () => {
    const { sk, pk } = keypair();
    const a = encryptElGamal(700n, pk).ct;
    const b = encryptElGamal(250n, pk).ct;
    expect(decryptElGamalPoint(addEGCT(a, b), sk)).toEqual(mulBase(950n));
    expect(decryptElGamalPoint(subEGCT(a, b), sk)).toEqual(mulBase(450n));
    expect(decryptElGamalPoint(subEGCT(b, a), sk)).toEqual(mulBase(l - 450n));
    expect(decryptElGamalPoint(addEGCT(ZERO_EGCT, a), sk)).toEqual(mulBase(700n));
  });

  it("treats an unset (all-zero) on-chain balance as empty", () => {
    const { sk, pk } = keypair();
    const unset: EGCT = { c1: [0n, 0n], c2: [0n, 0n] };
    expect(isZeroEGCT(unset)).toBe(true);
    expect(isZeroEGCT(ZERO_EGCT)).toBe(true);
    expect(decryptElGamalPoint(unset, sk)).toEqual(IDENTITY);
    const a = encryptElGamal(5n, pk).ct;
    expect(isZeroEGCT(a)).toBe(false);
    expect(addEGCT(unset, a)).toEqual(a);
  });

  it("credits a public amount (a deposit) as adding its encryption with randomness 1 does", () => {
    const { sk, pk } = keypair();
    const a = encryptElGamal(700n, pk).ct;
    for (const value of [0n, 1n, 16n, 1_000_000n, 2n ** 64n + 1n]) {
      expect(addPublicAmount(a, value, pk)).toEqual(addEGCT(a, encryptPublicAmount(value, pk)));
    }
    expect(decryptElGamalPoint(addPublicAmount(a, 300n, pk), sk)).toEqual(mulBase(1_000n));
    expect(addPublicAmount({ c1: [0n, 0n], c2: [0n, 0n] }, 9n, pk)).toEqual(encryptPublicAmount(9n, pk));
  });

  it("does not decrypt under another key, and rejects bad inputs", () => {
    const alice = keypair();
    const bob = keypair();
    const { ct } = encryptElGamal(42n, alice.pk);
    expect(decryptElGamalPoint(ct, bob.sk)).not.toEqual(mulBase(42n));
    expect(() => encryptElGamal(-1n, alice.pk)).toThrow(InvalidAmountError);
    expect(() => encryptElGamal(l, alice.pk)).toThrow(InvalidAmountError);
    expect(() => encryptElGamal(1n, alice.pk, 0n)).toThrow(RangeError);
    expect(() => encryptElGamal(1n, [1n, 2n])).toThrow(RangeError);
  });
});

describe("Poseidon", () => {
  const field = () => randomScalar() * 8n + BigInt(Math.floor(Math.random() * 8));
  const liteHash = (inputs: bigint[]) => (lite as unknown as Record<string, (x: bigint[]) => bigint>)[`poseidon${inputs.length}`]!(inputs);

  it("permutes every width exactly as the reference permutation", () => {
    for (let t = 2; t <= 15; t++) {
      for (const state of [Array.from({ length: t }, field), Array(t).fill(0n), Array(t).fill(FIELD_MODULUS - 1n)]) {
        expect(poseidonPermutation(state)).toEqual(poseidonPerm(state));
      }
    }
    // Inputs at or above p are reduced first, as the reference does.
    expect(poseidonPermutation([FIELD_MODULUS + 5n, 1n, 2n, 3n])).toEqual(poseidonPerm([5n, 1n, 2n, 3n]));
    expect(() => poseidonPermutation([1n])).toThrow(RangeError);
  });

  it("hashes 1 to 16 inputs as poseidon-lite does", () => {
    for (let n = 1; n <= 16; n++) {
      const inputs = Array.from({ length: n }, field);
      expect(poseidonHash(inputs)).toBe(liteHash(inputs));
    }
  });

  it("encrypts and decrypts exactly as @zk-kit/poseidon-cipher", () => {
    for (let length = 1; length <= 7; length++) {
      const message = Array.from({ length }, field);
      const key = mulBase(randomScalar());
      const nonce = randomScalar() >> 125n;
      const ciphertext = poseidonEncryptFast(message, key, nonce);
      expect(ciphertext).toEqual(poseidonEncrypt(message, key, nonce));
      expect(poseidonDecryptFast(ciphertext, key, nonce, length)).toEqual(poseidonDecrypt(ciphertext, key, nonce, length));
      expect(poseidonDecryptFast(ciphertext, key, nonce, length)).toEqual(message);
    }
  });

  it("returns null where the reference throws: another key, another nonce, a changed word", () => {
    const message = [1n, 2n, 3n];
    const key = mulBase(randomScalar());
    const ciphertext = poseidonEncryptFast(message, key, 7n);
    const cases: [bigint[], Point, bigint][] = [
      [ciphertext, mulBase(randomScalar()), 7n],
      [ciphertext, key, 8n],
      ...ciphertext.map((_, i): [bigint[], Point, bigint] => [ciphertext.map((w, j) => (i === j ? (w + 1n) % FIELD_MODULUS : w)), key, 7n]),
    ];
    for (const [c, k, n] of cases) {
      expect(poseidonDecryptFast(c, k, n, 3)).toBeNull();
      expect(() => poseidonDecrypt(c, k, n, 3)).toThrow();
    }
    expect(poseidonDecryptFast(ciphertext.slice(0, 3), key, 7n, 3)).toBeNull();
    expect(() => poseidonEncryptFast(message, key, 2n ** 128n)).toThrow(RangeError);
  });
});

describe("PCT", () => {
  it("round-trips 0, 1, 10^6 and large values", () => {
    const { sk, pk } = keypair();
    for (const amount of [0n, 1n, 1_000_000n, 2n ** 128n + 3n, l - 1n]) {
      const enc = encryptPCT(amount, pk);
      expect(enc.pct).toHaveLength(7);
      expect(enc.pct.slice(4, 6)).toEqual(mulBase(enc.random));
      expect(enc.nonce < 2n ** 128n).toBe(true);
      expect(decryptPCT(enc.pct, sk)).toBe(amount);
    }
  });

  it("throws PCTDecryptionError under a wrong key or after tampering", () => {
    const alice = keypair();
    const bob = keypair();
    const { pct } = encryptPCT(123n, alice.pk);
    expect(() => decryptPCT(pct, bob.sk)).toThrow(PCTDecryptionError);
    for (const i of [0, 1, 2, 3, 6]) {
      const t = [...pct];
      t[i] = (t[i] + 1n) % FIELD_MODULUS;
      expect(() => decryptPCT(t, alice.sk)).toThrow(PCTDecryptionError);
    }
    const moved = [...pct];
    [moved[4], moved[5]] = addPoints([pct[4], pct[5]], BASE8);
    expect(() => decryptPCT(moved, alice.sk)).toThrow(PCTDecryptionError);
    expect(() => decryptPCT([...pct.slice(0, 4), 1n, 2n, pct[6]], alice.sk)).toThrow(PCTDecryptionError);
    expect(() => decryptPCT(pct.slice(0, 6), alice.sk)).toThrow(PCTDecryptionError);
    expect(() => decryptPCT(new Array(7).fill(0n), alice.sk)).toThrow(PCTDecryptionError);
  });

  it("interoperates with poseidonDecrypt under an independently computed shared key", () => {
    const { sk, pk } = keypair();
    const random = randomScalar();
    const nonce = 2n ** 128n - 1n;
    const enc = encryptPCT(987_654_321n, pk, { random, nonce });
    expect(enc.random).toBe(random);
    expect(enc.nonce).toBe(nonce);
    // K via noble directly, from both sides of the ECDH.
    const Ks = babyjubjub.Point.fromAffine({ x: pk[0], y: pk[1] }).multiply(random).toAffine();
    const Kr = babyjubjub.Point.BASE.multiply(random).multiply(sk).toAffine();
    expect(Kr).toEqual(Ks);
    expect(poseidonDecrypt(enc.ciphertext, [Ks.x, Ks.y], nonce, 1)).toEqual([987_654_321n]);
    expect(enc.ciphertext).toEqual(poseidonEncrypt([987_654_321n], [Kr.x, Kr.y], nonce));
    expect(enc.pct).toEqual([...enc.ciphertext, enc.authKey[0], enc.authKey[1], nonce]);
  });

  it("validates inputs", () => {
    const { pk } = keypair();
    expect(() => encryptPCT(-1n, pk)).toThrow(InvalidAmountError);
    expect(() => encryptPCT(l, pk)).toThrow(InvalidAmountError);
    expect(() => encryptPCT(1n, pk, { nonce: 2n ** 128n })).toThrow(RangeError);
    expect(() => encryptPCT(1n, pk, { random: 0n })).toThrow(RangeError);
    expect(isEmptyPCT(new Array(7).fill(0n))).toBe(true);
    expect(isEmptyPCT(encryptPCT(0n, pk).pct)).toBe(false);
  });
});

type View = { eGCT: EGCT; balancePCT: PCT; amountPCTs: { pct: PCT; index: bigint }[] };
const emptyView = (): View => ({ eGCT: ZERO_EGCT, balancePCT: new Array(7).fill(0n), amountPCTs: [] });

describe("balance", () => {
  it("decrypts empty views to 0", () => {
    const { sk } = keypair();
    expect(decryptBalance(emptyView(), sk)).toBe(0n);
    expect(decryptBalance({ ...emptyView(), eGCT: { c1: [0n, 0n], c2: [0n, 0n] } }, sk)).toBe(0n);
  });

  const consistent = () => {
    const { sk, pk } = keypair();
    const view: View = {
      eGCT: addEGCT(encryptElGamal(1000n, pk).ct, encryptElGamal(234n, pk).ct),
      balancePCT: encryptPCT(1000n, pk).pct,
      amountPCTs: [{ pct: encryptPCT(234n, pk).pct, index: 3n }],
    };
    return { sk, pk, view };
  };

  it("decrypts a consistent view", () => {
    const { sk, view } = consistent();
    expect(decryptBalance(view, sk)).toBe(1234n);
  });

  it("flags a PCT that does not decrypt", () => {
    const { sk, view } = consistent();
    const bad = [...view.amountPCTs[0].pct];
    bad[3] += 1n;
    const err = (() => {
      try {
        decryptBalance({ ...view, amountPCTs: [{ pct: bad, index: 3n }] }, sk);
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(BalanceViewCorruptError);
    expect((err as BalanceViewCorruptError).reason).toBe("pct-decryption");
    expect((err as BalanceViewCorruptError).pctIndex).toBe(3n);
    expect((err as Error).message).toMatch(/amountPCT #3/);
    expect(() => decryptBalance(view, randomScalar())).toThrow(BalanceViewCorruptError);
  });

  it("flags an EGCT that disagrees with the PCTs", () => {
    const { sk, pk, view } = consistent();
    const shifted = { ...view, eGCT: { c1: view.eGCT.c1, c2: addPoints(view.eGCT.c2, BASE8) } };
    expect(() => decryptBalance(shifted, sk)).toThrow(/egct-mismatch/);
    // A well-formed PCT for a different amount passes the tag but not the EGCT check.
    const swapped = { ...view, balancePCT: encryptPCT(999n, pk).pct };
    expect(() => decryptBalance(swapped, sk)).toThrow(BalanceViewCorruptError);
    const offCurve = { ...view, eGCT: { c1: [1n, 2n] as Point, c2: view.eGCT.c2 } };
    expect(() => decryptBalance(offCurve, sk)).toThrow(/egct-mismatch/);
    expect(() => decryptBalance({ ...view, amountPCTs: [] }, sk)).toThrow(/egct-mismatch/);
  });

  it("tracks the plain running balance over random credit/spend sequences", () => {
    const { sk, pk } = keypair();
    const r = rng(20250101n);
    const SEQUENCES = 250;
    let spends = 0;
    let lateCredits = 0;
    for (let s = 0; s < SEQUENCES; s++) {
      const view = emptyView();
      let plain = 0n;
      let txIndex = 0n;
      const steps = 1 + Number(r.below(6n));
      for (let step = 0; step < steps; step++) {
        const amountPlain = (pct: PCT) => decryptPCT(pct, sk);
        if (plain === 0n || r.below(3n) !== 0n) {
          const v = r.below(4n) === 0n ? 1n + r.below(2n ** 96n) : 1n + r.below(10n ** 12n);
          view.eGCT = addEGCT(view.eGCT, encryptElGamal(v, pk).ct);
          view.amountPCTs.push({ pct: encryptPCT(v, pk).pct, index: txIndex++ });
          plain += v;
        } else {
          // The spender proves against a snapshot that may predate the newest credits;
          // those stay as amountPCTs, the rest are folded into the new balancePCT.
          const k = Number(r.below(BigInt(view.amountPCTs.length) + 1n));
          if (k < view.amountPCTs.length) lateCredits++;
          const snapshot =
            (isEmptyPCT(view.balancePCT) ? 0n : amountPlain(view.balancePCT)) +
            view.amountPCTs.slice(0, k).reduce((acc, a) => acc + amountPlain(a.pct), 0n);
          if (snapshot === 0n) continue;
          const v = 1n + r.below(snapshot);
          view.eGCT = subEGCT(view.eGCT, encryptElGamal(v, pk).ct);
          view.balancePCT = encryptPCT(snapshot - v, pk).pct;
          view.amountPCTs = view.amountPCTs.slice(k);
          plain -= v;
          spends++;
        }
      }
      expect(decryptBalance(view, sk)).toBe(plain);
    }
    expect(spends).toBeGreaterThan(50);
    expect(lateCredits).toBeGreaterThan(5);
  });
});

describe("format and errors", () => {
  it("converts points and EGCTs to and from contract structs", () => {
    const { pk } = keypair();
    const { ct } = encryptElGamal(9n, pk);
    expect(structToPoint(pointToStruct(pk))).toEqual(pk);
    expect(egctToStruct(ct)).toEqual({ c1: { x: ct.c1[0], y: ct.c1[1] }, c2: { x: ct.c2[0], y: ct.c2[1] } });
    expect(structToEGCT(egctToStruct(ct))).toEqual(ct);
  });

  it("maps bigints to decimal strings deeply", () => {
    expect(toDecimalStrings({ a: 1n, b: [2n, [3n]], c: { d: l }, e: "x", f: 7 })).toEqual({
      a: "1",
      b: ["2", ["3"]],
      c: { d: l.toString() },
      e: "x",
      f: 7,
    });
  });

  it("errors carry stable codes and context, never the private key", () => {
    const sk = randomScalar();
    const addr: Hex = "0x70997970c51812dc3a010c7d01b50e0d17dc79c8";
    const errs: EercError[] = [
      new InsufficientBalanceError(addr, 5n, 7n),
      new KeyMismatchError(addr, mulBase(sk), mulBase(sk + 1n)),
      new InvalidAmountError(1.5, "must be a bigint"),
    ];
    expect(errs.map((e) => e.code)).toEqual(["INSUFFICIENT_BALANCE", "KEY_MISMATCH", "INVALID_AMOUNT"]);
    for (const e of errs) {
      expect(e).toBeInstanceOf(EercError);
      expect(e.message).not.toContain(sk.toString());
      expect(e.message).not.toContain(sk.toString(16));
    }
    expect((errs[0] as InsufficientBalanceError).amount).toBe(7n);
    expect(() => validateAmount(0n)).toThrow(InvalidAmountError);
    expect(() => validateAmount(1.5)).toThrow(InvalidAmountError);
    expect(() => validateAmount(l)).toThrow(InvalidAmountError);
    expect(validateAmount(0n, { allowZero: true })).toBe(0n);
    expect(validateAmount(l - 1n)).toBe(l - 1n);
  });
});
