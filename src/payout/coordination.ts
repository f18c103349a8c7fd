import pg from "pg";
import { type Address, getAddress } from "viem";
import { type Logger, type LogTarget, toLogger } from "../log.js";
import type { ProviderId } from "../revenue/types.js";
import type { CycleResult } from "./agent.js";
import { PayoutError } from "./errors.js";
import type { FaultPoint } from "./pipeline.js";
import type { CycleBoundary, CyclePayments, Due } from "./settlement.js";

/**
 * Several payout agents, each with its own payers, sharing the cycles through one PostgreSQL
 * database (AGENT_DATABASE_URL). The chain stays the ledger: what was paid is read from the
 * payout tags, as with one agent. The database only says who does what, with Postgres' own
 * primitives:
 *
 * - planning is one agent at a time, under a session advisory lock: the holder finishes an
 *   interrupted cycle or fixes the next one's boundary (`PayoutAgent` decides, as alone), and
 *   records the cycle with one claim row per provider to pay. A planner that dies releases the
 *   lock with its session; the next one plans from the chain again;
 * - each agent claims a few rows with `SELECT … FOR UPDATE SKIP LOCKED` in a transaction it keeps
 *   open while it proves and sends those transfers, and marks them done in it once mined. An agent
 *   that dies loses its session, and with it its row locks: another agent claims the rows;
 * - before proving, an agent records which of its payers may pay the rows it claimed (`attempt`,
 *   committed at once). Whoever claims those rows later first waits until none of those payers
 *   has a pending transaction, then reads the chain: a provider already paid in the cycle is not
 *   paid again, and the others get what they are still owed (earned − paid, cumulative);
 * - before each transfer is sent, the agent checks that its sessions are alive (so its claims
 *   are still its own); an agent cut off from the database stops instead of racing the agent
 *   that takes its rows over;
 * - every agent registers its payers, each held by one live agent at a time (a session advisory
 *   lock per payer), and counts every other agent's payers' transfers as payouts.
 *
 * The database holds no amount: cycle boundaries, provider ids, payer addresses and timestamps.
 */

/** The schema the coordination tables live in. */
export const COORDINATION_SCHEMA = "backendshield_payout";
const S = COORDINATION_SCHEMA;
/** Where a planner announces a new cycle (LISTEN), so idle agents join it. */
export const PLANNED_CHANNEL = "backendshield_payout_planned";
/** How long a claim may sit idle in its transaction before Postgres ends the session (a hung agent). */
export const CLAIM_IDLE_TIMEOUT = "10min";

/**
 * Where a crash test stops an agent while it plans (`PAYOUT_FAULT=<step>@<n>`, n counting the
 * process's plans from 1): before_plan (planning lock held, the plan decided, nothing recorded),
 * after_plan (the plan recorded, nothing claimed).
 */
export const PLAN_FAULT_STEPS = ["before_plan", "after_plan"] as const;
export type PlanFaultStep = (typeof PLAN_FAULT_STEPS)[number];

/** What a planner records: the cycle, its boundary and pool, and the providers to pay, in order. */
export type CyclePlan = { cycle: number; throughBlock: bigint; poolMicro: bigint; providers: readonly ProviderId[] };

/** This agent plans: it holds the planning lock until `record` (or until the turn ends). */
export type PlanTurn = {
  kind: "plan";
  /** Every other agent's payers: their transfers are payouts too (by address). */
  otherPayers: Address[];
  /** The payers of the other agents running now: the revenue pool is split over them too (each deposits its part). */
  runningPayers: Address[];
  /** Records the plan, releases the planning lock and claims this agent's first rows of it. */
  record(plan: CyclePlan): Promise<ClaimTurn>;
};

