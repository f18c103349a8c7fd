import { pathToFileURL } from "node:url";
import { summarize } from "../errors.js";
import { type CliIo, type Command, CommandLineError, InvalidKeyError } from "./args.js";
import { parseCommand } from "./program.js";

export { type CliIo, CommandLineError, InvalidKeyError } from "./args.js";

/** One line, whatever the error: viem's short message, never a stack or a multi-line dump. */
const oneLine = (e: unknown): string => summarize(e).message;

type Identity = Awaited<ReturnType<typeof import("./commands.js")["resolveIdentity"]>>;

/** Commands that run without a key, or (doctor) with one only if given. */
const KEYLESS = new Set<Command["name"]>(["settlement show"]);
const KEY_OPTIONAL = new Set<Command["name"]>(["doctor"]);

/** The command's code, loaded only once the arguments are known to be usable. */
async function run(cmd: Command, id: Identity | undefined, io: CliIo): Promise<void> {
  switch (cmd.name) {
    case "history":
    case "audit":
    case "usage": {
      const c = await import("./commands.js");
      const runner = { history: c.runHistory, audit: c.runAudit, usage: c.runUsage }[cmd.name];
      return runner(cmd, id!, io);
    }
    case "withdraw":
    case "reconcile":
    case "distribute": {
      const p = await import("./payout-commands.js");
      const runner = { withdraw: p.runWithdraw, reconcile: p.runReconcile, distribute: p.runDistribute }[cmd.name];
      return runner(cmd, id!, io);
    }
    case "register":
      return (await import("./setup-commands.js")).runRegister(cmd, id!, io);
    case "provider add":
    case "provider update":
      return (await import("./setup-commands.js")).runProvider(cmd, id!, io);
    case "server authorise":
    case "server revoke":
      return (await import("./setup-commands.js")).runServer(cmd, id!, io);
    case "payer fund":
      return (await import("./setup-commands.js")).runPayerFund(cmd, id!, io);
    case "settlement show":
    case "settlement set":
      return (await import("./settlement-commands.js")).runSettlement(cmd, id, io);
    case "doctor":
      return (await import("./doctor.js")).runDoctor(cmd, id, io);
  }
}

/** Runs the CLI; returns the exit code: 0 ok, 1 runtime error, 2 usage error. */
export async function main(argv: string[], io: CliIo): Promise<number> {
  let cmd: Command;
  let id: Identity | undefined;
  try {
    const parsed = parseCommand(argv);
    if ("help" in parsed) {
      io.stdout(parsed.help);
      return 0;
    }
    cmd = parsed;
    const keyGiven = cmd.values["key-file"] !== undefined || cmd.values["eerc-key-file"] !== undefined || !!io.env.PRIVATE_KEY;
    if (!KEYLESS.has(cmd.name) && (!KEY_OPTIONAL.has(cmd.name) || keyGiven)) {
      id = await (await import("./commands.js")).resolveIdentity(cmd.values, io.env);
    }
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
    await run(cmd, id, io);
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
