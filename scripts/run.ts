import { ConfigError } from "../src/config/parse.js";
import { summarize } from "../src/errors.js";

/**
 * Runs a command's `main` and exits: 0 when it resolves (or its own code), 2 on a bad setting,
 * 1 on any other error, printed as one line.
 */
export function run(main: () => Promise<unknown>): void {
  main().then(
    (code) => process.exit(typeof code === "number" ? code : 0),
    (err: unknown) => {
      console.error(`error: ${summarize(err).message}`);
      process.exit(err instanceof ConfigError ? 2 : 1);
    },
  );
}
