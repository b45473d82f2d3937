// A secure request's body, query string, API key, authorization, cookies and forwarded-for never
// reach a log line. The gateway logs at trace level into an in-memory JSON-line sink; every
// request carries unique markers in each of those places, and no marker may appear in the output.
// The same log must hold each request's id and 'request done' line, so that a gateway that simply
// stopped logging cannot pass.
import assert from 'node:assert/strict';
import { createHash, randomUUID } from 'node:crypto';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import { parsePolicy } from '../../gateway/index.js';
import { startGateway, startRecordingUpstream, waitFor } from '../helpers/gateway.js';
import type { RecordingUpstream } from '../helpers/gateway.js';

const sha256 = (key: string): string => createHash('sha256').update(key).digest('hex');

interface LogLine {
  level: number;
  msg?: string;
  reqId?: string;
  [field: string]: unknown;
}

/** A JSON-line sink for the gateway's pino logger, kept in memory. */
class LogCapture extends Writable {
  text = '';

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: () => void): void {
    this.text += chunk.toString();
    callback();
  }

  lines(): LogLine[] {
    return this.text
      .split('\n')
      .filter((line) => line !== '')
      .map((line) => JSON.parse(line) as LogLine);
  }

  /** Resolves once the gateway has written the request's 'request done' line. */
  async requestDone(requestId: string): Promise<LogLine> {
    await waitFor(() => this.#done(requestId) !== undefined, `the 'request done' line of ${requestId}`);
    return this.#done(requestId)!;
  }

  #done(requestId: string): LogLine | undefined {
    return this.lines().find((line) => line.reqId === requestId && line.msg === 'request done');
  }
}

/** Unique strings to hide in every place a secure request must keep out of the logs. */
function markers(label: string) {
  // Distinct from each other and from anything the gateway could produce by itself.
  const unique = (what: string) => `mk${what}${randomUUID().replaceAll('-', '')}`;
  const octet = () => 1 + Math.floor(Math.random() * 253);
  return {
    label,
    body: unique('body'),
    query: unique('query'),
    apiKey: unique('apikey'),
    authorization: unique('auth'),
    cookie: unique('cookie'),
    // What a load balancer puts there: the client's address, and whatever the client claimed.
    forwardedForAddress: `198.51.${octet()}.${octet()}`,
    forwardedFor: unique('xff'),
  };
}
type Markers = ReturnType<typeof markers>;

function secretsOf(sent: Markers): string[] {
  return [
    sent.body,
    sent.query,
    sent.apiKey,
    sent.authorization,
    sent.cookie,
    sent.forwardedForAddress,
    sent.forwardedFor,
  ];
}

async function send(
  url: string,
  path: string,
  sent: Markers,
  headers: Record<string, string> = {},
): Promise<{ requestId: string; status: number }> {
  const requestId = `redaction-${sent.label}-${randomUUID()}`;
  const response = await fetch(`${url}${path}?topk=5&patient=${sent.query}`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      'x-request-id': requestId,
      'x-api-key': sent.apiKey,
      authorization: `Bearer ${sent.authorization}`,
      cookie: `session=${sent.cookie}; theme=dark`,
      'x-forwarded-for': `${sent.forwardedForAddress}, ${sent.forwardedFor}`,
      ...headers,
    },
    body: JSON.stringify({ images: [Buffer.from(sent.body).toString('base64'), sent.body], topk: 5 }),
  });
  await response.arrayBuffer();
  return { requestId, status: response.status };
}

function assertNotLogged(capture: LogCapture, secrets: readonly string[]): void {
  for (const secret of secrets) {
    const line = capture.text.split('\n').find((row) => row.includes(secret));
    assert.equal(line, undefined, `${secret} reached the log: ${line}`);
  }
}

interface RedactionSetup {
  url: string;
  capture: LogCapture;
  publicUpstream: RecordingUpstream;
  secureUpstream: RecordingUpstream;
}

/** One gateway logging at trace level into `capture`, with one tenant per marker set. */
async function startLoggedGateway(
  t: TestContext,
  tenants: { sent: Markers; name: string; privacy: 'secure-only' | 'public-allowed' }[],
  { secureOnlyOnPublicRoute = 'upgrade' } = {},
): Promise<RedactionSetup> {
  const capture = new LogCapture();
  const publicUpstream = await startRecordingUpstream(t, 'public');
  const secureUpstream = await startRecordingUpstream(t, 'secure', { unix: true });
  const policy = parsePolicy(
    JSON.stringify({
      secureOnlyOnPublicRoute,
      tenants: tenants.map(({ sent, name, privacy }) => ({ name, privacy, apiKeySha256: [sha256(sent.apiKey)] })),
    }),
    'policy.json',
  );
  const { url } = await startGateway(
    t,
    // Trusting X-Forwarded-For makes the gateway read it as the client's address: a log line that
    // named the client would now carry a marker.
    [
      '--public-upstream',
      publicUpstream.url,
      '--secure-upstream',
      secureUpstream.url,
      '--trust-proxy',
      '--headers-timeout-ms',
      '300',
    ],
    { policy, dependencies: { logger: { level: 'trace', stream: capture } } },
  );
  return { url, capture, publicUpstream, secureUpstream };
}

function assertRequestDoneIsSecure(done: LogLine, status: number): void {
  assert.equal(done.route, 'secure');
  assert.equal(done.status, status);
  // Not even the tenant's name is logged for a secure request.
  assert.equal(done.tenant, undefined);
}