/** This agent holds the claims of `providers` in `cycle` until the turn ends. */
export type ClaimTurn = {
  kind: "pay";
  cycle: number;
  throughBlock: bigint;
  /** The cycle's pool, as its planner read it. */
  poolMicro: bigint;
  providers: ReadonlySet<ProviderId>;
  otherPayers: Address[];
  /**
   * Payers that may have sent a transfer to one of `providers` in this cycle before (another
   * agent's, or this agent's before a restart): wait until none has a pending transaction, then
   * read what was paid.
   */
  attemptedBy: Address[];
  /** Records, before anything is proved, that this agent's payers may pay `providers`. */
  attempt(providers: readonly ProviderId[]): Promise<void>;
  /** Throws ClaimLostError unless this agent's sessions (and so its claims) are alive. */
  stillHeld(): Promise<void>;
};

export type Turn = PlanTurn | ClaimTurn;

/** The cycle this agent was in has no unpaid claim left. */
type Complete = { kind: "complete"; cycle: number; throughBlock: bigint; poolMicro: bigint };

/** The agent's claims are no longer held: its database session ended. Nothing more is sent. */
export class ClaimLostError extends PayoutError {
  readonly code = "PAYOUT_CLAIM_LOST";
  constructor(cause: unknown) {
    super(
      "the payout agent's database session ended, so its claims may be another agent's now: it sends nothing more " +
        "this cycle (another agent, or this one's next run, reads the chain and pays the rest)",
      { cause },
    );
  }
}

/** A payer is held by another live agent: two agents proving from one balance would undo each other's proofs. */
export class PayerInUseError extends PayoutError {
  readonly code = "PAYER_IN_USE";
  constructor(readonly payer: Address) {
    super(`payer ${payer} is held by another running payout agent on this database: give each agent payers of its own`);
  }
}

/** The coordination database belongs to another deployment. */
export class CoordinationDeploymentError extends PayoutError {
  readonly code = "COORDINATION_DEPLOYMENT_MISMATCH";
  constructor(recorded: { chainId: number; usageLedger: Address }, ours: { chainId: number; usageLedger: Address }) {
    super(
      `the coordination database records the deployment on chain ${recorded.chainId} with UsageLedger ${recorded.usageLedger}, ` +
        `not chain ${ours.chainId} with ${ours.usageLedger}: give each deployment a database of its own`,
      { field: "AGENT_DATABASE_URL" },
    );
  }
}

/** The recorded plan disagrees with the chain's payout tags (an agent outside the coordination paid). */
export class CyclePlanConflictError extends PayoutError {
  readonly code = "CYCLE_PLAN_CONFLICT";
  constructor(
    readonly cycle: number,
    readonly throughBlock: bigint,
    readonly chain: CycleBoundary | null,
  ) {
    super(
      `cycle ${cycle} is planned through block ${throughBlock}, but the chain's last payout cycle is ` +
        `${chain ? `${chain.cycle}, through block ${chain.throughBlock}` : "none"}: is an agent paying outside the coordination?`,
    );
  }
}

/**
 * What `turn`'s providers are owed in its cycle, from the ledger read at the cycle's boundary: the
 * recorded cycle's dues when the chain already has transfers of it, else the new cycle's; a
 * provider already paid in the cycle is left out (never paid twice in a cycle).
 */
export function claimedDue(
  turn: Pick<ClaimTurn, "cycle" | "throughBlock" | "poolMicro" | "providers">,
  state: { unfinished: Due | null; next: Due | null; last: CycleBoundary | null; payments: CyclePayments },
): Due {
  const { cycle, throughBlock } = turn;
  const last = state.last;
  let source: Due | null;
  if (last?.cycle === cycle) {
    if (last.throughBlock !== throughBlock) throw new CyclePlanConflictError(cycle, throughBlock, last);
    source = state.unfinished?.cycle === cycle ? state.unfinished : null;
  } else if ((last?.cycle ?? 0) + 1 === cycle && state.next?.cycle === cycle && state.next.throughBlock === throughBlock) {
    source = state.next;
  } else {
    throw new CyclePlanConflictError(cycle, throughBlock, last);
  }
  const paid = state.payments.get(cycle);
  const mine = ([id]: [ProviderId, bigint]) => turn.providers.has(id) && !paid?.has(id);
  return {
    cycle,
    throughBlock,
    poolMicro: source?.poolMicro ?? turn.poolMicro,
    due: new Map([...(source?.due ?? [])].filter(mine)),
    poolShares: new Map([...(source?.poolShares ?? [])].filter(mine)),
  };
}

