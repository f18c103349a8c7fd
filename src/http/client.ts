import { ApiHttpError, ApiResponseError, ApiUnreachableError, networkFailureReason } from "./errors.js";

export type HttpClientOptions = {
  /** Per request, connection to last byte. */
  timeoutMs?: number;
  fetch?: typeof globalThis.fetch;
};

export type HttpAnswer = { url: string; status: number; ok: boolean; text: string };

/** The server's `{ error: { field?, message } }` (or `{ error: "…" }`), or the start of whatever else it sent. */
export function failureOf(text: string): { message: string; field?: string } {
  try {
    const err = (JSON.parse(text) as { error?: { message?: unknown; field?: unknown } | string })?.error;
    if (typeof err === "string") return { message: err };
    if (err && typeof err.message === "string")
      return { message: err.message, field: typeof err.field === "string" ? err.field : undefined };
  } catch {
    // not JSON: fall through
  }
  return { message: text.trim().replace(/\s+/g, " ").slice(0, 200) || "(empty body)" };
}

/** Sends one request and reads the whole answer; ApiUnreachableError when none comes (refused, DNS, timeout). */
export async function sendRequest(
  url: string,
  init: { method?: "GET" | "POST"; json?: unknown } = {},
  options: HttpClientOptions = {},
): Promise<HttpAnswer> {
  const timeoutMs = options.timeoutMs ?? 30_000;
  const body = init.json === undefined ? undefined : JSON.stringify(init.json);
  try {
    const res = await (options.fetch ?? globalThis.fetch)(url, {
      method: init.method ?? (body === undefined ? "GET" : "POST"),
      headers: { accept: "application/json", ...(body === undefined ? {} : { "content-type": "application/json" }) },
      body,
      signal: AbortSignal.timeout(timeoutMs),
    });
    return { url, status: res.status, ok: res.ok, text: await res.text() };
  } catch (e) {
    throw new ApiUnreachableError(url, networkFailureReason(e, timeoutMs), { cause: e });
  }
}

/** Codes of a connection the server closed or reset while a request was on it. */
const DROPPED = new Set(["UND_ERR_SOCKET", "ECONNRESET", "EPIPE"]);

/**
 * Whether a request failed because its connection was closed under it (a kept-alive connection
 * the server dropped), rather than refused or unanswered: an idempotent request can be sent
 * again on a new connection.
 */
export function connectionDropped(e: unknown): boolean {
  if (!(e instanceof ApiUnreachableError)) return false;
  const cause = (e.cause as { cause?: { code?: unknown } } | undefined)?.cause;
  return typeof cause?.code === "string" && DROPPED.has(cause.code);
}

/** The JSON body of an answer; ApiResponseError when it is not JSON. */
export function jsonOf<T = unknown>(answer: HttpAnswer): T {
  try {
    return JSON.parse(answer.text) as T;
  } catch {
    throw new ApiResponseError(answer.url, `body is not JSON (${answer.text.trim().slice(0, 80) || "empty"})`);
  }
}

/** The failure of a non-2xx answer, with the server's message and field. */
export function httpErrorOf(answer: HttpAnswer): ApiHttpError {
  const failure = failureOf(answer.text);
  return new ApiHttpError(answer.url, answer.status, failure.message, failure.field);
}

/** Sends a request and returns its JSON body; ApiHttpError for a non-2xx answer, ApiResponseError for a body that is not JSON. */
export async function requestJson<T = unknown>(
  url: string,
  init: { method?: "GET" | "POST"; json?: unknown } = {},
  options: HttpClientOptions = {},
): Promise<T> {
  const answer = await sendRequest(url, init, options);
  if (!answer.ok) throw httpErrorOf(answer);
  return jsonOf<T>(answer);
}
