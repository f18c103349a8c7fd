import type { GraphqlCost } from "./graphql-limits.js";

/**
 * Admission of costly GraphQL requests. Ponder answers GraphQL on the API's one thread: building
 * and serialising a large answer holds every other request up for as long as it takes. A request
 * whose cost (`graphqlCost`) passes `heavyBytes` bytes or `heavyStatements` statements is heavy:
 * at most `concurrent` heavy requests run at once, the next `queue` wait their turn in arrival
 * order (at most `maxWaitMs`), and any more are refused with 503 and Retry-After. A request under
 * both thresholds (a page of a small table, a lookup by key) never waits.
 *
 * While cheap requests are being answered (one ran during the last heavy request or within
 * `contendedMs` of its end), heavy requests get at most `heavyShare` of the API's thread: after
 * one that kept the event loop busy T ms (its own work, not its waits on the database), the next
 * starts T × (1 − heavyShare) / heavyShare ms later. Alone, they run back to back.
 */
export const GRAPHQL_ADMISSION = {
  heavyBytes: 64 * 1024,
  heavyStatements: 20,
  concurrent: 1,
  queue: 16,
  maxWaitMs: 10_000,
  heavyShare: 0.05,
  contendedMs: 1_000,
} as const;

/** The thresholds and bounds of `GRAPHQL_ADMISSION`, and what the refusals call the requests that take turns. */
export type AdmissionOptions = { [K in keyof typeof GRAPHQL_ADMISSION]: number } & { what: string };

/** A heavy request that found the queue full, or waited `maxWaitMs`: 503, retry after `retryAfterS`. */
export class AdmissionRefusedError extends Error {
  constructor(
    message: string,
    readonly retryAfterS: number,
  ) {
    super(message);
    this.name = "AdmissionRefusedError";
  }
}

type Waiter = { admit: () => void; refuse: (e: Error) => void };

/** Time as the gate reads it: now, and how long the event loop has been busy since the process started (ms). */
export type GateClock = { now(): number; busyMs(): number };

const processClock: GateClock = { now: () => performance.now(), busyMs: () => performance.eventLoopUtilization().active };

/** The admission of `GRAPHQL_ADMISSION`, for one API process: `run` each request through it with its cost. */
export class AdmissionGate {
  readonly options: AdmissionOptions;
  private running = 0;
  private readonly waiting: Waiter[] = [];
  private cheapRunning = 0;
  private lastCheapAt = Number.NEGATIVE_INFINITY;
  /** No heavy request starts before this time (`clock.now()`). */
  private closedUntil = 0;
  private reopen: ReturnType<typeof setTimeout> | undefined;
  /** Heavy requests admitted, refused and those whose client left while they waited, since the start. */
  readonly counts = { cheap: 0, heavy: 0, refused: 0, abandoned: 0 };

  constructor(
    options: Partial<AdmissionOptions> = {},
    private readonly clock: GateClock = processClock,
  ) {
    this.options = { ...GRAPHQL_ADMISSION, what: "costly queries", ...options };
  }

  heavy(cost: Pick<GraphqlCost, "bytes" | "statements">): boolean {
    return cost.bytes > this.options.heavyBytes || cost.statements > this.options.heavyStatements;
  }

  /** Heavy requests running and waiting now. */
  get load(): { running: number; waiting: number } {
    return { running: this.running, waiting: this.waiting.length };
  }

  /**
   * Runs `f` now when the request is cheap; a heavy one (or one whose cost is unknown, "costly")
   * once it is admitted. Throws
   * AdmissionRefusedError when it cannot be, and the abort reason when `signal` (the client
   * leaving) fires while it waits.
   */
  async run<T>(
    cost: Pick<GraphqlCost, "bytes" | "statements"> | "costly",
    signal: AbortSignal | undefined,
    f: () => Promise<T>,
  ): Promise<T> {
    if (cost !== "costly" && !this.heavy(cost)) {
      this.counts.cheap += 1;
      this.cheapRunning += 1;
      this.lastCheapAt = this.clock.now();
      try {
        return await f();
      } finally {
        this.cheapRunning -= 1;
        this.lastCheapAt = this.clock.now();
      }
    }
    await this.admit(signal);
    this.counts.heavy += 1;
    const started = { at: this.clock.now(), busyMs: this.clock.busyMs() };
    try {
      return await f();
    } finally {
      this.release(started);
    }
  }

  private open(): boolean {
    return this.running < this.options.concurrent && this.clock.now() >= this.closedUntil;
  }

  private admit(signal: AbortSignal | undefined): Promise<void> {
    if (this.waiting.length === 0 && this.open()) {
      this.running += 1;
      return Promise.resolve();
    }
    if (this.waiting.length >= this.options.queue) {
      this.counts.refused += 1;
      const reopensInS = Math.ceil((this.closedUntil - this.clock.now()) / 1000);
      return Promise.reject(
        new AdmissionRefusedError(
          `the API is answering other ${this.options.what} (${this.running} running, ${this.waiting.length} waiting, at most ${this.options.queue}): retry later`,
          Math.max(1, reopensInS),
        ),
      );
    }
    signal?.throwIfAborted();
    return new Promise<void>((resolve, reject) => {
      const leave = () => {
        clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
        const i = this.waiting.indexOf(waiter);
        if (i >= 0) this.waiting.splice(i, 1);
      };
      const waiter: Waiter = {
        admit: () => {
          leave();
          this.running += 1;
          resolve();
        },
        refuse: (e) => {
          leave();
          reject(e);
        },
      };
      const onAbort = () => {
        this.counts.abandoned += 1;
        waiter.refuse(signal!.reason);
      };
      const timer = setTimeout(() => {
        this.counts.refused += 1;
        waiter.refuse(
          new AdmissionRefusedError(
            `waited ${this.options.maxWaitMs} ms behind other ${this.options.what}: retry later`,
            Math.ceil(this.options.maxWaitMs / 1000),
          ),
        );
      }, this.options.maxWaitMs);
      signal?.addEventListener("abort", onAbort, { once: true });
      this.waiting.push(waiter);
      // Closed for pacing with nothing running: come back when it reopens.
      this.pump();
    });
  }

  private release(started: { at: number; busyMs: number }): void {
    this.running -= 1;
    const now = this.clock.now();
    const contended = this.cheapRunning > 0 || this.lastCheapAt >= started.at || now - this.lastCheapAt < this.options.contendedMs;
    if (contended && this.options.heavyShare < 1) {
      const busy = this.clock.busyMs() - started.busyMs;
      this.closedUntil = Math.max(this.closedUntil, now + (busy * (1 - this.options.heavyShare)) / this.options.heavyShare);
    }
    this.pump();
  }

  /** Admits waiting requests while the gate is open, and comes back when it reopens. */
  private pump(): void {
    while (this.waiting.length > 0 && this.open()) this.waiting[0]!.admit();
    const wait = this.closedUntil - this.clock.now();
    if (this.waiting.length > 0 && wait > 0 && this.reopen === undefined) {
      this.reopen = setTimeout(() => {
        this.reopen = undefined;
        this.pump();
      }, wait);
    }
  }
}
