// Hostile and broken clients (issue 12, failures 1, 2, 3, 5 and 10): a client's own failure never
// counts against a member, a stalled upload holds no upstream connection, a full member answers a
// fast 503, secure signals are never lost past header line 1000 or sent as trailers, Expect:
// 100-continue works, and parse-time errors get the gateway's coded answer.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import type { IncomingMessage } from 'node:http';
import { connect } from 'node:net';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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
import { startMpg, waitUntilOk } from '../helpers/process.js';

/** A raw connection to the gateway; `text()` resolves with all it answered once it closes. */
function openRaw(
  t: TestContext,
  gatewayUrl: string,
): { socket: Socket; text: () => Promise<string>; closed: () => boolean } {
  const { port } = new URL(gatewayUrl);
  const socket = connect(Number(port), '127.0.0.1');
  let received = '';
  let isClosed = false;
  socket.on('data', (chunk: Buffer) => (received += chunk.toString('latin1')));
  socket.on('error', () => {});
  const done = new Promise<string>((resolve) =>
    socket.once('close', () => {
      isClosed = true;
      resolve(received);
    }),
  );
  t.after(() => socket.destroy());
  return { socket, text: () => done, closed: () => isClosed };
}

/** Resolves once the upstream has received the start of `count` /predict requests (finished or not). */
function watchArrivals(upstream: RecordingUpstream): { count: number; requests: IncomingMessage[] } {
  const seen = { count: 0, requests: [] as IncomingMessage[] };
  upstream.server.on('request', (request: IncomingMessage) => {
    if (!request.url?.startsWith('/predict')) return;
    seen.count++;
    seen.requests.push(request);
  });
  return seen;
}

/** The sum of a counter's samples whose labels include `labels`. */
function metricSum(text: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (Object.entries(labels).every(([key, value]) => line.includes(`${key}="${value}"`)))
      sum += Number(line.split(' ').at(-1));
  }
  return sum;
}

/** Waits until the gateway has answered (to nobody, perhaps) `count` failed requests on `route`. */
async function untilErrorsCounted(gatewayUrl: string, route: string, count = 1): Promise<string> {
  let text = '';
  await waitFor(
    async () => {
      text = await readMetrics(gatewayUrl);
      return metricSum(text, 'mpg_gateway_errors_total', { route }) >= count;
    },
    `${count} error answers on the ${route} route`,
    20_000,
  );
  return text;
}

/** The code of a raw answer's coded JSON body. */
const codeOf = (answer: string): string =>
  (JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4)) as { code: string }).code;

const predictHead = (path: string, headers: string[]) =>
  [`POST ${path} HTTP/1.1`, 'host: gateway', ...headers, '', ''].join('\r\n');

// --- failure 1: the client's failures are the client's ---

