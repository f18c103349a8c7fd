import { tmpdir } from "node:os";
import { join } from "node:path";
import { defineConfig } from "vitest/config";

/** Pure and in-process tests: no chain, no proofs, no child indexer (`npm run test:unit`). */
export const UNIT_TESTS = [
  "test/config.test.ts",
  "test/payout-route.test.ts",
  "test/payout-reverts.test.ts",
  "test/openapi.test.ts",
  "test/errors.test.ts",
  "test/layout.test.ts",
  "test/indexer-settings.test.ts",
  "test/keccak.test.ts",
  "test/eerc-crypto.test.ts",
  "test/eerc-interop.test.ts",
  "test/usage-batch.test.ts",
  "test/usage-verify.test.ts",
  "test/usage-submit.test.ts",
  "test/meter.test.ts",
  "test/history.test.ts",
  "test/revenue.test.ts",
  "test/payout-settlement.test.ts",
  "test/payout-projection.test.ts",
  "test/payout-indexed-ledger.test.ts",
  "test/webhooks.test.ts",
  "test/operations.test.ts",
  "test/compose.test.ts",
  "test/x402.test.ts",
  "test/web-app-route.test.ts",
  "test/web-provider.test.ts",
  "test/api-limits.test.ts",
  "test/api-catch-up.test.ts",
  "test/proving-key-checks.test.ts",
];

/**
 * anvil, real proofs, the indexer, the agent and the CLI as processes (`npm run test:e2e`). Each
 * file starts its own chain, indexer and databases on free ports, and spends much of its time
 * waiting on those processes: two files run side by side.
 */
export const E2E_SETTINGS: {
  globalSetup: string[];
  testTimeout: number;
  hookTimeout: number;
  pool: "forks";
  env: Record<string, string>;
} = {
  globalSetup: ["test/global-setup.ts"],
  // One record of passed proving-key checks per run, not the project's data/: each agent and CLI
  // process of the run proves a key once per verifier, as a deployment's processes do.
  env: { PROVING_KEY_CHECKS_FILE: join(tmpdir(), `bs-proving-key-checks-${process.pid}.json`) },
  testTimeout: 120_000,
  hookTimeout: 600_000,
  pool: "forks",
};

export default defineConfig({
  test: {
    maxWorkers: 2,
    projects: [
      { test: { name: "unit", include: UNIT_TESTS, testTimeout: 60_000 } },
      { test: { name: "e2e", include: ["test/**/*.test.ts"], exclude: UNIT_TESTS, ...E2E_SETTINGS } },
    ],
  },
});
