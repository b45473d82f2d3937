// An open loop at a fixed offered rate: request i is sent at start + i / rate whether or not the
// earlier ones were answered, and its latency runs from that scheduled moment. So queueing is not
// hidden (a closed loop, or autocannon's rate option, which sends each second's quota per
// connection and then waits, would send less while the servers are slow: coordinated omission).
// Each request picks its route so that `secureFraction` of them, evenly spread, are secure.
import { Pool } from 'undici';
import type { AnswerCounts } from './closed-loop.js';
import { checkAnswer } from './check.js';
import type { Verdict } from './check.js';
import type { LatencySummary } from './latency-summary.js';
import { summariseLatencies } from './latency-summary.js';

export type Route = 'public' | 'secure';

export interface RouteFigures extends AnswerCounts {
  sent: number;
  latencyMs: LatencySummary;
}

export interface PacedFigures {
  seconds: number;
  sent: number;
  /** Requests actually sent per second (the offered rate, unless the generator fell behind). */
  sentPerSecond: number;
  /** How late the generator sent its latest request (ms): large values mean it could not keep the rate. */
  maxSendLagMs: number;
  routes: Record<Route, RouteFigures>;
}

/** One request's outcome, as it happened: what a timeline of faults is read from. */
export interface PacedAnswer {
  route: Route;
  /** When the request was due and when its answer (or failure) came, in performance.now() ms. */
  scheduledAt: number;
  answeredAt: number;
  verdict: Verdict | 'error';
  /** The HTTP status; undefined when no answer came (connection error or timeout). */
  status?: number;
  /** A refusal's JSON `code` (GW_NO_SECURE_UPSTREAM...); undefined when the body had none. */
  code?: string;
  /** The transport error's code (UND_ERR_SOCKET, ECONNREFUSED, UND_ERR_HEADERS_TIMEOUT...). */
  errorCode?: string;
}

export interface PacedOptions {
  gatewayUrl: string;
  body: string;
  rate: number;
  seconds: number;
  secureFraction: number;
  timeoutSeconds: number;
  /** Keep-alive connections to the gateway; requests beyond them wait, and that wait is counted. */
  connections: number;
  signal?: AbortSignal;
  /** After an abort, how long requests in flight may still finish. */
  abortGraceMs?: number;
  /** Told of every answer as it comes (the fault benchmark's timeline); counting is unchanged. */
  onAnswer?: (answer: PacedAnswer) => void;
}

/** The `code` of a coded JSON refusal, if the body is one. */
function refusalCode(text: string): string | undefined {
  try {
    const parsed = JSON.parse(text) as { code?: unknown };
    return typeof parsed.code === 'string' ? parsed.code : undefined;
  } catch {
    return undefined;
  }
}

/** Whether request `index` of an evenly spread stream with this secure fraction is secure. */
export function isSecureRequest(index: number, secureFraction: number): boolean {
  return Math.floor((index + 1) * secureFraction + 1e-9) - Math.floor(index * secureFraction + 1e-9) === 1;
}

export async function paced(options: PacedOptions): Promise<PacedFigures> {
  const pool = new Pool(options.gatewayUrl, {
    connections: options.connections,
    headersTimeout: options.timeoutSeconds * 1000,
    bodyTimeout: options.timeoutSeconds * 1000,
  });
  const latencies: Record<Route, number[]> = { public: [], secure: [] };
  const empty = () => ({ sent: 0, ok: 0, non2xx: 0, mismatches: 0, errors: 0, timeouts: 0 });
  const counts = { public: empty(), secure: empty() };
  const total = Math.max(1, Math.round(options.rate * options.seconds));
  const inFlight = new Set<Promise<void>>();
  let maxSendLagMs = 0;

  const send = (route: Route, scheduled: number) => {
    counts[route].sent++;
    const request = (async () => {
      try {
        const response = await pool.request({ path: `/predict-${route}`, method: 'POST', headers: { 'content-type': 'application/json' }, body: options.body });
        const text = await response.body.text();
        const verdict = checkAnswer(response.statusCode, text, response.headers, route);
        if (options.onAnswer) {
          const code = verdict === 'ok' ? undefined : refusalCode(text);
          options.onAnswer({ route, scheduledAt: scheduled, answeredAt: performance.now(), verdict, status: response.statusCode, ...(code ? { code } : {}) });
        }
        if (verdict === 'ok') {
          counts[route].ok++;
          latencies[route].push(performance.now() - scheduled);
        } else if (verdict === 'non2xx') counts[route].non2xx++;
        else counts[route].mismatches++;
      } catch (error) {
        counts[route].errors++;
        const errorCode = (error as { code?: string }).code;
        if (/TIMEOUT/.test(errorCode ?? '')) counts[route].timeouts++;
        options.onAnswer?.({ route, scheduledAt: scheduled, answeredAt: performance.now(), verdict: 'error', ...(errorCode ? { errorCode } : {}) });
      }
    })();
    inFlight.add(request);
    void request.finally(() => inFlight.delete(request));
  };

  const started = performance.now();
  let lastSent = started;
  let index = 0;
  while (index < total && !options.signal?.aborted) {
    const now = performance.now();
    // Whatever fell due while the timer slept goes out now, each timed from its own schedule.
    while (index < total && started + (index * 1000) / options.rate <= now) {
      const scheduled = started + (index * 1000) / options.rate;
      maxSendLagMs = Math.max(maxSendLagMs, now - scheduled);
      send(isSecureRequest(index, options.secureFraction) ? 'secure' : 'public', scheduled);
      lastSent = now;
      index++;
    }
    const next = started + (index * 1000) / options.rate;
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, next - performance.now())));
  }
  // The stream's length: up to the last request sent, plus that request's own share of time.
  const sendingSeconds = (lastSent - started) / 1000 + 1 / options.rate;
  const drained = Promise.all([...inFlight]);
  if (options.signal?.aborted) {
    await Promise.race([drained, new Promise((resolve) => setTimeout(resolve, options.abortGraceMs ?? 2_000))]);
    await pool.destroy();
  } else {
    await drained;
    await pool.close();
  }
  const round = (value: number) => Math.round(value * 1000) / 1000;
  return {
    seconds: round(sendingSeconds),
    sent: index,
    sentPerSecond: round(index / sendingSeconds),
    maxSendLagMs: round(maxSendLagMs),
    routes: {
      public: { ...counts.public, latencyMs: summariseLatencies(latencies.public) },
      secure: { ...counts.secure, latencyMs: summariseLatencies(latencies.secure) },
    },
  };
}
