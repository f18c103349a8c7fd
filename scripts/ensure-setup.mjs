// Runs on any Node.js >= 18 before the project's own toolchain exists: installs the pinned
// dependencies (including Node.js 22 itself, as the `node` package) on a fresh clone, and
// again whenever package-lock.json asks for something the installed tree does not have.
import { execSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const readJson = (path) => JSON.parse(readFileSync(path, "utf8"));

function installedTreeMatchesLock() {
  const hidden = join(root, "node_modules", ".package-lock.json");
  if (!existsSync(hidden)) return false;
  const installed = readJson(hidden).packages ?? {};
  const wanted = readJson(join(root, "package-lock.json")).packages ?? {};
  for (const [path, pkg] of Object.entries(wanted)) {
    if (path === "" || !path.startsWith("node_modules/")) continue;
    const have = installed[path];
    // Optional packages for other platforms are never installed.
    if (!have) {
      if (pkg.optional) continue;
      return false;
    }
    if (have.version !== pkg.version) return false;
  }
  return ["tsx", "vitest", "node", "anvil"].every((bin) => existsSync(join(root, "node_modules", ".bin", bin)));
}

if (!installedTreeMatchesLock()) {
  console.log("installing dependencies (npm ci)...");
  execSync("npm ci --no-audit --no-fund", { cwd: root, stdio: "inherit" });
}
