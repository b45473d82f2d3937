// autocannon's closed loop: `connections` requests always outstanding, each sent again as soon as
// it is answered, for a time or a number of requests. Every answer is checked (the study's answer
// unless told otherwise), its own time kept; only good answers count as throughput and latency.
import { request as httpRequest } from 'node:http';
import autocannon from 'autocannon';
import type { AnswerCheck, Verdict } from './check.js';
import { studyAnswer } from './check.js';
import type { LatencySummary } from '../../common/index.js';
import { summariseLatencies } from '../../common/index.js';

export interface HttpTarget {
  /** Origin and path, e.g. http://127.0.0.1:8081/predict; over a Unix socket the host is ignored. */
  url: string;
  socketPath?: string;
  /** Through the gateway: the route the answer must say it took. */
  route?: 'public' | 'secure';
}

export interface AnswerCounts {
  /** Requests answered and checked good. */
  ok: number;
  non2xx: number;
  /** 2xx answers that were not the expected JSON (or came from the wrong route). */
  mismatches: number;
  /** Connection errors and timeouts (timeouts are also counted alone below). */
  errors: number;
  timeouts: number;
}

export interface ClosedLoopFigures extends AnswerCounts {
  seconds: number;
  /** Good answers per second. */
  requestsPerSecond: number;
  latencyMs: LatencySummary;
  /** Each good answer's time (ms), in order, with `keepLatencies`: to join several runs' percentiles. */
  latencies?: number[];
}

export interface ClosedLoopOptions {
  body: string;
  connections: number;
  /** How long to run; or, with `requests`, until that many were answered. */
  seconds: number;
  requests?: number;
  timeoutSeconds: number;
  /** How an answer is judged: by default the study's answer, on the target's route. */
  check?: AnswerCheck;
  keepLatencies?: boolean;
  signal?: AbortSignal;
}

export async function closedLoop(target: HttpTarget, options: ClosedLoopOptions): Promise<ClosedLoopFigures> {
  const url = new URL(target.url);
  const check = options.check ?? studyAnswer(target.route);
  const latencies: number[] = [];
  const counts = { ok: 0, non2xx: 0, mismatches: 0 };
  // autocannon calls a request's onResponse, then at once (same tick) emits 'response' with the
  // answer's time: the verdict of the one is the classification of the other.
  let verdict: Verdict = 'mismatch';
  const result = await new Promise<autocannon.Result>((resolve, reject) => {
    const instance = autocannon(
      {
        url: url.origin,
        ...(target.socketPath ? { socketPath: target.socketPath } : {}),
        connections: options.connections,
        ...(options.requests !== undefined ? { amount: options.requests } : { duration: options.seconds }),
        timeout: options.timeoutSeconds,
        requests: [
          {
            method: 'POST',
            path: url.pathname,
            headers: { 'content-type': 'application/json' },
            body: options.body,
            onResponse: (status: number, body: string, _context: unknown, headers: Record<string, unknown>) => {
              verdict = check(status, body, headers ?? {});
            },
          },
        ],
      } as autocannon.Options,
      (error: unknown, done) =>
        error
          ? reject(error instanceof Error ? error : new Error('autocannon failed', { cause: error }))
          : resolve(done),
    );
    instance.on('response', (_client, _statusCode, _bytes, responseTime) => {
      if (verdict === 'ok') {
        counts.ok++;
        latencies.push(responseTime);
      } else if (verdict === 'non2xx') counts.non2xx++;
      else counts.mismatches++;
      verdict = 'mismatch';
    });
    const stop = () => instance.stop();
    if (options.signal?.aborted) stop();
    options.signal?.addEventListener('abort', stop, { once: true });
    instance.once('done', () => options.signal?.removeEventListener('abort', stop));
  });
  const seconds = Math.max(1e-3, result.duration);
  return {
    ...counts,
    errors: result.errors,
    timeouts: result.timeouts,
    seconds: Math.round(seconds * 1000) / 1000,
    requestsPerSecond: Math.round((counts.ok / seconds) * 1000) / 1000,
    latencyMs: summariseLatencies(latencies),
    ...(options.keepLatencies ? { latencies } : {}),
  };
}

/** One request before measuring: the target must answer it well, or the sweep would measure errors. */
export function checkTarget(
  target: HttpTarget,
  body: string,
  timeoutSeconds: number,
  check: AnswerCheck = studyAnswer(target.route),
): Promise<void> {
  const url = new URL(target.url);
  return new Promise((resolve, reject) => {
    const outgoing = httpRequest(
      {
        ...(target.socketPath ? { socketPath: target.socketPath } : { host: url.hostname, port: url.port }),
        path: url.pathname,
        method: 'POST',
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
        agent: false,
        timeout: timeoutSeconds * 1000,
      },
      (response) => {
        let text = '';
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => (text += chunk));
        response.on('end', () => {
          const verdict = check(response.statusCode ?? 0, text, response.headers);
          if (verdict === 'ok') resolve();
          else
            reject(
              new Error(
                `${target.socketPath ? `unix:${target.socketPath} ` : ''}${target.url} answered ${response.statusCode} (${verdict}): ${text.slice(0, 200)}`,
              ),
            );
        });
      },
    );
    outgoing.on('timeout', () =>
      outgoing.destroy(new Error(`${target.url} did not answer within ${timeoutSeconds} s`)),
    );
    outgoing.on('error', reject);
    outgoing.end(body);
  });
}
