import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from "node:crypto";
import { mkdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { dirname } from "node:path";
import { deserialize, serialize } from "node:v8";
import { CheckpointUnreadableError } from "./errors.js";
import type { ProjectionData } from "./projection.js";
import type { UnattributedTransfer } from "./tag.js";

/**
 * What a reader of the payout ledger (`IndexedLedger`) keeps across restarts: its projection
 * through `block`, and what it checks before it reads on from there.
 */
export type LedgerCheckpoint = {
  /** The chain and contracts the facts were read from (`checkpointScope`). */
  scope: string;
  /** The payer accounts whose transfers the projection holds, lowercased, sorted, comma-separated. */
  payers: string;
  /** The block the projection holds every fact through. */
  block: bigint;
  /** `factsFingerprint` at `block` when the facts were read: a reorg since then changes it. */
  fingerprint: string;
  projection: ProjectionData;
  /** Payer transfers through `block` that are not payouts the operator can account for. */
  unattributed: UnattributedTransfer[];
};

/** Where a checkpoint's bytes are kept. */
export type CheckpointStore = {
  /** The bytes last saved, or null when there are none. */
  load(): Promise<Uint8Array | null>;
  save(bytes: Uint8Array): Promise<void>;
  /** Where it is kept, for messages. */
  readonly where: string;
};

/**
 * The checkpoint's format: a new one makes older files unreadable, and the ledger is rebuilt from
 * the chain. Made on use: the dashboard's bundle reaches this module through `IndexedLedger`, and
 * nothing Node-only may run when it is imported.
 */
const magic = () => Buffer.from("BSLEDGER1");
const IV_BYTES = 12;
const TAG_BYTES = 16;

/** The chain and contracts a checkpoint belongs to. */
export const checkpointScope = (chainId: number, contracts: Record<string, string>): string =>
  [
    chainId,
    ...Object.keys(contracts)
      .sort()
      .map((k) => `${k}=${contracts[k]!.toLowerCase()}`),
  ].join(";");

/** The checkpoint key: derived from the operator's eERC key, so only its holder can read or forge a checkpoint. */
function sealKey(operatorSk: bigint): Buffer {
  const ikm = Buffer.from(operatorSk.toString(16).padStart(64, "0"), "hex");
  return Buffer.from(hkdfSync("sha256", ikm, magic(), "payout ledger checkpoint", 32));
}

/**
 * The checkpoint, serialized and encrypted (AES-256-GCM) under a key derived from the operator's
 * eERC key. It holds what the operator's key decrypts from the chain (usage lines, payout
 * amounts), so at rest it is as closed as the chain's ciphertexts, and a changed byte is refused.
 */
export function sealCheckpoint(checkpoint: LedgerCheckpoint, operatorSk: bigint): Buffer {
  const header = magic();
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv("aes-256-gcm", sealKey(operatorSk), iv);
  cipher.setAAD(header);
  const body = Buffer.concat([cipher.update(serialize(checkpoint)), cipher.final()]);
  return Buffer.concat([header, iv, cipher.getAuthTag(), body]);
}

/** The checkpoint `sealCheckpoint` sealed with the same key; throws CheckpointUnreadableError otherwise. */
export function openCheckpoint(bytes: Uint8Array, operatorSk: bigint): LedgerCheckpoint {
  const header = magic();
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (buf.length < header.length + IV_BYTES + TAG_BYTES || !buf.subarray(0, header.length).equals(header))
    throw new CheckpointUnreadableError("not a payout ledger checkpoint of this format");
  const iv = buf.subarray(header.length, header.length + IV_BYTES);
  const tag = buf.subarray(header.length + IV_BYTES, header.length + IV_BYTES + TAG_BYTES);
  const decipher = createDecipheriv("aes-256-gcm", sealKey(operatorSk), iv);
  decipher.setAAD(header);
  decipher.setAuthTag(tag);
  let plain: Buffer;
  try {
    plain = Buffer.concat([decipher.update(buf.subarray(header.length + IV_BYTES + TAG_BYTES)), decipher.final()]);
  } catch {
    throw new CheckpointUnreadableError("it was not sealed with this operator key, or it was changed");
  }
  return deserialize(plain) as LedgerCheckpoint;
}

/** A checkpoint kept in a file (owner-only), replaced whole at each save. */
export function fileCheckpointStore(path: string): CheckpointStore {
  return {
    where: path,
    async load() {
      try {
        return await readFile(path);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === "ENOENT") return null;
        throw e;
      }
    },
    async save(bytes) {
      await mkdir(dirname(path), { recursive: true });
      // Written aside, then renamed over: a reader never sees half a file.
      const aside = `${path}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`;
      try {
        await writeFile(aside, bytes, { mode: 0o600 });
        await rename(aside, path);
      } catch (e) {
        await rm(aside, { force: true });
        throw e;
      }
    },
  };
}