type Paid = Extract<CycleResult, { status: "paid" }>;

/**
 * One agent's part of a cycle: plans it if no cycle is open (or joins the open one), then pays
 * claim after claim until none is left, waiting for other agents' claims to be paid or released.
 * `settle` runs one turn; the result sums this agent's turns.
 */
export async function settleShared(coordination: PayoutCoordination, settle: (turn: Turn) => Promise<CycleResult>): Promise<CycleResult> {
  const started = performance.now();
  const shares: Paid[] = [];
  let cycle: number | null = null;
  for (;;) {
    const turn = await coordination.next(cycle);
    if (turn.kind === "complete") return sumShares(turn, shares, performance.now() - started);
    let result: CycleResult;
    try {
      result = await settle(turn);
      await coordination.finish();
    } catch (err) {
      await coordination.abandon();
      throw err;
    }
    if (result.status === "nothing_owed") return result;
    cycle = result.cycle;
    shares.push(result);
  }
}

function sumShares(cycle: Complete, shares: readonly Paid[], totalMs: number): Paid {
  const sum = (f: (s: Paid) => number) => shares.reduce((a, s) => a + f(s), 0);
  return {
    status: "paid",
    cycle: cycle.cycle,
    throughBlock: cycle.throughBlock,
    resumed: shares[0]?.resumed ?? false,
    poolMicro: shares[0]?.poolMicro ?? cycle.poolMicro,
    paidMicro: shares.reduce((a, s) => a + s.paidMicro, 0n),
    transfers: shares.flatMap((s) => s.transfers),
    deferred: shares.flatMap((s) => s.deferred),
    recoveries: sum((s) => s.recoveries),
    reverted: sum((s) => s.reverted),
    ms: { total: totalMs, plan: sum((s) => s.ms.plan), pay: sum((s) => s.ms.pay) },
  };
}

export type CoordinationOptions = {
  /** PostgreSQL connection string (AGENT_DATABASE_URL). */
  url: string;
  /** This agent's name in the database and its logs (AGENT_ID). */
  agentId: string;
  /** Providers claimed at a time (AGENT_CLAIM_SIZE). */
  claimSize: number;
  /** This agent's payers: held by it alone while it runs, and registered for the other agents. */
  payers: readonly Address[];
  /** The deployment the database serves: another one's database is refused. */
  deployment: { chainId: number; usageLedger: Address };
  log?: LogTarget;
  /** Crash tests: stop at a planning step. */
  fault?: FaultPoint;
};

type Claim = { cycle: number; providers: ProviderId[] };

/** Advisory locks are keyed by a 64-bit hash of a name in the schema's namespace. */
const PLAN_LOCK = `${S}:plan`;
const PAYER_LOCK = `${S}:payer:`;
const payerLock = (payer: Address) => `${PAYER_LOCK}${payer}`;

/**
 * An agent's two sessions with the coordination database: `session` holds its payers' locks,
 * listens for new cycles and commits attempts at once; `claims` holds the planning lock and the
 * claim transactions.
 */
export class PayoutCoordination {
  private readonly log: Logger;
  private session!: pg.Client;
  private claims!: pg.Client;
  /** The claim transaction open on `claims`, if any. */
  private claim: Claim | null = null;
  private planning = false;
  private plans = 0;
  /** Why a session ended; the next turn reconnects. */
  private lost: unknown = null;
  private readonly listeners: ((cycle: number) => void)[] = [];
  private readonly payers: Address[];

  private constructor(private readonly options: CoordinationOptions) {
    this.log = toLogger(options.log);
    this.payers = options.payers.map((p) => getAddress(p));
  }

  get agentId(): string {
    return this.options.agentId;
  }

  /**
   * Connects both sessions, creates the schema if needed, checks the database is this
   * deployment's, takes each payer's lock (PayerInUseError if another live agent holds one) and
   * registers the payers.
   */
  static async connect(options: CoordinationOptions): Promise<PayoutCoordination> {
    const c = new PayoutCoordination(options);
    await c.open();
    return c;
  }

