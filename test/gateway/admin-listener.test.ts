// The admin listener (--admin-host, --admin-port): /readyz and /metrics name upstream addresses,
// socket paths and counters, so with it they are served there only and the traffic port keeps
// /healthz and the routes clients need. Without --admin-port both stay on the traffic port.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { expectCodedError, startGateway, startRecordingUpstream } from '../helpers/gateway.js';
import { startMpg } from '../helpers/process.js';

test('with --admin-port, /metrics and /readyz are served on the admin listener only; the traffic port keeps /healthz and the routes', async (t) => {
  const upstream = await startRecordingUpstream(t, 'public');
  const { url, adminUrl } = await startGateway(t, ['--public-upstream', upstream.url, '--admin-port', '0']);
  assert.notEqual(adminUrl, url);

  await expectCodedError(await fetch(`${url}/metrics`), 404, 'GW_NOT_FOUND');
  await expectCodedError(await fetch(`${url}/readyz`), 404, 'GW_NOT_FOUND');
  assert.equal((await fetch(`${url}/healthz`)).status, 200);
  assert.equal(
    (await fetch(`${url}/predict-public`, { method: 'POST', headers: { 'content-type': 'image/jpeg' }, body: 'x' }))
      .status,
    200,
  );

  const metrics = await fetch(`${adminUrl}/metrics`);
  assert.equal(metrics.status, 200);
  assert.match(await metrics.text(), /^mpg_gateway_requests_total\{route="public",status="200"\} 1$/m);
  const ready = (await (await fetch(`${adminUrl}/readyz`)).json()) as { status: string };
  assert.equal(ready.status, 'ready');
  assert.equal((await fetch(`${adminUrl}/healthz`)).status, 200);
  // Nothing of the traffic side is on the admin listener.
  await expectCodedError(await fetch(`${adminUrl}/predict-public`, { method: 'POST', body: 'x' }), 404, 'GW_NOT_FOUND');
  assert.equal(upstream.received.length, 1);
});

test('without --admin-port, /metrics and /readyz stay on the traffic port', async (t) => {
  const upstream = await startRecordingUpstream(t, 'public');
  const { url, adminUrl } = await startGateway(t, ['--public-upstream', upstream.url]);
  assert.equal(adminUrl, url);
  assert.equal((await fetch(`${url}/metrics`)).status, 200);
  assert.equal((await fetch(`${url}/readyz`)).status, 200);
});

test(
  'mpg gateway --admin-port prints both listeners and serves each its own routes',
  { timeout: 60_000 },
  async (t) => {
    const upstream = await startRecordingUpstream(t, 'public');
    const gateway = startMpg(t, [
      'gateway',
      '--port',
      '0',
      '--admin-port',
      '0',
      '--public-upstream',
      upstream.url,
      '--log-level',
      'warn',
    ]);
    const [, adminUrl] = await gateway.waitForOutput(/admin listening on (http:\/\/127\.0\.0\.1:\d+)/);
    const [, url] = await gateway.waitForOutput(/gateway listening on (http:\/\/\S+)/);
    assert.equal((await fetch(`${adminUrl}/metrics`)).status, 200);
    assert.equal((await fetch(`${url}/metrics`)).status, 404);
    gateway.child.kill('SIGTERM');
    assert.equal(await gateway.exited, 0);
  },
);
