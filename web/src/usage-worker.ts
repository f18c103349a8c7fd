import { type CommittedBatch, decryptProviderUsage, type ProviderRef, type ProviderUsageReport } from "../../src/history/usage.js";

/**
 * A worker of the usage scan (`usage-scan.ts`): decrypts the slices of batches it is handed with
 * the key it is given, and answers with `decryptProviderUsage`'s report of each. It lives in this
 * page's process and answers only the page that started it; the page ends it when the scan is done
 * or the account is disconnected.
 */

export type UsageJob = { id: number; account: `0x${string}`; sk: bigint; providers: ProviderRef[]; batches: CommittedBatch[] };
export type UsageAnswer = { id: number; report: ProviderUsageReport } | { id: number; error: string };

const scope = globalThis as unknown as {
  onmessage: ((event: { data: UsageJob }) => void) | null;
  postMessage(message: UsageAnswer): void;
};

scope.onmessage = (event) => {
  const { id, ...args } = event.data;
  try {
    scope.postMessage({ id, report: decryptProviderUsage(args) });
  } catch (e) {
    scope.postMessage({ id, error: e instanceof Error ? e.message : String(e) });
  }
};