for (const streamed of [false, true]) {
  const how = streamed ? 'streamed (--body-buffer-bytes 0)' : 'read whole first';
  const flags = streamed ? ['--body-buffer-bytes', '0'] : [];

  test(`a client that aborts mid-body, ${how}: the member is not ejected and serves the next request`, async (t) => {
    const upstream = await startRecordingUpstream(t, 'public');
    const arrivals = watchArrivals(upstream);
    const { url } = await startGateway(t, ['--public-upstream', upstream.url, ...flags]);
    const raw = openRaw(t, url);
    raw.socket.write(
      predictHead('/predict-public', ['content-type: application/octet-stream', 'content-length: 100000']) +
        'x'.repeat(1000),
    );
    // Streamed, the body has reached the member when the client goes; read whole, it never does.
    if (streamed) await waitFor(() => arrivals.count === 1, 'the streamed request to reach the member');
    else
      await waitFor(
        async () => metricValue(await readMetrics(url), 'mpg_gateway_requests_in_flight', { route: 'public' }) === 1,
        'the request to be in flight',
      );
    raw.socket.destroy();
    const metrics = await untilErrorsCounted(url, 'public');
    assert.equal(metricSum(metrics, 'mpg_gateway_upstream_ejections_total'), 0, 'no member was ejected');
    assert.equal(metricSum(metrics, 'mpg_gateway_errors_total', { code: 'GW_REQUEST_ABORTED' }), 1);
    const next = await fetch(`${url}/predict-public`, { method: 'POST', body: 'next' });
    assert.equal(next.status, 200);
  });

  test(`a malformed chunked body, ${how}: 400 GW_BAD_REQUEST with x-request-id, and the member is not ejected`, async (t) => {
    const upstream = await startRecordingUpstream(t, 'public');
    const arrivals = watchArrivals(upstream);
    const { url } = await startGateway(t, ['--public-upstream', upstream.url, ...flags]);
    const raw = openRaw(t, url);
    raw.socket.write(
      predictHead('/predict-public', ['content-type: application/octet-stream', 'transfer-encoding: chunked']) +
        `400\r\n${'x'.repeat(0x400)}\r\n`,
    );
    if (streamed) await waitFor(() => arrivals.count === 1, 'the streamed request to reach the member');
    else
      await waitFor(
        async () => metricValue(await readMetrics(url), 'mpg_gateway_requests_in_flight', { route: 'public' }) === 1,
        'the request to be in flight',
      );
    raw.socket.write('zz-not-a-chunk-size\r\n\r\n');
    const answer = await raw.text();
    assert.match(answer, /^HTTP\/1\.1 400 /);
    assert.match(answer, /\r\nx-request-id: [A-Za-z0-9._:-]+\r\n/i);
    assert.equal(codeOf(answer), 'GW_BAD_REQUEST');
    const metrics = await untilErrorsCounted(url, 'public');
    assert.equal(metricSum(metrics, 'mpg_gateway_upstream_ejections_total'), 0, 'no member was ejected');
    assert.equal((await fetch(`${url}/predict-public`, { method: 'POST', body: 'next' })).status, 200);
  });

  test(`a request over --request-timeout-ms, ${how}: 408 GW_REQUEST_TIMEOUT with x-request-id, and the member is not ejected`, async (t) => {
    const upstream = await startRecordingUpstream(t, 'public');
    const arrivals = watchArrivals(upstream);
    // The idle-body timeout is longer, so the whole-request timeout is the one that fires.
    const { url } = await startGateway(t, [
      '--public-upstream',
      upstream.url,
      '--request-timeout-ms',
      '300',
      '--body-idle-timeout-ms',
      '60000',
      ...flags,
    ]);
    const raw = openRaw(t, url);
    raw.socket.write(
      predictHead('/predict-public', [
        'content-type: application/octet-stream',
        'content-length: 100000',
        'x-request-id: stalled-1',
      ]) + 'x'.repeat(10),
    );
    if (streamed) await waitFor(() => arrivals.count === 1, 'the streamed request to reach the member');
    const answer = await raw.text();
    assert.match(answer, /^HTTP\/1\.1 408 /);
    assert.match(answer, /\r\nx-request-id: stalled-1\r\n/i);
    assert.deepEqual(JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4)), {
      statusCode: 408,
      code: 'GW_REQUEST_TIMEOUT',
      message: 'The request was not received whole in time (--request-timeout-ms)',
    });
    const metrics = await untilErrorsCounted(url, 'public');
    assert.equal(metricSum(metrics, 'mpg_gateway_upstream_ejections_total'), 0, 'no member was ejected');
    assert.equal((await fetch(`${url}/predict-public`, { method: 'POST', body: 'next' })).status, 200);
  });

  test(`a body that goes silent, ${how}: 408 GW_BODY_TIMEOUT after --body-idle-timeout-ms, and the member is not ejected`, async (t) => {
    const upstream = await startRecordingUpstream(t, 'secure', { unix: true });
    const arrivals = watchArrivals(upstream);
    const { url } = await startGateway(t, [
      '--secure-upstream',
      upstream.url,
      '--body-idle-timeout-ms',
      '300',
      ...flags,
    ]);
    const raw = openRaw(t, url);
    raw.socket.write(
      predictHead('/predict-secure', ['content-type: application/octet-stream', 'content-length: 100000']) +
        'x'.repeat(1024),
    );
    if (streamed) await waitFor(() => arrivals.count === 1, 'the streamed request to reach the member');
    const answer = await raw.text();
    assert.match(answer, /^HTTP\/1\.1 408 /);
    assert.equal(codeOf(answer), 'GW_BODY_TIMEOUT');
    const metrics = await untilErrorsCounted(url, 'secure');
    assert.equal(metricSum(metrics, 'mpg_gateway_upstream_ejections_total'), 0, 'no member was ejected');
    assert.equal(upstream.received.length, 0, 'no incomplete body was taken for a whole one');
    assert.equal((await fetch(`${url}/predict-secure`, { method: 'POST', body: 'next' })).status, 200);
  });
}

// --- failure 2: stalled uploads hold nothing of the member's ---

