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
  private lastCycleSeconds = 0;
  private readonly prove = { buckets: PROVE_BUCKETS.map(() => 0), count: 0, sum: 0 };

  recordCycle(result: CycleResult, seconds: number): void {
    this.cycles[result.status] += 1;
    this.lastCycleSeconds = seconds;
    if (result.status !== "paid") return;
    this.transfers += result.transfers.length;
    this.recoveries += result.recoveries;
    for (const t of result.transfers) {
      const s = t.proveMs / 1000;
      this.prove.count += 1;
      this.prove.sum += s;
      PROVE_BUCKETS.forEach((le, i) => {
        if (s <= le) this.prove.buckets[i]! += 1;
      });
    }
  }

  recordFailure(seconds: number): void {
    this.cycles.failed += 1;
    this.lastCycleSeconds = seconds;
  }

  render(running: boolean): string {
    const lines = [
      "# HELP backendshield_agent_cycles_total Payout cycles run, by how they ended.",
      "# TYPE backendshield_agent_cycles_total counter",
      ...Object.entries(this.cycles).map(([status, n]) => `backendshield_agent_cycles_total{status="${status}"} ${n}`),
      "# HELP backendshield_agent_transfers_total Private payout transfers paid.",
      "# TYPE backendshield_agent_transfers_total counter",
      `backendshield_agent_transfers_total ${this.transfers}`,
      "# HELP backendshield_agent_recoveries_total Transfers re-proved after the payer's balance changed mid-chain.",
      "# TYPE backendshield_agent_recoveries_total counter",
      `backendshield_agent_recoveries_total ${this.recoveries}`,
      "# HELP backendshield_agent_cycle_running Whether a cycle is running now.",
      "# TYPE backendshield_agent_cycle_running gauge",
      `backendshield_agent_cycle_running ${running ? 1 : 0}`,
      "# HELP backendshield_agent_last_cycle_seconds Duration of the last finished cycle.",
      "# TYPE backendshield_agent_last_cycle_seconds gauge",
      `backendshield_agent_last_cycle_seconds ${this.lastCycleSeconds}`,
      "# HELP backendshield_agent_prove_seconds Time to prove one transfer.",
      "# TYPE backendshield_agent_prove_seconds histogram",
      ...PROVE_BUCKETS.map((le, i) => `backendshield_agent_prove_seconds_bucket{le="${le}"} ${this.prove.buckets[i]}`),
      `backendshield_agent_prove_seconds_bucket{le="+Inf"} ${this.prove.count}`,
      `backendshield_agent_prove_seconds_sum ${Math.round(this.prove.sum * 1000) / 1000}`,
      `backendshield_agent_prove_seconds_count ${this.prove.count}`,
    ];
    return `${lines.join("\n")}\n`;
  }
}
