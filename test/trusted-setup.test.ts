import { copyFileSync, cpSync, mkdirSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  applyBeacon,
  contribute,
  exportCeremony,
  initCeremony,
  readZkeyContributions,
  verifyCeremony,
  ZkeyVerificationError,
} from "../src/build/ceremony.js";
import { BUILD_CONTRIBUTION } from "../src/build/circuits.js";
import { type Anvil, startAnvil } from "../src/chain/anvil.js";
import { connectChain } from "../src/chain/clients.js";
import { ANVIL_KEYS } from "../src/chain/local.js";
import { deploy, deployOwnEerc, requireCeremonyKeys, SetupCeremonyRequiredError } from "../src/deployment/deploy.js";
import { CIRCUIT_NAMES, circuitArtifacts, defaultProvingArtifacts, PROJECT_ROOT, type ProvingArtifacts } from "../src/eerc/artifacts.js";
import { accounts } from "./indexer-helpers.js";
import { runScript } from "./run-script.js";

// The trusted setup of our own circuits: the build's keys, each of one contribution, and the
// auditor's verify of one against its r1cs and the ptau; the ceremony command run by two participants and a coordinator; deploy refusing keys of
// a single contribution on a chain other than anvil, and accepting a ceremony's.

const FUJI = 43113;
const BEACON = "5d1c7e0a3b9f2c4d6e8f0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f";
const dir = mkdtempSync(join(tmpdir(), "bs-ceremony-"));
let anvil: Anvil;

beforeAll(async () => {
  anvil = await startAnvil({ chainId: FUJI });
});

afterAll(async () => {
  await anvil?.stop();
});

