import { Hono } from "hono";
import { afterEach, describe, expect, it } from "vitest";
import { catchUpGate, IndexerCatchingUpError, type IndexerProgress } from "../src/api/catch-up.js";

// The gate that holds the API's indexed reads back while a restarted Ponder indexes its last blocks
// again under the head of before the restart. The indexer here is what its /status, /metrics and
// /ready say at each moment, as seen in runs of a restarted `ponder start`.

/** An indexer process whose readings the test sets; block n's time is 1000 + n (no two blocks share one). */
function indexer(init: { head: number | null; through?: number | null; ready?: boolean; chain: number }) {
  const state = { head: init.head, through: init.through ?? null, ready: init.ready ?? true, chain: init.chain, fail: false };
  const progress: IndexerProgress = {
    head: async () => {
      if (state.fail) throw new Error("connect ECONNREFUSED");
      return state.head === null ? null : { number: BigInt(state.head), timestamp: BigInt(1000 + state.head) };
    },
    indexingTimestamp: async () => (state.through === null ? null : BigInt(1000 + state.through)),
    ready: async () => state.ready,
    chainHead: async () => BigInt(state.chain),
  };
  return { state, progress };
}

const gates: { stop(): void }[] = [];
const gate = (progress: IndexerProgress, onError?: (reason: string) => void) => {
  const g = catchUpGate(progress, onError);
  gates.push(g);
  return g;
};
afterEach(() => {
  for (const g of gates.splice(0)) g.stop();
});

describe("the API's catch-up gate", () => {
  it("holds reads while /status still gives the head of before the restart, and while the replay climbs back to it", async () => {
    // The chain is idle at block 41; the indexer died at 41 and its last finalized block was 16.
    const { state, progress } = indexer({ head: 41, through: 16, chain: 41 });
    const { check } = gate(progress);
    await expect(check()).rejects.toThrow(/has not yet indexed, since it started, through block 41 \(it is at block 41\)/);
    // Its first rows land: /status drops to the block reached, then climbs.
    state.head = 17;
    state.through = 17;
    await expect(check()).rejects.toBeInstanceOf(IndexerCatchingUpError);
    state.head = 40;
    state.through = 40;
    await expect(check()).rejects.toBeInstanceOf(IndexerCatchingUpError);
    state.head = 41;
    await check();
    // Open for good: later readings do not matter.
    state.head = 5;
    await check();
  });

  it("holds reads while the stale head is below the chain's, until the indexer passes the chain's head of its first look", async () => {
    const { state, progress } = indexer({ head: 30, through: 10, chain: 35 });
    const { check } = gate(progress);
    await expect(check()).rejects.toThrow(/through block 35 \(it is at block 30\)/);
    state.chain = 60;
    state.head = 34;
    await expect(check()).rejects.toBeInstanceOf(IndexerCatchingUpError);
    state.head = 36;
    await check();
  });

  it("a stale head that the process's own progress has not reached stays held; one it has reached opens", async () => {
    // First looked at after the replay: the head has not moved since, and nothing says whose it is.
    const held = indexer({ head: 41, through: 39, chain: 41 });
    const { check } = gate(held.progress);
    await expect(check()).rejects.toBeInstanceOf(IndexerCatchingUpError);
    await expect(check()).rejects.toBeInstanceOf(IndexerCatchingUpError);
    // The next block, though it carries no event, is indexed by this process: past the target.
    held.state.head = 42;
    await check();

    const reached = indexer({ head: 41, through: 41, chain: 41 });
    await gate(reached.progress).check();
  });

  it("opens at once on a fresh start, and for a replica that indexes nothing and is ready", async () => {
    const fresh = indexer({ head: null, chain: 100 });
    const g = gate(fresh.progress);
    await g.check();
    fresh.state.head = 3;
    await g.check();

    const replica = indexer({ head: 41, through: null, ready: true, chain: 41 });
    await gate(replica.progress).check();
    const starting = indexer({ head: 41, through: null, ready: false, chain: 41 });
    await expect(gate(starting.progress).check()).rejects.toBeInstanceOf(IndexerCatchingUpError);
  });

  it("an unreadable indexer or chain holds nothing back and opens nothing; the reason is reported once", async () => {
    const { state, progress } = indexer({ head: 41, through: 16, chain: 41 });
    const reasons: string[] = [];
    const { check } = gate(progress, (r) => reasons.push(r));
    await expect(check()).rejects.toBeInstanceOf(IndexerCatchingUpError);
    state.fail = true;
    await check();
    await check();
    expect(reasons).toEqual(["the catch-up check could not read the indexer's progress: connect ECONNREFUSED"]);
    state.fail = false;
    await expect(check()).rejects.toBeInstanceOf(IndexerCatchingUpError);
  });

  it("answers a held read with 503, Retry-After and a JSON error, and passes it once open", async () => {
    const { state, progress } = indexer({ head: 41, through: 16, chain: 41 });
    const app = new Hono();
    app.use("/audit/totals", gate(progress).middleware);
    app.get("/audit/totals", (c) => c.json({ ok: true }));
    const held = await app.request("/audit/totals");
    expect(held.status).toBe(503);
    expect(held.headers.get("retry-after")).toBe("2");
    expect(await held.json()).toEqual({
      error: { field: null, message: expect.stringMatching(/^the indexer has not yet indexed, since it started, through block 41/) },
    });
    state.head = 20;
    await app.request("/audit/totals");
    state.head = 41;
    const served = await app.request("/audit/totals");
    expect(served.status).toBe(200);
    expect(await served.json()).toEqual({ ok: true });
  });
});
