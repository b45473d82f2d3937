// Limits (body, header block), overload protection, graceful shutdown of the real `mpg gateway`
// process with requests in flight, and the per-route metrics after mixed traffic.
import assert from 'node:assert/strict';
import { Agent, createServer, request as httpRequest } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { connect } from 'node:net';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import type { RecordingUpstream } from '../helpers/gateway.js';
import {
  expectCodedError,
  metricValue,
  readMetrics,
  sendRaw,
  startGateway,
  startRecordingUpstream,
  waitFor,
} from '../helpers/gateway.js';
import type { RunningProcess } from '../helpers/process.js';
import { startMpg, waitUntilOk } from '../helpers/process.js';

const BODY_LIMIT = 1024;

/** What reached an upstream's /predict, counted as it arrives (complete or not). */
function watchPredictRequests(upstream: RecordingUpstream): { requests: number; bytes: number; complete: number } {
  const seen = { requests: 0, bytes: 0, complete: 0 };
  upstream.server.on('request', (request: IncomingMessage) => {
    if (!request.url?.startsWith('/predict')) return;
    seen.requests++;
    request.on('data', (chunk: Buffer) => (seen.bytes += chunk.length));
    request.on('end', () => seen.complete++);
  });
  return seen;
}

const post = (url: string, body: string | Buffer, headers: Record<string, string> = {}) =>
  fetch(url, { method: 'POST', headers: { 'content-type': 'application/octet-stream', ...headers }, body });

test('a header block over --max-header-size: 431 from node:http, nothing sent upstream', async (t) => {
  const upstream = await startRecordingUpstream(t, 'public');
  const seen = watchPredictRequests(upstream);
  const { url } = await startGateway(t, ['--public-upstream', upstream.url, '--max-header-size', '1024']);
  const response = await post(`${url}/predict-public`, 'x', { 'x-filler': 'a'.repeat(2048) });
  assert.equal(response.status, 431);
  await response.arrayBuffer();
  assert.equal(seen.requests, 0);
  // Under the limit, the same request is served.
  assert.equal((await post(`${url}/predict-public`, 'x', { 'x-filler': 'a'.repeat(256) })).status, 200);
});

/** Holds this process's event loop (and so the in-process gateway's) for `ms`. */
const holdEventLoop = (ms: number) =>
  new Promise<void>((resolve) =>
    setImmediate(() => {
      const until = performance.now() + ms;
      while (performance.now() < until) {
        // busy: nothing else runs meanwhile
      }
      resolve();
    }),
  );

test('overload: a blocked event loop beyond --max-event-loop-delay-ms answers 503 GW_OVERLOADED with Retry-After, then recovers', async (t) => {
  const upstream = await startRecordingUpstream(t, 'public');
  const { url } = await startGateway(t, ['--public-upstream', upstream.url, '--max-event-loop-delay-ms', '20']);
  // @fastify/under-pressure averages the delay over one-second samples: keep the loop blocked
  // most of the time until a sample says so.
  let overloaded: Response | undefined;
  let served = 0;
  for (let round = 0; round < 40 && !overloaded; round++) {
    await holdEventLoop(150);
    const response = await post(`${url}/predict-public`, 'x');
    if (response.status === 503) {
      overloaded = response;
    } else {
      assert.equal(response.status, 200);
      await response.arrayBuffer();
      served++;
    }
  }
  assert.ok(overloaded, 'a request was refused while the event loop was blocked');
  assert.equal(overloaded.headers.get('retry-after'), '1');
  await expectCodedError(overloaded, 503, 'GW_OVERLOADED');
  assert.equal(upstream.received.length, served, 'the refused request was not sent upstream');

  // Unblocked, the next samples clear the condition.
  await waitFor(async () => {
    const response = await post(`${url}/predict-public`, 'x');
    await response.arrayBuffer();
    return response.status === 200;
  }, 'the gateway to take requests again');
  assert.ok((metricValue(await readMetrics(url), 'mpg_gateway_errors_total', { code: 'GW_OVERLOADED' }) ?? 0) >= 1);
});

/** The real `mpg gateway` on a free port, once its first health checks have run. */
async function startCliGateway(t: TestContext, flags: string[]): Promise<{ mpg: RunningProcess; url: string }> {
  const mpg = startMpg(t, ['gateway', '--port', '0', '--log-level', 'warn', ...flags]);
  const [, url] = await mpg.waitForOutput(/gateway listening on (http:\/\/\S+)/);
  assert.ok(url);
  // Ready means the first health checks ran, after the signal handlers were installed.
  await waitUntilOk(`${url}/readyz`);
  return { mpg, url };
}

