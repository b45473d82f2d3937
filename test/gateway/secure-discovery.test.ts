// GET /.well-known/ohttp-gateway and GET /attestation through the real gateway, for every way a
// request can be wrong: each gets its coded 4xx, and the gateway keeps serving. (The answers of an
// attested enclave are tested against the emulated enclave in test/enclave/.)
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { expectCodedError, startGateway, startRecordingUpstream } from '../helpers/gateway.js';

const NONCE = 'ab'.repeat(32);

test('without an attested secure member holding a key config, the key list is a coded 503 and no key id is known', async (t) => {
  const secureUpstream = await startRecordingUpstream(t, 'secure', { unix: true });
  const { url } = await startGateway(t, ['--secure-upstream', secureUpstream.url]);
  await expectCodedError(await fetch(`${url}/.well-known/ohttp-gateway`), 503, 'GW_NO_SECURE_UPSTREAM');
  await expectCodedError(await fetch(`${url}/attestation?nonce=${NONCE}&key-id=7`), 422, 'GW_OHTTP_UNKNOWN_KEY');
  assert.deepEqual(secureUpstream.received, [], 'nothing was asked of the member');
});

test('bad nonces and key ids get 400 with their own codes', async (t) => {
  const secureUpstream = await startRecordingUpstream(t, 'secure', { unix: true });
  const { url } = await startGateway(t, ['--secure-upstream', secureUpstream.url]);
  const ask = (query: string) => fetch(`${url}/attestation${query}`);
  for (const query of [
    '?key-id=1',
    '?nonce=&key-id=1',
    '?nonce=abc&key-id=1',
    '?nonce=zz&key-id=1',
    `?nonce=${'00'.repeat(513)}&key-id=1`,
    `?nonce=${NONCE}&nonce=${NONCE}&key-id=1`,
  ]) {
    await expectCodedError(await ask(query), 400, 'GW_INVALID_NONCE');
  }
  for (const query of [
    `?nonce=${NONCE}`,
    `?nonce=${NONCE}&key-id=256`,
    `?nonce=${NONCE}&key-id=-1`,
    `?nonce=${NONCE}&key-id=1.0`,
    `?nonce=${NONCE}&key-id=0x1`,
    `?nonce=${NONCE}&key-id=`,
  ]) {
    await expectCodedError(await ask(query), 400, 'GW_INVALID_KEY_ID');
  }
  // The longest nonce the NSM signs is accepted as input (and then the key id is unknown here).
  await expectCodedError(await ask(`?nonce=${'00'.repeat(512)}&key-id=255`), 422, 'GW_OHTTP_UNKNOWN_KEY');
  assert.equal((await fetch(`${url}/healthz`)).status, 200, 'the gateway keeps serving');
});

test('GET /attestation is rate-limited per client address with 429 and Retry-After', async (t) => {
  const secureUpstream = await startRecordingUpstream(t, 'secure', { unix: true });
  const { url } = await startGateway(t, [
    '--secure-upstream',
    secureUpstream.url,
    '--attestation-burst',
    '2',
    '--attestation-requests-per-second',
    '0.01',
  ]);
  const ask = () => fetch(`${url}/attestation?nonce=${NONCE}&key-id=1`);
  await expectCodedError(await ask(), 422, 'GW_OHTTP_UNKNOWN_KEY');
  await expectCodedError(await ask(), 422, 'GW_OHTTP_UNKNOWN_KEY');
  const limited = await ask();
  assert.equal(limited.headers.get('retry-after'), '100');
  await expectCodedError(limited, 429, 'GW_ATTESTATION_RATE_LIMITED');
  // Bad input is refused for what it is, and costs no token.
  await expectCodedError(await fetch(`${url}/attestation?nonce=zz&key-id=1`), 400, 'GW_INVALID_NONCE');
  assert.equal((await fetch(`${url}/.well-known/ohttp-gateway`)).status, 503, 'the key list is not rate-limited');
});
