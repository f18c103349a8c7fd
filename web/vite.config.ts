import { copyFileSync, existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { defineConfig, type Plugin } from "vite";
import { defaultProvingArtifacts } from "../src/eerc/artifacts.js";

const here = fileURLToPath(new URL(".", import.meta.url));

/**
 * The dashboard imports the project's own decryption code (`src/eerc`, `src/history`), whose
 * modules also hold Node-only helpers (reading a spool file, for example) that the page never
 * calls. Node's built-in modules resolve to a stub whose every export throws, so such a helper
 * fails loudly if it is ever reached instead of being silently bundled.
 */
function nodeBuiltinsStub(): Plugin {
  const prefix = "\0node-stub:";
  return {
    name: "backendshield-node-stub",
    enforce: "pre",
    resolveId(id) {
      return id.startsWith("node:") ? prefix + id : null;
    },
    load(id) {
      if (!id.startsWith(prefix)) return null;
      const name = id.slice(prefix.length);
      // Every named import is a property of the default export (syntheticNamedExports): a function that throws.
      const code = `export default new Proxy({}, { get: (_, key) => () => { throw new Error(\`${name}: \${String(key)} is not available in the browser\`); } });`;
      return { code, syntheticNamedExports: true };
    },
  };
}

/**
 * The withdraw circuit's witness program and proving key, copied into the build's `circuits/`: the
 * page proves a withdraw in the browser and fetches them relative to its own URL, so any copy of
 * the build carries them. They come from CIRCUITS_DIR when set (a deployment's own keys), else
 * from this project's circuit build; without them the build still succeeds, and the page says
 * what is missing when a withdraw is tried.
 */
function withdrawCircuit(): Plugin {
  return {
    name: "backendshield-withdraw-circuit",
    apply: "build",
    writeBundle(options) {
      const { wasm, zkey } = defaultProvingArtifacts().withdraw;
      const out = join(options.dir!, "circuits");
      if (!existsSync(wasm) || !existsSync(zkey)) {
        this.warn(`no withdraw circuit at ${existsSync(wasm) ? zkey : wasm} (npm run build:circuits): the page cannot withdraw`);
        return;
      }
      mkdirSync(out, { recursive: true });
      copyFileSync(wasm, join(out, "withdraw.wasm"));
      copyFileSync(zkey, join(out, "withdraw.zkey"));
    },
  };
}

/**
 * Modules the page bundles for what they export, never for their top-level code: the project's
 * own `src/` (whose modules also hold Node-side helpers, e.g. `src/eerc/artifacts.ts` finding the
 * project folder on import) and the prover's packages. Dropped unless the page uses an export.
 */
const srcDir = fileURLToPath(new URL("../src/", import.meta.url));
const PROVER_ONLY = /\/node_modules\/(snarkjs|ffjavascript|circom_runtime|web-worker|buffer|base64-js|ieee754)\//;
const importedForExports = (id: string) => id.startsWith(srcDir) || PROVER_ONLY.test(id);

export default defineConfig({
  root: here,
  // Relative asset URLs: the same build works at /app/ on the API and from any static host or folder.
  base: "./",
  plugins: [nodeBuiltinsStub(), withdrawCircuit()],
  // The usage scan's workers (web/src/usage-worker.ts) are bundled on their own, with the same rules.
  worker: {
    format: "es",
    plugins: () => [nodeBuiltinsStub()],
    rollupOptions: { treeshake: { moduleSideEffects: (id) => !importedForExports(id) } },
  },
  build: {
    outDir: fileURLToPath(new URL("../build/web", import.meta.url)),
    emptyOutDir: true,
    target: "es2022",
    chunkSizeWarningLimit: 1024,
    reportCompressedSize: true,
    rollupOptions: {
      treeshake: { moduleSideEffects: (id) => !importedForExports(id) },
    },
  },
});