test('40 stalled secure uploads hold no upstream connection: a normal secure request is answered while they are all still open', async (t) => {
  const upstream = await startRecordingUpstream(t, 'secure', { unix: true });
  const arrivals = watchArrivals(upstream);
  const { url } = await startGateway(t, ['--secure-upstream', upstream.url]);
  const stalled = Array.from({ length: 40 }, () => openRaw(t, url));
  for (const raw of stalled) {
    raw.socket.write(
      predictHead('/predict-secure', ['content-type: application/octet-stream', 'content-length: 4096']) +
        'x'.repeat(16),
    );
  }
  await waitFor(
    async () => metricValue(await readMetrics(url), 'mpg_gateway_requests_in_flight', { route: 'secure' }) === 40,
    'the 40 stalled uploads to be in flight',
  );
  const normal = await fetch(`${url}/predict-secure`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: '{"images":[]}',
  });
  assert.equal(normal.status, 200);
  assert.equal(((await normal.json()) as { upstream: string }).upstream, 'secure');
  assert.deepEqual(
    stalled.map((raw) => raw.closed()),
    stalled.map(() => false),
    'the stalled uploads were still open when the normal request was answered',
  );
  assert.equal(arrivals.count, 1, 'only the complete request reached the member');
});

test('a member whose connections and queue are full: the next request gets 503 GW_UPSTREAM_BUSY at once, and the member stays in rotation', async (t) => {
  const upstream = await startRecordingUpstream(t, 'secure', { unix: true });
  const arrivals = watchArrivals(upstream);
  const { url } = await startGateway(t, [
    '--secure-upstream',
    upstream.url,
    '--connections',
    '1',
    '--upstream-queue',
    '0',
    '--body-buffer-bytes',
    '0',
  ]);
  // A large body is streamed: it holds the member's only connection while it trickles.
  const raw = openRaw(t, url);
  raw.socket.write(
    predictHead('/predict-secure', ['content-type: application/octet-stream', 'content-length: 100000']) +
      'x'.repeat(16),
  );
  await waitFor(() => arrivals.count === 1, 'the streamed upload to hold the connection');
  const busy = await fetch(`${url}/predict-secure`, { method: 'POST', body: 'next' });
  assert.equal(busy.headers.get('retry-after'), '1');
  await expectCodedError(busy, 503, 'GW_UPSTREAM_BUSY');
  raw.socket.destroy();
  await waitFor(
    async () => (await fetch(`${url}/predict-secure`, { method: 'POST', body: 'again' })).status === 200,
    'the member to take requests again',
  );
  assert.equal(metricSum(await readMetrics(url), 'mpg_gateway_upstream_ejections_total'), 0, 'no member was ejected');
});

// --- failure 3: header line 1001 ---

for (const fillers of [999, 1000, 1999]) {
  test(`x-privacy: secure after ${fillers} other header lines (node:http keeps 1000; host, connection and content-length follow it) goes to the secure upstream`, async (t) => {
    const publicUpstream = await startRecordingUpstream(t, 'public');
    const secureUpstream = await startRecordingUpstream(t, 'secure', { unix: true });
    const { url } = await startGateway(t, [
      '--public-upstream',
      publicUpstream.url,
      '--secure-upstream',
      secureUpstream.url,
      '--max-header-size',
      '32768',
    ]);
    const headers: Record<string, string> = {};
    for (let index = 0; index < fillers; index++) headers[`f${index}`] = '1';
    headers['x-privacy'] = 'secure';
    const response = await sendRaw(url, { path: '/predict-public', headers, body: 'payload' });
    assert.equal(response.statusCode, 200, response.body);
    assert.equal(response.headers['x-privacy-route'], 'secure');
    assert.equal(secureUpstream.received.length, 1);
    assert.equal(publicUpstream.received.length, 0, 'nothing reached the public upstream');
  });
}

// --- failure 5: Expect: 100-continue ---

test('Expect: 100-continue: the gateway answers 100, the body goes through, and the header is not forwarded', async (t) => {
  const upstream = await startRecordingUpstream(t, 'public');
  const { url } = await startGateway(t, ['--public-upstream', upstream.url]);
  const body = Buffer.alloc(64 * 1024, 7);
  const outcome = await new Promise<{ status: number; continued: boolean }>((resolve, reject) => {
    let continued = false;
    const outgoing = httpRequest(
      new URL('/predict-public', url),
      { method: 'POST', headers: { expect: '100-continue', 'content-length': body.length }, agent: false },
      (response) => {
        response.resume();
        response.on('end', () => resolve({ status: response.statusCode ?? 0, continued }));
      },
    );
    outgoing.on('continue', () => {
      continued = true;
      outgoing.end(body);
    });
    outgoing.on('error', reject);
  });
  assert.deepEqual(outcome, { status: 200, continued: true });
  assert.deepEqual(upstream.received[0]?.body, body);
  assert.equal(upstream.received[0]?.headers.expect, undefined);
});

