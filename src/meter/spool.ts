import { closeSync, fchmodSync, fdatasync, fdatasyncSync, ftruncateSync, openSync, readFileSync, unlinkSync, writeSync } from "node:fs";
import { hostname } from "node:os";
import { resolve } from "node:path";
import type { PaymentPayload, PaymentRequirements } from "@x402/core/types";
import { BaseError } from "../errors.js";
import { InvalidCallRecordError } from "../usage/errors.js";
import { type CallRecord, callRecordFromJson, callRecordToJson } from "../usage/record.js";

/**
 * The meter's durable local spool: one append-only JSONL file per server. Lines:
 * - `call`: one call record (bigints as decimal strings), written before the tool result is returned;
 * - `close`: the records since the previous `close` form batch `sequence`;
 * - `submitted`: batch `sequence` is committed on chain;
 * - `settle`: a paid call ran and its x402 settlement has not finished: the record (payment
 *   "settle_pending"), the provider's quoted price, the requirement and the payer's payload, kept
 *   to retry settlement; the `call` line with the same eventId, written once settlement ends, closes it.
 */
export type CloseLine = { type: "close"; sequence: number; batchId: string; period: number; count: number; closedAt: number };
export type SubmittedLine = { type: "submitted"; sequence: number; txHash: string | null; at: number };
export type CallLine = { type: "call"; period: number; record: CallRecord };
export type SettleLine = {
  type: "settle";
  record: CallRecord;
  /** The provider's price the payment was asked for (without the surcharge). */
  priceMicro: bigint;
  requirements: PaymentRequirements;
  payload: PaymentPayload;
};
export type SpoolLine = CallLine | CloseLine | SubmittedLine | SettleLine;

/** When the spool is fsynced: when a batch closes (default), or after every call record as well. */
export type SpoolFsync = "batch" | "always";

export type SpoolContents = {
  lines: SpoolLine[];
  /** Byte length of the complete lines. */
  validBytes: number;
  /** Bytes after the last complete line that are not a complete line (a write torn by a crash). */
  tornBytes: number;
  /** The last line is complete JSON but lacks its newline. */
  unterminated: boolean;
};

export class SpoolCorruptError extends BaseError {
  readonly code = "SPOOL_CORRUPT";
  constructor(
    readonly path: string,
    readonly line: number,
    reason: string,
  ) {
    super(`${path}:${line}: ${reason}`);
  }
}

export class SpoolLockedError extends BaseError {
  readonly code = "SPOOL_LOCKED";
  constructor(
    readonly path: string,
    readonly pid: number,
    readonly host: string = hostname(),
  ) {
    super(`${path} is in use by process ${pid}${host === hostname() ? "" : ` on ${host}`}`);
  }
}

export function encodeLine(line: SpoolLine): string {
  if (line.type === "settle") {
    return `${JSON.stringify({ ...line, record: callRecordToJson(line.record), priceMicro: line.priceMicro.toString() })}\n`;
  }
  if (line.type !== "call") return `${JSON.stringify(line)}\n`;
  return `${JSON.stringify({ type: "call", period: line.period, record: callRecordToJson(line.record) })}\n`;
}

const isInt = (v: unknown): v is number => typeof v === "number" && Number.isSafeInteger(v);
const isNum = (v: unknown): v is number => typeof v === "number" && Number.isFinite(v);
const isStr = (v: unknown): v is string => typeof v === "string";

function decodeRecord(r: Record<string, unknown>): CallRecord | string {
  if (!isStr(r.priceMicro) || !/^(0|[1-9]\d*)$/.test(r.priceMicro)) return "call record: bad priceMicro";
  try {
    return callRecordFromJson(r);
  } catch (err) {
    if (err instanceof InvalidCallRecordError) return err.message;
    throw err;
  }
}

function decodeLine(value: unknown): SpoolLine | string {
  if (typeof value !== "object" || value === null) return "not an object";
  const v = value as Record<string, unknown>;
  switch (v.type) {
    case "call": {
      if (!isInt(v.period) || typeof v.record !== "object" || v.record === null) return "call: bad period or record";
      const record = decodeRecord(v.record as Record<string, unknown>);
      return typeof record === "string" ? record : { type: "call", period: v.period, record };
    }
    case "close":
      if (!isInt(v.sequence) || !isStr(v.batchId) || !isInt(v.period) || !isInt(v.count) || !isNum(v.closedAt)) return "close: bad fields";
      return { type: "close", sequence: v.sequence, batchId: v.batchId, period: v.period, count: v.count, closedAt: v.closedAt };
    case "submitted":
      if (!isInt(v.sequence) || !(v.txHash === null || isStr(v.txHash)) || !isNum(v.at)) return "submitted: bad fields";
      return { type: "submitted", sequence: v.sequence, txHash: v.txHash, at: v.at };
    case "settle": {
      if (typeof v.record !== "object" || v.record === null) return "settle: bad record";
      if (!isStr(v.priceMicro) || !/^(0|[1-9]\d*)$/.test(v.priceMicro)) return "settle: bad priceMicro";
      const isObj = (o: unknown) => typeof o === "object" && o !== null && !Array.isArray(o);
      if (!isObj(v.requirements) || !isObj(v.payload)) return "settle: bad requirements or payload";
      const record = decodeRecord(v.record as Record<string, unknown>);
      if (typeof record === "string") return record;
      if (record.payment?.status !== "settle_pending") return "settle: record is not a pending settlement";
      return {
        type: "settle",
        record,
        priceMicro: BigInt(v.priceMicro),
        requirements: v.requirements as PaymentRequirements,
        payload: v.payload as PaymentPayload,
      };
    }
    default:
      return "unknown line type";
  }
}

