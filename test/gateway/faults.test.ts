// Upstream faults: a secure upstream killed under mixed load, a missing secure route, members that
// hang, reset, trickle their body, refuse connections or say they are not ready. Whatever fails, a
// secure request is never answered by (nor sent to) a public upstream.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { RecordingUpstream } from '../helpers/gateway.js';
import {
  expectCodedError,
  metricValue,
  readMetrics,
  startGateway,
  startRecordingUpstream,
  waitFor,
} from '../helpers/gateway.js';

type Route = 'public' | 'secure';

const predict = (gatewayUrl: string, route: Route, marker: string) =>
  fetch(`${gatewayUrl}/predict-${route}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ marker }),
  });

const markersReceivedBy = (upstream: RecordingUpstream): string[] =>
  upstream.received.map((request) => (JSON.parse(request.body.toString()) as { marker: string }).marker);

/** Counts the /predict requests an upstream's current server has seen, including unfinished ones. */
function countPredictRequests(upstream: RecordingUpstream): { count: number } {
  const seen = { count: 0 };
  upstream.server.on('request', (request: { url?: string }) => {
    if (request.url?.startsWith('/predict')) seen.count++;
  });
  return seen;
}

async function readyz(
  gatewayUrl: string,
): Promise<{ status: number; body: { code?: string; routes: Record<Route, { members: number; healthy: number }> } }> {
  const response = await fetch(`${gatewayUrl}/readyz`);
  return {
    status: response.status,
    body: (await response.json()) as { code?: string; routes: Record<Route, { members: number; healthy: number }> },
  };
}

/** A TCP port nothing listens on: bound once, then released. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

interface Outcome {
  route: Route;
  marker: string;
  status: number;
  code: string | undefined;
  /** Who answered, by the JSON body and by the x-upstream header of a recording upstream. */
  answeredBy: string | undefined;
  xUpstream: string | null;
  startedIn: Phase;
  finishedIn: Phase;
}
type Phase = 'up' | 'killing' | 'down';

test('no secure member configured: secure requests get 503 GW_NO_SECURE_UPSTREAM and reach no upstream', async (t) => {
  const publicUpstream = await startRecordingUpstream(t, 'public');
  const { url } = await startGateway(t, ['--public-upstream', publicUpstream.url, '--headers-timeout-ms', '5000']);
  for (let index = 0; index < 5; index++) {
    const response = await predict(url, 'secure', `secure-${index}`);
    assert.equal(response.headers.get('x-privacy-route'), 'secure');
    assert.equal(response.headers.get('retry-after'), '1');
    const body = await expectCodedError(response, 503, 'GW_NO_SECURE_UPSTREAM');
    assert.match(body.message, /none is configured/);
  }
  // The header and the public path asking for secure are refused the same way.
  const upgraded = await fetch(`${url}/predict-public`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-privacy': 'secure' },
    body: '{"marker":"upgraded"}',
  });
  await expectCodedError(upgraded, 503, 'GW_NO_SECURE_UPSTREAM');
  assert.equal(publicUpstream.received.length, 0);
  // The public route still works.
  const response = await predict(url, 'public', 'public-0');
  assert.equal(response.status, 200);
  assert.deepEqual(markersReceivedBy(publicUpstream), ['public-0']);
});

test('a member that accepts and never answers: 504 GW_UPSTREAM_TIMEOUT, ejected, the next requests go to the other member', async (t) => {
  const hung = await startRecordingUpstream(t, 'hung');
  const healthy = await startRecordingUpstream(t, 'healthy');
  hung.behaviour = { kind: 'hang' };
  // Health checks every second: the ejected member sits out several seconds, long past this test's requests.
  const { url } = await startGateway(t, [
    '--public-upstream',
    hung.url,
    '--public-upstream',
    healthy.url,
    '--headers-timeout-ms',
    '300',
    '--health-interval-ms',
    '1000',
  ]);
  assert.deepEqual((await readyz(url)).body.routes.public, { members: 2, healthy: 2 });

  let timedOut: Response | undefined;
  for (let attempt = 0; attempt < 4 && !timedOut; attempt++) {
    const response = await predict(url, 'public', `first-${attempt}`);
    if (response.status === 504) timedOut = response;
    else assert.equal(((await response.json()) as { upstream: string }).upstream, 'healthy');
  }
  assert.ok(timedOut, 'a request went to the hung member');
  await expectCodedError(timedOut, 504, 'GW_UPSTREAM_TIMEOUT');
  assert.equal(hung.received.length, 1);

  const ready = await readyz(url);
  assert.equal(ready.status, 200, 'the route still has a healthy member');
  assert.deepEqual(ready.body.routes.public, { members: 2, healthy: 1 });
  const metrics = await readMetrics(url);
  assert.equal(metricValue(metrics, 'mpg_gateway_upstream_up', { route: 'public', member: hung.url }), 0);
  assert.equal(metricValue(metrics, 'mpg_gateway_upstream_ejections_total', { route: 'public', member: hung.url }), 1);
  assert.equal(metricValue(metrics, 'mpg_gateway_upstream_up', { route: 'public', member: healthy.url }), 1);

  const before = healthy.received.length;
  for (let index = 0; index < 10; index++) {
    const response = await predict(url, 'public', `after-${index}`);
    assert.equal(response.status, 200);
    assert.equal(((await response.json()) as { upstream: string }).upstream, 'healthy');
  }
  assert.equal(healthy.received.length, before + 10);
  assert.equal(hung.received.length, 1, 'the ejected member got nothing more');
});

test('the only secure member hangs: 504, then 503 GW_NO_SECURE_UPSTREAM at once, never the public upstream', async (t) => {
  const publicUpstream = await startRecordingUpstream(t, 'public');
  const hung = await startRecordingUpstream(t, 'secure', { unix: true });
  hung.behaviour = { kind: 'hang' };
  const { url } = await startGateway(t, [
    '--public-upstream',
    publicUpstream.url,
    '--secure-upstream',
    hung.url,
    '--headers-timeout-ms',
    '300',
    '--health-interval-ms',
    '1000',
  ]);
  await expectCodedError(await predict(url, 'secure', 'secure-0'), 504, 'GW_UPSTREAM_TIMEOUT');
  const ready = await readyz(url);
  assert.equal(ready.status, 503);
  assert.equal(ready.body.code, 'GW_NOT_READY');
  assert.deepEqual(ready.body.routes.secure, { members: 1, healthy: 0 });
  await expectCodedError(await predict(url, 'secure', 'secure-1'), 503, 'GW_NO_SECURE_UPSTREAM');
  assert.deepEqual(markersReceivedBy(hung), ['secure-0']);
  assert.equal(publicUpstream.received.length, 0);
});

test("members whose address refuses connections never become healthy: 503 with each route's code", async (t) => {
  const directory = await mkdtemp(join(tmpdir(), 'mpg-missing-'));
  t.after(() => rm(directory, { recursive: true, force: true }));
  const publicUrl = `http://127.0.0.1:${await closedPort()}`;
  const secureUrl = `unix:${join(directory, 'nobody.sock')}`;
  const { url } = await startGateway(t, [
    '--public-upstream',
    publicUrl,
    '--secure-upstream',
    secureUrl,
    '--connect-timeout-ms',
    '5000',
    '--headers-timeout-ms',
    '5000',
  ]);
  const publicAnswer = await predict(url, 'public', 'public-0');
  assert.equal(publicAnswer.headers.get('x-privacy-route'), 'public');
  assert.match((await expectCodedError(publicAnswer, 503, 'GW_NO_HEALTHY_UPSTREAM')).message, /none of 1 is healthy/);
  const secureAnswer = await predict(url, 'secure', 'secure-0');
  assert.equal(secureAnswer.headers.get('x-privacy-route'), 'secure');
  assert.match((await expectCodedError(secureAnswer, 503, 'GW_NO_SECURE_UPSTREAM')).message, /none of 1 is healthy/);

  const ready = await readyz(url);
  assert.equal(ready.status, 503);
  assert.equal(ready.body.code, 'GW_NOT_READY');
  assert.deepEqual(ready.body.routes, { public: { members: 1, healthy: 0 }, secure: { members: 1, healthy: 0 } });
  const metrics = await readMetrics(url);
  assert.equal(metricValue(metrics, 'mpg_gateway_upstream_up', { route: 'public', member: publicUrl }), 0);
  assert.equal(metricValue(metrics, 'mpg_gateway_upstream_up', { route: 'secure', member: secureUrl }), 0);
  // Refused before dispatch: no member was tried, so none was ejected.
  assert.equal(
    metricValue(metrics, 'mpg_gateway_upstream_ejections_total', { route: 'public', member: publicUrl }),
    undefined,
  );
});

