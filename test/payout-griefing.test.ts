import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { DeploymentManifest } from "../src/deployment/manifest.js";
import { IndexerClient } from "../src/indexer-client/client.js";
import { type CreditAttacker, creditAttacker } from "../src/local/attacker.js";
import { callRecords, commitRecords } from "../src/local/marketplace.js";
import { type LocalWorld, localWorld } from "../src/local/world.js";
import { readSettlementFacts } from "../src/payout/facts.js";
import { perCall } from "../src/usage/pricing.js";
import { providerIdOf } from "../src/usage/registry.js";
import { deployForTests } from "./indexer-helpers.js";

// Griefing by credits: anyone can send the payer a zero-value private transfer. Before every
// payout transfer of a cycle, an attacker lands one on the payer (mined ahead of the transfer, in
// the same block), so the transfers proved from the predicted balance revert. The cycle must still
// pay every provider exactly once. Anvil with 1 s blocks, the indexer, real proofs.

const PROVIDERS = Array.from({ length: 10 }, (_, i) => `grief${i}`);
const PRICE = 1000n;
/** 2 calls at 1000, less the 10% fee. */
const OWED = 1800n;

let w: LocalWorld;
let attacker: CreditAttacker;

beforeAll(async () => {
  w = await localWorld({
    providers: PROVIDERS.map((namespace) => ({ namespace, pricing: perCall(PRICE) })),
    fundMicro: 1_000_000n,
    blockTime: 1,
    indexer: true,
    settlement: { feeBps: 1000, periodUnit: "month" },
    deploy: async (args) => (await deployForTests(args)) as DeploymentManifest,
  });
  attacker = await creditAttacker({
    chain: w.chain,
    manifest: w.manifest,
    prover: w.prover,
    target: w.operator.address,
    tokenId: w.tokenId,
  });
});

afterAll(async () => {
  await w?.close();
});

describe("payout griefing by credits to the payer", () => {
  it("a credit ahead of every transfer: the cycle still pays every provider exactly once", async () => {
    const at = Date.now();
    const records = PROVIDERS.flatMap((p) => callRecords(p, 2, { at, priceMicro: PRICE }));
    await commitRecords(w.chain, w.manifest, w.server, w.operator.address, 1, records);
    const creditsBefore = attacker.sent;
    const result = await w.agent({ depth: 3, onSent: async () => void (await attacker.credit()) }).runCycle();
    if (result.status !== "paid") throw new Error(`expected a paid cycle, got ${result.status}`);
    // One credit per transfer broadcast, reverted ones included.
    expect(attacker.sent - creditsBefore).toBeGreaterThanOrEqual(PROVIDERS.length);
    expect(result.transfers).toHaveLength(PROVIDERS.length);
    expect(result.deferred).toEqual([]);
    // The credits broke the chain of proofs at least once; after that the payer proves each
    // transfer from the chain balance, which credits cannot invalidate.
    expect(result.recoveries).toBeGreaterThanOrEqual(1);
    expect(result.recoveries).toBeLessThanOrEqual(2);
    expect(result.reverted).toBeGreaterThanOrEqual(1);
    for (const [, { client }] of w.payoutAccounts) expect(await client.balance(w.tokenId)).toBe(OWED);

    // On chain: one payout per provider, none twice.
    const head = await w.chain.publicClient.getBlockNumber({ cacheTime: 0 });
    const indexer = new IndexerClient(w.indexer!.url);
    await indexer.waitForBlock(head);
    const facts = await readSettlementFacts(indexer, [w.operator.address]);
    expect(facts.unattributed).toEqual([]);
    expect(facts.payouts.map((p) => p.providerId).sort()).toEqual(PROVIDERS.map(providerIdOf).sort());
    expect(await w.agent().runCycle()).toMatchObject({ status: "nothing_owed" });
  }, 1_200_000);
});
