// Starts a real gateway on port 0 in this process, and upstreams that record what they receive.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, request as httpRequest } from 'node:http';
import type { IncomingHttpHeaders, OutgoingHttpHeaders, Server, ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import type { Gateway, GatewayDependencies, PrivacyPolicy } from '../../gateway/index.js';
import { OPEN_POLICY, loadGateway, parseGatewayConfig } from '../../gateway/index.js';

export interface RunningGateway {
  gateway: Gateway;
  url: string;
  /** The admin listener's URL with --admin-port; else the traffic listener's (which then serves /readyz and /metrics). */
  adminUrl: string;
}

/** Flags as a user would give them; health checks run every 50 ms so tests need not wait long. */
export async function startGateway(
  t: TestContext,
  flags: string[],
  { policy = OPEN_POLICY, dependencies = {} }: { policy?: PrivacyPolicy; dependencies?: GatewayDependencies } = {},
): Promise<RunningGateway> {
  // Routing tests use stand-in upstreams that cannot attest; attestation has tests of its own.
  const attests = flags.some((flag) => flag.startsWith('--attestation-pcrs') || flag.startsWith('--insecure-'));
  const secure = flags.some((flag) => flag.startsWith('--secure-upstream'));
  const skip = secure && !attests ? ['--insecure-skip-attestation'] : [];
  const { config } = parseGatewayConfig(
    ['--port', '0', '--log-level', 'silent', '--health-interval-ms', '50', ...skip, ...flags],
    {},
  );
  const gateway = await loadGateway(config, policy, dependencies);
  t.after(() => gateway.close());
  const adminUrl = gateway.admin ? await gateway.admin.listen({ host: '127.0.0.1', port: 0 }) : undefined;
  const url = await gateway.app.listen({ host: '127.0.0.1', port: 0 });
  await gateway.start();
  return { gateway, url, adminUrl: adminUrl ?? url };
}

export interface ReceivedRequest {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/** What the upstream does with a /predict request. */
export type UpstreamBehaviour =
  | { kind: 'answer' }
  | { kind: 'status'; statusCode: number }
  /** Accepts the request and never answers. */
  | { kind: 'hang' }
  /** Destroys the connection without an answer. */
  | { kind: 'reset' }
  /** Sends headers, then the body slowly, `delayMs` between chunks. */
  | { kind: 'slow-body'; delayMs: number; chunks: number }
  /** Answers as 'answer' does, `delayMs` after the request body has arrived. */
  | { kind: 'delay'; delayMs: number };

export interface RecordingUpstream {
  name: string;
  /** As the gateway is told: http://127.0.0.1:PORT or unix:/path. */
  url: string;
  received: ReceivedRequest[];
  ready: boolean;
  behaviour: UpstreamBehaviour;
  server: Server;
  close(): Promise<void>;
  /** Listens again at the same address after close(). */
  reopen(): Promise<void>;
}

/**
 * A stand-in model server that records every request (health checks excluded) and answers
 * /predict with JSON naming itself, so a test can tell which upstream served a request.
 */
export async function startRecordingUpstream(
  t: TestContext,
  name: string,
  { unix = false } = {},
): Promise<RecordingUpstream> {
  const directory = unix ? await mkdtemp(join(tmpdir(), 'mpg-upstream-')) : undefined;
  const socketPath = directory ? join(directory, `${name}.sock`) : undefined;
  let port = 0;
  const upstream: RecordingUpstream = {
    name,
    url: '',
    received: [],
    ready: true,
    behaviour: { kind: 'answer' },
    server: createServer(),
    close: async () => {},
    reopen: async () => {},
  };
  const handle = (server: Server) =>
    server.on('request', (request, response: ServerResponse) => {
      if (request.url === '/readyz') {
        response.writeHead(upstream.ready ? 200 : 503, { 'content-type': 'application/json' }).end('{}');
        return;
      }
      const chunks: Buffer[] = [];
      request.on('data', (chunk: Buffer) => chunks.push(chunk));
      request.on('end', () => {
        upstream.received.push({
          method: request.method ?? '',
          path: request.url ?? '',
          headers: request.headers,
          body: Buffer.concat(chunks),
        });
        const behaviour = upstream.behaviour;
        if (behaviour.kind === 'hang') return;
        if (behaviour.kind === 'reset') {
          request.socket.destroy();
          return;
        }
        if (behaviour.kind === 'status') {
          response
            .writeHead(behaviour.statusCode, { 'content-type': 'application/json' })
            .end(JSON.stringify({ upstream: name, statusCode: behaviour.statusCode }));
          return;
        }
        if (behaviour.kind === 'slow-body') {
          response.writeHead(200, { 'content-type': 'application/json' });
          let sent = 0;
          const timer = setInterval(() => {
            if (response.destroyed || sent === behaviour.chunks) {
              clearInterval(timer);
              if (!response.destroyed) response.end();
              return;
            }
            response.write(' ');
            sent++;
          }, behaviour.delayMs);
          return;
        }
        const answer = () =>
          response
            .writeHead(200, { 'content-type': 'application/json', 'x-upstream': name })
            .end(JSON.stringify({ upstream: name, path: request.url }));
        if (behaviour.kind === 'delay') {
          const timer = setTimeout(answer, behaviour.delayMs);
          response.once('close', () => clearTimeout(timer));
          return;
        }
        answer();
      });
    });
  const listen = async () => {
    upstream.server = handle(createServer());
    await new Promise<void>((resolve) => {
      if (socketPath) upstream.server.listen(socketPath, resolve);
      else upstream.server.listen(port, '127.0.0.1', resolve);
    });
    if (!socketPath) port = (upstream.server.address() as { port: number }).port;
    upstream.url = socketPath ? `unix:${socketPath}` : `http://127.0.0.1:${port}`;
  };
  await listen();
  upstream.close = () =>
    new Promise<void>((resolve) => {
      upstream.server.closeAllConnections();
      upstream.server.close(() => resolve());
    });
  upstream.reopen = listen;
  t.after(async () => {
    await upstream.close();
    if (directory) await rm(directory, { recursive: true, force: true });
  });
  return upstream;
}

/** Polls `condition` every 10 ms until it holds, or fails naming `what` after `timeoutMs`. */
export async function waitFor(
  condition: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 5_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

export interface RawResponse {
  statusCode: number;
  headers: IncomingHttpHeaders;
  body: string;
}

/**
 * One request over node:http on a fresh connection. Unlike fetch, it sends any header as given,
 * hop-by-hop ones (Connection, Keep-Alive, TE, Upgrade...) included.
 */
export function sendRaw(
  url: string,
  {
    method = 'POST',
    path,
    headers = {},
    body,
  }: { method?: string; path: string; headers?: OutgoingHttpHeaders; body?: string | Buffer },
): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const outgoing = httpRequest(new URL(path, url), { method, headers, agent: false }, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('error', reject);
      response.on('end', () =>
        resolve({
          statusCode: response.statusCode ?? 0,
          headers: response.headers,
          body: Buffer.concat(chunks).toString(),
        }),
      );
    });
    outgoing.on('error', reject);
    outgoing.end(body);
  });
}

