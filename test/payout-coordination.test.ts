import { randomBytes } from "node:crypto";
import pg from "pg";
import { type Address, getAddress, type Hex } from "viem";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  ClaimLostError,
  type ClaimTurn,
  CoordinationDeploymentError,
  CyclePlanConflictError,
  claimedDue,
  PayerInUseError,
  PayoutCoordination,
  type PlanTurn,
} from "../src/payout/coordination.js";
import type { Due } from "../src/payout/settlement.js";

// The SQL the agents coordinate with, on a real Postgres: one planner at a time, claims no two
// agents hold, and a dead agent's claims (and planning lock) taken over by another.

const ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres";
const database = `bs_coord_${randomBytes(6).toString("hex")}`;
const url = `postgresql://postgres@127.0.0.1:5432/${database}`;
const LEDGER: Address = "0x5FbDB2315678afecb367f032d93F642f64180aa3";
const deployment = { chainId: 31337, usageLedger: LEDGER };

const payer = (n: number): Address => getAddress(`0x${n.toString(16).padStart(40, "0")}`);
const provider = (n: number): Hex => `0x${n.toString(16).padStart(64, "0")}` as Hex;
const [P1, P2, P3, P4] = [1, 2, 3, 4].map(provider) as [Hex, Hex, Hex, Hex];

async function admin<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: ADMIN_URL });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

/** Ends every session of agent `id`, as Postgres does when its process dies. */
const kill = (id: string) =>
  admin((c) =>
    c.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND application_name = $2", [
      database,
      `payout-agent ${id}`,
    ]),
  );

const open: PayoutCoordination[] = [];
async function agent(id: string, payers: Address[], claimSize = 2): Promise<PayoutCoordination> {
  const c = await PayoutCoordination.connect({ url, agentId: id, claimSize, payers, deployment });
  open.push(c);
  return c;
}

/** Whether `p` is still waiting after `ms`. */
async function stillWaiting(p: Promise<unknown>, ms = 300): Promise<boolean> {
  let settled = false;
  p.then(
    () => (settled = true),
    () => (settled = true),
  );
  await new Promise((r) => setTimeout(r, ms));
  return !settled;
}

const asPlan = (t: unknown) => {
  expect((t as PlanTurn).kind).toBe("plan");
  return t as PlanTurn;
};
const asClaim = (t: unknown) => {
  expect((t as ClaimTurn).kind).toBe("pay");
  return t as ClaimTurn;
};

beforeAll(async () => {
  await admin((c) => c.query(`CREATE DATABASE ${database}`));
});

afterEach(async () => {
  for (const c of open.splice(0)) await c.close();
});

