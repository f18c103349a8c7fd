import { bodyLimit } from "hono/body-limit";
import { BaseError } from "../errors.js";

export type ApiErrorStatus = 400 | 401 | 403 | 404 | 409 | 413 | 415 | 422;

/**
 * A request the API or the agent refuses; answered with `status` (400 unless told) and
 * `{ error: { field, message } }`, `field` naming the offending part of the request. Requests
 * are parsed with their schemas (`parseRequest` in `schema.ts`), which throw it.
 */
export class ApiInputError extends BaseError {
  readonly code = "INVALID_REQUEST";
  constructor(
    readonly field: string,
    message: string,
    readonly status: ApiErrorStatus = 400,
  ) {
    super(message);
  }
}

/** Parses a request body as JSON; anything else is a 400 on `body`. */
export function parseJsonBody(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new ApiInputError("body", "must be valid JSON");
  }
}

/**
 * A request's JSON body. Only `application/json` is read (415 otherwise): that content type makes a
 * browser ask first (CORS preflight), so no form or text/plain write goes through.
 */
export async function readJsonBody(req: { header(name: string): string | undefined; text(): Promise<string> }): Promise<unknown> {
  return parseJsonBody(await readJsonText(req));
}

/** `readJsonBody` without the parsing: the text of an `application/json` body (415 otherwise). */
export async function readJsonText(req: { header(name: string): string | undefined; text(): Promise<string> }): Promise<string> {
  if (!(req.header("content-type") ?? "").startsWith("application/json"))
    throw new ApiInputError("body", "must be sent as application/json", 415);
  return req.text();
}

/** Refuses a body over `maxSize` bytes with a 413 on `body`, from its declared length when it has one. */
export function jsonBodyLimit(maxSize: number) {
  return bodyLimit({
    maxSize,
    onError: (c) => c.json({ error: { field: "body", message: `must be at most ${maxSize} bytes` } }, 413),
  });
}