test("curl's upload of a 2 MiB photo (it sends Expect: 100-continue over 1 MiB) is served", async (t) => {
  const upstream = await startRecordingUpstream(t, 'public');
  const { url } = await startGateway(t, ['--public-upstream', upstream.url]);
  const directory = await mkdtemp(join(tmpdir(), 'mpg-curl-'));
  t.after(() => rm(directory, { recursive: true, force: true }));
  const photo = join(directory, 'photo.jpg');
  await writeFile(photo, Buffer.alloc(2 * 1024 * 1024, 3));
  const output = await curl([
    '-sS',
    '-o',
    '/dev/null',
    '-w',
    '%{http_code}',
    '-H',
    'content-type: image/jpeg',
    '--data-binary',
    `@${photo}`,
    `${url}/predict-public`,
  ]);
  assert.equal(output, '200');
  assert.equal(upstream.received[0]?.body.length, 2 * 1024 * 1024);
});

function curl(args: string[]): Promise<string> {
  return new Promise((resolve, reject) =>
    execFile('curl', args, { maxBuffer: 1024 * 1024 }, (error, stdout, stderr) =>
      error ? reject(new Error(`curl failed: ${stderr || error.message}`)) : resolve(stdout),
    ),
  );
}

// --- failure 10 ---

test('/predict-secure/ and /predict-public/ (with a trailing slash) are the same routes', async (t) => {
  const publicUpstream = await startRecordingUpstream(t, 'public');
  const secureUpstream = await startRecordingUpstream(t, 'secure', { unix: true });
  const { url } = await startGateway(t, [
    '--public-upstream',
    publicUpstream.url,
    '--secure-upstream',
    secureUpstream.url,
  ]);
  for (const route of ['public', 'secure'] as const) {
    const response = await fetch(`${url}/predict-${route}/?topk=1`, { method: 'POST', body: route });
    assert.equal(response.status, 200);
    assert.equal(response.headers.get('x-privacy-route'), route);
  }
  assert.deepEqual(
    [publicUpstream.received.map((request) => request.path), secureUpstream.received.map((request) => request.path)],
    [['/predict?topk=1'], ['/predict?topk=1']],
  );
});

test('an absolute-form request target (POST http://host/predict-secure) is the same route', async (t) => {
  const secureUpstream = await startRecordingUpstream(t, 'secure', { unix: true });
  const { url } = await startGateway(t, ['--secure-upstream', secureUpstream.url]);
  const raw = openRaw(t, url);
  raw.socket.write(predictHead(`${url}/predict-secure?topk=2`, ['content-length: 6', 'connection: close']) + 'secret');
  const answer = await raw.text();
  assert.match(answer, /^HTTP\/1\.1 200 /);
  assert.match(answer, /\r\nx-privacy-route: secure\r\n/i);
  assert.deepEqual(
    secureUpstream.received.map((request) => [request.path, request.body.toString()]),
    [['/predict?topk=2', 'secret']],
  );
});

test('a header block over --max-header-size: 431 GW_HEADERS_TOO_LARGE as coded JSON with x-request-id', async (t) => {
  const upstream = await startRecordingUpstream(t, 'public');
  const { url } = await startGateway(t, ['--public-upstream', upstream.url, '--max-header-size', '1024']);
  const response = await sendRaw(url, {
    path: '/predict-public',
    headers: { 'x-filler': 'a'.repeat(2048) },
    body: 'x',
  });
  assert.equal(response.statusCode, 431);
  assert.match(String(response.headers['x-request-id']), /^[A-Za-z0-9._:-]+$/);
  assert.equal((JSON.parse(response.body) as { code: string }).code, 'GW_HEADERS_TOO_LARGE');
  assert.equal(upstream.received.length, 0);
});

