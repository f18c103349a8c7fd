// Runs on any Node.js >= 18 before the project's own toolchain exists: installs the pinned
// dependencies (including Node.js 22 itself, as the `node` package) on a fresh clone, and
// again whenever package-lock.json is newer than the installed tree.
import { execSync } from "node:child_process";
import { existsSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const lock = join(root, "package-lock.json");
const installed = join(root, "node_modules", ".package-lock.json");
const toolchain = ["tsx", "vitest", "node", "anvil"].map((bin) => join(root, "node_modules", ".bin", bin));

const stale =
  !existsSync(installed) ||
  toolchain.some((bin) => !existsSync(bin)) ||
  statSync(lock).mtimeMs > statSync(installed).mtimeMs;

if (stale) {
  console.log("installing dependencies (npm ci)...");
  execSync("npm ci --no-audit --no-fund", { cwd: root, stdio: "inherit" });
}
