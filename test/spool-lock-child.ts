// One starter in a race for a spool: loads, waits for "go" on stdin, opens the spool and reports
// "locked" (it holds the lock until stdin closes) or "refused <code>".
import { createInterface } from "node:readline";
import { Spool, SpoolLockedError } from "../src/meter/spool.js";

const path = process.env.SPOOL_PATH;
if (!path) throw new Error("SPOOL_PATH is not set");
const lines = createInterface({ input: process.stdin });
process.stdout.write("ready\n");
lines.once("line", () => {
  try {
    const { spool } = Spool.open(path);
    process.stdout.write("locked\n");
    lines.once("close", () => {
      spool.close();
      process.exit(0);
    });
  } catch (err) {
    process.stdout.write(`refused ${err instanceof SpoolLockedError ? err.code : String(err)}\n`);
    process.exit(0);
  }
});
