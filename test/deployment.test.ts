import { randomBytes } from "node:crypto";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as snarkjs from "snarkjs";
import { getAddress, zeroAddress } from "viem";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEV_PTAU } from "../src/build/circuits.js";
import { type Anvil, startAnvil } from "../src/chain/anvil.js";
import { type ChainClients, connectChain } from "../src/chain/clients.js";
import { ANVIL_KEYS } from "../src/chain/local.js";
import { type DeploymentManifest, provingArtifactsOf } from "../src/deployment/manifest.js";
import { CIRCUIT_NAMES, circuitArtifacts } from "../src/eerc/artifacts.js";
import { CircuitVerifierMismatchError, checkProvingArtifacts, detectEerc, UnsupportedEercError } from "../src/eerc/deployment-check.js";
import { Prover } from "../src/eerc/prover.js";
import { ProvingKeyChecks } from "../src/eerc/proving-key-checks.js";
import { type RunningIndexer, startIndexer } from "../src/indexer/process.js";
import { connectClient, deployForIndexer } from "./indexer-helpers.js";
import { runScript } from "./run-script.js";

// What a deployment is checked for before anything is proven or paid: the eERC's version and
// capabilities, and proving keys that its own verifiers accept. And a deployment that has paid
// nobody yet.

let anvil: Anvil;
let chain: ChainClients;
let prover: Prover;
let manifest: DeploymentManifest;
let manifestPath: string;
let dir: string;
let indexer: RunningIndexer;

beforeAll(async () => {
  anvil = await startAnvil();
  chain = await connectChain(anvil.rpcUrl);
  prover = new Prover();
  ({ manifest, manifestPath, dir } = await deployForIndexer({ rpcUrl: anvil.rpcUrl, prover }));
  indexer = await startIndexer({
    manifestPath,
    env: { RPC_URL: anvil.rpcUrl },
    pgliteDir: join(dir, "pglite"),
    logFile: join(dir, "ponder.log"),
  });
});

afterAll(async () => {
  await indexer?.stop();
  await prover?.close();
  await anvil?.stop();
});

const contracts = () => ({ encryptedERC: manifest.contracts.encryptedERC, registrar: manifest.contracts.registrar });