test('a member whose /readyz answers 503 is not used until it is ready', async (t) => {
  const notReady = await startRecordingUpstream(t, 'not-ready');
  const ready = await startRecordingUpstream(t, 'ready');
  const secureNotReady = await startRecordingUpstream(t, 'secure', { unix: true });
  notReady.ready = false;
  secureNotReady.ready = false;
  const seenByNotReady = countPredictRequests(notReady);
  const { url } = await startGateway(t, [
    '--public-upstream',
    notReady.url,
    '--public-upstream',
    ready.url,
    '--secure-upstream',
    secureNotReady.url,
  ]);
  assert.deepEqual((await readyz(url)).body.routes, {
    public: { members: 2, healthy: 1 },
    secure: { members: 1, healthy: 0 },
  });

  for (let index = 0; index < 10; index++) {
    const response = await predict(url, 'public', `public-${index}`);
    assert.equal(response.status, 200);
    assert.equal(((await response.json()) as { upstream: string }).upstream, 'ready');
  }
  await expectCodedError(await predict(url, 'secure', 'secure-0'), 503, 'GW_NO_SECURE_UPSTREAM');
  assert.equal(seenByNotReady.count, 0);
  assert.equal(secureNotReady.received.length, 0);

  // Ready again: both come into rotation without a restart.
  notReady.ready = true;
  secureNotReady.ready = true;
  await waitFor(
    async () => (await predict(url, 'secure', 'secure-1')).status === 200,
    'the secure member to become ready',
  );
  await waitFor(async () => {
    await predict(url, 'public', 'public-rotation');
    return notReady.received.length > 0;
  }, 'the public member to become ready');
});

