import { defineConfig } from "vitest/config";
import { E2E_SETTINGS } from "./vitest.config.js";

// `npm run test:interop` (scripts/test-interop.ts): the suites that must pass unchanged on the
// audited eERC. The test helpers deploy it when EERC_AUDITED_DIR is set.
export default defineConfig({
  test: {
    ...E2E_SETTINGS,
    // The helpers build the audited contracts into one folder: one file at a time.
    fileParallelism: false,
    include: [
      "test/eerc-interop.test.ts",
      "test/eerc-model.test.ts",
      "test/balance-bounded-read.test.ts",
      "test/deployment.test.ts",
      "test/eerc-e2e.test.ts",
      "test/indexer.test.ts",
      "test/payout-agent.test.ts",
      "test/payout-crash.test.ts",
      "test/payout-journey.test.ts",
    ],
  },
});
