import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { buildCircuits } from "../src/build/circuits.js";
import { buildContracts } from "../src/build/contracts.js";
import { PROJECT_ROOT } from "../src/eerc/artifacts.js";
import { buildAudited, circuitsDirOf } from "./interop/build-audited.js";
import { run } from "./run.js";

/**
 * `npm run test:interop`: the end-to-end suites against the audited eERC built from the local
 * checkout in EERC_AUDITED_DIR (any version of ava-labs/EncryptedERC). The SDK, indexer, payout
 * agent and CLI run unchanged; only the eERC contracts and the proving keys (CIRCUITS_DIR) are the
 * audited ones. Extra arguments go to vitest (a file filter, say).
 */
async function main(): Promise<number> {
  const dir = process.env.EERC_AUDITED_DIR;
  if (!dir) {
    console.log("test:interop skipped: set EERC_AUDITED_DIR to a local checkout of ava-labs/EncryptedERC");
    return 0;
  }
  await buildCircuits();
  await buildContracts();
  const build = await buildAudited(dir);
  console.log(
    `audited eERC ${build.source.commit ?? "(commit unknown)"} from ${build.source.dir}: ${build.messages ? "with" : "without"} the bytes-message overloads`,
  );
  const env = { ...process.env, EERC_AUDITED_DIR: build.source.dir, CIRCUITS_DIR: circuitsDirOf(build) };
  const vitest = join(PROJECT_ROOT, "node_modules", "vitest", "vitest.mjs");
  const run = spawnSync(process.execPath, [vitest, "run", "--config", "vitest.interop.config.ts", ...process.argv.slice(2)], {
    cwd: PROJECT_ROOT,
    env,
    stdio: "inherit",
  });
  return run.status ?? 1;
}

run(main);
