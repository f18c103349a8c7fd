import { appendFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";

/** Request ids the agent has accepted, each kept until its deadline (Unix seconds) passes. */
export interface RequestLog {
  has(id: string, now: bigint): boolean;
  add(id: string, deadline: bigint): void;
}

/** In memory only: a restarted agent forgets (tests, and `--once` runs that take no requests). */
export function memoryRequestLog(): RequestLog {
  const seen = new Map<string, bigint>();
  return {
    has: (id, now) => (seen.get(id) ?? 0n) > now,
    add: (id, deadline) => void seen.set(id, deadline),
  };
}

/**
 * On disk, one `{"id","deadline"}` line per accepted request, so a request replayed after a
 * restart is still refused; expired lines are dropped when the file is opened.
 */
export function fileRequestLog(path: string, now: bigint = BigInt(Math.floor(Date.now() / 1000))): RequestLog {
  const seen = new Map<string, bigint>();
  if (existsSync(path)) {
    for (const line of readFileSync(path, "utf8").split("\n")) {
      if (!line.trim()) continue;
      try {
        const { id, deadline } = JSON.parse(line) as { id: string; deadline: string };
        if (BigInt(deadline) > now) seen.set(id, BigInt(deadline));
      } catch {
        // A torn last line from a crash: the request it held was never answered 202.
      }
    }
  }
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, [...seen].map(([id, d]) => `${JSON.stringify({ id, deadline: d.toString() })}\n`).join(""), { mode: 0o600 });
  return {
    has: (id, t) => (seen.get(id) ?? 0n) > t,
    add(id, deadline) {
      appendFileSync(path, `${JSON.stringify({ id, deadline: deadline.toString() })}\n`);
      seen.set(id, deadline);
    },
  };
}
