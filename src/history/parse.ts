import { type Address, getAddress, type Hex, isAddress } from "viem";
import type { Point } from "../eerc/curve.js";
import { ApiResponseError } from "../http/errors.js";
import {
  AUDIT_KINDS,
  type AuditEntry,
  type AuditKind,
  type AuditPeriod,
  type AuditTotalsResponse,
  type BalanceHistoryRow,
  type EarningsResponse,
  HISTORY_KINDS,
  type HistoryKind,
  type ReceivedTransferRecord,
} from "./types.js";

/**
 * Validating readers for the REST API's JSON. Integers arrive as decimal strings (JSON numbers
 * are accepted when they are safe integers); anything else is an ApiResponseError naming the
 * offending path.
 */
class Reader {
  constructor(private readonly source: string) {}

  fail(path: string, what: string): never {
    throw new ApiResponseError(this.source, `${path} ${what}`);
  }

  obj(v: unknown, path: string): Record<string, unknown> {
    if (typeof v !== "object" || v === null || Array.isArray(v)) this.fail(path, "is not an object");
    return v as Record<string, unknown>;
  }

  arr(v: unknown, path: string, length?: number): unknown[] {
    if (!Array.isArray(v)) this.fail(path, "is not an array");
    if (length !== undefined && v.length !== length) this.fail(path, `must have ${length} elements, has ${v.length}`);
    return v;
  }

  big(v: unknown, path: string): bigint {
    if (typeof v === "string" && /^\d{1,78}$/.test(v)) return BigInt(v);
    if (typeof v === "number" && Number.isSafeInteger(v) && v >= 0) return BigInt(v);
    this.fail(path, "is not a non-negative integer (decimal string)");
  }

  int(v: unknown, path: string): number {
    const n = this.big(v, path);
    if (n > BigInt(Number.MAX_SAFE_INTEGER)) this.fail(path, "is too large");
    return Number(n);
  }

  words(v: unknown, path: string, length: number): bigint[] {
    return this.arr(v, path, length).map((w, i) => this.big(w, `${path}[${i}]`));
  }

  point(v: unknown, path: string): Point {
    const [x, y] = this.words(v, path, 2);
    return [x!, y!];
  }

  address(v: unknown, path: string): Address {
    if (typeof v !== "string" || !isAddress(v, { strict: false })) this.fail(path, "is not an address");
    return getAddress(v);
  }

  hash(v: unknown, path: string): Hex {
    if (typeof v !== "string" || !/^0x[0-9a-fA-F]{64}$/.test(v)) this.fail(path, "is not a 32-byte hex hash");
    return v.toLowerCase() as Hex;
  }

  oneOf<T extends string>(v: unknown, path: string, allowed: readonly T[]): T {
    if (typeof v !== "string" || !(allowed as readonly string[]).includes(v)) {
      this.fail(path, `must be one of ${allowed.join(", ")}`);
    }
    return v as T;
  }

  str(v: unknown, path: string): string {
    if (typeof v !== "string" || v.length === 0) this.fail(path, "is not a non-empty string");
    return v;
  }
}

const isZeroAddress = (a: Address) => /^0x0{40}$/.test(a);

