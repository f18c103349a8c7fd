import { ConfigError } from "../src/config/parse.js";
import { summarize } from "../src/errors.js";

/**
 * Runs a command's `main` and exits with its code (0 when it returns none): 2 on a bad setting,
 * 1 on any other error, reported as one line by default.
 */
export function run(
  main: () => Promise<unknown>,
  report: (err: unknown) => void = (err) => console.error(`error: ${summarize(err).message}`),
): void {
  main().then(
    (code) => process.exit(typeof code === "number" ? code : (process.exitCode ?? 0)),
    (err: unknown) => {
      report(err);
      process.exit(err instanceof ConfigError ? 2 : 1);
    },
  );
}

/** For the demo and the benchmarks: the whole stack, where a developer will look. */
export const reportStack = (err: unknown) => console.error(err instanceof Error ? (err.stack ?? err.message) : err);
