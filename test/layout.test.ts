import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { PROJECT_ROOT } from "../src/eerc/artifacts.js";

const SRC = join(PROJECT_ROOT, "src");

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? sourceFiles(path) : path.endsWith(".ts") ? [path] : [];
  });
}

/** `src/<folder>/…` → folder; a file directly in src is its own module (`errors.ts`, the Ponder handlers). */
const moduleOf = (path: string) => relative(SRC, path).split("/")[0]!;

/** Which top-level module imports which, from every relative import in src. */
function importGraph(): Map<string, Set<string>> {
  const graph = new Map<string, Set<string>>();
  for (const file of sourceFiles(SRC)) {
    for (const m of readFileSync(file, "utf8").matchAll(/from "(\.{1,2}\/[^"]+)"/g)) {
      const target = resolve(dirname(file), m[1]!);
      if (!target.startsWith(`${SRC}/`)) continue;
      const [from, to] = [moduleOf(file), moduleOf(target)];
      if (from !== to) graph.set(from, (graph.get(from) ?? new Set()).add(to));
    }
  }
  return graph;
}

function cycleFrom(graph: Map<string, Set<string>>, start: string): string[] | undefined {
  const walk = (node: string, path: string[]): string[] | undefined => {
    for (const next of graph.get(node) ?? []) {
      if (next === start) return [...path, next];
      if (!path.includes(next)) {
        const found = walk(next, [...path, next]);
        if (found) return found;
      }
    }
    return undefined;
  };
  return walk(start, [start]);
}

describe("the layout of src", () => {
  const graph = importGraph();

  it("has no import cycle between its top-level folders", () => {
    const cycles = [...graph.keys()].map((m) => cycleFrom(graph, m)).filter((c) => c !== undefined);
    expect(cycles.map((c) => c.join(" → "))).toEqual([]);
  });

  it("keeps production code free of the local marketplace helpers", () => {
    const importers = [...graph].filter(([from, to]) => from !== "local" && to.has("local")).map(([from]) => from);
    expect(importers).toEqual([]);
  });
});

describe("README", () => {
  it("names the Node.js version engines asks for, and the host Node.js the quick start was checked on", () => {
    const readme = readFileSync(join(PROJECT_ROOT, "README.md"), "utf8");
    const pkg = JSON.parse(readFileSync(join(PROJECT_ROOT, "package.json"), "utf8")) as {
      engines: { node: string };
      devDependencies: Record<string, string>;
    };
    const engines = /^>=(\d+)/.exec(pkg.engines.node)![1]!;
    const quickStart = readme.slice(readme.indexOf("## Quick start"), readme.indexOf("```sh", readme.indexOf("## Quick start")));
    expect(quickStart).toContain(`Node.js ${engines} itself`);
    expect(quickStart).toContain(`\`engines\` names ${engines}`);
    expect(pkg.devDependencies.node!.split(".")[0]).toBe(engines);
    const host = Number(/with Node\.js (\d+) or later/.exec(quickStart)![1]);
    expect(host).toBeLessThanOrEqual(Number(engines));
  });
});