/** Says, for a failure message, whether the process died and what it printed. */
async function explainExit(mpg: RunningProcess): Promise<string> {
  const exit = await Promise.race([mpg.exited, new Promise((resolve) => setTimeout(resolve, 1_000, 'still running'))]);
  return `the gateway: ${String(exit)}; stderr: ${mpg.stderr().slice(-1_500)}`;
}

/** An upstream that holds every /predict until released, so a test decides when they finish. */
async function startHoldingUpstream(t: TestContext): Promise<{ url: string; held: () => number; release: () => void }> {
  const held: ServerResponse[] = [];
  const server = createServer((request, response) => {
    if (request.url === '/readyz') {
      response.end('{}');
      return;
    }
    request.resume();
    request.on('end', () => held.push(response));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => {
    server.closeAllConnections();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return {
    url: `http://127.0.0.1:${(server.address() as { port: number }).port}`,
    held: () => held.length,
    release: () => {
      for (const response of held.splice(0))
        response.writeHead(200, { 'content-type': 'application/json' }).end('{"held":true}');
    },
  };
}

/** 'refused' when nothing listens on the port any more, 'accepted' while something does. */
const tryConnect = (port: number) =>
  new Promise<'refused' | 'accepted'>((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve('accepted');
    });
    socket.once('error', (error: NodeJS.ErrnoException) =>
      error.code === 'ECONNREFUSED' ? resolve('refused') : reject(error),
    );
  });

test('graceful shutdown of `mpg gateway`: SIGTERM with 3 requests in flight, all finish with 200, new connections refused, exit 0', async (t) => {
  const upstream = await startHoldingUpstream(t);
  const { mpg, url } = await startCliGateway(t, ['--public-upstream', upstream.url]);
  const port = Number(new URL(url).port);

  let finished = 0;
  const inFlight = Array.from({ length: 3 }, (_, index) =>
    post(`${url}/predict-public`, `request-${index}`).then(async (response) => {
      const answer = { status: response.status, body: await response.text() };
      finished++;
      return answer;
    }),
  );
  await waitFor(() => upstream.held() === 3, 'the 3 requests to reach the upstream');

  mpg.child.kill('SIGTERM');
  await waitFor(async () => (await tryConnect(port)) === 'refused', 'the gateway to stop accepting connections');
  assert.equal(finished, 0, 'the requests are still in flight when the listener is gone');
  assert.equal(mpg.child.exitCode, null, 'the gateway waits for them');

  upstream.release();
  const answers = await Promise.all(inFlight);
  assert.deepEqual(
    answers,
    Array.from({ length: 3 }, () => ({ status: 200, body: '{"held":true}' })),
  );
  assert.equal(await mpg.exited, 0, `stderr: ${mpg.stderr()}`);
  assert.equal(await tryConnect(port), 'refused');
});

test('metrics after mixed traffic: requests by route and status, both histograms per route and status class up to the longest request, in flight back to 0, bytes per route', async (t) => {
  const publicUpstream = await startRecordingUpstream(t, 'public');
  const secureUpstream = await startRecordingUpstream(t, 'secure', { unix: true });
  const { url } = await startGateway(t, [
    '--public-upstream',
    publicUpstream.url,
    '--secure-upstream',
    secureUpstream.url,
  ]);
  let publicBytesIn = 0;
  let publicBytesOut = 0;
  let secureBytesIn = 0;
  let secureBytesOut = 0;
  const send = async (route: 'public' | 'secure', body: string, expectedStatus: number) => {
    const response = await post(`${url}/predict-${route}`, body);
    const answer = Buffer.from(await response.arrayBuffer());
    assert.equal(response.status, expectedStatus);
    if (route === 'public') {
      publicBytesIn += Buffer.byteLength(body);
      publicBytesOut += answer.length;
    } else {
      secureBytesIn += Buffer.byteLength(body);
      secureBytesOut += answer.length;
    }
  };
  for (let index = 0; index < 3; index++) await send('public', `public body ${index}`, 200);
  publicUpstream.behaviour = { kind: 'status', statusCode: 503 };
  await send('public', 'public body refused by the upstream', 503);
  for (let index = 0; index < 2; index++) await send('secure', `a longer secure body ${index}`, 200);
  secureUpstream.behaviour = { kind: 'status', statusCode: 500 };
  await send('secure', 'secure body the upstream fails on', 500);

  // The gauge drops when each response's socket side closes, just after the client has it.
  await waitFor(async () => {
    const text = await readMetrics(url);
    return (
      metricValue(text, 'mpg_gateway_requests_in_flight', { route: 'public' }) === 0 &&
      metricValue(text, 'mpg_gateway_requests_in_flight', { route: 'secure' }) === 0
    );
  }, 'no request in flight');
  const metrics = await readMetrics(url);
  const value = (name: string, labels: Record<string, string>) => metricValue(metrics, name, labels);

  assert.equal(value('mpg_gateway_requests_total', { route: 'public', status: '200' }), 3);
  assert.equal(value('mpg_gateway_requests_total', { route: 'public', status: '503' }), 1);
  assert.equal(value('mpg_gateway_requests_total', { route: 'secure', status: '200' }), 2);
  assert.equal(value('mpg_gateway_requests_total', { route: 'secure', status: '500' }), 1);
  // Both histograms are split by status class, so the upstream's fast failures stay out of a
  // route's 2xx latency; their buckets reach the longest request (30 s receiving + 30 s upstream).
  for (const [route, counts] of [
    ['public', { '2xx': 3, '5xx': 1 }],
    ['secure', { '2xx': 2, '5xx': 1 }],
  ] as const) {
    for (const [status_class, count] of Object.entries(counts)) {
      for (const histogram of ['mpg_gateway_request_duration_seconds', 'mpg_gateway_upstream_duration_seconds']) {
        const labels = { route, status_class };
        assert.equal(value(`${histogram}_count`, labels), count, `${histogram} count on ${route} ${status_class}`);
        assert.equal(value(`${histogram}_bucket`, { ...labels, le: '+Inf' }), count);
        assert.equal(
          value(`${histogram}_bucket`, { ...labels, le: '60' }),
          count,
          `${histogram} has a bucket at the longest request`,
        );
        assert.ok((value(`${histogram}_sum`, labels) ?? 0) > 0, `${histogram} sum on ${route} ${status_class}`);
      }
      // The upstream leg is part of the whole request.
      assert.ok(
        (value('mpg_gateway_upstream_duration_seconds_sum', { route, status_class }) ?? 0) <=
          (value('mpg_gateway_request_duration_seconds_sum', { route, status_class }) ?? 0),
      );
    }
    assert.equal(value('mpg_gateway_request_duration_seconds_count', { route, status_class: '4xx' }), undefined);
  }
  assert.equal(value('mpg_gateway_request_bytes_total', { route: 'public' }), publicBytesIn);
  assert.equal(value('mpg_gateway_request_bytes_total', { route: 'secure' }), secureBytesIn);
  assert.equal(value('mpg_gateway_response_bytes_total', { route: 'public' }), publicBytesOut);
  assert.equal(value('mpg_gateway_response_bytes_total', { route: 'secure' }), secureBytesOut);
  assert.ok(publicBytesIn > 0 && secureBytesIn > 0 && publicBytesOut > 0 && secureBytesOut > 0);
});

/** 4 KiB in 512-byte chunks, sent without a content-length. */
const chunkedBody = () =>
  Readable.from(
    (async function* eightChunks() {
      for (let index = 0; index < 8; index++) {
        await new Promise((resolve) => setImmediate(resolve));
        yield Buffer.alloc(512, 97);
      }
    })(),
  );

const postChunked = (url: string) =>
  fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/octet-stream' },
    body: chunkedBody(),
    duplex: 'half',
  } as unknown as RequestInit);

