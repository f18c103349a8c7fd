import { BaseError, summarize } from "../errors.js";

/** A request over HTTP that got no usable answer: unreachable, an error status, or a body of the wrong shape. */
export abstract class HttpError extends BaseError {}

/** Why a fetch never got an answer, in a few words: "connection refused", "ENOTFOUND", "no answer within 15000 ms". */
export function networkFailureReason(e: unknown, timeoutMs: number): string {
  if (e instanceof Error && (e.name === "TimeoutError" || e.name === "AbortError")) return `no answer within ${timeoutMs} ms`;
  const cause = e instanceof Error ? (e.cause as { code?: unknown; message?: unknown } | undefined) : undefined;
  if (typeof cause?.code === "string") return cause.code === "ECONNREFUSED" ? "connection refused" : cause.code;
  if (typeof cause?.message === "string") return cause.message;
  return summarize(e).message;
}

/** Connection refused, DNS failure or timeout: the API never answered. */
export class ApiUnreachableError extends HttpError {
  readonly code = "API_UNREACHABLE";
  constructor(
    readonly url: string,
    reason: string,
    options?: { cause?: unknown },
  ) {
    super(`${url} is unreachable (${reason}): check that the service is running at that address`, options);
  }
}

/** The API answered with a 4xx/5xx status; `serverMessage` is its `error.message` when it sent one. */
export class ApiHttpError extends HttpError {
  readonly code = "API_HTTP_ERROR";
  constructor(
    readonly url: string,
    readonly status: number,
    readonly serverMessage: string,
    readonly field?: string,
  ) {
    super(`API returned HTTP ${status} for ${url}: ${field ? `${field}: ` : ""}${serverMessage}`);
  }
}

/** The API answered 2xx with a body that is not JSON or not the documented shape. */
export class ApiResponseError extends HttpError {
  readonly code = "API_BAD_RESPONSE";
  constructor(
    readonly url: string,
    readonly detail: string,
  ) {
    super(`malformed response from ${url}: ${detail}`);
  }
}
