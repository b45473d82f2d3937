// A closed loop of `connections` workers for requests that autocannon cannot send: each worker
// calls `send()` for a fresh request (an encrypted one must be sealed afresh, with its own HPKE
// ephemeral key, so no fixed body will do), waits for its answer, judges it, and sends the next.
// Like closedLoop, only good answers count as throughput and latency; the rest are counted apart.
import type { Verdict } from './check.js';
import type { ClosedLoopFigures } from './closed-loop.js';
import { summariseLatencies } from '../../common/index.js';

/** One request, sent and judged; `signal` aborts it at the timeout. A throw counts as an error. */
export type SendRequest = (signal: AbortSignal) => Promise<Verdict>;

export interface WorkerLoopOptions {
  connections: number;
  /** How long to run; or, with `requests`, until that many were sent. */
  seconds: number;
  requests?: number;
  timeoutSeconds: number;
  keepLatencies?: boolean;
  signal?: AbortSignal;
}

class TimedOut extends Error {}

export async function workerLoop(send: SendRequest, options: WorkerLoopOptions): Promise<ClosedLoopFigures> {
  const latencies: number[] = [];
  const counts = { ok: 0, non2xx: 0, mismatches: 0, errors: 0, timeouts: 0 };
  const started = performance.now();
  const deadline = started + options.seconds * 1000;
  let sent = 0;
  const more = () =>
    !options.signal?.aborted &&
    (options.requests !== undefined ? sent < options.requests : performance.now() < deadline);

  const worker = async () => {
    while (more()) {
      sent++;
      const abort = new AbortController();
      const timer = setTimeout(
        () => abort.abort(new TimedOut(`no answer within ${options.timeoutSeconds} s`)),
        options.timeoutSeconds * 1000,
      );
      const begun = performance.now();
      try {
        const verdict = await send(abort.signal);
        if (verdict === 'ok') {
          counts.ok++;
          latencies.push(performance.now() - begun);
        } else if (verdict === 'non2xx') counts.non2xx++;
        else counts.mismatches++;
      } catch {
        // As autocannon counts them: a timeout is an error, and is also counted alone.
        counts.errors++;
        if (abort.signal.aborted) counts.timeouts++;
      } finally {
        clearTimeout(timer);
      }
    }
  };
  await Promise.all(Array.from({ length: options.connections }, worker));
  const seconds = Math.max(1e-3, (performance.now() - started) / 1000);
  return {
    ...counts,
    seconds: Math.round(seconds * 1000) / 1000,
    requestsPerSecond: Math.round((counts.ok / seconds) * 1000) / 1000,
    latencyMs: summariseLatencies(latencies),
    ...(options.keepLatencies ? { latencies } : {}),
  };
}
