// The seed study's figures, the bar this project measures itself against: written once, here, and
// shown beside ours by the load test's report and the benchmarks.
export const SEED_STUDY = {
  startupSeconds: { 'public model server': 3.0, enclave: 14.1 },
  vsockGbitPerSecond: 9.28,
  vsockOverTcp: 0.13,
  /** The enclave's maximum latency over the standard server's, at 100 concurrent requests. */
  maxLatencyRatioAt100: 2.9,
  /** Start-up and runtime memory (`docker stats`); the enclave's start-up figure is its allotment. */
  memoryMiB: {
    'public model server': { startup: 225, runtime: 256.7 },
    enclave: { startup: 1023, runtime: 3.3 },
  } as Record<string, { startup: number; runtime: number }>,
};
