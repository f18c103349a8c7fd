import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { CONFIG_VARIABLES } from "../src/config/index.js";
import { PROJECT_ROOT } from "../src/eerc/artifacts.js";

// docker-compose.yml: checked by docker compose itself when it is installed, and always by
// reading it: the services, how they reach each other, and settings the processes know.

const run = promisify(execFile);
const file = join(PROJECT_ROOT, "docker-compose.yml");
type Service = {
  build?: string;
  image?: string;
  command?: string[];
  environment?: Record<string, string>;
  depends_on?: Record<string, unknown>;
};
const compose = parse(readFileSync(file, "utf8")) as { services: Record<string, Service> };
const scripts = (JSON.parse(readFileSync(join(PROJECT_ROOT, "package.json"), "utf8")) as { scripts: Record<string, string> }).scripts;

/** What each of our services may be given: its schemas' variables, and what is read outside them. */
const KNOWN: Record<string, Set<string>> = {
  // `npm run indexer` runs Ponder with the indexer's and the API's schemas; its command line reads the other three.
  indexer: new Set([...CONFIG_VARIABLES.indexer, ...CONFIG_VARIABLES.api, "INDEXER_HOST", "DATABASE_SCHEMA", "DATABASE_VIEWS_SCHEMA"]),
  // Every tool finds the deployment manifest by NETWORK or DEPLOYMENT_FILE.
  agent: new Set([...CONFIG_VARIABLES.agent, "NETWORK", "DEPLOYMENT_FILE"]),
};

/** `docker compose` (the plugin) or `docker-compose` (Debian's package), whichever answers. */
async function composeCommand(): Promise<string[] | undefined> {
  for (const command of [["docker", "compose"], ["docker-compose"]]) {
    try {
      await run(command[0]!, [...command.slice(1), "version"], { timeout: 20_000 });
      return command;
    } catch {}
  }
  return undefined;
}

describe("docker-compose.yml", () => {
  it("is valid for docker compose, with the required settings given", async () => {
    const command = await composeCommand();
    if (!command) return; // Neither is installed: the structural checks below still run.
    const env = {
      ...process.env,
      POSTGRES_PASSWORD: "pw",
      RPC_URL: "http://rpc.example:8545",
      OPERATOR_PRIVATE_KEY: `0x${"11".repeat(32)}`,
    };
    const { stdout } = await run(command[0]!, [...command.slice(1), "-f", file, "config"], { env, cwd: PROJECT_ROOT });
    const resolved = parse(stdout) as { services: Record<string, Service> };
    expect(Object.keys(resolved.services).sort()).toEqual(["agent", "indexer", "postgres"]);
    expect(resolved.services.agent!.environment!.INDEXER_URL).toBe("http://indexer:42069");
    // Without a required setting it refuses, naming it.
    const missing = run(command[0]!, [...command.slice(1), "-f", file, "config"], { env: { ...env, RPC_URL: "" }, cwd: PROJECT_ROOT });
    await expect(missing).rejects.toThrow(/RPC_URL/);
  });

  it("runs postgres, the indexer with its API, and the agent, the last two from this image's npm scripts", () => {
    expect(Object.keys(compose.services).sort()).toEqual(["agent", "indexer", "postgres"]);
    for (const name of ["indexer", "agent"]) {
      const s = compose.services[name]!;
      expect(s.build).toBe(".");
      const [npm, verb, script] = s.command!;
      expect([npm, verb]).toEqual(["npm", "run"]);
      expect(scripts[script!], `npm script ${script}`).toBeDefined();
    }
    expect(compose.services.indexer!.command).toEqual(["npm", "run", "indexer"]);
    expect(compose.services.agent!.command).toEqual(["npm", "run", "agent"]);
  });

  it("points the indexer at the postgres service and the agent at the indexer, by service name", () => {
    const indexer = compose.services.indexer!.environment!;
    const agent = compose.services.agent!.environment!;
    expect(new URL(indexer.DATABASE_URL!.replace(/\$\{[^}]+\}/g, "x")).host).toBe("postgres:5432");
    expect(agent.INDEXER_URL).toBe(`http://indexer:${indexer.PORT}`);
    expect(indexer.INDEXER_HOST).toBe("0.0.0.0");
    expect(Object.keys(compose.services.indexer!.depends_on!)).toEqual(["postgres"]);
    expect(Object.keys(compose.services.agent!.depends_on!)).toEqual(["indexer"]);
  });

  it("gives our services only settings their schemas know", () => {
    for (const [name, known] of Object.entries(KNOWN)) {
      const unknown = Object.keys(compose.services[name]!.environment!).filter((v) => !known.has(v));
      expect(unknown, name).toEqual([]);
    }
  });

  it("writes no key into the file: keys come from the environment", () => {
    const text = readFileSync(file, "utf8");
    expect(text).not.toMatch(/0x[0-9a-fA-F]{64}/);
    for (const service of ["indexer", "agent"]) {
      for (const [name, value] of Object.entries(compose.services[service]!.environment!)) {
        if (/KEY|SECRET/.test(name)) expect(value, name).toMatch(/^\$\{[A-Z_]+(:-|:\?)[^}]*\}$/);
      }
    }
  });
});
