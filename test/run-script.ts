import { execFile } from "node:child_process";
import { join } from "node:path";
import { PROJECT_ROOT } from "../src/eerc/artifacts.js";

export type Run = { code: number; stdout: string; stderr: string };

const TSX = join(PROJECT_ROOT, "node_modules", ".bin", "tsx");

/** Runs a TypeScript entry point of the project as its own process, with only PATH, HOME and `env` set. */
export function runScript(script: string, args: string[], env: Record<string, string>, timeoutMs = 180_000): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      TSX,
      [script, ...args],
      { cwd: PROJECT_ROOT, env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env }, timeout: timeoutMs },
      (err, stdout, stderr) => resolve({ code: err ? (typeof err.code === "number" ? err.code : -1) : 0, stdout, stderr }),
    );
  });
}