for (const streamed of [false, true]) {
  test(`x-privacy sent only as a trailer is refused with 400 GW_PRIVACY_TRAILER${streamed ? ', the body streamed' : ''}; no upstream gets a whole request`, async (t) => {
    const publicUpstream = await startRecordingUpstream(t, 'public');
    const secureUpstream = await startRecordingUpstream(t, 'secure', { unix: true });
    const { url } = await startGateway(t, [
      '--public-upstream',
      publicUpstream.url,
      '--secure-upstream',
      secureUpstream.url,
      ...(streamed ? ['--body-buffer-bytes', '0'] : []),
    ]);
    const raw = openRaw(t, url);
    raw.socket.write(
      predictHead('/predict-public', [
        'content-type: application/octet-stream',
        'transfer-encoding: chunked',
        'trailer: x-privacy',
        'connection: close',
      ]) + '6\r\nsecret\r\n0\r\nx-privacy: secure\r\n\r\n',
    );
    const answer = await raw.text();
    assert.match(answer, /^HTTP\/1\.1 400 /);
    assert.equal(codeOf(answer), 'GW_PRIVACY_TRAILER');
    assert.equal(publicUpstream.received.length + secureUpstream.received.length, 0);
  });
}

test('a request pipelined behind a refused one is sent upstream only if its own answer is written', async (t) => {
  const upstream = await startRecordingUpstream(t, 'public');
  const arrivals = watchArrivals(upstream);
  const { url } = await startGateway(t, ['--public-upstream', upstream.url]);
  for (const refused of [
    predictHead('/predict-public', ['x-privacy: bogus', 'content-length: 2']) + 'hi',
    predictHead('/predict-public', ['x-privacy: bogus', 'content-length: 2', 'connection: close']) + 'hi',
    predictHead('/predict-public', ['content-type: ;;', 'content-length: 2']) + 'hi',
  ]) {
    const before = arrivals.count;
    const raw = openRaw(t, url);
    raw.socket.write(refused + ['POST /predict-public HTTP/1.0', 'content-length: 6', '', 'second'].join('\r\n'));
    const answers = (await raw.text()).match(/HTTP\/1\.[01] \d{3} /g) ?? [];
    assert.match(answers[0] ?? '', / 4\d\d $/, 'the refused request is answered 4xx');
    // A request sent now arrives after anything the gateway would have forwarded before it.
    assert.equal((await fetch(`${url}/predict-public`, { method: 'POST', body: 'third' })).status, 200);
    assert.equal(
      arrivals.count - before - 1,
      answers.length - 1,
      `answers ${answers.join(', ')}: the pipelined request reached the member only if it was answered`,
    );
  }
});

test(
  'a body far over --body-limit: curl and Node fetch read the 413 from `mpg gateway`, not a broken pipe',
  { timeout: 120_000 },
  async (t) => {
    const upstream = await startRecordingUpstream(t, 'public');
    // Its own process, as users run it: the client's writes race the gateway's close for real. (The
    // upstream shares this process, which is busy sending: health checks may wait.)
    const mpg = startMpg(t, [
      'gateway',
      '--port',
      '0',
      '--log-level',
      'warn',
      '--public-upstream',
      upstream.url,
      '--body-limit',
      '1048576',
      '--health-timeout-ms',
      '30000',
    ]);
    const [, url] = await mpg.waitForOutput(/gateway listening on (http:\/\/\S+)/);
    assert.ok(url);
    await waitUntilOk(`${url}/readyz`);
    const directory = await mkdtemp(join(tmpdir(), 'mpg-large-'));
    t.after(() => rm(directory, { recursive: true, force: true }));
    const file = join(directory, 'large.bin');
    const body = Buffer.alloc(50 * 1024 * 1024, 1);
    await writeFile(file, body);
    // Without Expect (curl would otherwise wait to be told to send): the body is already on its way.
    for (let attempt = 0; attempt < 3; attempt++) {
      const output = await curl([
        '-sS',
        '-H',
        'Expect:',
        '-H',
        'content-type: application/octet-stream',
        '--data-binary',
        `@${file}`,
        `${url}/predict-public`,
      ]);
      assert.equal((JSON.parse(output) as { code: string }).code, 'GW_BODY_TOO_LARGE');
    }
    const response = await fetch(`${url}/predict-public`, { method: 'POST', body });
    await expectCodedError(response, 413, 'GW_BODY_TOO_LARGE');
    // With Expect: 100-continue the answer comes before the body is sent at all.
    const expecting = await curl([
      '-sS',
      '-H',
      'content-type: application/octet-stream',
      '--data-binary',
      `@${file}`,
      `${url}/predict-public`,
    ]);
    assert.equal((JSON.parse(expecting) as { code: string }).code, 'GW_BODY_TOO_LARGE');
    assert.equal(upstream.received.length, 0);
  },
);
