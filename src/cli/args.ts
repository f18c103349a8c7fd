import { BaseError } from "../errors.js";

export type { Command, CommandName, Values } from "./program.js";

export class CommandLineError extends BaseError {
  readonly code = "USAGE";
}

/** The key given is not a key at all; its content is never echoed. */
export class InvalidKeyError extends BaseError {
  readonly code = "INVALID_KEY";
}

export type CliIo = {
  stdout(text: string): void;
  stderr(text: string): void;
  env: Record<string, string | undefined>;
};
