import type { Address, Hex } from "viem";
import { decryptHistory } from "../../src/history/decrypt.js";
import type { DecryptedHistory, EarningsResponse } from "../../src/history/types.js";
import { IndexerClient } from "../../src/indexer-client/client.js";
import { decodeTag } from "../../src/payout/tag.js";
import { scanUsage, type UsageScan } from "./usage-scan.js";

export { deriveKeyFromWallet } from "../../src/eerc/keys.js";

/**
 * The provider view's figures, decrypted here with the eERC key held in memory: the same
 * functions the CLI runs (`history --api`, `usage --api`), over the same API answers. Every
 * amount stays a bigint of micro-USDC. The page loads this module (and the curve and Poseidon code
 * it brings) only once an account is connected.
 */

/** One incoming transfer, with the payout cycle its PCT nonce names (null: not a payout). */
export type ReceivedPayout = {
  tokenId: bigint;
  cycle: number | null;
  throughBlock: bigint | null;
  from: Address;
  blockNumber: bigint;
  txHash: Hex;
  amountMicro: bigint;
};

/** What one cycle paid this account, and what all cycles up to it paid. */
export type CycleEarnings = {
  tokenId: bigint;
  cycle: number;
  throughBlock: bigint;
  transfers: number;
  amountMicro: bigint;
  cumulativeMicro: bigint;
};

export type ProviderView = {
  history: DecryptedHistory;
  /** Why the API serves no pending amount, when it does not. */
  pendingUnavailable: string | null;
  received: ReceivedPayout[];
  cycles: CycleEarnings[];
  /** The committed usage, decrypted a slice at a time (`usage-scan.ts`). */
  usage: UsageScan;
};

/**
 * Labels each decrypted incoming transfer with its payout cycle: a payout's receiver PCT nonce is
 * its payout tag (`src/payout/tag.ts`), public like the transfer itself; the amount is the one
 * `decryptHistory` read from that PCT.
 */
export function receivedPayouts(response: EarningsResponse, history: DecryptedHistory): ReceivedPayout[] {
  const nonces = new Map<string, bigint>();
  for (const t of response.receivedTransfers) if (t.amountPCT) nonces.set(`${t.tokenId}:${t.txHash}`, t.amountPCT[6]!);
  return history.tokens.flatMap((token) =>
    token.received.map((r) => {
      const nonce = nonces.get(`${r.tokenId}:${r.txHash}`);
      const tag = nonce === undefined ? undefined : decodeTag(nonce);
      return {
        tokenId: r.tokenId,
        cycle: tag?.cycle ?? null,
        throughBlock: tag?.throughBlock ?? null,
        from: r.from,
        blockNumber: r.blockNumber,
        txHash: r.txHash,
        amountMicro: r.amountMicro,
      };
    }),
  );
}

/** Payouts summed per (token, cycle) in cycle order, with the running total per token. Untagged transfers are not payouts. */
export function earningsPerCycle(received: readonly ReceivedPayout[]): CycleEarnings[] {
  const byKey = new Map<string, CycleEarnings>();
  for (const r of received) {
    if (r.cycle === null || r.throughBlock === null) continue;
    const key = `${r.tokenId}:${r.cycle}`;
    let c = byKey.get(key);
    if (!c) {
      c = { tokenId: r.tokenId, cycle: r.cycle, throughBlock: r.throughBlock, transfers: 0, amountMicro: 0n, cumulativeMicro: 0n };
      byKey.set(key, c);
    }
    c.transfers++;
    c.amountMicro += r.amountMicro;
  }
  const cycles = [...byKey.values()].sort((a, b) => (a.tokenId === b.tokenId ? a.cycle - b.cycle : a.tokenId < b.tokenId ? -1 : 1));
  const running = new Map<bigint, bigint>();
  for (const c of cycles) {
    const total = (running.get(c.tokenId) ?? 0n) + c.amountMicro;
    running.set(c.tokenId, total);
    c.cumulativeMicro = total;
  }
  return cycles;
}

/** The API's reason for serving no pending amount (`pendingUnavailable` of the earnings answer). */
const pendingUnavailableOf = (response: EarningsResponse): string | undefined =>
  "pendingUnavailable" in response && typeof response.pendingUnavailable === "string" ? response.pendingUnavailable : undefined;

/**
 * Reads the account's earnings and the committed usage from the API and decrypts them with `sk`.
 * A key that is not the account's registered one stops here (KeyMismatchError), before any figure.
 * The usage is decrypted a slice at a time: the view comes back once `usage.firstRows` usage rows
 * (a table's first page) are decrypted, and `usage.onProgress` follows the rest.
 */
export async function loadProviderView(
  apiUrl: string,
  account: Address,
  sk: bigint,
  usage: { firstRows: number; onProgress: (scan: UsageScan) => void } = { firstRows: Number.POSITIVE_INFINITY, onProgress: () => {} },
): Promise<ProviderView> {
  const client = new IndexerClient(apiUrl);
  // The usage scan starts with the earnings request: its workers start and decrypt while the earnings are read and checked.
  const scanning = client.providers().then((providers) => scanUsage({ client, account, sk, providers, ...usage }));
  // Awaited below, or cancelled when the earnings fail; until then a failure of its own (the API
  // down, say) must not surface as an unhandled rejection before either happens.
  scanning.catch(() => {});
  let response: EarningsResponse;
  let history: DecryptedHistory;
  try {
    response = await client.earnings(account);
    history = decryptHistory(response, sk);
  } catch (e) {
    void scanning.then(
      (scan) => scan.cancel(),
      () => {},
    );
    throw e;
  }
  const received = receivedPayouts(response, history);
  return {
    history,
    pendingUnavailable: response.pending ? null : (pendingUnavailableOf(response) ?? "the API serves no pending amount"),
    received,
    cycles: earningsPerCycle(received),
    usage: await scanning,
  };
}
