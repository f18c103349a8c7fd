import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Hono } from "hono";
import { describe, expect, it } from "vitest";
import { mountWebApp } from "../src/api/app.js";

// The static mount of the web dashboard (`/app/`): its files with their types and cache rules,
// and nothing outside the build folder, however the path is spelled.

const root = mkdtempSync(join(tmpdir(), "web-app-"));
const dir = join(root, "web");
mkdirSync(join(dir, "assets"), { recursive: true });
writeFileSync(join(dir, "index.html"), "<!doctype html><title>dashboard</title>");
writeFileSync(join(dir, "assets", "index-abc123.js"), "export {};");
writeFileSync(join(root, "secret.txt"), "outside the build");

const app = new Hono();
mountWebApp(app, { dir });

describe("the /app mount", () => {
  it("redirects /app to /app/ and serves index.html there, revalidated", async () => {
    const redirect = await app.request("/app");
    expect(redirect.status).toBe(301);
    expect(redirect.headers.get("location")).toBe("/app/");
    const index = await app.request("/app/");
    expect(index.status).toBe(200);
    expect(index.headers.get("content-type")).toBe("text/html; charset=utf-8");
    expect(index.headers.get("cache-control")).toBe("no-cache");
    expect(await index.text()).toContain("<title>dashboard</title>");
  });

  it("serves hashed assets with their type, cached for good", async () => {
    const js = await app.request("/app/assets/index-abc123.js");
    expect(js.status).toBe(200);
    expect(js.headers.get("content-type")).toBe("text/javascript; charset=utf-8");
    expect(js.headers.get("cache-control")).toBe("public, max-age=31536000, immutable");
  });

  it("answers 404 for a missing file and for any path out of the build folder", async () => {
    for (const path of [
      "/app/nope.js",
      "/app/../secret.txt",
      "/app/%2e%2e/secret.txt",
      "/app/assets/%2e%2e/%2e%2e/secret.txt",
      "/app/%E0%A4%A",
    ]) {
      const res = await app.request(path);
      expect(res.status, path).toBe(404);
      expect(await res.text(), path).not.toContain("outside the build");
    }
  });

  it("serves deployment.json (chain id and the addresses a withdraw needs) from the API's settings when the build has none", async () => {
    const deployment = {
      chainId: 31337,
      contracts: {
        encryptedERC: "0x1111111111111111111111111111111111111111",
        registrar: "0x2222222222222222222222222222222222222222",
        token: "0x3333333333333333333333333333333333333333",
        providerRegistry: "0x4444444444444444444444444444444444444444",
      },
    };
    const withSettings = new Hono();
    mountWebApp(withSettings, { dir, deployment });
    const res = await withSettings.request("/app/deployment.json");
    expect(res.status).toBe(200);
    expect(res.headers.get("cache-control")).toBe("no-cache");
    expect(await res.json()).toEqual({
      chainId: 31337,
      contracts: {
        encryptedERC: deployment.contracts.encryptedERC,
        registrar: deployment.contracts.registrar,
        token: deployment.contracts.token,
      },
    });
    // Without settings there is none; a deployment.json in the build folder wins over the settings.
    expect((await app.request("/app/deployment.json")).status).toBe(404);
    const own = mkdtempSync(join(tmpdir(), "web-app-"));
    writeFileSync(join(own, "index.html"), "<!doctype html>");
    writeFileSync(join(own, "deployment.json"), JSON.stringify({ chainId: 43113 }));
    const published = new Hono();
    mountWebApp(published, { dir: own, deployment });
    expect(await (await published.request("/app/deployment.json")).json()).toEqual({ chainId: 43113 });
  });
});