const ceremony = (args: string[], env: Record<string, string> = {}) => runScript("scripts/ceremony.ts", args, env, 900_000);
const hashesIn = (stdout: string) => [...stdout.matchAll(/contribution #\d+ .*?: ([0-9a-f]{128})/g)].map((m) => m[1]);

describe("the build's proving keys", () => {
  // The build verifies each key against the r1cs and ptau it was made from, and fails otherwise
  // (src/build/circuits.ts). Here: each key carries the build's one contribution, and the
  // auditor's verify accepts the build's key as it finds it, from the r1cs and the ptau.
  it("each carries the build's single contribution; verify accepts the build's key against its r1cs and the ptau", async () => {
    for (const circuit of CIRCUIT_NAMES) {
      expect(readZkeyContributions(circuitArtifacts(circuit).zkey).contributions, circuit).toEqual([
        { index: 1, name: BUILD_CONTRIBUTION, hash: expect.stringMatching(/^[0-9a-f]{128}$/) },
      ]);
    }
    const lines: string[] = [];
    const verified = await verifyCeremony({ circuits: ["registration"], log: (l) => lines.push(l) });
    expect(verified.map((v) => [v.circuit, v.file])).toEqual([["registration", circuitArtifacts("registration").zkey]]);
    expect(verified[0]!.contributions.contributions).toEqual([
      { index: 1, name: BUILD_CONTRIBUTION, hash: expect.stringMatching(/^[0-9a-f]{128}$/) },
    ]);
    expect(lines.filter((l) => l.includes("verifies against"))).toHaveLength(1);
  }, 600_000);
});

describe("npm run ceremony", () => {
  const c = join(dir, "c");

  it("two participants contribute in turn; verify lists both contributions under their names and hashes", async () => {
    const init = await ceremony(["init", c, "--circuit", "registration"]);
    expect(init.code, init.stderr).toBe(0);
    expect(readZkeyContributions(join(c, "registration_0000.zkey")).contributions).toEqual([]);

    const alice = await ceremony(["contribute", c, "--name", "Alice", "--circuit", "registration"]);
    expect(alice.code, alice.stderr).toBe(0);
    const bob = await ceremony(["contribute", c, "--name", "Bob", "--entropy", "dice 4 2 6 1", "--circuit", "registration"]);
    expect(bob.code, bob.stderr).toBe(0);
    const [aliceHash] = hashesIn(alice.stdout);
    const [bobHash] = hashesIn(bob.stdout);

    const verify = await ceremony(["verify", c, "--circuit", "registration"]);
    expect(verify.code, verify.stderr).toBe(0);
    expect(verify.stdout).toContain(`registration: ${join(c, "registration_0002.zkey")} verifies against`);
    expect(verify.stdout).toContain(`#1 Alice: ${aliceHash}`);
    expect(verify.stdout).toContain(`#2 Bob: ${bobHash}`);

    const beacon = await ceremony(["beacon", c, "--hash", BEACON, "--circuit", "registration"]);
    expect(beacon.code, beacon.stderr).toBe(0);
    const final = readZkeyContributions(join(c, "registration_0003.zkey")).contributions;
    expect(final.map((x) => [x.name, x.hash])).toEqual([
      ["Alice", aliceHash],
      ["Bob", bobHash],
      ["final beacon", expect.stringMatching(/^[0-9a-f]{128}$/)],
    ]);
    expect(final[2]!.beacon).toEqual({ hash: BEACON, iterationsExp: 10 });
  }, 300_000);

  it("refuses a tampered key and another circuit's key, naming the file and what fails", async () => {
    const tampered = join(dir, "tampered");
    mkdirSync(tampered);
    const file = join(tampered, "registration_0003.zkey");
    copyFileSync(join(c, "registration_0003.zkey"), file);
    const bytes = readFileSync(file);
    bytes[bytes.length >> 1]! ^= 1; // one bit of a point in the middle of the key
    writeFileSync(file, bytes);
    const r = await ceremony(["verify", tampered, "--circuit", "registration"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`error: circuit registration: ${file} does not verify against`);
    expect(r.stderr).toContain("B1 section is not identical");

    const misplaced = join(dir, "misplaced");
    mkdirSync(misplaced);
    copyFileSync(join(c, "registration_0003.zkey"), join(misplaced, "withdraw_0003.zkey"));
    const wrong = verifyCeremony({ dir: misplaced, circuits: ["withdraw"], log: () => {} });
    await expect(wrong).rejects.toBeInstanceOf(ZkeyVerificationError);
    await expect(wrong).rejects.toThrow(`circuit withdraw: ${join(misplaced, "withdraw_0003.zkey")} does not verify against`);
  }, 300_000);

  it("refuses bad arguments, naming them", async () => {
    for (const [args, message] of [
      [["contribute", c, "--name", "Eve", "--circuit", "transfr"], 'error: ceremony: --circuit "transfr" is not a circuit'],
      [["contribute", c, "--circuit", "registration"], "error: ceremony: --name is required"],
      [["rollback", c], "error: ceremony: rollback is not a command"],
    ] as const) {
      const r = await ceremony([...args]);
      expect(r.code, args.join(" ")).toBe(1);
      expect(r.stderr, args.join(" ")).toContain(message);
    }
    const quiet = { log: () => {} };
    const registration = ["registration"] as const;
    await expect(applyBeacon({ dir: c, circuits: registration, beaconHash: "not-hex", ...quiet })).rejects.toThrow(
      "ceremony: --hash must be 1 to 255 bytes of hex",
    );
    await expect(applyBeacon({ dir: c, circuits: registration, beaconHash: BEACON, iterationsExp: 5, ...quiet })).rejects.toThrow(
      "ceremony: --iterations must be an integer from 10 to 63",
    );
    await expect(verifyCeremony({ dir: join(dir, "nowhere"), ...quiet })).rejects.toThrow(
      `ceremony: ${join(dir, "nowhere")} does not exist`,
    );
    await expect(verifyCeremony({ dir: c, circuits: registration, ptau: join(dir, "no.ptau"), ...quiet })).rejects.toThrow(
      `--ptau ${join(dir, "no.ptau")} does not exist`,
    );
    await expect(exportCeremony({ dir: c, circuits: ["transfer"], ...quiet })).rejects.toThrow(
      `ceremony: ${c} holds no transfer_NNNN.zkey`,
    );
    // One participant and a beacon is not a ceremony: export refuses it before touching build/.
    const solo = join(dir, "solo");
    await initCeremony({ dir: solo, circuits: registration, ...quiet });
    await contribute({ dir: solo, circuits: registration, name: "Mallory", ...quiet });
    await applyBeacon({ dir: solo, circuits: registration, beaconHash: BEACON, ...quiet });
    await expect(exportCeremony({ dir: solo, circuits: registration, ...quiet })).rejects.toThrow(
      `ceremony: ${join(solo, "registration_0002.zkey")} has 1 contribution(s) of entropy: a ceremony needs at least 2`,
    );
  }, 300_000);
});

describe("deploying our own eERC on a chain other than anvil", () => {
  const settings = {
    network: "fuji-test",
    deployer: accounts[0]!,
    auditor: accounts[9]!,
    revenuePool: accounts[7]!.address,
    // The ceremony's ptau here is the development one: this test is about the contributions.
    allowDevelopmentPtau: true,
    write: false,
  };

  it("refuses the build's single-contribution keys before deploying anything, naming the circuit and the fix", async () => {
    const chain = await connectChain(anvil.rpcUrl);
    const refused = deploy({ ...settings, rpcUrl: anvil.rpcUrl });
    await expect(refused).rejects.toBeInstanceOf(SetupCeremonyRequiredError);
    await expect(refused).rejects.toMatchObject({
      code: "SETUP_CEREMONY_REQUIRED",
      chainId: FUJI,
      keys: CIRCUIT_NAMES.map((circuit) => ({ circuit, zkey: circuitArtifacts(circuit).zkey, contributions: 1 })),
    });
    await expect(refused).rejects.toThrow(/^circuit registration: .*registration\.zkey holds 1 contribution\(s\).*run `npm run ceremony`/);
    expect(await chain.publicClient.getTransactionCount({ address: settings.deployer.address })).toBe(0);

    // The command says the same, in one line.
    const cli = await runScript("scripts/deploy.ts", [], {
      RPC_URL: anvil.rpcUrl,
      NETWORK: "fuji-test",
      DEPLOYMENT_FILE: join(dir, "refused.json"),
      DEPLOYER_PRIVATE_KEY: ANVIL_KEYS[0],
      AUDITOR_PRIVATE_KEY: ANVIL_KEYS[9],
      REVENUE_POOL_ADDRESS: accounts[7]!.address,
      ALLOW_DEVELOPMENT_PTAU: "1",
    });
    expect(cli.code).toBe(1);
    expect(cli.stderr).toMatch(/^error: circuit registration: .* run `npm run ceremony`/m);
    // On anvil the same keys deploy (every other e2e test does).
    expect(() => requireCeremonyKeys(31337, defaultProvingArtifacts({}))).not.toThrow();
  });

  it("counts contributions of entropy in the zkey itself: a ceremony's key passes, its beacon alone does not count", () => {
    const build = defaultProvingArtifacts({});
    const ceremonyKey = join(dir, "c", "registration_0003.zkey"); // Alice, Bob, beacon
    const soloKey = join(dir, "solo", "registration_0002.zkey"); // Mallory, beacon
    const withKey = (zkey: string): ProvingArtifacts =>
      Object.fromEntries(CIRCUIT_NAMES.map((n) => [n, { wasm: build[n].wasm, zkey }])) as ProvingArtifacts;
    expect(() => requireCeremonyKeys(FUJI, withKey(ceremonyKey))).not.toThrow();
    expect(() => requireCeremonyKeys(FUJI, withKey(soloKey))).toThrow(SetupCeremonyRequiredError);
    try {
      requireCeremonyKeys(FUJI, { ...build, registration: { wasm: build.registration.wasm, zkey: ceremonyKey } });
      expect.unreachable();
    } catch (err) {
      expect((err as SetupCeremonyRequiredError).keys.map((k) => k.circuit)).toEqual(["transfer", "withdraw", "mint", "burn"]);
    }
    expect(() => readZkeyContributions(join(dir, "nothing.zkey"))).toThrow(/zkey: .*nothing\.zkey does not exist/);
  });

  it("attaching to an eERC already on chain is not refused: its proving keys are checked against its verifiers instead", async () => {
    const chain = await connectChain(anvil.rpcUrl);
    const startBlock = Number(await chain.publicClient.getBlockNumber());
    const core = await deployOwnEerc(chain, settings.deployer, true, 6);
    const manifest = await deploy({
      ...settings,
      allowDevelopmentPtau: false,
      rpcUrl: anvil.rpcUrl,
      eerc: { encryptedERC: core.encryptedERC, registrar: core.registrar, startBlock },
      circuits: defaultProvingArtifacts({}),
    });
    expect(manifest.chainId).toBe(FUJI);
    expect(manifest.contracts.encryptedERC).toBe(core.encryptedERC);
  });
});

// The whole path as an operator runs it, in a copy of the project (BACKENDSHIELD_ROOT) so that
// the ceremony's keys never replace the build's: all five circuits, two participants and the
// beacon, export, then `npm run deploy` to chain 43113. It sets up every circuit three times over
// and verifies each, so it runs only when CEREMONY_E2E=1.
describe.runIf(process.env.CEREMONY_E2E === "1")("a ceremony of all five circuits, exported and deployed", () => {
  it("deploy accepts the exported keys on a chain other than anvil", async () => {
    const root = join(dir, "project");
    mkdirSync(join(root, "build"), { recursive: true });
    copyFileSync(join(PROJECT_ROOT, "package.json"), join(root, "package.json"));
    for (const d of ["node_modules", "circuits"]) symlinkSync(join(PROJECT_ROOT, d), join(root, d));
    for (const d of ["contracts", "abis", "build/circuits", "build/verifiers", "build/contracts"]) {
      cpSync(join(PROJECT_ROOT, d), join(root, d), { recursive: true });
    }
    const env = { BACKENDSHIELD_ROOT: root };
    const c = join(dir, "all");
    for (const args of [
      ["init", c],
      ["contribute", c, "--name", "Alice"],
      ["contribute", c, "--name", "Bob"],
      ["beacon", c, "--hash", BEACON],
      ["export", c],
    ]) {
      const r = await ceremony(args, env);
      expect(r.code, `${args[0]}: ${r.stderr}`).toBe(0);
    }
    for (const n of CIRCUIT_NAMES) {
      const installed = readZkeyContributions(join(root, "build", "circuits", n, `${n}.zkey`)).contributions;
      expect(installed.map((x) => x.name)).toEqual(["Alice", "Bob", "final beacon"]);
    }
    const deployed = await runScript(
      "scripts/deploy.ts",
      [],
      {
        ...env,
        RPC_URL: anvil.rpcUrl,
        NETWORK: "fuji-test",
        DEPLOYMENT_FILE: join(dir, "ceremony-deployment.json"),
        DEPLOYER_PRIVATE_KEY: ANVIL_KEYS[1],
        AUDITOR_PRIVATE_KEY: ANVIL_KEYS[2],
        REVENUE_POOL_ADDRESS: accounts[7]!.address,
        ALLOW_DEVELOPMENT_PTAU: "1",
      },
      600_000,
    );
    expect(deployed.code, deployed.stderr).toBe(0);
    const manifest = JSON.parse(readFileSync(join(dir, "ceremony-deployment.json"), "utf8"));
    expect(manifest.chainId).toBe(FUJI);
    expect(manifest.circuits.transfer.zkey).toBe("build/circuits/transfer/transfer.zkey");
  }, 1_800_000);
});
