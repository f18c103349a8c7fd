/** Prometheus' text exposition format (version 0.0.4): what the agent's and the API's /metrics answer. */

export const PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4";

export type Sample = { labels?: Record<string, string | number>; value: number };

export type MetricFamily =
  | { name: string; help: string; type: "counter" | "gauge"; samples: readonly Sample[] }
  | { name: string; help: string; type: "histogram"; histogram: Histogram };

/** A histogram's cumulative buckets, count and sum. */
export class Histogram {
  private readonly counts: number[];
  private count = 0;
  private sum = 0;

  constructor(readonly buckets: readonly number[]) {
    this.counts = buckets.map(() => 0);
  }

  observe(value: number): void {
    this.count += 1;
    this.sum += value;
    this.buckets.forEach((le, i) => {
      if (value <= le) this.counts[i]! += 1;
    });
  }

  lines(name: string): string[] {
    return [
      ...this.buckets.map((le, i) => `${name}_bucket{le="${le}"} ${this.counts[i]}`),
      `${name}_bucket{le="+Inf"} ${this.count}`,
      `${name}_sum ${Math.round(this.sum * 1000) / 1000}`,
      `${name}_count ${this.count}`,
    ];
  }
}

const escapeLabel = (v: string | number) => String(v).replaceAll("\\", "\\\\").replaceAll('"', '\\"').replaceAll("\n", "\\n");

function sampleLine(name: string, { labels, value }: Sample): string {
  const entries = Object.entries(labels ?? {});
  const text = entries.length > 0 ? `{${entries.map(([k, v]) => `${k}="${escapeLabel(v)}"`).join(",")}}` : "";
  return `${name}${text} ${value}`;
}

/** The families as exposition text: HELP and TYPE, then the samples, one per line. */
export function renderMetrics(families: readonly MetricFamily[]): string {
  const lines = families.flatMap((f) => [
    `# HELP ${f.name} ${f.help}`,
    `# TYPE ${f.name} ${f.type}`,
    ...(f.type === "histogram" ? f.histogram.lines(f.name) : f.samples.map((s) => sampleLine(f.name, s))),
  ]);
  return `${lines.join("\n")}\n`;
}