test('kill the secure upstream mid-run under mixed load: public unaffected, secure fails closed, then recovers by itself', async (t) => {
  const publicUpstream = await startRecordingUpstream(t, 'public');
  const secureUpstream = await startRecordingUpstream(t, 'secure', { unix: true });
  const { url } = await startGateway(t, [
    '--public-upstream',
    publicUpstream.url,
    '--secure-upstream',
    secureUpstream.url,
    '--headers-timeout-ms',
    '5000',
  ]);
  const secureMember = { route: 'secure', member: secureUpstream.url };
  assert.equal(metricValue(await readMetrics(url), 'mpg_gateway_upstream_up', secureMember), 1);

  const TOTAL = 200;
  const CONCURRENCY = 8;
  // The secure upstream dies while its 50th request is in flight: that request is cut off, and
  // everything dispatched after it finds nothing listening.
  const KILL_AT = 50;
  const run = randomUUID();
  let phase: Phase = 'up';
  let killed: Promise<void> | undefined;
  let secureSeen = 0;
  secureUpstream.server.on('request', (request: { url?: string }) => {
    if (!request.url?.startsWith('/predict') || ++secureSeen !== KILL_AT) return;
    phase = 'killing';
    killed = secureUpstream.close().then(() => {
      phase = 'down';
    });
  });

  const outcomes: Outcome[] = [];
  let next = 0;
  const worker = async () => {
    while (next < TOTAL) {
      const index = next++;
      const route: Route = index % 2 === 0 ? 'public' : 'secure';
      const marker = `${route}-${index}-${run}`;
      const startedIn = phase;
      const response = await predict(url, route, marker);
      const body = (await response.json()) as { upstream?: string; code?: string };
      outcomes.push({
        route,
        marker,
        status: response.status,
        code: body.code,
        answeredBy: body.upstream,
        xUpstream: response.headers.get('x-upstream'),
        startedIn,
        finishedIn: phase,
      });
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  assert.ok(killed, 'the secure upstream was killed during the run');
  await killed;
  assert.equal(outcomes.length, TOTAL);

  const publicOutcomes = outcomes.filter((outcome) => outcome.route === 'public');
  const secureOutcomes = outcomes.filter((outcome) => outcome.route === 'secure');
  for (const outcome of publicOutcomes) {
    assert.equal(outcome.status, 200, `public request ${outcome.marker} answered ${outcome.status} ${outcome.code}`);
    assert.equal(outcome.answeredBy, 'public');
    assert.equal(outcome.xUpstream, 'public');
  }
  assert.deepEqual(markersReceivedBy(publicUpstream).sort(), publicOutcomes.map((outcome) => outcome.marker).sort());

  const secureReceived = new Set(markersReceivedBy(secureUpstream));
  for (const outcome of secureOutcomes) {
    assert.notEqual(
      outcome.answeredBy,
      'public',
      `secure request ${outcome.marker} was answered by the public upstream`,
    );
    assert.notEqual(
      outcome.xUpstream,
      'public',
      `secure request ${outcome.marker} was answered by the public upstream`,
    );
    if (outcome.status === 200) {
      assert.notEqual(outcome.startedIn, 'down', `secure request ${outcome.marker} succeeded with its upstream down`);
      assert.equal(outcome.answeredBy, 'secure');
      assert.equal(outcome.xUpstream, 'secure');
      assert.ok(secureReceived.has(outcome.marker));
    } else {
      assert.notEqual(
        outcome.finishedIn,
        'up',
        `secure request ${outcome.marker} failed (${outcome.status} ${outcome.code}) before the kill`,
      );
      assert.ok(
        (outcome.status === 502 && outcome.code === 'GW_UPSTREAM_CONNECTION_FAILED') ||
          (outcome.status === 503 && outcome.code === 'GW_NO_SECURE_UPSTREAM'),
        `secure request ${outcome.marker} answered ${outcome.status} ${outcome.code}`,
      );
    }
  }
  const connectionFailures = secureOutcomes.filter((outcome) => outcome.status === 502).length;
  const refusedAtOnce = secureOutcomes.filter((outcome) => outcome.status === 503).length;
  assert.ok(
    secureOutcomes.filter((outcome) => outcome.status === 200).length >= KILL_AT - CONCURRENCY,
    'secure requests succeeded before the kill',
  );
  assert.ok(connectionFailures >= 1, 'the request in flight at the kill failed with 502');
  assert.ok(refusedAtOnce >= 1, 'after the ejection secure requests were refused with 503 at once');
  assert.ok(
    secureOutcomes.some((outcome) => outcome.startedIn === 'down'),
    'secure requests were sent with the upstream down',
  );

  const down = await readMetrics(url);
  assert.equal(metricValue(down, 'mpg_gateway_upstream_up', secureMember), 0);
  // Each 502 ejected the member once more; health checks eject nothing.
  assert.equal(metricValue(down, 'mpg_gateway_upstream_ejections_total', secureMember), connectionFailures);
  assert.equal(metricValue(down, 'mpg_gateway_upstream_up', { route: 'public', member: publicUpstream.url }), 1);
  assert.equal((await readyz(url)).status, 503);

  // Back at the same socket: the health checks bring the member back without any help.
  await secureUpstream.reopen();
  const recoveryMarkers: string[] = [];
  await waitFor(async () => {
    const marker = `secure-recovery-${recoveryMarkers.length}-${run}`;
    recoveryMarkers.push(marker);
    const response = await predict(url, 'secure', marker);
    const body = (await response.json()) as { upstream?: string; code?: string };
    if (response.status === 200) {
      assert.equal(body.upstream, 'secure');
      return true;
    }
    assert.equal(response.status, 503, `while recovering: ${response.status} ${body.code}`);
    assert.equal(body.code, 'GW_NO_SECURE_UPSTREAM');
    return false;
  }, 'the secure route to recover');
  const up = await readMetrics(url);
  assert.equal(metricValue(up, 'mpg_gateway_upstream_up', secureMember), 1);
  assert.equal((await readyz(url)).status, 200);

  // Nothing secure, from the run or the recovery, ever reached the public upstream.
  const publicReceived = new Set(markersReceivedBy(publicUpstream));
  for (const marker of [...secureOutcomes.map((outcome) => outcome.marker), ...recoveryMarkers]) {
    assert.ok(!publicReceived.has(marker), `secure marker ${marker} reached the public upstream`);
  }
  assert.ok(publicUpstream.received.every((request) => request.headers['x-privacy-route'] === 'public'));
});

test('an upstream that resets the connection: 502 GW_UPSTREAM_CONNECTION_FAILED on either route', async (t) => {
  const publicUpstream = await startRecordingUpstream(t, 'public');
  const secureUpstream = await startRecordingUpstream(t, 'secure', { unix: true });
  publicUpstream.behaviour = { kind: 'reset' };
  secureUpstream.behaviour = { kind: 'reset' };
  const { url } = await startGateway(t, [
    '--public-upstream',
    publicUpstream.url,
    '--secure-upstream',
    secureUpstream.url,
  ]);
  for (const route of ['public', 'secure'] as const) {
    const response = await predict(url, route, `${route}-reset`);
    assert.equal(response.headers.get('x-privacy-route'), route);
    await expectCodedError(response, 502, 'GW_UPSTREAM_CONNECTION_FAILED');
  }
  assert.deepEqual(markersReceivedBy(publicUpstream), ['public-reset']);
  assert.deepEqual(markersReceivedBy(secureUpstream), ['secure-reset']);
  const metrics = await readMetrics(url);
  assert.equal(
    metricValue(metrics, 'mpg_gateway_upstream_ejections_total', { route: 'public', member: publicUpstream.url }),
    1,
  );
  assert.equal(
    metricValue(metrics, 'mpg_gateway_upstream_ejections_total', { route: 'secure', member: secureUpstream.url }),
    1,
  );
  assert.equal(
    metricValue(metrics, 'mpg_gateway_errors_total', { route: 'secure', code: 'GW_UPSTREAM_CONNECTION_FAILED' }),
    1,
  );

  // Once it answers again, the health checks bring it back.
  publicUpstream.behaviour = { kind: 'answer' };
  await waitFor(
    async () => (await predict(url, 'public', 'public-again')).status === 200,
    'the public member to return',
  );
});

test('a member stays usable after the upstream closes its idle keep-alive connections', async (t) => {
  const publicUpstream = await startRecordingUpstream(t, 'public');
  // Idle keep-alive connections do not last: node:http drops them after 5 s by default and says so
  // in whole seconds (Keep-Alive: timeout=5); undici closes an idle connection itself 2 s before
  // the announced time. Here they go after about a second of idleness.
  publicUpstream.server.keepAliveTimeout = 3_000;
  publicUpstream.behaviour = { kind: 'delay', delayMs: 50 };
  const { url } = await startGateway(t, ['--public-upstream', publicUpstream.url]);
  // A burst opens several connections to the member...
  const burst = await Promise.all(Array.from({ length: 4 }, (_, index) => predict(url, 'public', `burst-${index}`)));
  assert.deepEqual(
    burst.map((response) => response.status),
    [200, 200, 200, 200],
  );
  const connections = () =>
    new Promise<number>((resolve, reject) =>
      publicUpstream.server.getConnections((error, count) => (error ? reject(error) : resolve(count))),
    );
  const opened = await connections();
  assert.ok(opened >= 2, `the burst opened connections beside the health checks' one: ${opened}`);
  // ...which the upstream closes once idle; only the health checks' connection stays busy.
  await waitFor(async () => (await connections()) <= 1, 'the upstream to close the idle connections');
  publicUpstream.behaviour = { kind: 'answer' };
  for (let index = 0; index < 3; index++) {
    const response = await predict(url, 'public', `after-idle-${index}`);
    const body = (await response.json()) as { upstream?: string; code?: string };
    assert.equal(response.status, 200, `after the idle connections closed: ${response.status} ${body.code}`);
  }
  assert.equal((await readyz(url)).status, 200);
});

test('a body that stalls past --body-timeout-ms: the response is cut off, and the gateway serves the next request', async (t) => {
  const publicUpstream = await startRecordingUpstream(t, 'public');
  // undici checks its headers and body timeouts on a clock that ticks about every 500 ms, so a
  // 150 ms body timeout fires within about a second; the pause between chunks must be longer.
  // (node:http sends the status line with the first chunk.)
  publicUpstream.behaviour = { kind: 'slow-body', delayMs: 2_000, chunks: 3 };
  const { url } = await startGateway(t, ['--public-upstream', publicUpstream.url, '--body-timeout-ms', '150']);
  const response = await predict(url, 'public', 'slow');
  // The status line was already relayed; the only way left to signal the failure is to cut the body.
  assert.equal(response.status, 200);
  const relayed = await response.text().then(
    (text) => text,
    () => undefined,
  );
  if (relayed !== undefined) assert.ok(relayed.length < 3, `the body was relayed whole: ${JSON.stringify(relayed)}`);

  publicUpstream.behaviour = { kind: 'answer' };
  // A body timeout does not eject the member: the very next request is served.
  const next = await predict(url, 'public', 'next');
  assert.equal(next.status, 200);
  assert.equal(((await next.json()) as { upstream: string }).upstream, 'public');
  const metrics = await readMetrics(url);
  assert.equal(
    metricValue(metrics, 'mpg_gateway_upstream_ejections_total', { route: 'public', member: publicUpstream.url }),
    undefined,
  );
});

test('a member whose every connection is busy with slow requests stays in rotation: health checks have their own connection', async (t) => {
  const upstream = await startRecordingUpstream(t, 'busy');
  const { url, gateway } = await startGateway(t, [
    '--public-upstream',
    upstream.url,
    '--connections',
    '1',
    '--health-timeout-ms',
    '200',
  ]);
  upstream.behaviour = { kind: 'delay', delayMs: 1_500 };
  const slow = [
    fetch(`${url}/predict-public`, { method: 'POST', body: '{}' }),
    fetch(`${url}/predict-public`, { method: 'POST', body: '{}' }),
  ];
  // While both requests hold (or queue for) the member's only connection, several health checks run.
  await waitFor(() => upstream.received.length >= 1, 'the first slow request to reach the upstream');
  const member = gateway.groups.public.members[0]!;
  for (let check = 0; check < 10; check++) {
    assert.equal(member.healthy, true, 'the busy member is still healthy');
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  for (const response of await Promise.all(slow)) assert.equal(response.status, 200);
});