describe("a deployment's eERC and proving keys", () => {
  it("the manifest records what the eERC offers; a contract that is not an eERC, or no contract, is refused", async () => {
    expect(await detectEerc(chain.publicClient, manifest.contracts.encryptedERC)).toEqual(manifest.eerc);
    await expect(detectEerc(chain.publicClient, manifest.contracts.token)).rejects.toBeInstanceOf(UnsupportedEercError);
    await expect(detectEerc(chain.publicClient, zeroAddress)).rejects.toThrow(/no contract at/);
  });

  it("accepts the proving keys the deployment's verifiers were set up with, for every circuit", async () => {
    await checkProvingArtifacts({
      publicClient: chain.publicClient,
      prover: new Prover(provingArtifactsOf(manifest)),
      contracts: contracts(),
      circuits: CIRCUIT_NAMES,
    });
  });

  it("a passed check is recorded: the same files on the same verifier are not proved again, another key still is and is refused", async () => {
    const record = new ProvingKeyChecks(join(dir, "proving-key-checks.json"));
    const proofs: string[] = [];
    const counting = new (class extends Prover {
      override prove(...args: Parameters<Prover["prove"]>) {
        proofs.push(args[0]);
        return super.prove(...args);
      }
    })(provingArtifactsOf(manifest));
    try {
      const check = () =>
        checkProvingArtifacts({
          publicClient: chain.publicClient,
          prover: counting,
          contracts: contracts(),
          circuits: ["registration", "withdraw"],
          record,
        });
      const first = await check();
      expect(first.map((r) => [r.circuit, r.recordedAt])).toEqual([
        ["registration", null],
        ["withdraw", null],
      ]);
      expect(proofs).toEqual(["registration", "withdraw"]);
      const again = await check();
      expect(again.map((r) => r.recordedAt)).toEqual([
        expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
        expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
      ]);
      expect(again.map((r) => r.verifier)).toEqual([
        getAddress(manifest.contracts.verifiers.registration),
        getAddress(manifest.contracts.verifiers.withdraw),
      ]);
      expect(proofs).toHaveLength(2);
    } finally {
      await counting.close();
    }
    // The withdraw key where the transfer key belongs: never checked, so proved, and refused.
    const artifacts = provingArtifactsOf(manifest);
    const misplaced = new Prover({ ...artifacts, transfer: artifacts.withdraw });
    try {
      const wrong = checkProvingArtifacts({
        publicClient: chain.publicClient,
        prover: misplaced,
        contracts: contracts(),
        circuits: ["transfer"],
        record,
      });
      await expect(wrong).rejects.toBeInstanceOf(CircuitVerifierMismatchError);
      // Nor is a failure recorded.
      await expect(
        checkProvingArtifacts({
          publicClient: chain.publicClient,
          prover: misplaced,
          contracts: contracts(),
          circuits: ["transfer"],
          record,
        }),
      ).rejects.toBeInstanceOf(CircuitVerifierMismatchError);
    } finally {
      await misplaced.close();
    }
  });

  it("refuses a proving key from another setup of the same circuit, naming the circuit and the verifier", async () => {
    const other = join(mkdtempSync(join(tmpdir(), "bs-zkey-")), "registration.zkey");
    const initial = `${other}.0`;
    await snarkjs.zKey.newZKey(circuitArtifacts("registration").r1cs, DEV_PTAU, initial);
    await snarkjs.zKey.contribute(initial, other, "another setup", randomBytes(32).toString("hex"));
    const artifacts = provingArtifactsOf(manifest);
    const foreign = new Prover({ ...artifacts, registration: { wasm: artifacts.registration.wasm, zkey: other } });
    try {
      const check = checkProvingArtifacts({
        publicClient: chain.publicClient,
        prover: foreign,
        contracts: contracts(),
        circuits: ["transfer", "registration"],
      });
      await expect(check).rejects.toBeInstanceOf(CircuitVerifierMismatchError);
      await expect(check).rejects.toMatchObject({
        circuit: "registration",
        verifier: getAddress(manifest.contracts.verifiers.registration),
        zkey: other,
      });
    } finally {
      await foreign.close();
    }
  });

  it("the payout agent refuses to start with a transfer key its verifier rejects, and says which", async () => {
    const artifacts = provingArtifactsOf(manifest);
    const wrong = join(dir, "wrong-transfer.json");
    writeFileSync(wrong, JSON.stringify({ ...manifest, circuits: { ...artifacts, transfer: artifacts.withdraw } }));
    const agent = await runScript("scripts/agent.ts", ["--once"], {
      DEPLOYMENT_FILE: wrong,
      RPC_URL: anvil.rpcUrl,
      INDEXER_URL: indexer.url,
    });
    expect(agent.code).toBe(1);
    expect(agent.stdout).toMatch(/CIRCUIT_VERIFIER_MISMATCH: circuit transfer: no proof can be made with .*withdraw/);
  });

  it("a deployment that has paid nobody serves pending 0 through the indexed block, and the provider CLI reads it", async () => {
    // Until the UsageLedger's operator registers, no usage line can be encrypted and the API serves no payout field.
    const operator = await connectClient(chain, manifest, prover, 0);
    await operator.register();
    // The auditor is the one other registered account of a fresh deployment.
    const history = await runScript("src/cli/index.ts", ["history", "--api", indexer.url, "--json"], { PRIVATE_KEY: ANVIL_KEYS[9] });
    expect(history.code, history.stderr).toBe(0);
    const out = JSON.parse(history.stdout);
    expect(out.pending.amountMicro).toBe("0");
    expect(BigInt(out.pending.throughBlock)).toBeGreaterThanOrEqual(BigInt(manifest.startBlock));
  });
});