test('a body over --body-limit that declares its length: 413 GW_BODY_TOO_LARGE, nothing sent upstream', async (t) => {
  const upstream = await startRecordingUpstream(t, 'public');
  const seen = watchPredictRequests(upstream);
  const { url } = await startGateway(t, ['--public-upstream', upstream.url, '--body-limit', String(BODY_LIMIT)]);
  // A fresh connection, closed after the answer: the body the gateway refused to read goes with it.
  const response = await sendRaw(url, {
    path: '/predict-public',
    headers: { 'content-type': 'application/octet-stream' },
    body: Buffer.alloc(BODY_LIMIT * 4, 1),
  });
  assert.equal(response.statusCode, 413);
  assert.deepEqual(JSON.parse(response.body), {
    statusCode: 413,
    code: 'GW_BODY_TOO_LARGE',
    message: 'The body declares 4096 bytes; the limit is 1024 bytes',
  });
  assert.deepEqual(seen, { requests: 0, bytes: 0, complete: 0 });
  // At the limit exactly, the body goes through untouched.
  const atLimit = await post(`${url}/predict-public`, Buffer.alloc(BODY_LIMIT, 2));
  assert.equal(atLimit.status, 200);
  assert.deepEqual(upstream.received.at(-1)?.body, Buffer.alloc(BODY_LIMIT, 2));
});

