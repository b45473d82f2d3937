// Latency figures of one set of answers, from each answer's own time (autocannon's histogram keeps
// whole milliseconds, too coarse for the fast steps).

/** Nearest-rank percentile of sorted values. */
export function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] ?? 0;
}

export interface LatencySummary {
  count: number;
  /** Milliseconds; null when there was no answer to measure. */
  min: number | null;
  mean: number | null;
  p50: number | null;
  p90: number | null;
  p99: number | null;
  max: number | null;
}

const round = (value: number) => Math.round(value * 1000) / 1000;

export function summariseLatencies(values: readonly number[]): LatencySummary {
  if (values.length === 0) return { count: 0, min: null, mean: null, p50: null, p90: null, p99: null, max: null };
  const sorted = [...values].sort((a, b) => a - b);
  const mean = sorted.reduce((total, value) => total + value, 0) / sorted.length;
  return {
    count: sorted.length,
    min: round(sorted[0]!),
    mean: round(mean),
    p50: round(percentile(sorted, 50)),
    p90: round(percentile(sorted, 90)),
    p99: round(percentile(sorted, 99)),
    max: round(sorted.at(-1)!),
  };
}
