import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { codeHash, type ProvingKeyCheck, ProvingKeyChecks, provingKeyChecksFromEnv } from "../src/eerc/proving-key-checks.js";

// The record of passed proving-key checks answers only for the exact files and verifier code it
// was made with (the check itself, against a chain, is in test/deployment.test.ts).

function files() {
  const dir = mkdtempSync(join(tmpdir(), "bs-key-checks-"));
  const wasm = join(dir, "transfer.wasm");
  const zkey = join(dir, "transfer.zkey");
  writeFileSync(wasm, "witness program");
  writeFileSync(zkey, Buffer.alloc(4096, 7));
  const check: ProvingKeyCheck = {
    circuit: "transfer",
    chainId: 43113n,
    verifier: "0x5FbDB2315678afecb367f032d93F642f64180aa3",
    verifierCode: codeHash("0x6080604052"),
    wasm,
    zkey,
  };
  return { dir, check, record: new ProvingKeyChecks(join(dir, "data", "checks.json")) };
}

describe("the record of passed proving-key checks", () => {
  it("answers a recorded check, with when it passed", async () => {
    const { check, record } = files();
    expect(await record.passedAt(check)).toBeNull();
    await record.record(check);
    expect(await record.passedAt(check)).toMatch(/^\d{4}-\d\d-\d\dT/);
    // The verifier's address in another case is the same check.
    expect(await record.passedAt({ ...check, verifier: check.verifier.toLowerCase() as `0x${string}` })).not.toBeNull();
  });

  it("does not answer for a changed key, witness program, verifier code, address or chain", async () => {
    const { check, record } = files();
    await record.record(check);
    const zkey = readFileSync(check.zkey);
    zkey[2048]! ^= 1;
    writeFileSync(check.zkey, zkey);
    expect(await record.passedAt(check)).toBeNull();
    zkey[2048]! ^= 1;
    writeFileSync(check.zkey, zkey);
    expect(await record.passedAt(check)).not.toBeNull();

    writeFileSync(check.wasm, "another witness program");
    expect(await record.passedAt(check)).toBeNull();
    writeFileSync(check.wasm, "witness program");

    expect(await record.passedAt({ ...check, verifierCode: codeHash("0x6080604053") })).toBeNull();
    expect(await record.passedAt({ ...check, verifier: "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512" })).toBeNull();
    expect(await record.passedAt({ ...check, chainId: 31337n })).toBeNull();
    expect(await record.passedAt({ ...check, circuit: "withdraw" })).toBeNull();
  });

  it("missing files are for the check to name, a damaged record is empty, an unwritable one costs nothing", async () => {
    const { dir, check, record } = files();
    const missing = { ...check, zkey: join(dir, "none.zkey") };
    expect(await record.passedAt(missing)).toBeNull();
    await record.record(missing);
    expect(await record.passedAt(missing)).toBeNull();

    await record.record(check);
    writeFileSync(record.file, "{ not json");
    expect(await record.passedAt(check)).toBeNull();
    await record.record(check);
    expect(await record.passedAt(check)).not.toBeNull();

    // A file where its folder should be: nothing can be written, and nothing throws.
    const blocked = new ProvingKeyChecks(join(check.zkey, "checks.json"));
    await expect(blocked.record(check)).resolves.toBeUndefined();
    expect(await blocked.passedAt(check)).toBeNull();
  });

  it("lives at PROVING_KEY_CHECKS_FILE, data/proving-key-checks.json when it is unset or empty", () => {
    expect(provingKeyChecksFromEnv({}).file).toBe("data/proving-key-checks.json");
    expect(provingKeyChecksFromEnv({ PROVING_KEY_CHECKS_FILE: " " }).file).toBe("data/proving-key-checks.json");
    expect(provingKeyChecksFromEnv({ PROVING_KEY_CHECKS_FILE: "/var/lib/bs/checks.json" }).file).toBe("/var/lib/bs/checks.json");
  });
});