/** Reads a gateway error answer and checks it is exactly `{statusCode, code, message}`. */
export async function expectCodedError(
  response: Response,
  statusCode: number,
  code: string,
): Promise<{ statusCode: number; code: string; message: string }> {
  const body = (await response.json()) as Record<string, unknown>;
  assert.deepEqual(
    Object.keys(body).sort(),
    ['code', 'message', 'statusCode'],
    `error body has other keys: ${JSON.stringify(body)}`,
  );
  assert.equal(response.status, statusCode, `status of ${JSON.stringify(body)}`);
  assert.equal(body.statusCode, statusCode);
  assert.equal(body.code, code);
  assert.equal(typeof body.message, 'string');
  assert.ok((body.message as string).length > 0, 'the message is empty');
  return body as { statusCode: number; code: string; message: string };
}

/** One sample of the gateway's /metrics text whose labels include `labels`; undefined when absent. */
export function metricValue(
  metricsText: string,
  name: string,
  labels: Record<string, string> = {},
): number | undefined {
  for (const line of metricsText.split('\n')) {
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match || match[1] !== name) continue;
    const found = new Map<string, string>();
    for (const label of (match[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      found.set(
        label[1]!,
        label[2]!.replace(/\\(.)/g, (_all, escaped: string) => (escaped === 'n' ? '\n' : escaped)),
      );
    }
    if (Object.entries(labels).every(([key, value]) => found.get(key) === value)) return Number(match[3]);
  }
  return undefined;
}

/** The gateway's /metrics text. */
export async function readMetrics(gatewayUrl: string): Promise<string> {
  const response = await fetch(`${gatewayUrl}/metrics`);
  if (response.status !== 200) throw new Error(`/metrics answered ${response.status}`);
  return response.text();
}
