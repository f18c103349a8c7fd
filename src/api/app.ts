import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { extname, join, relative, resolve, sep } from "node:path";
import type { Hono } from "hono";
import { PROJECT_ROOT } from "../eerc/artifacts.js";

/**
 * The web dashboard (`web/`), served as static files at `/app/`. The dashboard decrypts in the
 * browser: these files hold no key and no figure, and the page reads the same public routes as
 * any other client. Without a build (`npm run build:web`), the first request builds it.
 */
export const APP_PREFIX = "/app";

export const WEB_BUILD_DIR = join(PROJECT_ROOT, "build", "web");

const CONTENT_TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".json": "application/json",
  ".ico": "image/x-icon",
  ".wasm": "application/wasm",
};

/** `vite build` of `web/` into `build/web/`, as `npm run build:web` runs it. */
export function buildWeb(): Promise<void> {
  const vite = join(PROJECT_ROOT, "node_modules", "vite", "bin", "vite.js");
  return new Promise((done, fail) =>
    execFile(
      process.execPath,
      [vite, "build", "--config", join(PROJECT_ROOT, "web", "vite.config.ts"), "--logLevel", "warn"],
      // A caller's NODE_ENV (vitest's "test") would select the libraries' development builds.
      { cwd: PROJECT_ROOT, timeout: 300_000, env: { ...process.env, NODE_ENV: "production" } },
      (err, _stdout, stderr) => (err ? fail(new Error(`the web build failed: ${stderr || err.message}`)) : done()),
    ),
  );
}

/** Resolves once `dir` holds a build, building it the first time (one build however many requests wait). */
function onDemandBuild(dir: string): () => Promise<void> {
  let building: Promise<void> | null = null;
  return () => {
    if (existsSync(join(dir, "index.html"))) return Promise.resolve();
    building ??= buildWeb().finally(() => {
      building = null;
    });
    return building;
  };
}

/** The public facts the page's withdraw needs without the API: the chain and three contract addresses. */
export type WebDeployment = { chainId: number; contracts: { encryptedERC: string; registrar: string; token: string } };

/**
 * Mounts `GET /app` (a redirect to `/app/`) and the files under `/app/`. Hashed assets are cached
 * for good; `index.html` is revalidated, so a new build is picked up. Paths never leave `dir`.
 * With `deployment`, `/app/deployment.json` serves it when the build folder holds no such file.
 */
export function mountWebApp(app: Hono, options: { dir?: string; deployment?: WebDeployment } = {}): void {
  const dir = resolve(options.dir ?? WEB_BUILD_DIR);
  const ready = options.dir ? () => Promise.resolve() : onDemandBuild(dir);
  app.get(APP_PREFIX, (c) => c.redirect(`${APP_PREFIX}/`, 301));
  app.use(`${APP_PREFIX}/*`, async (c, next) => {
    if (c.req.method !== "GET" && c.req.method !== "HEAD") return next();
    let rest: string;
    try {
      rest = decodeURIComponent(c.req.path.slice(APP_PREFIX.length + 1));
    } catch {
      return c.text("not found", 404);
    }
    const file = resolve(dir, rest === "" ? "index.html" : rest);
    const inside = relative(dir, file);
    if (inside.startsWith("..") || inside.includes(`..${sep}`)) return c.text("not found", 404);
    try {
      await ready();
    } catch (e) {
      return c.text(`the dashboard is not built: ${(e as Error).message}; run npm run build:web`, 503);
    }
    let body: Buffer;
    try {
      body = await readFile(file);
    } catch {
      if (inside === "deployment.json" && options.deployment) {
        const { chainId, contracts } = options.deployment;
        const json = {
          chainId,
          contracts: { encryptedERC: contracts.encryptedERC, registrar: contracts.registrar, token: contracts.token },
        };
        return c.json(json, 200, { "cache-control": "no-cache", "x-content-type-options": "nosniff" });
      }
      return c.text("not found", 404);
    }
    const type = CONTENT_TYPES[extname(file)] ?? "application/octet-stream";
    const immutable = inside.startsWith(`assets${sep}`);
    return c.body(new Uint8Array(body), 200, {
      "content-type": type,
      "cache-control": immutable ? "public, max-age=31536000, immutable" : "no-cache",
      "x-content-type-options": "nosniff",
      "referrer-policy": "no-referrer",
    });
  });
}
