import { BaseError as ViemBaseError } from "viem";

export type BaseErrorOptions = {
  cause?: unknown;
  /** The input field at fault, as the user wrote it (an env variable, a JSON field, a flag). */
  field?: string;
  /** The HTTP status an API answers this error with. */
  status?: number;
};

/**
 * Every error this project throws: a stable `code` to branch on, `name` set to the class name,
 * and optionally the `cause`, the `field` at fault and an HTTP `status` (after viem's BaseError).
 * Families (EercError, HistoryError, …) extend it so callers can catch one area at a time.
 */
export abstract class BaseError extends Error {
  abstract readonly code: string;
  readonly field?: string;
  readonly status?: number;

  constructor(message: string, options: BaseErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    if (options.field !== undefined) this.field = options.field;
    if (options.status !== undefined) this.status = options.status;
  }

  /** One line for logs, status answers and the CLI. Errors whose message names private figures override it. */
  get summary(): string {
    return firstLine(this.message);
  }
}

export type ErrorSummary = { code: string; message: string };

const firstLine = (text: string): string => text.split("\n")[0]!.trim();

/** Any thrown value as a code and one line: ours by `summary`, viem's by `shortMessage`, anything else by its first line. */
export function summarize(err: unknown): ErrorSummary {
  if (err instanceof BaseError) return { code: err.code, message: err.summary };
  if (err instanceof ViemBaseError) return { code: err.name, message: firstLine(err.shortMessage) };
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return { code: typeof code === "string" || typeof code === "number" ? String(code) : "ERROR", message: firstLine(err.message) };
  }
  return { code: "ERROR", message: firstLine(String(err)) };
}

/** Input refused because of one field; reads "<subject>: <field> <reason>" and keeps `reason` for re-wording. */
export abstract class InvalidFieldError extends BaseError {
  declare readonly field: string;
  constructor(
    subject: string,
    field: string,
    readonly reason: string,
  ) {
    super(`${subject}: ${field} ${reason}`, { field });
  }
}
