import { C, M } from "@zk-kit/poseidon-cipher";
import { FIELD_MODULUS as F } from "./curve.js";

// The Poseidon permutation with circomlib's parameters (x^5 S-box, 8 full rounds, the constants
// and MDS matrices `@zk-kit/poseidon-cipher` and `poseidon-lite` ship), computed in its
// equivalent "optimised" form (Poseidon paper, appendix B), as circomlib's circuit does:
//  - in a partial round only the first element meets the S-box, so the round constants of the
//    others are carried forward through the matrix into the next round's;
//  - the dense matrix of a partial round is split into a sparse one and a matrix that leaves the
//    first element alone, which commutes with the next partial round and is carried forward too,
//    until the full rounds take it.
// A partial round then costs about 2t multiplications instead of t². Sums are reduced once, not
// after every addition. The output equals the reference permutation's (test/eerc-crypto.test.ts).

const FULL_ROUNDS = 8;
const PARTIAL_ROUNDS = [56, 57, 56, 60, 60, 63, 64, 63, 60, 66, 60, 65, 70, 60, 64, 68];

const mod = (a: bigint): bigint => {
  const r = a % F;
  return r < 0n ? r + F : r;
};

function inverse(a: bigint): bigint {
  let [r0, r1] = [mod(a), F];
  let [s0, s1] = [1n, 0n];
  while (r1 !== 0n) {
    const q = r0 / r1;
    [r0, r1] = [r1, r0 - q * r1];
    [s0, s1] = [s1, s0 - q * s1];
  }
  if (r0 !== 1n) throw new RangeError("not invertible");
  return mod(s0);
}

/** x solving A·x = b over the field (Gauss–Jordan; an MDS matrix's square submatrices are invertible). */
function solve(A: bigint[][], b: bigint[]): bigint[] {
  const n = b.length;
  const rows = A.map((row, i) => [...row, b[i]!]);
  for (let col = 0; col < n; col++) {
    const pivot = rows.findIndex((row, i) => i >= col && row[col] !== 0n);
    if (pivot < 0) throw new RangeError("singular matrix");
    [rows[col], rows[pivot]] = [rows[pivot]!, rows[col]!];
    const inv = inverse(rows[col]![col]!);
    rows[col] = rows[col]!.map((v) => mod(v * inv));
    for (let i = 0; i < n; i++) {
      if (i === col || rows[i]![col] === 0n) continue;
      const f = rows[i]![col]!;
      rows[i] = rows[i]!.map((v, j) => mod(v - f * rows[col]![j]!));
    }
  }
  return rows.map((row) => row[n]!);
}

const mulMatrix = (A: bigint[][], B: bigint[][]): bigint[][] =>
  A.map((row) => B[0]!.map((_, j) => mod(row.reduce((acc, a, k) => acc + a * B[k]![j]!, 0n))));

const mulVector = (A: readonly (readonly bigint[])[], v: readonly bigint[]): bigint[] =>
  A.map((row) => mod(row.reduce((acc, a, k) => acc + a * v[k]!, 0n)));

/** A partial round after the rewrite: x0 ← (x0 + constant)^5, then x0 ← row·x, x_j ← x_j + column_j·x0. */
type SparseRound = { constant: bigint; row: bigint[]; column: bigint[] };

type Schedule = {
  t: number;
  /** Round constants of the full rounds, first half then second. */
  fullConstants: bigint[][];
  partial: SparseRound[];
  /** Applied after the last partial round: the matrices carried forward. */
  carried: bigint[][];
  matrix: bigint[][];
};

function schedule(t: number): Schedule {
  const constants = C[t - 2] as bigint[];
  const matrix = (M[t - 2] as bigint[][]).map((row) => [...row]);
  const half = FULL_ROUNDS / 2;
  const partialRounds = PARTIAL_ROUNDS[t - 2]!;
  const rounds = FULL_ROUNDS + partialRounds;
  const roundConstants = Array.from({ length: rounds }, (_, r) => constants.slice(r * t, (r + 1) * t));

  // Constants of the non-S-box elements of each partial round, carried into the next round.
  for (let r = half; r < half + partialRounds; r++) {
    const rest = [0n, ...roundConstants[r]!.slice(1)];
    roundConstants[r] = [roundConstants[r]![0]!, ...Array(t - 1).fill(0n)];
    const carriedRest = mulVector(matrix, rest);
    roundConstants[r + 1] = roundConstants[r + 1]!.map((c, i) => mod(c + carriedRest[i]!));
  }

  // Each partial round's M·A (A: what earlier rounds carried, identity on the first element)
  // splits into A'·N with A' = [[1, 0], [0, Â]] and N sparse: Â = (M·A)[1:, 1:],
  // N's first row = (M·A)'s first row, N's first column below it = Â⁻¹·(M·A)[1:, 0].
  let carried = Array.from({ length: t }, (_, i) => Array.from({ length: t }, (_, j): bigint => (i === j ? 1n : 0n)));
  const partial: SparseRound[] = [];
  for (let r = half; r < half + partialRounds; r++) {
    const B = mulMatrix(matrix, carried);
    const lower = B.slice(1).map((row) => row.slice(1));
    const column = solve(
      lower,
      B.slice(1).map((row) => row[0]!),
    );
    partial.push({ constant: roundConstants[r]![0]!, row: B[0]!, column });
    carried = [Array.from({ length: t }, (_, j): bigint => (j === 0 ? 1n : 0n)), ...lower.map((row) => [0n, ...row])];
  }
  return {
    t,
    fullConstants: [...roundConstants.slice(0, half), ...roundConstants.slice(half + partialRounds)],
    partial,
    carried,
    matrix,
  };
}

