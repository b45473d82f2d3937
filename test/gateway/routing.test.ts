import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createServer } from 'node:http';
import type { OutgoingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import { parsePolicy } from '../../gateway/index.js';
import { expectCodedError, sendRaw, startGateway, startRecordingUpstream, waitFor } from '../helpers/gateway.js';

test('each path goes to its route, body and content type untouched, with x-privacy-route and x-request-id', async (t) => {
  const publicUpstream = await startRecordingUpstream(t, 'public');
  const secureUpstream = await startRecordingUpstream(t, 'secure', { unix: true });
  const { url } = await startGateway(t, [
    '--public-upstream',
    publicUpstream.url,
    '--secure-upstream',
    secureUpstream.url,
  ]);
  const body = Buffer.from([0xff, 0xd8, 0xff, 0x00, 0x01, 0x02]);
  for (const [path, upstream, route] of [
    ['/predict-public', publicUpstream, 'public'],
    ['/predict-secure', secureUpstream, 'secure'],
  ] as const) {
    const response = await fetch(`${url}${path}?topk=3`, {
      method: 'POST',
      headers: { 'content-type': 'image/jpeg', 'x-request-id': `test-${route}` },
      body,
    });
    assert.equal(response.status, 200);
    assert.equal(response.headers.get('x-privacy-route'), route);
    assert.equal(response.headers.get('x-request-id'), `test-${route}`);
    assert.deepEqual(await response.json(), { upstream: upstream.name, path: '/predict?topk=3' });
    const received = upstream.received.at(-1)!;
    assert.equal(received.method, 'POST');
    assert.equal(received.path, '/predict?topk=3');
    assert.equal(received.headers['content-type'], 'image/jpeg');
    assert.deepEqual(received.body, body);
    assert.equal(received.headers['x-request-id'], `test-${route}`);
  }
  assert.equal(publicUpstream.received.length, 1);
  assert.equal(secureUpstream.received.length, 1);
});

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

async function startPair(t: TestContext, extraFlags: string[] = []) {
  const publicUpstream = await startRecordingUpstream(t, 'public');
  const secureUpstream = await startRecordingUpstream(t, 'secure', { unix: true });
  const running = await startGateway(t, [
    '--public-upstream',
    publicUpstream.url,
    '--secure-upstream',
    secureUpstream.url,
    ...extraFlags,
  ]);
  return { publicUpstream, secureUpstream, ...running };
}

async function postPublic(url: string, init: RequestInit = {}): Promise<Response> {
  return fetch(`${url}/predict-public`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: '{"images":[]}',
    ...init,
  });
}

// --- headers ---

test('hop-by-hop request headers, and any header named in Connection, are not forwarded', async (t) => {
  const { url, publicUpstream, secureUpstream } = await startPair(t);
  const hopByHop = {
    connection: 'keep-alive, x-hop-secret',
    'keep-alive': 'timeout=5, max=100',
    te: 'trailers',
    trailer: 'x-checksum',
    upgrade: 'websocket',
    'proxy-authorization': 'Basic cHJveHk6c2VjcmV0',
    'x-hop-secret': 'only-for-the-next-hop',
    'x-end-to-end': 'kept',
  };
  for (const [path, upstream] of [
    ['/predict-public', publicUpstream],
    ['/predict-secure', secureUpstream],
  ] as const) {
    const response = await sendRaw(url, {
      path,
      headers: { 'content-type': 'application/json', ...hopByHop },
      body: '{"images":[]}',
    });
    assert.equal(response.statusCode, 200, response.body);
    const received = upstream.received.at(-1)!.headers;
    for (const name of ['keep-alive', 'te', 'trailer', 'upgrade', 'proxy-authorization', 'x-hop-secret']) {
      assert.equal(received[name], undefined, `${name} reached the ${upstream.name} upstream`);
    }
    // The gateway's own connection to the upstream may say keep-alive; the client's list must not survive.
    assert.doesNotMatch(String(received.connection ?? ''), /x-hop-secret/i);
    assert.equal(received['x-end-to-end'], 'kept', 'an end-to-end header was dropped');
  }
});

