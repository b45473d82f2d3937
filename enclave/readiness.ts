// Asking the model server behind a Unix socket (the parent relay's) whether it is ready, and
// what it says it is. Used to wait for an enclave, emulated or on Nitro, before trusting it.
import { request } from 'node:http';

const PROBE_TIMEOUT_MS = 2_000;

export interface Probe {
  status: number;
  body: string;
}

/** GET `path` through the Unix socket; status 0 when nothing answered. */
export function probe(socketPath: string, path: string): Promise<Probe> {
  return new Promise((resolve) => {
    const req = request({ socketPath, path, agent: false, timeout: PROBE_TIMEOUT_MS }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        if (body.length < 64 * 1024) body += chunk;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', () => resolve({ status: 0, body: '' }));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve({ status: 0, body: '' }));
    req.end();
  });
}

export async function readyzStatus(socketPath: string): Promise<number> {
  return (await probe(socketPath, '/readyz')).status;
}

/** What `/v1/model` says about where the model server runs ("emulated", "nitro" or "none"), or undefined. */
export async function reportedEnclaveMode(socketPath: string): Promise<string | undefined> {
  const answer = await probe(socketPath, '/v1/model');
  if (answer.status !== 200) return undefined;
  try {
    const info = JSON.parse(answer.body) as { enclave?: unknown };
    return typeof info.enclave === 'string' ? info.enclave : undefined;
  } catch {
    return undefined;
  }
}

export interface WaitOptions {
  timeoutMs: number;
  pollMs?: number;
  /** Stops waiting (with this reason) when it returns a string. */
  gone?: () => string | undefined;
  signal?: AbortSignal;
}

/** Resolves once GET /readyz through `socketPath` answers 200; rejects on timeout, `gone` or abort. */
export async function waitUntilReady(socketPath: string, options: WaitOptions): Promise<void> {
  const deadline = Date.now() + options.timeoutMs;
  const pollMs = options.pollMs ?? 250;
  for (;;) {
    const reason = options.gone?.();
    if (reason !== undefined) throw new Error(reason);
    if (options.signal?.aborted) throw new Error('stopped while waiting for /readyz');
    const last = await readyzStatus(socketPath);
    if (last === 200) return;
    if (Date.now() >= deadline) {
      const what = last === 0 ? 'nothing answered' : `the last answer was ${last}`;
      throw new Error(
        `GET /readyz through unix:${socketPath} did not answer 200 within ${Math.round(options.timeoutMs / 1000)} s (${what})`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, pollMs));
  }
}