const schedules = new Map<number, Schedule>();

const pow5 = (x: bigint): bigint => {
  const x2 = (x * x) % F;
  return (x2 * x2 * x) % F;
};

function fullRound(s: bigint[], constants: readonly bigint[], matrix: readonly (readonly bigint[])[]): bigint[] {
  const boxed = s.map((x, i) => pow5(x + constants[i]!));
  return matrix.map((row) => {
    let acc = 0n;
    for (let j = 0; j < row.length; j++) acc += row[j]! * boxed[j]!;
    return acc % F;
  });
}

/** The Poseidon permutation of `state` (t = state.length, 2 ≤ t ≤ 17); each input is reduced mod p first. */
export function poseidonPermutation(state: readonly bigint[]): bigint[] {
  const t = state.length;
  if (t < 2 || t > PARTIAL_ROUNDS.length + 1) throw new RangeError(`Poseidon state must have 2 to 17 elements, not ${t}`);
  let sch = schedules.get(t);
  if (!sch) {
    sch = schedule(t);
    schedules.set(t, sch);
  }
  const half = FULL_ROUNDS / 2;
  let s = state.map(mod);
  for (let r = 0; r < half; r++) s = fullRound(s, sch.fullConstants[r]!, sch.matrix);
  for (const { constant, row, column } of sch.partial) {
    const x0 = pow5(s[0]! + constant);
    let acc = row[0]! * x0;
    for (let j = 1; j < t; j++) acc += row[j]! * s[j]!;
    // Left unreduced: 56 to 70 products of two field elements stay below 2^515, and a reduction
    // costs four times a multiplication.
    for (let j = 1; j < t; j++) s[j] = s[j]! + column[j - 1]! * x0;
    s[0] = acc % F;
  }
  s = mulVector(
    sch.carried,
    s.map((x) => x % F),
  );
  for (let r = half; r < FULL_ROUNDS; r++) s = fullRound(s, sch.fullConstants[r]!, sch.matrix);
  return s;
}

/** Poseidon hash of 1 to 16 field elements (circomlib's `Poseidon(n)`, `poseidon-lite`'s `poseidonN`). */
export function poseidonHash(inputs: readonly bigint[]): bigint {
  return poseidonPermutation([0n, ...inputs])[0]!;
}

const TWO_128 = 1n << 128n;

/** The sponge's initial state: (0, key.x, key.y, nonce + length·2^128). */
const cipherState = (key: readonly bigint[], nonce: bigint, length: number): bigint[] => [
  0n,
  mod(key[0]!),
  mod(key[1]!),
  mod(nonce + BigInt(length) * TWO_128),
];

/**
 * Poseidon encryption (Dmitry Khovratovich's sponge construction, as `@zk-kit/poseidon-cipher`
 * and circomlib's PoseidonDecrypt define it): `message` padded to a multiple of 3 elements, then
 * the authentication tag. `key` is an ECDH shared point; `nonce` < 2^128.
 */
export function poseidonEncrypt(message: readonly bigint[], key: readonly bigint[], nonce: bigint): bigint[] {
  if (nonce < 0n || nonce >= TWO_128) throw new RangeError("the nonce must be in [0, 2^128)");
  const padded = message.map(mod);
  while (padded.length % 3 !== 0) padded.push(0n);
  let state = cipherState(key, nonce, message.length);
  const ciphertext: bigint[] = [];
  for (let i = 0; i < padded.length; i += 3) {
    state = poseidonPermutation(state);
    for (let j = 1; j <= 3; j++) state[j] = (state[j]! + padded[i + j - 1]!) % F;
    ciphertext.push(state[1]!, state[2]!, state[3]!);
  }
  ciphertext.push(poseidonPermutation(state)[1]!);
  return ciphertext;
}

/**
 * The `length` elements `ciphertext` decrypts to under `key` and `nonce`, or null where its
 * authentication tag does not check: a ciphertext for another key, or a changed one. As the
 * reference does, the padding is checked only past the first three elements.
 */
export function poseidonDecrypt(ciphertext: readonly bigint[], key: readonly bigint[], nonce: bigint, length: number): bigint[] | null {
  const chunks = Math.ceil(length / 3);
  if (ciphertext.length !== chunks * 3 + 1) return null;
  let state = cipherState(key, nonce, length);
  const message: bigint[] = [];
  for (let i = 0; i < chunks * 3; i += 3) {
    state = poseidonPermutation(state);
    for (let j = 1; j <= 3; j++) {
      message.push(mod(ciphertext[i + j - 1]! - state[j]!));
      state[j] = ciphertext[i + j - 1]!;
    }
  }
  if (length > 3 && message.slice(length).some((m) => m !== 0n)) return null;
  if (poseidonPermutation(state)[1] !== ciphertext[chunks * 3]) return null;
  return message.slice(0, length);
}