test('the API key header never reaches an upstream, on either route', async (t) => {
  const { url, publicUpstream, secureUpstream } = await startPair(t);
  const key = 'sk-never-forwarded-1234';
  for (const [path, upstream] of [
    ['/predict-public', publicUpstream],
    ['/predict-secure', secureUpstream],
  ] as const) {
    // No policy: the key matches no tenant and is refused, so nothing is forwarded at all...
    const refused = await fetch(`${url}${path}`, { method: 'POST', headers: { 'x-api-key': key }, body: '{}' });
    assert.equal(refused.status, 401);
    assert.equal(upstream.received.length, 0);
  }
  // ...and with a tenant the key is accepted and still stripped.
  const tenantUpstream = await startRecordingUpstream(t, 'tenant-public');
  const tenantSecure = await startRecordingUpstream(t, 'tenant-secure');
  const policy = parsePolicy(
    JSON.stringify({
      tenants: [
        { name: 'shop', privacy: 'public-allowed', apiKeySha256: [createHash('sha256').update(key).digest('hex')] },
      ],
    }),
    'test',
  );
  const gateway = await startGateway(
    t,
    ['--public-upstream', tenantUpstream.url, '--secure-upstream', tenantSecure.url],
    { policy },
  );
  for (const [path, upstream] of [
    ['/predict-public', tenantUpstream],
    ['/predict-secure', tenantSecure],
  ] as const) {
    const response = await fetch(`${gateway.url}${path}`, {
      method: 'POST',
      headers: { 'x-api-key': key, 'content-type': 'application/json' },
      body: '{}',
    });
    assert.equal(response.status, 200);
    const received = upstream.received.at(-1)!;
    assert.equal(received.headers['x-api-key'], undefined);
    assert.ok(
      !JSON.stringify(received.headers).includes(key),
      `the key reached the ${upstream.name} upstream under another name`,
    );
  }
});

test('a well-formed client x-request-id is kept and forwarded', async (t) => {
  const { url, publicUpstream } = await startPair(t);
  const id = 'client.trace-01:abc_DEF';
  const response = await postPublic(url, { headers: { 'content-type': 'application/json', 'x-request-id': id } });
  assert.equal(response.status, 200);
  assert.equal(response.headers.get('x-request-id'), id);
  assert.equal(publicUpstream.received.at(-1)!.headers['x-request-id'], id);
});

for (const [what, malformed] of [
  ['300 characters long', 'a'.repeat(300)],
  ['containing spaces', 'id with spaces'],
  ['containing markup', '<script>x</script>'],
] as const) {
  test(`a malformed client x-request-id (${what}) is replaced by a generated one, the same at the upstream`, async (t) => {
    const { url, publicUpstream, secureUpstream } = await startPair(t);
    for (const [path, upstream] of [
      ['/predict-public', publicUpstream],
      ['/predict-secure', secureUpstream],
    ] as const) {
      const response = await fetch(`${url}${path}`, {
        method: 'POST',
        headers: { 'x-request-id': malformed },
        body: '{}',
      });
      assert.equal(response.status, 200);
      const generated = response.headers.get('x-request-id');
      assert.match(generated ?? '', UUID);
      assert.equal(upstream.received.at(-1)!.headers['x-request-id'], generated);
    }
  });
}

test('without a client x-request-id each request gets a distinct generated one', async (t) => {
  const { url } = await startPair(t);
  const ids = new Set<string>();
  for (let i = 0; i < 3; i++) ids.add((await postPublic(url)).headers.get('x-request-id') ?? '');
  assert.equal(ids.size, 3);
  for (const id of ids) assert.match(id, UUID);
});

// --- upstream answers ---

for (const statusCode of [400, 404, 422, 500, 503]) {
  test(`an upstream ${statusCode} answer is passed through unchanged, with x-privacy-route`, async (t) => {
    const { url, publicUpstream, secureUpstream } = await startPair(t);
    for (const [path, upstream, route] of [
      ['/predict-public', publicUpstream, 'public'],
      ['/predict-secure', secureUpstream, 'secure'],
    ] as const) {
      upstream.behaviour = { kind: 'status', statusCode };
      const response = await fetch(`${url}${path}`, { method: 'POST', body: '{}' });
      assert.equal(response.status, statusCode);
      assert.equal(response.headers.get('x-privacy-route'), route);
      assert.equal(response.headers.get('content-type'), 'application/json');
      assert.deepEqual(await response.json(), { upstream: upstream.name, statusCode });
    }
    // An answer, even an error, is not a transport failure: nobody is ejected.
    await waitFor(async () => (await fetch(`${url}/readyz`)).status === 200, 'both routes to stay ready');
  });
}

test('the query string is forwarded verbatim on both routes', async (t) => {
  const { url, publicUpstream, secureUpstream } = await startPair(t);
  const query = '?topk=3&label=a%20b&repeat=1&repeat=2&empty=';
  for (const [path, upstream] of [
    ['/predict-public', publicUpstream],
    ['/predict-secure', secureUpstream],
  ] as const) {
    const response = await fetch(`${url}${path}${query}`, { method: 'POST', body: '{}' });
    assert.equal(response.status, 200);
    assert.equal(upstream.received.at(-1)!.path, `/predict${query}`);
  }
});

// --- paths and methods ---

