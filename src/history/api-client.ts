import { type Address, getAddress } from "viem";
import { ApiHttpError, ApiResponseError, ApiUnreachableError, networkFailureReason, UnknownAccountError } from "./errors.js";
import { parseAuditTotals, parseEarnings } from "./parse.js";
import type { AuditPeriodUnit, AuditTotalsResponse, EarningsResponse } from "./types.js";

export type ApiClientOptions = {
  /** per request, connection to last byte; default 15 s */
  timeoutMs?: number;
  fetch?: typeof globalThis.fetch;
};

type Failure = { status: number; message: string; field?: string };

/** The server's `{ error: { field?, message } }`, or the start of whatever else it sent. */
function failureOf(status: number, body: string): Failure {
  try {
    const json = JSON.parse(body) as { error?: { message?: unknown; field?: unknown } | string };
    const err = json?.error;
    if (typeof err === "string") return { status, message: err };
    if (err && typeof err.message === "string") {
      return { status, message: err.message, field: typeof err.field === "string" ? err.field : undefined };
    }
  } catch {
    // not JSON: fall through
  }
  const text = body.trim().replace(/\s+/g, " ").slice(0, 200);
  return { status, message: text || "(empty body)" };
}

/**
 * Typed client for BackendShield's REST endpoints used by providers and auditors.
 * `baseUrl` is where the API is mounted (`http://host:42069` or `https://host/api`).
 */
export class HistoryApiClient {
  readonly baseUrl: string;
  private readonly timeoutMs: number;
  private readonly fetchImpl: typeof globalThis.fetch;

  constructor(baseUrl: string, options: ApiClientOptions = {}) {
    let url: URL;
    try {
      url = new URL(baseUrl);
    } catch {
      throw new TypeError(`API URL "${baseUrl}" is not a URL`);
    }
    if (url.protocol !== "http:" && url.protocol !== "https:") throw new TypeError(`API URL "${baseUrl}" must be http(s)`);
    this.baseUrl = url.href.endsWith("/") ? url.href : `${url.href}/`;
    this.timeoutMs = options.timeoutMs ?? 15_000;
    this.fetchImpl = options.fetch ?? globalThis.fetch;
  }

  private url(path: string, query: Record<string, string | undefined> = {}): string {
    const url = new URL(path, this.baseUrl);
    for (const [k, v] of Object.entries(query)) if (v !== undefined) url.searchParams.set(k, v);
    return url.href;
  }

  /** GETs JSON; returns the parsed body, or the failure for 4xx/5xx. */
  private async get(url: string): Promise<{ ok: true; json: unknown } | { ok: false; failure: Failure }> {
    let res: Response;
    let body: string;
    try {
      res = await this.fetchImpl(url, {
        headers: { accept: "application/json" },
        signal: AbortSignal.timeout(this.timeoutMs),
      });
      body = await res.text();
    } catch (e) {
      throw new ApiUnreachableError(url, networkFailureReason(e, this.timeoutMs), { cause: e });
    }
    if (!res.ok) return { ok: false, failure: failureOf(res.status, body) };
    try {
      return { ok: true, json: JSON.parse(body) };
    } catch {
      throw new ApiResponseError(url, `body is not JSON (${body.trim().slice(0, 80) || "empty"})`);
    }
  }

  /** `GET /providers/:address/earnings[?tokenId=]`; 404 is UnknownAccountError. */
  async earnings(account: Address, options: { tokenId?: bigint } = {}): Promise<EarningsResponse> {
    const address = getAddress(account);
    const url = this.url(`providers/${address}/earnings`, { tokenId: options.tokenId?.toString() });
    const r = await this.get(url);
    if (!r.ok) {
      if (r.failure.status === 404) throw new UnknownAccountError(address, `the API has no such account (HTTP 404: ${r.failure.message})`);
      throw new ApiHttpError(url, r.failure.status, r.failure.message, r.failure.field);
    }
    return parseEarnings(r.json, url);
  }

  /** `GET /audit/totals[?period=day|month]`. */
  async auditTotals(options: { period?: AuditPeriodUnit } = {}): Promise<AuditTotalsResponse> {
    const url = this.url("audit/totals", { period: options.period });
    const r = await this.get(url);
    if (!r.ok) throw new ApiHttpError(url, r.failure.status, r.failure.message, r.failure.field);
    return parseAuditTotals(r.json, url);
  }
}