export function parseEarnings(json: unknown, source: string): EarningsResponse {
  const r = new Reader(source);
  const o = r.obj(json, "body");
  const tokens = r.arr(o.tokens, "tokens").map((t, i) => {
    const to = r.obj(t, `tokens[${i}]`);
    const tokenAddress = to.tokenAddress == null ? null : r.address(to.tokenAddress, `tokens[${i}].tokenAddress`);
    return {
      tokenId: r.big(to.tokenId, `tokens[${i}].tokenId`),
      tokenAddress: tokenAddress && !isZeroAddress(tokenAddress) ? tokenAddress : null,
    };
  });
  const balanceHistory = r.arr(o.balanceHistory, "balanceHistory").map((row, i): BalanceHistoryRow => {
    const p = `balanceHistory[${i}]`;
    const h = r.obj(row, p);
    const eGCT = r.obj(h.eGCT, `${p}.eGCT`);
    return {
      tokenId: r.big(h.tokenId, `${p}.tokenId`),
      blockNumber: r.big(h.blockNumber, `${p}.blockNumber`),
      logIndex: r.int(h.logIndex, `${p}.logIndex`),
      timestamp: r.big(h.timestamp, `${p}.timestamp`),
      txHash: r.hash(h.txHash, `${p}.txHash`),
      kind: r.oneOf<HistoryKind>(h.kind, `${p}.kind`, HISTORY_KINDS),
      eGCT: { c1: r.point(eGCT.c1, `${p}.eGCT.c1`), c2: r.point(eGCT.c2, `${p}.eGCT.c2`) },
      nonce: r.big(h.nonce, `${p}.nonce`),
      transactionIndex: r.big(h.transactionIndex, `${p}.transactionIndex`),
      balancePCT: r.words(h.balancePCT, `${p}.balancePCT`, 7),
      amountPCTs: r.arr(h.amountPCTs, `${p}.amountPCTs`).map((a, j) => {
        const ao = r.obj(a, `${p}.amountPCTs[${j}]`);
        return { pct: r.words(ao.pct, `${p}.amountPCTs[${j}].pct`, 7), index: r.big(ao.index, `${p}.amountPCTs[${j}].index`) };
      }),
    };
  });
  const receivedTransfers = r.arr(o.receivedTransfers, "receivedTransfers").map((t, i): ReceivedTransferRecord => {
    const p = `receivedTransfers[${i}]`;
    const to = r.obj(t, p);
    return {
      from: r.address(to.from, `${p}.from`),
      tokenId: r.big(to.tokenId, `${p}.tokenId`),
      blockNumber: r.big(to.blockNumber, `${p}.blockNumber`),
      txHash: r.hash(to.txHash, `${p}.txHash`),
      amountPCT: to.amountPCT === null ? null : r.words(to.amountPCT, `${p}.amountPCT`, 7),
    };
  });
  return {
    account: r.address(o.account, "account"),
    publicKey: r.point(o.publicKey, "publicKey"),
    tokens,
    balanceHistory,
    receivedTransfers,
    pending:
      o.pending == null
        ? null
        : (() => {
            const po = r.obj(o.pending, "pending");
            return { pct: r.words(po.pct, "pending.pct", 7), throughBlock: r.big(po.throughBlock, "pending.throughBlock") };
          })(),
  };
}

export function parseAuditTotals(json: unknown, source: string): AuditTotalsResponse {
  const r = new Reader(source);
  const o = r.obj(json, "body");
  const periods = r.arr(o.periods, "periods").map((pv, i): AuditPeriod => {
    const p = `periods[${i}]`;
    const po = r.obj(pv, p);
    return {
      period: r.str(po.period, `${p}.period`),
      tokenId: po.tokenId == null ? null : r.big(po.tokenId, `${p}.tokenId`),
      entries: r.arr(po.entries, `${p}.entries`).map((ev, j): AuditEntry => {
        const e = r.obj(ev, `${p}.entries[${j}]`);
        return {
          kind: r.oneOf<AuditKind>(e.kind, `${p}.entries[${j}].kind`, AUDIT_KINDS),
          txHash: r.hash(e.txHash, `${p}.entries[${j}].txHash`),
          auditorAddress: r.address(e.auditorAddress, `${p}.entries[${j}].auditorAddress`),
          auditorPCT: r.words(e.auditorPCT, `${p}.entries[${j}].auditorPCT`, 7),
        };
      }),
    };
  });
  return {
    auditor: o.auditor == null ? null : r.address(o.auditor, "auditor"),
    auditorPublicKey: o.auditorPublicKey == null ? null : r.point(o.auditorPublicKey, "auditorPublicKey"),
    periods,
    cycles:
      o.cycles == null
        ? null
        : r.arr(o.cycles, "cycles").map((cv, i) => {
            const c = r.obj(cv, `cycles[${i}]`);
            return {
              cycle: r.int(c.cycle, `cycles[${i}].cycle`),
              throughBlock: r.big(c.throughBlock, `cycles[${i}].throughBlock`),
              transfers: r.int(c.transfers, `cycles[${i}].transfers`),
              totalPCT: r.words(c.totalPCT, `cycles[${i}].totalPCT`, 7),
            };
          }),
  };
}
