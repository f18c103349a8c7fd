import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { dirname } from "node:path";
import { type Address, type Hex, keccak256 } from "viem";
import type { CircuitName } from "./artifacts.js";

/** Where the agent and the CLI record the proving keys they found to verify (PROVING_KEY_CHECKS_FILE). */
export const DEFAULT_PROVING_KEY_CHECKS_FILE = "data/proving-key-checks.json";

/** How many checks a record keeps; the oldest go first. */
const MAX_CHECKS = 200;

/** What a passed check was made of: a proof from these files verified on this code at this address. */
export type ProvingKeyCheck = {
  circuit: CircuitName;
  chainId: bigint;
  verifier: Address;
  /** keccak256 of the verifier's runtime code. */
  verifierCode: Hex;
  wasm: string;
  zkey: string;
};

type Entry = { circuit: string; verifier: string; at: string };

/**
 * Proving keys already found to verify on a deployment's verifier. A check proves a throwaway
 * witness, which for the transfer circuit costs a few seconds of both cores at every start of the
 * agent; its answer depends only on the witness program, the proving key and the verifier's code,
 * so a record of a passed check, keyed by their hashes, answers it again. A changed file or
 * verifier is a key never seen, and is proved. Failures are never recorded.
 */
export class ProvingKeyChecks {
  constructor(readonly file: string) {}

  /** When a check of these exact files against this exact verifier passed, or null. */
  async passedAt(check: ProvingKeyCheck): Promise<string | null> {
    // Unreadable files are for the check itself to name.
    const id = await checkId(check).catch(() => null);
    return id === null ? null : (this.read()[id]?.at ?? null);
  }

  /** Records a passed check; a record that cannot be written only costs the next start a proof. */
  async record(check: ProvingKeyCheck): Promise<void> {
    const id = await checkId(check).catch(() => null);
    if (id === null) return;
    const entries = this.read();
    entries[id] = { circuit: check.circuit, verifier: check.verifier, at: new Date().toISOString() };
    const kept = Object.entries(entries)
      .sort(([, a], [, b]) => a.at.localeCompare(b.at))
      .slice(-MAX_CHECKS);
    try {
      mkdirSync(dirname(this.file), { recursive: true });
      // Written aside and renamed: an agent and a CLI command may record at once.
      const tmp = `${this.file}.${process.pid}.tmp`;
      writeFileSync(tmp, `${JSON.stringify(Object.fromEntries(kept), null, 2)}\n`);
      renameSync(tmp, this.file);
    } catch {}
  }

  private read(): Record<string, Entry> {
    try {
      const parsed: unknown = JSON.parse(readFileSync(this.file, "utf8"));
      return parsed && typeof parsed === "object" && !Array.isArray(parsed) ? (parsed as Record<string, Entry>) : {};
    } catch {
      return {};
    }
  }
}

/** The record at PROVING_KEY_CHECKS_FILE, else `data/proving-key-checks.json` (an empty variable counts as unset). */
export function provingKeyChecksFromEnv(env: NodeJS.ProcessEnv = process.env): ProvingKeyChecks {
  return new ProvingKeyChecks(env.PROVING_KEY_CHECKS_FILE?.trim() || DEFAULT_PROVING_KEY_CHECKS_FILE);
}

const sha256 = (bytes: Uint8Array | string) => createHash("sha256").update(bytes).digest("hex");

async function checkId(c: ProvingKeyCheck): Promise<string> {
  const [wasm, zkey] = await Promise.all([readFile(c.wasm), readFile(c.zkey)]);
  return sha256([c.circuit, c.chainId, c.verifier.toLowerCase(), c.verifierCode, sha256(wasm), sha256(zkey)].join("\n"));
}

/** keccak256 of the code at `address`, as `ProvingKeyCheck.verifierCode`. */
export const codeHash = (code: Hex | undefined): Hex => keccak256(code ?? "0x");