test('secure requests, by path, upgraded by header and upgraded by tenant, log none of body, query, API key, authorization, cookie or forwarded-for', async (t) => {
  const direct = markers('direct');
  const byHeader = markers('by-header');
  const byTenant = markers('by-tenant');
  const { url, capture, publicUpstream, secureUpstream } = await startLoggedGateway(t, [
    { sent: direct, name: 'direct', privacy: 'public-allowed' },
    { sent: byHeader, name: 'by-header', privacy: 'public-allowed' },
    { sent: byTenant, name: 'by-tenant', privacy: 'secure-only' },
  ]);
  const served = [
    { sent: direct, ...(await send(url, '/predict-secure', direct)) },
    { sent: byHeader, ...(await send(url, '/predict-public', byHeader, { 'x-privacy': 'secure' })) },
    { sent: byTenant, ...(await send(url, '/predict-public', byTenant)) },
  ];
  for (const { status } of served) assert.equal(status, 200);
  assert.equal(publicUpstream.received.length, 0);
  // The markers did reach the upstream: the gateway forwards them, it only must not log them.
  assert.ok(secureUpstream.received.some((request) => request.body.toString().includes(direct.body)));
  for (const { requestId } of served) {
    const done = await capture.requestDone(requestId);
    assertRequestDoneIsSecure(done, 200);
    assert.equal(done.member, secureUpstream.url);
  }
  assertNotLogged(
    capture,
    served.flatMap(({ sent }) => secretsOf(sent)),
  );
});

for (const [failure, behaviour, status] of [
  ['resets the connection', { kind: 'reset' }, 502],
  ['never answers', { kind: 'hang' }, 504],
] as const) {
  test(`a secure request whose upstream ${failure} (${status}) logs its failure but none of its body, query, API key, authorization, cookie or forwarded-for`, async (t) => {
    const failing = markers('failing');
    const upgraded = markers('upgraded');
    const { url, capture, secureUpstream } = await startLoggedGateway(t, [
      { sent: failing, name: 'failing', privacy: 'public-allowed' },
      { sent: upgraded, name: 'upgraded', privacy: 'secure-only' },
    ]);
    secureUpstream.behaviour = behaviour;
    const onPath = await send(url, '/predict-secure', failing);
    assert.equal(onPath.status, status);
    // An upgraded request meets the same failure, or 503 while the member is out of rotation.
    const afterward = await send(url, '/predict-public', upgraded);
    assert.ok(afterward.status === status || afterward.status === 503, `upgraded request answered ${afterward.status}`);
    assertRequestDoneIsSecure(await capture.requestDone(onPath.requestId), status);
    assertRequestDoneIsSecure(await capture.requestDone(afterward.requestId), afterward.status);
    // The error path wrote warnings of its own, so it was exercised, not skipped.
    const warnings = capture
      .lines()
      .filter((line) => line.reqId === onPath.requestId && line.level >= 40 && line.msg !== 'request done');
    assert.ok(warnings.length > 0, 'no warning was logged for the failed upstream');
    assertNotLogged(capture, [...secretsOf(failing), ...secretsOf(upgraded)]);
  });
}

test('a secure request refused for an unknown API key logs none of its body, query, API key, authorization, cookie or forwarded-for', async (t) => {
  const unknown = markers('unknown');
  const { url, capture, secureUpstream } = await startLoggedGateway(t, []);
  const { requestId, status } = await send(url, '/predict-secure', unknown);
  assert.equal(status, 401);
  assert.equal(secureUpstream.received.length, 0);
  assertRequestDoneIsSecure(await capture.requestDone(requestId), 401);
  assertNotLogged(capture, secretsOf(unknown));
});

test('a secure-only tenant rejected on /predict-public logs none of its body, query, API key, authorization, cookie or forwarded-for', async (t) => {
  const refused = markers('refused');
  const { url, capture, publicUpstream, secureUpstream } = await startLoggedGateway(
    t,
    [{ sent: refused, name: 'refused', privacy: 'secure-only' }],
    {
      secureOnlyOnPublicRoute: 'reject',
    },
  );
  const { requestId, status } = await send(url, '/predict-public', refused);
  assert.equal(status, 403);
  assert.equal(publicUpstream.received.length + secureUpstream.received.length, 0);
  const done = await capture.requestDone(requestId);
  assert.equal(done.route, 'secure');
  assert.equal(done.status, 403);
  assertNotLogged(capture, secretsOf(refused));
});

test('a public request logs its route, status and tenant, never its body or API key', async (t) => {
  const shop = markers('shop');
  const { url, capture, publicUpstream } = await startLoggedGateway(t, [
    { sent: shop, name: 'shop', privacy: 'public-allowed' },
  ]);
  const { requestId, status } = await send(url, '/predict-public', shop);
  assert.equal(status, 200);
  assert.equal(publicUpstream.received.length, 1);
  const done = await capture.requestDone(requestId);
  assert.equal(done.route, 'public');
  assert.equal(done.status, 200);
  assert.equal(done.tenant, 'shop');
  assert.equal(done.member, publicUpstream.url);
  assertNotLogged(capture, [shop.body, shop.apiKey]);
  // Today the public line carries no query, credentials or addresses either; should that change,
  // this is where it shows.
  assertNotLogged(capture, [shop.query, shop.authorization, shop.cookie, shop.forwardedForAddress, shop.forwardedFor]);
});
