// An open loop at a fixed offered rate: request i is sent at start + i / rate whether or not the
// earlier ones were answered, and its latency runs from that scheduled moment. So queueing is not
// hidden (a closed loop, or autocannon's rate option, which sends each second's quota per
// connection and then waits, would send less while the servers are slow: coordinated omission).
// `paced` is the load test's stream through the gateway, where each request picks its route so
// that `secureFraction` of them, evenly spread, are secure; `pacedStream` is the general form the
// benchmarks use (any targets sharing one origin, a warm-up, answers judged their own way).
import { Pool } from 'undici';
import type { LatencySummary } from '../../common/index.js';
import { summariseLatencies } from '../../common/index.js';
import type { AnswerCounts, HttpTarget } from './closed-loop.js';
import type { AnswerCheck, Verdict } from './check.js';
import { studyAnswer } from './check.js';

export type Route = 'public' | 'secure';

export interface RouteFigures extends AnswerCounts {
  sent: number;
  latencyMs: LatencySummary;
}

export interface PacedFigures<Name extends string = Route> {
  seconds: number;
  sent: number;
  /** Requests actually sent per second (the offered rate, unless the generator fell behind). */
  sentPerSecond: number;
  /** How late the generator sent its latest request (ms): large values mean it could not keep the rate. */
  maxSendLagMs: number;
  routes: Record<Name, RouteFigures>;
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

interface StreamSettings {
  body: string;
  rate: number;
  seconds: number;
  timeoutSeconds: number;
  /** Keep-alive connections; requests beyond them wait, and that wait is counted. */
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

export interface PacedOptions extends StreamSettings {
  gatewayUrl: string;
  secureFraction: number;
}

export interface PacedStreamOptions<Name extends string> extends StreamSettings {
  /** Where requests go, by the name their figures are kept under; all on one origin (and socket). */
  targets: Record<Name, HttpTarget & { check?: AnswerCheck }>;
  /** The target of request `index`. */
  pick(index: number): Name;
  /** Sent at the same rate before `seconds` start, and counted nowhere. */
  warmupSeconds?: number;
  /** Called when the warm-up ends and measuring starts (to start a CPU meter). */
  onMeasuring?(): void;
  /**
   * 'schedule' (the default): latency from when a request was due, so a queue shows. 'send': from
   * when it went out, for costs below the timer's resolution (a millisecond), where the generator's
   * own lateness would otherwise be most of the figure.
   */
  timedFrom?: 'schedule' | 'send';
}

/** Whether request `index` of an evenly spread stream with this secure fraction is secure. */
export function isSecureRequest(index: number, secureFraction: number): boolean {
  return Math.floor((index + 1) * secureFraction + 1e-9) - Math.floor(index * secureFraction + 1e-9) === 1;
}

/** The load test's stream: through the gateway, `secureFraction` of it on the secure route. */
export function paced(options: PacedOptions): Promise<PacedFigures> {
  const { gatewayUrl, secureFraction, ...settings } = options;
  return pacedStream<Route>({
    ...settings,
    targets: {
      public: { url: `${gatewayUrl}/predict-public`, route: 'public' },
      secure: { url: `${gatewayUrl}/predict-secure`, route: 'secure' },
    },
    pick: (index) => (isSecureRequest(index, secureFraction) ? 'secure' : 'public'),
  });
}

export async function pacedStream<Name extends string>(options: PacedStreamOptions<Name>): Promise<PacedFigures<Name>> {
  const names = Object.keys(options.targets) as Name[];
  if (options.onAnswer && names.some((name) => !options.targets[name].route))
    throw new Error('onAnswer reports routes: every target must name its route');
  const first = options.targets[names[0]!];
  const origin = new URL(first.url).origin;
  const pool = new Pool(origin, {
    connections: options.connections,
    headersTimeout: options.timeoutSeconds * 1000,
    bodyTimeout: options.timeoutSeconds * 1000,
    ...(first.socketPath ? { socketPath: first.socketPath } : {}),
  });
  const timedFromSend = options.timedFrom === 'send';
  const empty = () => ({ sent: 0, ok: 0, non2xx: 0, mismatches: 0, errors: 0, timeouts: 0 });
  const latencies = Object.fromEntries(names.map((name) => [name, [] as number[]])) as Record<Name, number[]>;
  const counts = Object.fromEntries(names.map((name) => [name, empty()])) as Record<Name, ReturnType<typeof empty>>;
  const checks = Object.fromEntries(
    names.map((name) => [name, options.targets[name].check ?? studyAnswer(options.targets[name].route)]),
  ) as Record<Name, AnswerCheck>;
  const paths = Object.fromEntries(names.map((name) => [name, new URL(options.targets[name].url).pathname])) as Record<
    Name,
    string
  >;
  const warmup = Math.round(options.rate * (options.warmupSeconds ?? 0));
  const total = warmup + Math.max(1, Math.round(options.rate * options.seconds));
  const inFlight = new Set<Promise<void>>();
  let maxSendLagMs = 0;

  const send = (name: Name, scheduled: number, measured: boolean) => {
    if (measured) counts[name].sent++;
    const sentAt = timedFromSend ? performance.now() : scheduled;
    const request = (async () => {
      try {
        const response = await pool.request({
          path: paths[name],
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: options.body,
        });
        const text = await response.body.text();
        const elapsed = performance.now() - sentAt;
        if (!measured) return;
        const verdict = checks[name](response.statusCode, text, response.headers);
        if (options.onAnswer) {
          const code = verdict === 'ok' ? undefined : refusalCode(text);
          options.onAnswer({
            route: options.targets[name].route!,
            scheduledAt: scheduled,
            answeredAt: performance.now(),
            verdict,
            status: response.statusCode,
            ...(code ? { code } : {}),
          });
        }
        if (verdict === 'ok') {
          counts[name].ok++;
          latencies[name].push(elapsed);
        } else if (verdict === 'non2xx') counts[name].non2xx++;
        else counts[name].mismatches++;
      } catch (error) {
        if (!measured) return;
        counts[name].errors++;
        const errorCode = (error as { code?: string }).code;
        if (/TIMEOUT/.test(errorCode ?? '')) counts[name].timeouts++;
        options.onAnswer?.({
          route: options.targets[name].route!,
          scheduledAt: scheduled,
          answeredAt: performance.now(),
          verdict: 'error',
          ...(errorCode ? { errorCode } : {}),
        });
      }
    })();
    inFlight.add(request);
    void request.finally(() => inFlight.delete(request));
  };

  const started = performance.now();
  const due = (index: number) => started + (index * 1000) / options.rate;
  let measuredFrom = warmup === 0 ? started : Number.NaN;
  if (warmup === 0) options.onMeasuring?.();
  let lastSent = started;
  let index = 0;
  while (index < total && !options.signal?.aborted) {
    const now = performance.now();
    // Whatever fell due while the timer slept goes out now, each timed from its own schedule.
    while (index < total && due(index) <= now) {
      if (index === warmup && warmup > 0) {
        measuredFrom = due(index);
        options.onMeasuring?.();
      }
      if (index >= warmup) maxSendLagMs = Math.max(maxSendLagMs, now - due(index));
      send(options.pick(index - warmup), due(index), index >= warmup);
      lastSent = now;
      index++;
    }
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, due(index) - performance.now())));
  }
  const sent = Math.max(0, index - warmup);
  // The stream's length: up to the last request sent, plus that request's own share of time.
  const sendingSeconds = Number.isNaN(measuredFrom)
    ? 1 / options.rate
    : (lastSent - measuredFrom) / 1000 + 1 / options.rate;
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
    sent,
    sentPerSecond: round(sent / sendingSeconds),
    maxSendLagMs: round(maxSendLagMs),
    routes: Object.fromEntries(
      names.map((name) => [name, { ...counts[name], latencyMs: summariseLatencies(latencies[name]) }]),
    ) as Record<Name, RouteFigures>,
  };
}