  private async open(): Promise<void> {
    const client = () => {
      const db = new pg.Client({ connectionString: this.options.url, keepAlive: true, application_name: `payout-agent ${this.agentId}` });
      db.on("error", (err) => {
        if (this.lost) return;
        this.lost = err;
        this.log.error(
          { agent: this.agentId, code: "PAYOUT_CLAIM_LOST" },
          `agent ${this.agentId}: coordination database session lost: ${err.message}`,
        );
      });
      return db;
    };
    this.session = client();
    this.claims = client();
    this.session.on("notification", (n) => {
      if (n.channel !== PLANNED_CHANNEL) return;
      for (const f of this.listeners) f(Number(n.payload));
    });
    this.lost = null;
    this.claim = null;
    this.planning = false;
    try {
      await this.session.connect();
      await this.claims.connect();
      for (const db of [this.session, this.claims]) {
        // A dead peer host is noticed in about 25 s instead of the system's default two hours.
        await db.query("SET tcp_keepalives_idle = 10; SET tcp_keepalives_interval = 5; SET tcp_keepalives_count = 3");
      }
      await this.claims.query(`SET idle_in_transaction_session_timeout = '${CLAIM_IDLE_TIMEOUT}'`);
      await this.migrate();
      await this.checkDeployment();
      await this.holdPayers();
      await this.session.query(`LISTEN ${PLANNED_CHANNEL}`);
    } catch (err) {
      // The next turn connects again.
      this.lost = err;
      await this.close();
      throw err;
    }
  }

  private async migrate(): Promise<void> {
    const db = this.session;
    await db.query("BEGIN");
    try {
      // Two agents starting at once would race on the catalog: one creates, the other waits.
      await db.query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", [`${S}:schema`]);
      await db.query(`
        CREATE SCHEMA IF NOT EXISTS ${S};
        CREATE TABLE IF NOT EXISTS ${S}.deployment (
          singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
          chain_id bigint NOT NULL,
          usage_ledger text NOT NULL
        );
        CREATE TABLE IF NOT EXISTS ${S}.payer (
          address text PRIMARY KEY,
          agent_id text NOT NULL,
          registered_at timestamptz NOT NULL DEFAULT now()
        );
        CREATE TABLE IF NOT EXISTS ${S}.cycle (
          cycle integer PRIMARY KEY,
          through_block bigint NOT NULL,
          pool_micro numeric NOT NULL,
          planned_by text NOT NULL,
          planned_at timestamptz NOT NULL DEFAULT now()
        );
        CREATE TABLE IF NOT EXISTS ${S}.claim (
          cycle integer NOT NULL,
          provider_id text NOT NULL,
          seq integer NOT NULL,
          done_at timestamptz,
          done_by text,
          PRIMARY KEY (cycle, provider_id)
        );
        CREATE INDEX IF NOT EXISTS claim_open ON ${S}.claim (cycle, seq) WHERE done_at IS NULL;
        CREATE TABLE IF NOT EXISTS ${S}.attempt (
          cycle integer NOT NULL,
          provider_id text NOT NULL,
          agent_id text NOT NULL,
          payers text[] NOT NULL,
          at timestamptz NOT NULL DEFAULT now()
        );
        CREATE INDEX IF NOT EXISTS attempt_claim ON ${S}.attempt (cycle, provider_id);
      `);
      await db.query("COMMIT");
    } catch (err) {
      await db.query("ROLLBACK").catch(() => {});
      throw err;
    }
  }

  private async checkDeployment(): Promise<void> {
    const ours = { chainId: this.options.deployment.chainId, usageLedger: getAddress(this.options.deployment.usageLedger) };
    await this.session.query(`INSERT INTO ${S}.deployment (chain_id, usage_ledger) VALUES ($1, $2) ON CONFLICT DO NOTHING`, [
      ours.chainId,
      ours.usageLedger,
    ]);
    const { rows } = await this.session.query<{ chain_id: string; usage_ledger: string }>(
      `SELECT chain_id, usage_ledger FROM ${S}.deployment`,
    );
    const recorded = { chainId: Number(rows[0]!.chain_id), usageLedger: getAddress(rows[0]!.usage_ledger) };
    if (recorded.chainId !== ours.chainId || recorded.usageLedger !== ours.usageLedger)
      throw new CoordinationDeploymentError(recorded, ours);
  }