afterAll(async () => {
  await admin((c) => c.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`));
});

describe("agents coordinating through Postgres", () => {
  it("one agent plans while the others wait; each then claims providers no other agent holds", async () => {
    const [a, b, c] = [await agent("a", [payer(0xa)]), await agent("b", [payer(0xb)]), await agent("c", [payer(0xc)])];
    const planning = asPlan(await a.next(null));
    const joining = b.next(null);
    expect(await stillWaiting(joining)).toBe(true);

    const first = await planning.record({ cycle: 1, throughBlock: 100n, poolMicro: 7n, providers: [P1, P2, P3, P4] });
    expect([...first.providers]).toEqual([P1, P2]);
    expect(first.attemptedBy).toEqual([]);
    const second = asClaim(await joining);
    expect(second).toMatchObject({ cycle: 1, throughBlock: 100n, poolMicro: 7n, attemptedBy: [] });
    expect([...second.providers]).toEqual([P3, P4]);
    // Each counts the others' payers as payers.
    expect(second.otherPayers).toEqual([payer(0xa), payer(0xc)]);

    // Nothing is free: a third agent waits for the holders, and the cycle is complete once both are done.
    const third = c.next(1);
    await a.finish();
    expect(await stillWaiting(third)).toBe(true);
    await b.finish();
    expect(await third).toMatchObject({ kind: "complete", cycle: 1, throughBlock: 100n });

    // No cycle is open any more: the next one is planned.
    asPlan(await b.next(null));
    await b.abandon();
  });

  it("a dead agent's claims go to another, with the payers that may have paid them; the dead one sends nothing more", async () => {
    const [a, b] = [await agent("a2", [payer(0xa2)]), await agent("b2", [payer(0xb2)])];
    const mine = await asPlan(await a.next(null)).record({ cycle: 2, throughBlock: 200n, poolMicro: 0n, providers: [P1, P2] });
    expect([...mine.providers]).toEqual([P1, P2]);
    await mine.attempt([P1]);
    await mine.stillHeld();

    const takeover = b.next(2);
    expect(await stillWaiting(takeover)).toBe(true);
    await kill("a2");
    const taken = asClaim(await takeover);
    expect([...taken.providers]).toEqual([P1, P2]);
    // P1 may have been paid by a2's payer: b2 waits for its pending transactions and reads the chain first.
    expect(taken.attemptedBy).toEqual([payer(0xa2)]);
    await expect(mine.stillHeld()).rejects.toBeInstanceOf(ClaimLostError);
    await b.finish();

    // a2's next turn reconnects, taking its payer back; the cycle is complete.
    expect(await a.next(2)).toMatchObject({ kind: "complete", cycle: 2 });
  });

  it("a planner that dies releases the planning lock: another agent plans", async () => {
    const [a, b] = [await agent("a3", [payer(0xa3)]), await agent("b3", [payer(0xb3)])];
    asPlan(await a.next(null));
    const waiting = b.next(null);
    expect(await stillWaiting(waiting)).toBe(true);
    await kill("a3");
    asPlan(await waiting);
    await b.abandon();
  });

  it("holds each payer for one live agent, and refuses another deployment's database", async () => {
    const a = await agent("a4", [payer(0xa4)]);
    await expect(agent("x4", [payer(0xa4)])).rejects.toBeInstanceOf(PayerInUseError);
    // The pool is split over the payers of the agents running now; a stopped agent's payers stay payers.
    const b = await agent("b4", [payer(0xb4)]);
    expect(await b.runningPayers()).toEqual([payer(0xa4)]);
    await a.close();
    expect(await b.runningPayers()).toEqual([]);
    expect(await b.otherPayers()).toContain(payer(0xa4));
    await expect(
      PayoutCoordination.connect({
        url,
        agentId: "y4",
        claimSize: 1,
        payers: [payer(0xf4)],
        deployment: { ...deployment, chainId: 43113 },
      }),
    ).rejects.toBeInstanceOf(CoordinationDeploymentError);
  });
});

describe("what a claim pays", () => {
  const due = (cycle: number, throughBlock: bigint, amounts: [Hex, bigint][]): Due => ({
    cycle,
    throughBlock,
    poolMicro: 90n,
    due: new Map(amounts),
    poolShares: new Map(),
  });
  const claim = (cycle: number, throughBlock: bigint, providers: Hex[]) => ({
    cycle,
    throughBlock,
    poolMicro: 5n,
    providers: new Set(providers),
  });
  const paid = (cycle: number, providers: Hex[]) =>
    new Map([[cycle, new Map(providers.map((p) => [p, { amountMicro: 1n, transfers: 1 }]))]]);

  it("a cycle the chain already has transfers of: its dues, for the claimed providers not yet paid in it", () => {
    const state = {
      last: { cycle: 3, throughBlock: 500n },
      unfinished: due(3, 500n, [
        [P1, 10n],
        [P3, 5n],
      ]),
      next: null,
      payments: paid(3, [P2]),
    };
    expect(claimedDue(claim(3, 500n, [P1, P2]), state).due).toEqual(new Map([[P1, 10n]]));
    // All paid: nothing owed, and the planner's pool stands.
    expect(claimedDue(claim(3, 500n, [P1]), { ...state, unfinished: null })).toMatchObject({ due: new Map(), poolMicro: 5n });
  });

  it("a new cycle: the next cycle's dues at the recorded boundary", () => {
    const state = {
      last: { cycle: 2, throughBlock: 400n },
      unfinished: null,
      next: due(3, 500n, [
        [P1, 1n],
        [P2, 2n],
      ]),
      payments: new Map(),
    };
    expect(claimedDue(claim(3, 500n, [P2]), state)).toMatchObject({
      cycle: 3,
      throughBlock: 500n,
      poolMicro: 90n,
      due: new Map([[P2, 2n]]),
    });
  });

  it("refuses a plan the chain contradicts", () => {
    const state = { last: { cycle: 3, throughBlock: 499n }, unfinished: null, next: null, payments: new Map() };
    expect(() => claimedDue(claim(3, 500n, [P1]), state)).toThrow(CyclePlanConflictError);
    expect(() => claimedDue(claim(5, 600n, [P1]), state)).toThrow(CyclePlanConflictError);
  });
});
