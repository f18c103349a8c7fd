import type { Hex, PrivateKeyAccount } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { afterAll, beforeAll, describe, expect } from "vitest";
import { UsageLedgerAbi } from "../abis/UsageLedgerAbi.js";
import { ANVIL_KEYS } from "../src/chain/local.js";
import { deriveKeyFromWallet } from "../src/eerc/keys.js";
import { decryptProviderUsage } from "../src/history/usage.js";
import { IndexerClient } from "../src/indexer-client/client.js";
import { authoriseServer, bindServer, callRecords, commitRecords, newFundedAccount } from "../src/local/marketplace.js";
import type { WebhookData, WebhookType } from "../src/notify/webhooks.js";
import { reconcile } from "../src/payout/reconcile.js";
import { aggregateLines, buildBatch, fetchLineKeys, providerIdOf, type UsageLine } from "../src/usage/index.js";
import { handmadeLines } from "./lines-helpers.js";
import { type PayoutWorld, payoutWorld } from "./payout-fixtures.js";
import { story } from "./story.js";

// What settlement does with usage a server should not have reported, against anvil, the indexer,
// the payout agent and real proofs: a server bound only to weather, capped at 3 billable calls per
// batch and 5 per month, reports weather over its caps and news it does not serve; the world's
// server commits a batch whose copies disagree (the operator's weather copy inflated, the news
// auditor copy and the tinyapi provider copy different from what the batch commits to).

let w: PayoutWorld;
let rogue: PrivateKeyAccount;
let rogueSequence = 0;
const now = Date.now();
const logs: string[] = [];
const notified: { type: WebhookType; data: WebhookData; id?: string }[] = [];
const forgedBatch: { batchId?: Hex } = {};

beforeAll(async () => {
  w = await payoutWorld({ fundMicro: 5_000_000n });
  rogue = await newFundedAccount(w.chain);
  await authoriseServer(w.chain, w.manifest, w.owner, rogue.address);
  await bindServer(w.chain, w.manifest, w.owner, rogue.address, ["weather"], { maxCallsPerBatch: 3n, maxCallsPerPeriod: 5n });
});

afterAll(async () => {
  await w?.close();
});

const weatherCalls = (n: number) => callRecords("weather", n, { at: now, priceMicro: 1000n });