  private async holdPayers(): Promise<void> {
    for (const payer of this.payers) {
      const { rows } = await this.session.query<{ held: boolean }>("SELECT pg_try_advisory_lock(hashtextextended($1, 0)) AS held", [
        payerLock(payer),
      ]);
      if (!rows[0]!.held) throw new PayerInUseError(payer);
      await this.session.query(
        `INSERT INTO ${S}.payer (address, agent_id) VALUES ($1, $2) ON CONFLICT (address) DO UPDATE SET agent_id = EXCLUDED.agent_id`,
        [payer, this.options.agentId],
      );
    }
  }

  /** Every payer another agent registered (past ones included: a payer is never unregistered). */
  async otherPayers(): Promise<Address[]> {
    const { rows } = await this.session.query<{ address: string }>(
      `SELECT address FROM ${S}.payer WHERE NOT (address = ANY($1)) ORDER BY address`,
      [this.payers],
    );
    return rows.map((r) => getAddress(r.address));
  }

  /** The other agents' payers whose agent is running now (it holds their locks). */
  async runningPayers(): Promise<Address[]> {
    const { rows } = await this.session.query<{ address: string }>(
      `SELECT p.address FROM ${S}.payer p
       WHERE NOT (p.address = ANY($1)) AND EXISTS (
         SELECT 1 FROM pg_locks l
         WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
           AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
           AND ((l.classid::bigint << 32) | l.objid::bigint) = hashtextextended($2 || p.address, 0))
       ORDER BY p.address`,
      [this.payers, PAYER_LOCK],
    );
    return rows.map((r) => getAddress(r.address));
  }

  /** Called with the cycle number whenever an agent records a plan. */
  onPlanned(listener: (cycle: number) => void): void {
    this.listeners.push(listener);
  }

  private async openCycle(): Promise<number | null> {
    const { rows } = await this.claims.query<{ cycle: number }>(
      `SELECT cycle FROM ${S}.claim WHERE done_at IS NULL ORDER BY cycle LIMIT 1`,
    );
    return rows[0]?.cycle ?? null;
  }

  private async lockPlanning(): Promise<void> {
    await this.claims.query("SELECT pg_advisory_lock(hashtextextended($1, 0))", [PLAN_LOCK]);
    this.planning = true;
  }

  private async unlockPlanning(): Promise<void> {
    if (!this.planning) return;
    this.planning = false;
    await this.claims.query("SELECT pg_advisory_unlock(hashtextextended($1, 0))", [PLAN_LOCK]);
  }

  /**
   * This agent's next turn in `cycle` (null: the open cycle, or a new one): a plan turn when no
   * cycle is open (holding the planning lock), claims of unpaid providers, or `complete` when
   * every claim of the cycle is done. With none free but some still held by another agent, it
   * waits for that agent to finish them or to die.
   */
  async next(cycle: number | null): Promise<Turn | Complete> {
    if (this.lost) {
      this.log.info({ agent: this.agentId }, `agent ${this.agentId}: reconnecting to the coordination database`);
      await this.close();
      await this.open();
    }
    const otherPayers = await this.otherPayers();
    let current = cycle ?? (await this.openCycle());
    // The planner of an open cycle holds the planning lock until it has claimed its first
    // providers: an agent joins the cycle once it has the lock, after the planner.
    await this.lockPlanning();
    if (current === null) {
      current = await this.openCycle();
      if (current === null) {
        this.log.info({ agent: this.agentId }, `agent ${this.agentId}: no cycle open, planning one (holding the planning lock)`);
        return { kind: "plan", otherPayers, runningPayers: await this.runningPayers(), record: (plan) => this.record(plan, otherPayers) };
      }
    }
    await this.unlockPlanning();
    return this.claimRows(current, otherPayers, true);
  }

