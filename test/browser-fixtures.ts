import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { type Browser, chromium } from "playwright-core";
import { describe, it } from "vitest";
import { PROJECT_ROOT } from "../src/eerc/artifacts.js";

/** Debian's Chromium, which playwright-core drives: nothing downloads a browser. */
export const CHROMIUM = "/usr/bin/chromium";
const INSTALL = "apt-get install -y chromium";
export const haveChromium = existsSync(CHROMIUM);
/** Where the browser tests save their screenshots. */
export const SHOTS = join(PROJECT_ROOT, "test-results");

/**
 * Without Chromium, the browser suite `name` is skipped with a one-line notice naming the install
 * command; under CI, which installs it, a missing browser is a failing test instead.
 */
export function requireChromium(name: string): void {
  if (!haveChromium && process.env.CI !== "true") console.log(`${name} test skipped: ${CHROMIUM} is missing (${INSTALL})`);
  describe.runIf(!haveChromium && process.env.CI === "true")(`${name} without Chromium`, () => {
    it("fails under CI, which installs Chromium", () => {
      throw new Error(`${CHROMIUM} is missing: ${INSTALL}`);
    });
  });
}

/** Chromium, headless, with the screenshot folder in place. */
export function launchChromium(): Promise<Browser> {
  mkdirSync(SHOTS, { recursive: true });
  return chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox"] });
}
