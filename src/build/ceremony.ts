/**
 * The multi-party Groth16 phase-2 setup of this project's circuits (`npm run ceremony`).
 *
 * A ceremony directory holds, for each circuit, the chain of proving keys `<circuit>_NNNN.zkey`,
 * NNNN being the number of contributions in the file: `init` writes `_0000` from the circuit's
 * r1cs and the ptau, each participant's `contribute` adds one to the newest file of every circuit
 * and the directory is passed on, `beacon` adds the coordinator's public random beacon, `verify`
 * checks the newest keys against the r1cs and the ptau and lists their contributions, and
 * `export` installs them in build/ where the build puts its own keys (verification keys and
 * Solidity verifiers included), so that deploy and every prover use them.
 */
import { randomBytes } from "node:crypto";
import { closeSync, copyFileSync, existsSync, mkdirSync, openSync, readdirSync, readSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { blake2b } from "@noble/hashes/blake2.js";
import { CIRCUIT_NAMES, type CircuitName, circuitArtifacts } from "../eerc/artifacts.js";
import { terminateCurveWorkers } from "../eerc/prover.js";
import { loadSnarkjs } from "../eerc/snarkjs.js";
import { BaseError, InvalidFieldError } from "../errors.js";
import { buildStaleCircuits, CIRCUITS_LOCK, exportKeys, type Ptau, resolvePtau, sourceDigest, withBuildLock } from "./circuits.js";

/** Contributions of entropy (a beacon aside) a proving key needs before it leaves anvil. */
export const MIN_CEREMONY_CONTRIBUTIONS = 2;

export type ZkeyContribution = {
  /** 1 for the first contribution. */
  index: number;
  name?: string;
  /** blake2b-512 of the contribution's public key, as snarkjs prints it (hex). */
  hash: string;
  /** Set for a public random beacon: its seed (hex) and 2^iterationsExp hash iterations. */
  beacon?: { hash: string; iterationsExp: number };
};

export type ZkeyContributions = { circuitHash: string; contributions: ZkeyContribution[] };

/** A file that is not a Groth16 zkey, or not a readable one. */
export class ZkeyFormatError extends InvalidFieldError {
  readonly code = "ZKEY_FORMAT";
  constructor(file: string, reason: string) {
    super("zkey", file, reason);
  }
}

/** A bad argument or ceremony directory; `field` names the argument or file. */
export class CeremonyInputError extends InvalidFieldError {
  readonly code = "CEREMONY_INPUT";
  constructor(field: string, reason: string) {
    super("ceremony", field, reason);
  }
}

/** A proving key whose chain of contributions does not lead from the circuit's r1cs and the ptau to it. */
export class ZkeyVerificationError extends BaseError {
  readonly code = "ZKEY_NOT_VERIFIED";
  constructor(
    readonly circuit: CircuitName,
    readonly zkey: string,
    reason: string,
  ) {
    super(`circuit ${circuit}: ${zkey} ${reason}`, { field: zkey });
  }
}

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString("hex");

/** Reads the zkey's sections: type → [offset, size] of its data. */
function readSections(fd: number, file: string): Map<number, { offset: number; size: number }> {
  const head = Buffer.alloc(12);
  if (readSync(fd, head, 0, 12, 0) !== 12 || head.toString("latin1", 0, 4) !== "zkey")
    throw new ZkeyFormatError(file, "is not a zkey file");
  const count = head.readUInt32LE(8);
  const sections = new Map<number, { offset: number; size: number }>();
  let offset = 12;
  const entry = Buffer.alloc(12);
  for (let i = 0; i < count; i++) {
    if (readSync(fd, entry, 0, 12, offset) !== 12) throw new ZkeyFormatError(file, "is truncated");
    const type = entry.readUInt32LE(0);
    const size = Number(entry.readBigUInt64LE(4));
    sections.set(type, { offset: offset + 12, size });
    offset += 12 + size;
  }
  return sections;
}

function readAt(fd: number, file: string, offset: number, length: number): Buffer {
  const buf = Buffer.alloc(length);
  if (readSync(fd, buf, 0, length, offset) !== length) throw new ZkeyFormatError(file, "is truncated");
  return buf;
}

const littleEndian = (b: Uint8Array): bigint => BigInt(`0x${Buffer.from(b).reverse().toString("hex") || "0"}`);

function modInverse(a: bigint, m: bigint): bigint {
  let [r0, r1, s0, s1] = [a % m, m, 1n, 0n];
  while (r1 !== 0n) {
    const q = r0 / r1;
    [r0, r1] = [r1, r0 - q * r1];
    [s0, s1] = [s1, s0 - q * s1];
  }
  return ((s0 % m) + m) % m;
}

/**
 * A contribution's public key as snarkjs hashes it: each coordinate out of the file's Montgomery
 * little-endian form into plain big-endian, an F2 element's c1 before c0, 0x40 marking infinity.
 */
function uncompressed(point: Buffer, n8: number, q: bigint, rInv: bigint): Uint8Array {
  const out = new Uint8Array(point.length);
  const coords = point.length / n8;
  const perCoordinate = coords === 2 ? 1 : 2;
  for (let c = 0; c < coords; c += perCoordinate) {
    for (let k = 0; k < perCoordinate; k++) {
      const src = c + k;
      const dst = c + (perCoordinate - 1 - k);
      const value = (littleEndian(point.subarray(src * n8, (src + 1) * n8)) * rInv) % q;
      out.set(Buffer.from(value.toString(16).padStart(n8 * 2, "0"), "hex"), dst * n8);
    }
  }
  if (point.every((b) => b === 0)) out[0]! |= 0x40;
  return out;
}

/** The contributions recorded in a Groth16 zkey (its MPC section), with their hashes. Reads headers only. */
export function readZkeyContributions(file: string): ZkeyContributions {
  if (!existsSync(file)) throw new ZkeyFormatError(file, "does not exist");
  const fd = openSync(file, "r");
  try {
    const sections = readSections(fd, file);
    const protocol = sections.get(1);
    const header = sections.get(2);
    const mpc = sections.get(10);
    if (!protocol || !header || !mpc) throw new ZkeyFormatError(file, "lacks the Groth16 header or contributions section");
    if (readAt(fd, file, protocol.offset, 4).readUInt32LE(0) !== 1) throw new ZkeyFormatError(file, "is not a Groth16 key");
    const n8 = readAt(fd, file, header.offset, 4).readUInt32LE(0);
    const q = littleEndian(readAt(fd, file, header.offset + 4, n8));
    const rInv = modInverse((1n << BigInt(8 * n8)) % q, q);
    const data = readAt(fd, file, mpc.offset, mpc.size);
    const circuitHash = hex(data.subarray(0, 64));
    const count = data.readUInt32LE(64);
    const contributions: ZkeyContribution[] = [];
    let at = 68;
    for (let i = 0; i < count; i++) {
      // deltaAfter, g1_s, g1_sx (G1), g2_spx (G2), the transcript, the type, then the parameters.
      const g1 = 2 * n8;
      const g2 = 4 * n8;
      const fixed = 3 * g1 + g2 + 64;
      if (at + fixed + 8 > data.length) throw new ZkeyFormatError(file, `has a truncated contribution #${i + 1}`);
      const hasher = blake2b.create({ dkLen: 64 });
      for (const [offset, length] of [
        [0, g1],
        [g1, g1],
        [2 * g1, g1],
        [3 * g1, g2],
      ] as const) {
        hasher.update(uncompressed(data.subarray(at + offset, at + offset + length), n8, q, rInv));
      }
      hasher.update(data.subarray(at + 3 * g1 + g2, at + fixed));
      const type = data.readUInt32LE(at + fixed);
      const paramsLength = data.readUInt32LE(at + fixed + 4);
      const params = data.subarray(at + fixed + 8, at + fixed + 8 + paramsLength);
      const c: ZkeyContribution = { index: i + 1, hash: hex(hasher.digest()) };
      let iterationsExp = 0;
      let beaconHash = "";
      for (let p = 0; p < params.length; ) {
        const kind = params[p]!;
        if (kind === 1 || kind === 3) {
          const length = params[p + 1]!;
          const value = params.subarray(p + 2, p + 2 + length);
          if (kind === 1) c.name = Buffer.from(value).toString("utf8");
          else beaconHash = hex(value);
          p += 2 + length;
        } else if (kind === 2) {
          iterationsExp = params[p + 1]!;
          p += 2;
        } else {
          throw new ZkeyFormatError(file, `has an unknown parameter ${kind} in contribution #${i + 1}`);
        }
      }
      if (type === 1) c.beacon = { hash: beaconHash, iterationsExp };
      contributions.push(c);
      at += fixed + 8 + paramsLength;
    }
    return { circuitHash, contributions };
  } finally {
    closeSync(fd);
  }
}

/** Contributions of entropy: every contribution but the public beacons. */
export const entropyContributions = (c: ZkeyContributions): number => c.contributions.filter((x) => !x.beacon).length;

/** One line per contribution: number, name, hash, and the seed of a beacon. */
export function describeContributions(c: ZkeyContributions): string[] {
  return c.contributions.map(
    (x) =>
      `  #${x.index} ${x.name ?? "(unnamed)"}: ${x.hash}` +
      (x.beacon ? ` (beacon ${x.beacon.hash}, 2^${x.beacon.iterationsExp} iterations)` : ""),
  );
}

/**
 * Checks that `zkey`'s chain of contributions starts from the key the circuit's r1cs and the ptau
 * give (snarkjs' zKey.verifyFromR1cs) and returns its contributions.
 */
export async function verifyZkey(
  circuit: CircuitName,
  zkey: string,
  ptau: string,
  r1cs = circuitArtifacts(circuit).r1cs,
): Promise<ZkeyContributions> {
  const snarkjs = await loadSnarkjs();
  const contributions = readZkeyContributions(zkey);
  if (!existsSync(r1cs)) throw new CeremonyInputError(r1cs, "does not exist: run `npm run build:circuits` first");
  const errors: string[] = [];
  const logger = { error: (m: string) => errors.push(m.trim()), warn() {}, info() {}, debug() {} };
  let ok: boolean;
  try {
    ok = await snarkjs.zKey.verifyFromR1cs(r1cs, ptau, zkey, logger);
  } catch (err) {
    throw new ZkeyVerificationError(circuit, zkey, `could not be verified against ${r1cs} and ${ptau}: ${(err as Error).message}`);
  }
  if (!ok) {
    throw new ZkeyVerificationError(
      circuit,
      zkey,
      `does not verify against ${r1cs} and ${ptau}: ${errors.join("; ") || "a contribution does not follow from the previous one"}`,
    );
  }
  return contributions;
}

export type CeremonyOptions = {
  /** The ceremony directory. */
  dir: string;
  /** The circuits to work on (default: all five). */
  circuits?: readonly CircuitName[];
  log?: (line: string) => void;
};

/** `--circuit` values checked against the project's circuits. */
export function parseCircuits(values: readonly string[]): CircuitName[] {
  for (const v of values) {
    if (!(CIRCUIT_NAMES as readonly string[]).includes(v))
      throw new CeremonyInputError("--circuit", `"${v}" is not a circuit (${CIRCUIT_NAMES.join(", ")})`);
  }
  return values.length ? (values as CircuitName[]) : [...CIRCUIT_NAMES];
}

const FILE = /^([a-z]+)_(\d{4})\.zkey$/;

export const ceremonyFile = (dir: string, circuit: CircuitName, contributions: number) =>
  join(dir, `${circuit}_${String(contributions).padStart(4, "0")}.zkey`);

/** The newest key of a circuit in the ceremony directory, checked to hold as many contributions as its name says. */
export function currentZkey(dir: string, circuit: CircuitName): { file: string; contributions: ZkeyContributions } {
  if (!existsSync(dir)) throw new CeremonyInputError(dir, "does not exist: start a ceremony with `npm run ceremony -- init <dir>`");
  const numbers = readdirSync(dir)
    .map((f) => FILE.exec(f))
    .filter((m) => m?.[1] === circuit)
    .map((m) => Number(m![2]));
  if (numbers.length === 0)
    throw new CeremonyInputError(dir, `holds no ${circuit}_NNNN.zkey: start with \`npm run ceremony -- init ${dir}\``);
  const n = Math.max(...numbers);
  const file = ceremonyFile(dir, circuit, n);
  const contributions = readZkeyContributions(file);
  if (contributions.contributions.length !== n) {
    throw new CeremonyInputError(file, `holds ${contributions.contributions.length} contributions, not the ${n} its name says`);
  }
  return { file, contributions };
}

function nextFile(dir: string, circuit: CircuitName, current: number): string {
  const next = ceremonyFile(dir, circuit, current + 1);
  if (existsSync(next)) throw new CeremonyInputError(next, "already exists");
  return next;
}

/** Compiles the circuits if their r1cs is missing or stale, and writes each one's `_0000.zkey` from its r1cs and the ptau. */
export async function initCeremony(options: CeremonyOptions & { ptau?: string }): Promise<void> {
  const snarkjs = await loadSnarkjs();
  const { dir, circuits = CIRCUIT_NAMES, log = console.log } = options;
  const ptau = resolvePtau(options.ptau, "--ptau");
  mkdirSync(dir, { recursive: true });
  for (const circuit of circuits) {
    const taken = readdirSync(dir).find((f) => FILE.exec(f)?.[1] === circuit);
    if (taken) throw new CeremonyInputError(join(dir, taken), "already exists: this directory holds a ceremony for it");
  }
  try {
    await withBuildLock(CIRCUITS_LOCK, () => buildStaleCircuits({ names: circuits, keys: false, ptau: ptau.path, log }));
    for (const circuit of circuits) {
      const file = ceremonyFile(dir, circuit, 0);
      await snarkjs.zKey.newZKey(circuitArtifacts(circuit).r1cs, ptau.path, file);
      log(`${circuit}: ${file} (no contributions yet; ptau ${ptau.path}, sha256 ${ptau.digest})`);
    }
  } finally {
    await terminateCurveWorkers();
  }
}

export type ContributionResult = { circuit: CircuitName; file: string; hash: string };

/** Adds one contribution, named `name`, to the newest key of every circuit in the directory. */
export async function contribute(options: CeremonyOptions & { name: string; entropy?: string }): Promise<ContributionResult[]> {
  const snarkjs = await loadSnarkjs();
  const { dir, circuits = CIRCUIT_NAMES, log = console.log } = options;
  if (!options.name.trim()) throw new CeremonyInputError("--name", "is required: the name your contribution is recorded under");
  if (options.name.length > 64) throw new CeremonyInputError("--name", "must be at most 64 characters (snarkjs records no more)");
  const current = circuits.map((circuit) => ({ circuit, ...currentZkey(dir, circuit) }));
  const results: ContributionResult[] = [];
  try {
    for (const { circuit, file, contributions } of current) {
      const next = nextFile(dir, circuit, contributions.contributions.length);
      // snarkjs mixes its own random bytes with this entropy.
      const entropy = `${options.entropy ?? ""}${randomBytes(32).toString("hex")}`;
      const hash = hex(await snarkjs.zKey.contribute(file, next, options.name, entropy));
      results.push({ circuit, file: next, hash });
      log(`${circuit}: ${next} contribution #${contributions.contributions.length + 1} ${options.name}: ${hash}`);
    }
  } finally {
    await terminateCurveWorkers();
  }
  return results;
}

/** Applies a public random beacon (a hex seed nobody could know in advance) as the last contribution. */
export async function applyBeacon(
  options: CeremonyOptions & { beaconHash: string; iterationsExp?: number; name?: string },
): Promise<ContributionResult[]> {
  const snarkjs = await loadSnarkjs();
  const { dir, circuits = CIRCUIT_NAMES, log = console.log, iterationsExp = 10, name = "final beacon" } = options;
  if (!/^([0-9a-fA-F]{2}){1,255}$/.test(options.beaconHash)) throw new CeremonyInputError("--hash", "must be 1 to 255 bytes of hex");
  if (!Number.isInteger(iterationsExp) || iterationsExp < 10 || iterationsExp > 63) {
    throw new CeremonyInputError("--iterations", "must be an integer from 10 to 63 (2^N hash iterations)");
  }
  const current = circuits.map((circuit) => ({ circuit, ...currentZkey(dir, circuit) }));
  const results: ContributionResult[] = [];
  try {
    for (const { circuit, file, contributions } of current) {
      if (entropyContributions(contributions) === 0) throw new CeremonyInputError(file, "has no contribution yet: the beacon comes last");
      const next = nextFile(dir, circuit, contributions.contributions.length);
      const hash = await snarkjs.zKey.beacon(file, next, name, options.beaconHash, iterationsExp);
      if (hash === false) throw new CeremonyInputError("--hash", "was refused by snarkjs");
      results.push({ circuit, file: next, hash: hex(hash) });
      log(`${circuit}: ${next} beacon #${contributions.contributions.length + 1}: ${hex(hash)}`);
    }
  } finally {
    await terminateCurveWorkers();
  }
  return results;
}

export type VerifiedKey = { circuit: CircuitName; file: string; contributions: ZkeyContributions };

/**
 * Verifies the newest key of each circuit in `dir` (or, without `dir`, the keys in build/) against
 * the circuit's r1cs and the ptau, and lists its contributions.
 */
export async function verifyCeremony(options: Partial<CeremonyOptions> & { ptau?: string }): Promise<VerifiedKey[]> {
  const { dir, circuits = CIRCUIT_NAMES, log = console.log } = options;
  const ptau = resolvePtau(options.ptau, "--ptau");
  const files = circuits.map((circuit) => ({ circuit, file: dir ? currentZkey(dir, circuit).file : circuitArtifacts(circuit).zkey }));
  const verified: VerifiedKey[] = [];
  try {
    for (const { circuit, file } of files) {
      const contributions = await verifyZkey(circuit, file, ptau.path);
      verified.push({ circuit, file, contributions });
      log(`${circuit}: ${file} verifies against ${circuitArtifacts(circuit).r1cs} and ${ptau.path}`);
      log(`  circuit hash ${contributions.circuitHash}`);
      for (const line of describeContributions(contributions)) log(line);
    }
  } finally {
    await terminateCurveWorkers();
  }
  return verified;
}

/** What export requires of a final key: enough contributions of entropy, then the beacon. */
function checkFinal(file: string, c: ZkeyContributions): void {
  const n = entropyContributions(c);
  if (n < MIN_CEREMONY_CONTRIBUTIONS) {
    throw new CeremonyInputError(file, `has ${n} contribution(s) of entropy: a ceremony needs at least ${MIN_CEREMONY_CONTRIBUTIONS}`);
  }
  if (!c.contributions.at(-1)?.beacon)
    throw new CeremonyInputError(file, "does not end with a beacon: run `npm run ceremony -- beacon` first");
}

/**
 * Verifies each circuit's final key, then installs it in build/ as the build's own proving key,
 * with its verification key and Solidity verifier, and stamps it so the build keeps it.
 */
export async function exportCeremony(options: CeremonyOptions & { ptau?: string }): Promise<VerifiedKey[]> {
  const snarkjs = await loadSnarkjs();
  const { dir, circuits = CIRCUIT_NAMES, log = console.log } = options;
  const ptau: Ptau = resolvePtau(options.ptau, "--ptau");
  const finals = circuits.map((circuit) => ({ circuit, ...currentZkey(dir, circuit) }));
  for (const { file, contributions } of finals) checkFinal(file, contributions);
  try {
    return await withBuildLock(CIRCUITS_LOCK, async () => {
      await buildStaleCircuits({ names: circuits, keys: false, ptau: ptau.path, log });
      const verified: VerifiedKey[] = [];
      for (const { circuit, file } of finals) {
        const contributions = await verifyZkey(circuit, file, ptau.path);
        verified.push({ circuit, file, contributions });
      }
      for (const { circuit, file, contributions } of verified) {
        const a = circuitArtifacts(circuit);
        copyFileSync(file, a.zkey);
        await exportKeys(circuit);
        const info = await snarkjs.r1cs.info(a.r1cs);
        writeFileSync(
          a.stamp,
          JSON.stringify({
            digest: sourceDigest(circuit, ptau.digest),
            keys: true,
            constraints: info.nConstraints,
            developmentPtau: ptau.development,
            ceremony: { contributions: contributions.contributions.length, final: contributions.contributions.at(-1)!.hash },
          }),
        );
        log(`${circuit}: ${file} verified and installed as ${a.zkey}, with ${a.vkey} and ${a.verifierSol}`);
      }
      return verified;
    });
  } finally {
    await terminateCurveWorkers();
  }
}
