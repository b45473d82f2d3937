// --secure-plaintext refuse and the tenant policy's "securePlaintext": "refuse": plaintext routed
// to the secure route (by path, header or tenant) gets 415 GW_SECURE_PLAINTEXT_REFUSED naming the
// client SDK, and reaches no upstream; OHTTP requests and the public route pass; the default allows.
// (The sealed path end to end, against the emulated enclave: test/enclave/secure-discovery.test.ts.)
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import { createHash } from 'node:crypto';
import { OPEN_POLICY, parsePolicy } from '../../gateway/index.js';
import type { PrivacyPolicy } from '../../gateway/index.js';
import { expectCodedError, startGateway, startRecordingUpstream } from '../helpers/gateway.js';

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');
const IMAGE = { 'content-type': 'image/jpeg' };

async function setup(t: TestContext, flags: string[], policy: PrivacyPolicy = OPEN_POLICY) {
  const publicUpstream = await startRecordingUpstream(t, 'public');
  const secureUpstream = await startRecordingUpstream(t, 'secure', { unix: true });
  const { url } = await startGateway(
    t,
    ['--public-upstream', publicUpstream.url, '--secure-upstream', secureUpstream.url, ...flags],
    { policy },
  );
  const post = (path: string, headers: Record<string, string>) =>
    fetch(`${url}${path}`, { method: 'POST', headers, body: Buffer.from('not really an image') });
  return { publicUpstream, secureUpstream, post };
}

test('--secure-plaintext refuse: plaintext on the secure route is refused with 415 naming the client SDK, before any upstream sees it', async (t) => {
  const { publicUpstream, secureUpstream, post } = await setup(t, ['--secure-plaintext', 'refuse']);
  const refused = await expectCodedError(await post('/predict-secure', IMAGE), 415, 'GW_SECURE_PLAINTEXT_REFUSED');
  assert.match(refused.message, /mixed-privacy-gateway\/client/);
  assert.match(refused.message, /mpg client predict/);
  assert.match(refused.message, /message\/ohttp-req/);
  // Upgraded to secure by the header: the same refusal.
  await expectCodedError(
    await post('/predict-public', { ...IMAGE, 'x-privacy': 'secure' }),
    415,
    'GW_SECURE_PLAINTEXT_REFUSED',
  );
  await expectCodedError(
    await post('/predict-secure', { 'content-type': 'application/json' }),
    415,
    'GW_SECURE_PLAINTEXT_REFUSED',
  );
  await expectCodedError(await post('/predict-secure', {}), 415, 'GW_SECURE_PLAINTEXT_REFUSED');
  assert.deepEqual(secureUpstream.received, [], 'no plaintext reached the secure upstream');
  assert.deepEqual(publicUpstream.received, [], 'nor the public one');

  // What does pass: the public route, and ciphertext on the secure route (any case, parameters).
  assert.equal((await post('/predict-public', IMAGE)).status, 200);
  assert.equal(publicUpstream.received.length, 1);
  // An OHTTP request goes on to key-id routing, which knows no key here (the stand-in is not
  // attested): its own answer, not the plaintext refusal.
  await expectCodedError(
    await post('/predict-secure', { 'content-type': 'Message/OHTTP-req; x=1' }),
    422,
    'GW_OHTTP_UNKNOWN_KEY',
  );
});

test("by default plaintext on the secure route is allowed (the seed study's clients)", async (t) => {
  const { secureUpstream, post } = await setup(t, []);
  assert.equal((await post('/predict-secure', IMAGE)).status, 200);
  assert.equal(secureUpstream.received.length, 1);
});

test('a tenant whose policy refuses plaintext is refused even when the gateway allows it; other tenants are not', async (t) => {
  const policy = parsePolicy(
    JSON.stringify({
      tenants: [
        { name: 'clinic', privacy: 'secure-only', apiKeySha256: [sha256('clinic-key')], securePlaintext: 'refuse' },
        { name: 'lab', privacy: 'public-allowed', apiKeySha256: [sha256('lab-key')] },
      ],
    }),
    'policy.json',
  );
  assert.equal(policy.tenants[0]!.securePlaintext, 'refuse');
  const { secureUpstream, post } = await setup(t, [], policy);
  await expectCodedError(
    await post('/predict-secure', { ...IMAGE, 'x-api-key': 'clinic-key' }),
    415,
    'GW_SECURE_PLAINTEXT_REFUSED',
  );
  // Secure-only, sent to the public path: upgraded to secure, so refused as well.
  await expectCodedError(
    await post('/predict-public', { ...IMAGE, 'x-api-key': 'clinic-key' }),
    415,
    'GW_SECURE_PLAINTEXT_REFUSED',
  );
  assert.deepEqual(secureUpstream.received, []);
  assert.equal((await post('/predict-secure', { ...IMAGE, 'x-api-key': 'lab-key' })).status, 200);
  assert.equal(secureUpstream.received.length, 1);
});

test('the policy file\'s securePlaintext takes "allow" or "refuse" only, and the option only allow|refuse', () => {
  const text = (value: unknown) =>
    JSON.stringify({
      tenants: [{ name: 'clinic', privacy: 'secure-only', apiKeySha256: [sha256('k')], securePlaintext: value }],
    });
  assert.throws(
    () => parsePolicy(text('deny'), 'policy.json'),
    /tenants\[0\]\.securePlaintext must be "allow" or "refuse", got "deny"/,
  );
  assert.equal(parsePolicy(text('allow'), 'policy.json').tenants[0]!.securePlaintext, 'allow');
});