  private async record(plan: CyclePlan, otherPayers: Address[]): Promise<ClaimTurn> {
    if (!this.planning) throw new Error("record() outside a plan turn");
    this.plans += 1;
    this.at("before_plan");
    const db = this.claims;
    await db.query("BEGIN");
    try {
      // Earlier rows of this cycle number are all done (no cycle was open): a cycle the chain
      // shows unfinished is planned again under its own boundary, and one the chain has no
      // transfer of is planned anew.
      await db.query(`DELETE FROM ${S}.claim WHERE cycle = $1`, [plan.cycle]);
      // Earlier cycles are done: their claims and attempts are no longer read.
      await db.query(`DELETE FROM ${S}.claim WHERE cycle < $1`, [plan.cycle]);
      await db.query(`DELETE FROM ${S}.attempt WHERE cycle < $1`, [plan.cycle]);
      await db.query(
        `INSERT INTO ${S}.cycle (cycle, through_block, pool_micro, planned_by) VALUES ($1, $2, $3, $4)
         ON CONFLICT (cycle) DO UPDATE SET through_block = EXCLUDED.through_block, pool_micro = EXCLUDED.pool_micro,
           planned_by = EXCLUDED.planned_by, planned_at = now()`,
        [plan.cycle, plan.throughBlock.toString(), plan.poolMicro.toString(), this.agentId],
      );
      await db.query(
        `INSERT INTO ${S}.claim (cycle, provider_id, seq) SELECT $1, p, n FROM unnest($2::text[]) WITH ORDINALITY AS t(p, n)`,
        [plan.cycle, [...plan.providers]],
      );
      await db.query("SELECT pg_notify($1, $2)", [PLANNED_CHANNEL, String(plan.cycle)]);
      await db.query("COMMIT");
    } catch (err) {
      await db.query("ROLLBACK").catch(() => {});
      throw err;
    }
    this.log.info(
      { agent: this.agentId, cycle: plan.cycle, throughBlock: Number(plan.throughBlock), providers: plan.providers.length },
      `agent ${this.agentId}: planned cycle ${plan.cycle} through block ${plan.throughBlock}: ${plan.providers.length} provider(s) to pay`,
    );
    this.at("after_plan");
    try {
      const turn = await this.claimRows(plan.cycle, otherPayers, false);
      // Other agents claimed every row already: an empty claim.
      return turn.kind === "pay" ? turn : this.payTurn(turn, [], [], otherPayers);
    } finally {
      // The agents woken by the plan join now, after this agent's first claims.
      await this.unlockPlanning();
    }
  }

  private async claimRows(cycle: number, otherPayers: Address[], wait: boolean): Promise<ClaimTurn | Complete> {
    const db = this.claims;
    const size = this.options.claimSize;
    const pick = async (limit: number, skipLocked: boolean, held: readonly { provider_id: string }[] = []) =>
      (
        await db.query<{ provider_id: string }>(
          `SELECT provider_id FROM ${S}.claim WHERE cycle = $1 AND done_at IS NULL AND NOT (provider_id = ANY($3)) ORDER BY seq
           FOR UPDATE ${skipLocked ? "SKIP LOCKED" : ""} LIMIT $2`,
          [cycle, limit, held.map((r) => r.provider_id)],
        )
      ).rows;
    await db.query("BEGIN");
    try {
      let rows = await pick(size, true);
      if (rows.length === 0 && wait) {
        const held = (await db.query<{ n: string }>(`SELECT count(*) AS n FROM ${S}.claim WHERE cycle = $1 AND done_at IS NULL`, [cycle]))
          .rows[0]!.n;
        if (held !== "0")
          this.log.info(
            { agent: this.agentId, cycle, held: Number(held) },
            `agent ${this.agentId}: cycle ${cycle}: waiting for ${held} provider(s) another agent holds (paid, or released if it stops)`,
          );
        // Blocks until the holder commits (its rows are done) or its session ends (they are free).
        rows = await pick(1, false);
        if (rows.length > 0) rows = [...rows, ...(await pick(size - 1, true, rows))];
      }
      const { rows: meta } = await db.query<{ through_block: string; pool_micro: string }>(
        `SELECT through_block, pool_micro FROM ${S}.cycle WHERE cycle = $1`,
        [cycle],
      );
      const info = { cycle, throughBlock: BigInt(meta[0]!.through_block), poolMicro: BigInt(meta[0]!.pool_micro) };
      if (rows.length === 0) {
        await db.query("COMMIT");
        return { kind: "complete", ...info };
      }
      const providers = rows.map((r) => r.provider_id as ProviderId);
      const { rows: tried } = await db.query<{ payer: string }>(
        `SELECT DISTINCT unnest(payers) AS payer FROM ${S}.attempt WHERE cycle = $1 AND provider_id = ANY($2)`,
        [cycle, providers],
      );
      this.claim = { cycle, providers };
      const attemptedBy = tried.map((t) => getAddress(t.payer));
      this.log.info(
        { agent: this.agentId, cycle, claimed: providers.length, attemptedBy: attemptedBy.length },
        `agent ${this.agentId}: cycle ${cycle}: claimed ${providers.length} provider(s)` +
          (attemptedBy.length > 0
            ? `, attempted before by payer(s) ${attemptedBy.join(", ")}: reading the chain after their pending transactions`
            : ""),
      );
      return this.payTurn(info, providers, attemptedBy, otherPayers);
    } catch (err) {
      this.claim = null;
      await db.query("ROLLBACK").catch(() => {});
      throw err;
    }
  }