/**
 * Parses spool bytes. Only the last line may be incomplete (a crash mid-write); it is reported
 * as torn, not returned. Any other unreadable line is corruption.
 */
export function parseSpool(bytes: Uint8Array, path = "spool"): SpoolContents {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const lines: SpoolLine[] = [];
  let start = 0;
  let lineNo = 0;
  while (start < buf.length) {
    lineNo++;
    const nl = buf.indexOf(0x0a, start);
    const end = nl === -1 ? buf.length : nl;
    let parsed: unknown;
    let ok = true;
    try {
      parsed = JSON.parse(buf.toString("utf8", start, end));
    } catch {
      ok = false;
    }
    const decoded = ok ? decodeLine(parsed) : "incomplete or invalid JSON";
    if (nl === -1) {
      if (typeof decoded === "string") {
        if (ok) throw new SpoolCorruptError(path, lineNo, decoded);
        return { lines, validBytes: start, tornBytes: buf.length - start, unterminated: false };
      }
      lines.push(decoded);
      return { lines, validBytes: buf.length, tornBytes: 0, unterminated: true };
    }
    if (typeof decoded === "string") throw new SpoolCorruptError(path, lineNo, decoded);
    lines.push(decoded);
    start = nl + 1;
  }
  return { lines, validBytes: buf.length, tornBytes: 0, unterminated: false };
}

function readIfExists(path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return Buffer.alloc(0);
    throw err;
  }
}

/** Reads a spool without changing it (a torn last line is left in place and reported). */
export function readSpool(path: string): SpoolContents {
  return parseSpool(readIfExists(path), path);
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * `<spool>.lock`, created exclusively (O_EXCL), holds the owner's host and pid. A lock left by a
 * dead process of this host is taken over; one from another host (a spool on a shared disk) is
 * never, since its process cannot be checked from here.
 */
function acquireLock(lockPath: string, spoolPath: string): void {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(lockPath, "wx", 0o600);
      writeSync(fd, `${hostname()} ${process.pid}`);
      closeSync(fd);
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    }
    const text = readIfExists(lockPath).toString("utf8").trim();
    // Locks written before the host was recorded hold the pid alone.
    const [host, pidText] = text.includes(" ") ? text.split(" ") : [hostname(), text];
    const pid = Number(pidText);
    if (host !== hostname()) throw new SpoolLockedError(spoolPath, pid, host);
    if (Number.isSafeInteger(pid) && pid > 0 && pid !== process.pid && pidAlive(pid)) throw new SpoolLockedError(spoolPath, pid);
    try {
      unlinkSync(lockPath);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
    }
  }
  throw new SpoolLockedError(spoolPath, -1);
}

function writeAll(fd: number, data: string): void {
  const buf = Buffer.from(data, "utf8");
  let off = 0;
  while (off < buf.length) off += writeSync(fd, buf, off, buf.length - off);
}

/** Spools open in this process: a second meter on the same spool would be refused by pid alone. */
const openHere = new Set<string>();

export class Spool {
  private fd: number | null;

  private constructor(
    readonly path: string,
    fd: number,
    readonly fsync: SpoolFsync,
  ) {
    this.fd = fd;
  }

  /**
   * Locks and opens the spool for appending, after repairing its tail: a torn last line is cut
   * off, a complete last line without its newline gets one. Returns what the spool held.
   */
  static open(file: string, options: { fsync?: SpoolFsync } = {}): { spool: Spool; contents: SpoolContents } {
    const path = resolve(file);
    const lockPath = `${path}.lock`;
    if (openHere.has(path)) throw new SpoolLockedError(path, process.pid);
    acquireLock(lockPath, path);
    openHere.add(path);
    try {
      // Call records say who called which provider how often: the meter's process alone reads them.
      const fd = openSync(path, "a+", 0o600);
      fchmodSync(fd, 0o600);
      const bytes = readFileSync(path);
      const contents = parseSpool(bytes, path);
      if (contents.tornBytes > 0) {
        ftruncateSync(fd, contents.validBytes);
        fdatasyncSync(fd);
      } else if (contents.unterminated) {
        writeAll(fd, "\n");
        fdatasyncSync(fd);
      }
      return { spool: new Spool(path, fd, options.fsync ?? "batch"), contents };
    } catch (err) {
      openHere.delete(path);
      unlinkSync(lockPath);
      throw err;
    }
  }

  private get handle(): number {
    if (this.fd === null) throw new Error(`spool ${this.path} is closed`);
    return this.fd;
  }

  /** One write of one line; with `fsync: "always"`, also an fdatasync. */
  append(line: SpoolLine): void {
    const fd = this.handle;
    writeAll(fd, encodeLine(line));
    if (this.fsync === "always") fdatasyncSync(fd);
  }

  /** Flushes everything written so far to stable storage. */
  sync(): Promise<void> {
    const fd = this.handle;
    return new Promise((resolve, reject) => fdatasync(fd, (err) => (err ? reject(err) : resolve())));
  }

  close(): void {
    if (this.fd === null) return;
    fdatasyncSync(this.fd);
    closeSync(this.fd);
    this.fd = null;
    openHere.delete(this.path);
    try {
      unlinkSync(`${this.path}.lock`);
    } catch {
      /* already gone */
    }
  }
}
