import { pathToFileURL } from "node:url";
import { summarize } from "../errors.js";
import { type CliIo, type Command, CommandLineError, InvalidKeyError, parseCommand, USAGE } from "./args.js";

export { type CliIo, CommandLineError, InvalidKeyError, USAGE } from "./args.js";

/** One line, whatever the error: viem's short message, never a stack or a multi-line dump. */
const oneLine = (e: unknown): string => summarize(e).message;

/** Runs the CLI; returns the exit code. */
export async function main(argv: string[], io: CliIo): Promise<number> {
  let cmd: Command | "help";
  let commands: typeof import("./commands.js");
  let id: Awaited<ReturnType<typeof import("./commands.js")["resolveIdentity"]>>;
  try {
    cmd = parseCommand(argv);
    if (cmd === "help") {
      io.stdout(USAGE);
      return 0;
    }
    // The chain and crypto libraries load only once the arguments are known to be usable.
    commands = await import("./commands.js");
    id = await commands.resolveIdentity(cmd.values, io.env);
  } catch (e) {
    if (e instanceof CommandLineError) {
      io.stderr(`error: ${e.message} (see --help)`);
      return 2;
    }
    if (e instanceof InvalidKeyError) {
      io.stderr(`error: invalid key: ${e.message}`);
      return 2;
    }
    io.stderr(`error: ${oneLine(e)}`);
    return 1;
  }
  try {
    const payout =
      cmd.name === "withdraw" || cmd.name === "reconcile" || cmd.name === "distribute" ? await import("./payout-commands.js") : undefined;
    if (cmd.name === "history") await commands.runHistory(cmd, id, io);
    else if (cmd.name === "audit") await commands.runAudit(cmd, id, io);
    else if (cmd.name === "usage") await commands.runUsage(cmd, id, io);
    else if (cmd.name === "withdraw") await payout!.runWithdraw(cmd, id, io);
    else if (cmd.name === "reconcile") await payout!.runReconcile(cmd, id, io);
    else await payout!.runDistribute(cmd, id, io);
    return 0;
  } catch (e) {
    if (e instanceof CommandLineError) {
      io.stderr(`error: ${e.message} (see --help)`);
      return 2;
    }
    io.stderr(`error: ${oneLine(e)}`);
    return 1;
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  main(process.argv.slice(2), {
    stdout: (t) => process.stdout.write(`${t}\n`),
    stderr: (t) => process.stderr.write(`${t}\n`),
    env: process.env,
  }).then(
    (code) => process.exit(code),
    (e) => {
      process.stderr.write(`error: ${oneLine(e)}\n`);
      process.exit(1);
    },
  );
}
