import { randomBytes } from "node:crypto";
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { basename, dirname, join } from "node:path";
import { pathToFileURL } from "node:url";
import { PROJECT_ROOT } from "../eerc/artifacts.js";

/** Files of a closed cluster that belong to the process that ran it, not to the data. */
const RUNTIME_FILES = new Set(["postmaster.pid", ".s.PGSQL.5432.out", ".s.PGSQL.5432.in", ".s.PGSQL.5432.lock.out"]);

/** Ponder's PGlite: the package directory and its version. */
function pglitePackage(): { dir: string; version: string } {
  let dir = dirname(createRequire(import.meta.url).resolve("@electric-sql/pglite"));
  while (!existsSync(join(dir, "package.json"))) dir = dirname(dir);
  const { version } = JSON.parse(readFileSync(join(dir, "package.json"), "utf8")) as { version: string };
  return { dir, version };
}

/** An empty cluster made by PGlite's initdb, kept in `templateRoot` (one per PGlite version). */
async function emptyCluster(templateRoot: string): Promise<string> {
  const { dir, version } = pglitePackage();
  const template = join(templateRoot, `pglite-${version}`);
  if (existsSync(join(template, "PG_VERSION"))) return template;
  // Built aside and renamed into place, so that concurrent starts never copy half a cluster.
  const building = `${template}.${process.pid}.${randomBytes(4).toString("hex")}`;
  mkdirSync(templateRoot, { recursive: true });
  try {
    const { PGlite } = (await import(pathToFileURL(join(dir, "dist", "index.js")).href)) as typeof import("@electric-sql/pglite");
    const db = new PGlite(building);
    await db.waitReady;
    await db.close();
    renameSync(building, template);
  } catch (err) {
    // Another process may have put its template in place first.
    if (!existsSync(join(template, "PG_VERSION"))) throw err;
  } finally {
    rmSync(building, { recursive: true, force: true });
  }
  return template;
}

/**
 * Prepares the PGlite data directory Ponder is about to open. In an empty directory PGlite runs
 * initdb, the longest step of a fresh indexer's start-up (seconds); the directory gets a copy of
 * an empty cluster instead, made by the same initdb once per PGlite version and kept in
 * `templateRoot`. The copy holds no indexed data and no RPC cache: the database is as fresh as
 * initdb leaves it. A directory that already holds a cluster, or anything else, is left alone.
 */
export async function seedPgliteDirectory(directory: string, templateRoot = join(PROJECT_ROOT, ".ponder")): Promise<"seeded" | "left"> {
  if (existsSync(directory) && readdirSync(directory).length > 0) return "left";
  const template = await emptyCluster(templateRoot);
  cpSync(template, directory, { recursive: true, filter: (source) => !RUNTIME_FILES.has(basename(source)) });
  return "seeded";
}
