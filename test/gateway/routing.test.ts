import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startGateway, startRecordingUpstream } from '../helpers/gateway.js';

test('each path goes to its route, body and content type untouched, with x-privacy-route and x-request-id', async (t) => {
  const publicUpstream = await startRecordingUpstream(t, 'public');
  const secureUpstream = await startRecordingUpstream(t, 'secure', { unix: true });
  const { url } = await startGateway(t, ['--public-upstream', publicUpstream.url, '--secure-upstream', secureUpstream.url]);
  const body = Buffer.from([0xff, 0xd8, 0xff, 0x00, 0x01, 0x02]);
  for (const [path, upstream, route] of [['/predict-public', publicUpstream, 'public'], ['/predict-secure', secureUpstream, 'secure']] as const) {
    const response = await fetch(`${url}${path}?topk=3`, { method: 'POST', headers: { 'content-type': 'image/jpeg', 'x-request-id': `test-${route}` }, body });
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