describe("server bindings, caps and line commitments", () => {
  const step = story();

  step("the agent pays a bound server's lines up to its caps, ignores the rest and every disagreeing copy, and alerts", async () => {
    // Weather 4 (capped to 3) and news 6 (not bound: ignored); then weather 4 (the month's cap leaves 2).
    await commitRecords(w.chain, w.manifest, rogue, w.operator.address, ++rogueSequence, [
      ...weatherCalls(4),
      ...callRecords("news", 6, { at: now }),
    ]);
    await commitRecords(w.chain, w.manifest, rogue, w.operator.address, ++rogueSequence, weatherCalls(4));
    // The world's server (bound to every provider, uncapped) commits tinyapi 2 honestly ...
    await commitRecords(w.chain, w.manifest, w.server, w.operator.address, 1, callRecords("tinyapi", 2, { at: now, priceMicro: 1n }));
    // ... then a batch whose copies disagree with what it commits to.
    const records = [...weatherCalls(1), ...callRecords("news", 2, { at: now }), ...callRecords("tinyapi", 3, { at: now, priceMicro: 1n })];
    const ids = ["weather", "news", "tinyapi"].map((n) => providerIdOf(n));
    const keys = await fetchLineKeys(w.chain.publicClient, w.manifest.contracts, w.operator.address, ids);
    const { batch } = buildBatch({ server: w.server.address, sequence: 2, periodStart: now, periodEnd: now, records, keys });
    const lines = aggregateLines(records);
    const copyOf = (l: UsageLine) =>
      l.providerId === ids[0]
        ? { operator: { ...l, calls: 50n, billableCalls: 50n, amountMicro: 50_000n } }
        : l.providerId === ids[1]
          ? { auditor: { ...l, calls: 9n, billableCalls: 9n } }
          : { provider: { ...l, calls: 1n, billableCalls: 1n, amountMicro: 1n } };
    const forged = { ...batch, encryptedLines: handmadeLines(lines, keys, { copies: lines.map(copyOf) }) };
    const hash = await w.chain.walletFor(w.server).writeContract({
      address: w.manifest.contracts.usageLedger,
      abi: UsageLedgerAbi,
      functionName: "commit",
      args: [forged],
    });
    expect((await w.chain.publicClient.waitForTransactionReceipt({ hash })).status).toBe("success");
    forgedBatch.batchId = forged.batchId;

    const agent = w.agent({
      log: (line) => logs.push(line),
      notify: { notify: (type, data, id) => notified.push({ type, data, id }) },
    });
    const result = await agent.runCycle();
    expect(result.status).toBe("paid");
    const balances: Record<string, bigint> = {};
    for (const [ns, { client }] of w.payoutAccounts) balances[ns] = await client.balance(w.tokenId);
    // weather: 3 + 2 capped calls × 1000 − 10% (the inflated operator copy counts nothing); news:
    // within its free quota; tinyapi: 2 + 3 calls × 1 (the fee rounds to 0).
    expect(balances).toMatchObject({ weather: 4_500n, news: 0n, tinyapi: 5n });

    const alerts = logs.filter((l) => l.includes("ALERT"));
    expect(alerts.filter((l) => l.includes("was not bound to that provider"))).toHaveLength(1);
    expect(alerts.filter((l) => l.includes("the server's caps count"))).toHaveLength(2);
    // The agent's log names batches and providers, never how many calls a provider had.
    expect(alerts.filter((l) => /\d+ billable calls|caps count \d/.test(l))).toEqual([]);
    // The operator's weather copy disagrees with the commitment, and the news auditor copy with the operator's.
    expect(alerts.filter((l) => l.includes("does not match its public commitment"))).toHaveLength(2);
    expect(notified.filter((n) => n.type === "usage.ignored").map((n) => n.data)).toEqual([
      expect.objectContaining({ server: rogue.address, unbound: 1, capped: 1, copyMismatch: 0 }),
      expect.objectContaining({ server: rogue.address, unbound: 0, capped: 1, copyMismatch: 0 }),
      expect.objectContaining({ server: w.server.address, batchId: forged.batchId, unbound: 0, capped: 0, copyMismatch: 2 }),
    ]);
    // A later run reports nothing again.
    logs.length = 0;
    expect((await agent.runCycle()).status).toBe("nothing_owed");
    expect(logs.filter((l) => l.includes("ALERT"))).toEqual([]);
  });

  step("the auditor's reconciliation reports the same ignored lines, and the disagreeing copies it checks", async () => {
    const r = await reconcile({
      indexer: new IndexerClient(w.indexer.url),
      auditorSk: await deriveKeyFromWallet(privateKeyToAccount(ANVIL_KEYS[9])),
      operatorPk: w.operator.publicKey,
      payers: [w.operator.address],
    });
    const seen = r.alerts.map((a) => [a.server, a.reason, a.providerId, a.billableCalls, a.admittedCalls]);
    expect(seen).toHaveLength(5);
    expect(seen).toEqual(
      expect.arrayContaining([
        [rogue.address, "capped", providerIdOf("weather"), 4n, 3n],
        [rogue.address, "unbound", providerIdOf("news"), 6n, 0n],
        [rogue.address, "capped", providerIdOf("weather"), 4n, 2n],
        // Its own news copy disagrees; the operator's weather copy is not the line the auditor reads.
        [w.server.address, "copy-mismatch", providerIdOf("news"), 9n, 0n],
        [w.server.address, "copy-mismatch", providerIdOf("weather"), 1n, 0n],
      ]),
    );
    // The operator ignored the same lines: every payout is what the auditor recomputes.
    expect(r.cycles.every((c) => c.ok)).toBe(true);
    expect(r.ok).toBe(true);
  });

  step("the provider whose copy disagrees sees it: left out of its usage and reported", async () => {
    const batches = await new IndexerClient(w.indexer.url).usageBatches();
    const tinyapi = w.payoutAccounts.get("tinyapi")!;
    const report = decryptProviderUsage({
      account: tinyapi.account.address,
      sk: tinyapi.client.exportPrivateKey(),
      providers: [],
      batches,
    });
    expect(report.copyMismatches).toEqual([expect.objectContaining({ batchId: forgedBatch.batchId, providerId: providerIdOf("tinyapi") })]);
    expect(report.total).toMatchObject({ calls: 2n, billableCalls: 2n });
    // The weather provider's copy matches the commitment: it reads the committed line.
    const weather = w.payoutAccounts.get("weather")!;
    const own = decryptProviderUsage({
      account: weather.account.address,
      sk: weather.client.exportPrivateKey(),
      providers: [],
      batches,
    });
    expect(own.copyMismatches).toEqual([]);
    expect(own.total).toMatchObject({ calls: 9n, billableCalls: 9n });
  });
});
