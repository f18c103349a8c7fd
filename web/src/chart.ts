import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import type { CycleEarnings } from "./provider.js";

/**
 * Earnings per cycle (bars) and cumulative paid (line). Amounts become Numbers of USDC here, for
 * plotting only: every figure printed on the page comes from the bigints.
 */
const toPlot = (micro: bigint): number => Number(micro) / 1e6;

export function earningsChart(target: HTMLElement, cycles: readonly CycleEarnings[], width: number): uPlot {
  const data: uPlot.AlignedData = [
    cycles.map((c) => c.cycle),
    cycles.map((c) => toPlot(c.amountMicro)),
    cycles.map((c) => toPlot(c.cumulativeMicro)),
  ];
  return new uPlot(
    {
      width,
      height: 220,
      scales: {
        x: { time: false, range: (_u, min, max) => [min - 0.5, max + 0.5] },
        // Bars stand on zero: amounts are never negative.
        y: { range: (_u, _min, max) => [0, max > 0 ? max * 1.1 : 1] },
      },
      axes: [
        { label: "cycle", values: (_u, splits) => splits.map((s) => (Number.isInteger(s) ? String(s) : "")) },
        // Ticks to the micro-USDC, trailing zeros dropped: a 0.000001 payout still gets its own labels.
        { label: "USDC", size: 88, values: (_u, splits) => splits.map((s) => s.toFixed(6).replace(/\.?0+$/, "")) },
      ],
      series: [
        { label: "cycle" },
        {
          label: "earned in cycle",
          stroke: "#2f6f4f",
          fill: "rgba(47, 111, 79, 0.35)",
          paths: uPlot.paths.bars!({ size: [0.5, 48] }),
          points: { show: false },
        },
        { label: "cumulative paid", stroke: "#1f4e8c", width: 2 },
      ],
      legend: { live: false },
    },
    data,
    target,
  );
}
