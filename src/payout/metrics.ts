import { summarize } from "../errors.js";
import { Histogram, renderMetrics } from "../util/prometheus.js";
import type { CycleResult } from "./agent.js";

/** Proof-time histogram buckets, seconds. */
const PROVE_BUCKETS = [0.5, 1, 2, 4, 8, 16];

/**
 * What the agent has done since it started, as counts and timings only (amounts stay on chain,
 * encrypted), rendered in Prometheus' text format.
 */
export class AgentMetrics {
  private readonly cycles = { paid: 0, nothing_owed: 0, failed: 0 };
  private transfers = 0;
  private recoveries = 0;
  private reverted = 0;
  private deferred = 0;
  private lastCycleSeconds = 0;
  /** Whether the last cycle that got as far as the payers' balances was refused for want of funds: a yes or no, never a margin. */
  private underfunded = 0;
  private readonly prove = new Histogram(PROVE_BUCKETS);

  recordCycle(result: CycleResult, seconds: number): void {
    this.cycles[result.status] += 1;
    this.lastCycleSeconds = seconds;
    this.underfunded = 0;
    if (result.status !== "paid") return;
    this.transfers += result.transfers.length;
    this.recoveries += result.recoveries;
    this.reverted += result.reverted;
    this.deferred += result.deferred.length;
    for (const t of result.transfers) this.prove.observe(t.proveMs / 1000);
  }

  recordFailure(seconds: number, error?: unknown): void {
    this.cycles.failed += 1;
    this.lastCycleSeconds = seconds;
    if (error !== undefined && summarize(error).code === "PAYER_UNDERFUNDED") this.underfunded = 1;
  }

  render(running: boolean): string {
    return renderMetrics([
      {
        name: "backendshield_agent_cycles_total",
        help: "Payout cycles run, by how they ended.",
        type: "counter",
        samples: Object.entries(this.cycles).map(([status, value]) => ({ labels: { status }, value })),
      },
      {
        name: "backendshield_agent_transfers_total",
        help: "Private payout transfers paid.",
        type: "counter",
        samples: [{ value: this.transfers }],
      },
      {
        name: "backendshield_agent_recoveries_total",
        help: "Re-proving rounds after a payer's balance changed under its chain of proofs.",
        type: "counter",
        samples: [{ value: this.recoveries }],
      },
      {
        name: "backendshield_agent_reverted_transfers_total",
        help: "Payout transactions mined reverted (a moved payer balance, or a receiver that could not be credited).",
        type: "counter",
        samples: [{ value: this.reverted }],
      },
      {
        name: "backendshield_agent_deferred_total",
        help: "Payout transfers deferred to a later cycle because the receiver's pending queue was full.",
        type: "counter",
        samples: [{ value: this.deferred }],
      },
      {
        name: "backendshield_agent_cycle_running",
        help: "Whether a cycle is running now.",
        type: "gauge",
        samples: [{ value: running ? 1 : 0 }],
      },
      {
        name: "backendshield_agent_last_cycle_seconds",
        help: "Duration of the last finished cycle.",
        type: "gauge",
        samples: [{ value: this.lastCycleSeconds }],
      },
      {
        name: "backendshield_agent_payer_underfunded",
        help: "1 when the last cycle was refused because the payers cannot cover what is owed, 0 once a cycle runs through.",
        type: "gauge",
        samples: [{ value: this.underfunded }],
      },
      { name: "backendshield_agent_prove_seconds", help: "Time to prove one transfer.", type: "histogram", histogram: this.prove },
    ]);
  }
}
