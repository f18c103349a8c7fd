import { pino } from "pino";

/**
 * The one logger factory of every process: pino JSON lines for a log collector, or one readable
 * line per record on a terminal. Records carry structured fields (cycle, transfers, txHash, ms…)
 * next to their message. What may be logged: addresses, transaction hashes, block numbers, counts
 * and timings. What may not: keys, signatures and amounts (docs/privacy.md); the fields named in
 * REDACTED are censored in case one slips through.
 */

export const LOG_FORMATS = ["json", "pretty"] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];
export const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export type LogFields = Record<string, unknown>;
type LogMethod = (fields: LogFields, message: string) => void;

/** What a component logs to: a pino logger qualifies, and so does anything with these methods. */
export type Logger = { error: LogMethod; warn: LogMethod; info: LogMethod; debug: LogMethod };

/** What a component accepts as its log: a Logger, or a callback that takes one line per record. */
export type LogTarget = Logger | ((line: string) => void);

/** Field names never written out, at the top level or one level down. */
const REDACTED = ["privateKey", "key", "secret", "signature", "amount", "amountMicro", "password"];

export type LoggerOptions = {
  /** `json` (pino's lines) or `pretty` (one readable line); default: pretty on a terminal, json otherwise. */
  format?: LogFormat;
  level?: LogLevel;
  /** Where lines go (default: standard output). */
  destination?: NodeJS.WritableStream & { isTTY?: boolean };
};

/** A logger named after its process or component (`agent`, `api`, `meter`). */
export function createLogger(name: string, options: LoggerOptions = {}): pino.Logger {
  const out = options.destination ?? process.stdout;
  const format = options.format ?? (out.isTTY ? "pretty" : "json");
  const settings: pino.LoggerOptions = {
    name,
    level: options.level ?? "info",
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: { paths: [...REDACTED, ...REDACTED.map((f) => `*.${f}`)], censor: "[redacted]" },
  };
  if (format === "pretty") return pino(settings, prettyStream(out));
  // Synchronous writes: a line logged right before the process exits (or is killed) is not lost.
  return pino(settings, out === process.stdout ? pino.destination({ dest: 1, sync: true }) : out);
}

/** A pino destination that turns each JSON line into one readable line: time, level, name, message, then the fields. */
export function prettyStream(out: NodeJS.WritableStream): { write(line: string): void } {
  return {
    write(line: string) {
      let record: LogFields;
      try {
        record = JSON.parse(line) as LogFields;
      } catch {
        out.write(line);
        return;
      }
      out.write(`${prettyLine(record)}\n`);
    },
  };
}

const LEVEL_NAMES: Record<number, string> = { 10: "TRACE", 20: "DEBUG", 30: "INFO", 40: "WARN", 50: "ERROR", 60: "FATAL" };
/** pino's own fields, shown in the line's head or left out. */
const HEAD_FIELDS = new Set(["level", "time", "msg", "name", "pid", "hostname"]);

/** `12:00:01.250 INFO  agent: cycle 3 paid cycle=3 transfers=5 ms=10450`. */
export function prettyLine(record: LogFields): string {
  const time = typeof record.time === "string" ? record.time.slice(11, 23) : new Date().toISOString().slice(11, 23);
  const level = (LEVEL_NAMES[Number(record.level)] ?? String(record.level)).padEnd(5);
  const name = typeof record.name === "string" ? `${record.name}: ` : "";
  const fields = Object.entries(record).filter(([k]) => !HEAD_FIELDS.has(k));
  return `${time} ${level} ${name}${messageLine(String(record.msg ?? ""), Object.fromEntries(fields))}`;
}

/** A message and its fields as `message key=value …`; strings with spaces are quoted. */
export function messageLine(message: string, fields: LogFields): string {
  const parts = Object.entries(fields)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `${k}=${fieldText(v)}`);
  return [message, ...parts].filter((p) => p.length > 0).join(" ");
}

function fieldText(value: unknown): string {
  if (typeof value === "string") return /[\s"=]/.test(value) || value === "" ? JSON.stringify(value) : value;
  if (typeof value === "bigint") return value.toString();
  return JSON.stringify(value) ?? String(value);
}

const silent: Logger = { error: () => {}, warn: () => {}, info: () => {}, debug: () => {} };

/**
 * The Logger behind a LogTarget: a logger as it is; a line callback gets `message key=value …`
 * for every record but debug ones; nothing logs nowhere.
 */
export function toLogger(target: LogTarget | undefined): Logger {
  if (target === undefined) return silent;
  if (typeof target !== "function") return target;
  const line: LogMethod = (fields, message) => target(messageLine(message, fields));
  return { error: line, warn: line, info: line, debug: () => {} };
}