  private payTurn(
    info: { cycle: number; throughBlock: bigint; poolMicro: bigint },
    providers: ProviderId[],
    attemptedBy: Address[],
    otherPayers: Address[],
  ): ClaimTurn {
    return {
      kind: "pay",
      ...info,
      providers: new Set(providers),
      otherPayers: [...new Set([...otherPayers, ...attemptedBy])].filter((p) => !this.payers.includes(p)),
      attemptedBy,
      attempt: async (ids) => {
        if (ids.length === 0) return;
        await this.stillHeld();
        await this.session.query(
          `INSERT INTO ${S}.attempt (cycle, provider_id, agent_id, payers) SELECT $1, p, $2, $3 FROM unnest($4::text[]) AS p`,
          [info.cycle, this.agentId, this.payers, [...ids]],
        );
      },
      stillHeld: () => this.stillHeld(),
    };
  }

  /** Throws ClaimLostError unless both sessions answer (the claim transaction is still open). */
  async stillHeld(): Promise<void> {
    this.check();
    try {
      await Promise.all([this.claims.query("SELECT 1"), this.session.query("SELECT 1")]);
    } catch (err) {
      this.lost ??= err;
      throw new ClaimLostError(err);
    }
  }

  private check(): void {
    if (this.lost) throw new ClaimLostError(this.lost);
  }

  /** Ends the turn: the claimed rows are done (their transfers mined, or nothing was owed), and the planning lock is released. */
  async finish(): Promise<void> {
    const claim = this.claim;
    this.claim = null;
    if (claim) {
      try {
        if (claim.providers.length > 0)
          await this.claims.query(`UPDATE ${S}.claim SET done_at = now(), done_by = $1 WHERE cycle = $2 AND provider_id = ANY($3)`, [
            this.agentId,
            claim.cycle,
            claim.providers,
          ]);
        await this.claims.query("COMMIT");
      } catch (err) {
        throw new ClaimLostError(err);
      }
    }
    await this.unlockPlanning();
  }

  /** Ends the turn after a failure: the claims are released for any agent (the chain says what was paid). */
  async abandon(): Promise<void> {
    const open = this.claim !== null;
    this.claim = null;
    if (open) await this.claims.query("ROLLBACK").catch(() => {});
    await this.unlockPlanning().catch(() => {});
  }

  private at(step: "before_plan" | "after_plan"): void {
    const f = this.options.fault;
    if (f && f.step === step && f.seq === this.plans) f.stop();
  }

  /** Ends both sessions: the claims, the planning lock and the payers' locks are released. */
  async close(): Promise<void> {
    await Promise.all([this.session.end().catch(() => {}), this.claims.end().catch(() => {})]);
  }
}
