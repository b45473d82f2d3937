// What the gateway's and the model server's latency histograms share: buckets that reach the
// longest a request can last, and the status class they are split by.

// Past 10 s only timeouts live: coarse buckets up to the longest a request can last, so a request
// cut off by a timeout lands in a bucket of its own instead of in +Inf with everything slow.
const TIMEOUT_BUCKETS_SECONDS = [15, 30, 60, 120, 300, 600];

/** `fine` (ending at 10 s or below), then coarse buckets up to and including `longestSeconds`. */
export function durationBucketsUpTo(fine: readonly number[], longestSeconds: number): number[] {
  const last = fine.at(-1) ?? 0;
  const coarse = TIMEOUT_BUCKETS_SECONDS.filter((bound) => bound > last && bound < longestSeconds);
  return [...fine, ...coarse, ...(longestSeconds > last ? [longestSeconds] : [])];
}

/** 2xx, 4xx, 5xx: a latency histogram's split, so fast refusals never pull a route's p50 down. */
export function statusClass(statusCode: number): string {
  return `${Math.floor(statusCode / 100)}xx`;
}