test('GET /predict-public and GET /predict-secure are 404 GW_NOT_FOUND: only POST is routed', async (t) => {
  const { url, publicUpstream, secureUpstream } = await startPair(t);
  for (const path of ['/predict-public', '/predict-secure']) {
    await expectCodedError(await fetch(`${url}${path}`), 404, 'GW_NOT_FOUND');
    await expectCodedError(await fetch(`${url}${path}`, { method: 'PUT', body: '{}' }), 404, 'GW_NOT_FOUND');
  }
  assert.equal(publicUpstream.received.length + secureUpstream.received.length, 0);
});

// (`/predict-public/`, with a trailing slash, is the route itself: hostile-clients.test.ts.)
test('a path below a predict route (/predict-public/extra) is 404 GW_NOT_FOUND and forwards nothing', async (t) => {
  const { url, publicUpstream, secureUpstream } = await startPair(t);
  for (const path of [
    '/predict-public/extra',
    '/predict-secure/extra',
    '/predict-secure//',
    '/predict',
    '/predict-publicx',
  ]) {
    await expectCodedError(await fetch(`${url}${path}`, { method: 'POST', body: '{}' }), 404, 'GW_NOT_FOUND');
  }
  assert.equal(publicUpstream.received.length + secureUpstream.received.length, 0);
});

// --- health and readiness ---

test('/healthz answers 200', async (t) => {
  const { url } = await startPair(t);
  const response = await fetch(`${url}/healthz`);
  assert.equal(response.status, 200);
  assert.deepEqual(await response.json(), { status: 'ok' });
});

test('/readyz answers 200 listing each route with its members and healthy count', async (t) => {
  const { url } = await startPair(t);
  const response = await fetch(`${url}/readyz`);
  assert.equal(response.status, 200);
  const body = (await response.json()) as { attestation: { members: { member: string }[] } };
  assert.deepEqual(body, {
    status: 'ready',
    routes: { public: { members: 1, healthy: 1 }, secure: { members: 1, healthy: 1 } },
    // These stand-in upstreams cannot attest; the gateway says plainly that it trusts them anyway.
    attestation: {
      trust: 'insecure-skipped',
      warning: 'INSECURE: attestation is skipped: secure requests go to members that were never attested',
      members: [
        { member: body.attestation.members[0]!.member, attested: false, problem: 'attestation skipped (insecure)' },
      ],
    },
  });
});

for (const route of ['public', 'secure'] as const) {
  test(`/readyz answers 503 GW_NOT_READY naming the ${route} route when its only member reports not ready, and recovers`, async (t) => {
    const { url, publicUpstream, secureUpstream } = await startPair(t);
    const upstream = route === 'public' ? publicUpstream : secureUpstream;
    upstream.ready = false;
    let body: Record<string, unknown> = {};
    await waitFor(async () => {
      const response = await fetch(`${url}/readyz`);
      body = (await response.json()) as Record<string, unknown>;
      return response.status === 503;
    }, `the gateway to notice the ${route} member is not ready`);
    assert.equal(body.statusCode, 503);
    assert.equal(body.code, 'GW_NOT_READY');
    assert.match(body.message as string, new RegExp(`\\b${route}\\b`));
    assert.doesNotMatch(body.message as string, new RegExp(`\\b${route === 'public' ? 'secure' : 'public'}\\b`));
    assert.deepEqual((body.routes as Record<string, unknown>)[route], { members: 1, healthy: 0 });
    upstream.ready = true;
    await waitFor(async () => (await fetch(`${url}/readyz`)).status === 200, `the ${route} member to come back`);
  });
}

// --- several members ---

test('sequential requests are spread over several public members: each gets some', async (t) => {
  const first = await startRecordingUpstream(t, 'public-1');
  const second = await startRecordingUpstream(t, 'public-2', { unix: true });
  const { url } = await startGateway(t, ['--public-upstream', first.url, '--public-upstream', second.url]);
  for (let i = 0; i < 10; i++) assert.equal((await postPublic(url)).status, 200);
  assert.equal(first.received.length + second.received.length, 10);
  assert.ok(
    first.received.length > 0 && second.received.length > 0,
    `spread ${first.received.length}/${second.received.length}`,
  );
});

test('the member with fewest requests in flight is chosen: while one member holds a request, the others take the rest', async (t) => {
  const busy = await startRecordingUpstream(t, 'public-busy');
  const idle = await startRecordingUpstream(t, 'public-idle');
  const { url } = await startGateway(t, ['--public-upstream', busy.url, '--public-upstream', idle.url]);
  busy.behaviour = { kind: 'hang' };
  const held = new AbortController();
  t.after(() => held.abort());
  // Send until one request is held by the busy member (ties rotate, so it takes at most two).
  let sent = 0;
  while (busy.received.length === 0) {
    const pending = postPublic(url, { signal: held.signal }).catch(() => undefined);
    sent++;
    await waitFor(() => busy.received.length + idle.received.length === sent, 'the request to reach a member');
    if (busy.received.length === 0) assert.equal((await pending)?.status, 200);
  }
  const before = idle.received.length;
  for (let i = 0; i < 6; i++) assert.equal((await postPublic(url)).status, 200);
  assert.equal(
    busy.received.length,
    1,
    'a member with a request in flight was given another while an idle one had none',
  );
  assert.equal(idle.received.length, before + 6);
});