/** POSTs over one keep-alive connection (a single-socket agent), bounded by `timeoutMs`. */
function postOnSharedConnection(
  agent: Agent,
  url: string,
  body: Buffer,
  timeoutMs = 5_000,
): Promise<{ statusCode: number; body: string }> {
  return new Promise((resolve, reject) => {
    const outgoing = httpRequest(
      new URL('/predict-public', url),
      { method: 'POST', agent, timeout: timeoutMs, headers: { 'content-type': 'application/octet-stream' } },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () =>
          resolve({ statusCode: response.statusCode ?? 0, body: Buffer.concat(chunks).toString() }),
        );
        response.on('error', reject);
      },
    );
    outgoing.on('timeout', () => outgoing.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    outgoing.on('error', reject);
    outgoing.end(body);
  });
}

test('`mpg gateway` survives a body over --body-limit, and serves the next request on the same keep-alive connection', async (t) => {
  const upstream = await startRecordingUpstream(t, 'public');
  const { mpg, url } = await startCliGateway(t, [
    '--public-upstream',
    upstream.url,
    '--body-limit',
    String(BODY_LIMIT),
  ]);
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  t.after(() => agent.destroy());
  const refused = await postOnSharedConnection(agent, url, Buffer.alloc(BODY_LIMIT * 4, 1));
  assert.equal(refused.statusCode, 413);
  assert.equal((JSON.parse(refused.body) as { code: string }).code, 'GW_BODY_TOO_LARGE');
  // Whether the gateway drains the unread body or closes the connection, the next request is served.
  const next = await postOnSharedConnection(agent, url, Buffer.from('small')).catch(async (error: Error) => {
    throw new Error(`the next request failed (${error.message}); ${await explainExit(mpg)}`);
  });
  assert.equal(next.statusCode, 200, next.body);
  assert.equal(mpg.child.exitCode, null, `the gateway exited: ${mpg.stderr()}`);
  assert.equal(upstream.received.length, 1);
});

test('`mpg gateway` survives a chunked body over --body-limit that it refuses before forwarding', async (t) => {
  const upstream = await startRecordingUpstream(t, 'public');
  // No secure member: a secure request is answered 503 before its body is read, and its connection
  // is closed with the body unread. Whether this client reads the 503 before its own writes fail
  // depends on timing (the answer's code is asserted in-process elsewhere); what this test asserts
  // is that the gateway process survives and keeps serving.
  const { mpg, url } = await startCliGateway(t, [
    '--public-upstream',
    upstream.url,
    '--body-limit',
    String(BODY_LIMIT),
  ]);
  const refused = await postChunked(`${url}/predict-secure`).then(
    async (response) => ({ status: response.status, code: ((await response.json()) as { code?: string }).code }),
    () => undefined,
  );
  if (refused) assert.deepEqual(refused, { status: 503, code: 'GW_NO_SECURE_UPSTREAM' });
  const next = await post(`${url}/predict-public`, 'small').catch(async (error: Error) => {
    throw new Error(`the next request failed (${error.message}); ${await explainExit(mpg)}`);
  });
  assert.equal(next.status, 200);
  assert.equal(mpg.child.exitCode, null, `the gateway exited: ${mpg.stderr()}`);
  assert.equal(upstream.received.length, 1);
});

test('a chunked body over --body-limit: 413 GW_BODY_TOO_LARGE, no more than the limit reaches the upstream, the member stays in service', async (t) => {
  const upstream = await startRecordingUpstream(t, 'public');
  const seen = watchPredictRequests(upstream);
  const { url } = await startGateway(t, ['--public-upstream', upstream.url, '--body-limit', String(BODY_LIMIT)]);
  // No content-length: the gateway learns the size only by streaming the body through.
  const response = await postChunked(`${url}/predict-public`);
  await expectCodedError(response, 413, 'GW_BODY_TOO_LARGE');
  assert.ok(seen.bytes <= BODY_LIMIT, `${seen.bytes} bytes reached the upstream`);
  assert.equal(seen.complete, 0, 'the upstream never saw a complete request');
  assert.equal(upstream.received.length, 0);

  // The client's oversized body is the client's fault: the member must keep serving.
  const next = await post(`${url}/predict-public`, 'small');
  const body = (await next.json()) as { upstream?: string; code?: string };
  assert.equal(next.status, 200, `after a chunked body over the limit: ${next.status} ${body.code}`);
  assert.equal(body.upstream, 'public');
});