test('a member reporting not ready gets no requests; the others take them all', async (t) => {
  const ready = await startRecordingUpstream(t, 'public-ready');
  const unready = await startRecordingUpstream(t, 'public-unready');
  const { url } = await startGateway(t, ['--public-upstream', ready.url, '--public-upstream', unready.url]);
  unready.ready = false;
  await waitFor(async () => {
    const body = (await (await fetch(`${url}/readyz`)).json()) as { routes: { public: { healthy: number } } };
    return body.routes.public.healthy === 1;
  }, 'the gateway to notice the unready member');
  for (let i = 0; i < 8; i++) assert.equal((await postPublic(url)).status, 200);
  assert.equal(unready.received.length, 0);
  assert.equal(ready.received.length, 8);
});

// --- ejection and return ---

for (const route of ['public', 'secure'] as const) {
  for (const [fault, expectedStatus] of [
    ['reset', 502],
    ['hang', 504],
    ['restart', 503],
  ] as const) {
    test(`a ${route} member taken out of rotation by ${fault === 'hang' ? 'a timeout' : fault === 'reset' ? 'a connection reset' : 'a restart'} is brought back by its health checks and serves again`, async (t) => {
      const { url, publicUpstream, secureUpstream } = await startPair(t, ['--headers-timeout-ms', '300']);
      const upstream = route === 'public' ? publicUpstream : secureUpstream;
      const path = `/predict-${route}`;
      // Served once first, so the member's connection pool is in use before the fault.
      assert.equal((await fetch(`${url}${path}`, { method: 'POST', body: '{}' })).status, 200);
      if (fault === 'restart') {
        await upstream.close();
        await waitFor(async () => (await fetch(`${url}/readyz`)).status === 503, `the ${route} member to be taken out`);
        const refused = await fetch(`${url}${path}`, { method: 'POST', body: '{}' });
        assert.equal(refused.status, expectedStatus);
        await upstream.reopen();
      } else {
        upstream.behaviour = { kind: fault };
        const failed = await fetch(`${url}${path}`, { method: 'POST', body: '{}' });
        assert.equal(failed.status, expectedStatus);
        upstream.behaviour = { kind: 'answer' };
      }
      await waitFor(
        async () => (await fetch(`${url}/readyz`)).status === 200,
        `the ${route} member to be back in rotation`,
      );
      const served = await fetch(`${url}${path}`, { method: 'POST', body: '{}' });
      assert.equal(served.status, 200);
      assert.deepEqual(await served.json(), { upstream: upstream.name, path: '/predict' });
    });
  }
}

// --- response headers ---

/** An upstream whose /predict answers with the given response headers. */
async function startHeaderUpstream(t: TestContext, headers: OutgoingHttpHeaders): Promise<string> {
  const server = createServer((request, response) => {
    if (request.url === '/readyz') {
      response.end('{}');
      return;
    }
    request.resume();
    request.on('end', () =>
      response.writeHead(200, { 'content-type': 'application/json', ...headers }).end('{"ok":true}'),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

test('hop-by-hop response headers from the upstream, and any it names in Connection, are not passed to the client', async (t) => {
  const upstream = await startHeaderUpstream(t, {
    connection: 'x-upstream-hop',
    'x-upstream-hop': 'for-the-gateway-only',
    'keep-alive': 'timeout=99, max=7',
    'proxy-authenticate': 'Basic realm="upstream"',
    trailer: 'x-checksum',
    upgrade: 'h2c',
    'x-end-to-end': 'kept',
  });
  const { url } = await startGateway(t, ['--public-upstream', upstream]);
  // What the gateway says about its own connection to this client, on a route it answers itself.
  const own = await sendRaw(url, { method: 'GET', path: '/healthz' });
  const response = await sendRaw(url, { path: '/predict-public', body: '{}' });
  assert.equal(response.statusCode, 200);
  assert.equal(response.headers['x-end-to-end'], 'kept', 'an end-to-end header was dropped');
  for (const name of ['x-upstream-hop', 'proxy-authenticate', 'trailer', 'upgrade']) {
    assert.equal(response.headers[name], undefined, `the upstream's ${name} reached the client`);
  }
  // Connection and Keep-Alive describe the gateway's connection to the client, not the upstream's.
  assert.equal(response.headers.connection, own.headers.connection, "the upstream's Connection reached the client");
  assert.equal(
    response.headers['keep-alive'],
    own.headers['keep-alive'],
    "the upstream's Keep-Alive reached the client",
  );
});
