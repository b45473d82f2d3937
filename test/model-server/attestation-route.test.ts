// GET /attestation on a model server running as an enclave: a document the verifier accepts,
// carrying the caller's nonce and the boot key /readyz names; bad nonces refused; nonce-less
// documents cached; fresh ones rate limited; NSM failures a 503; no route outside an enclave.
import assert from 'node:assert/strict';
import { createHash, generateKeyPairSync } from 'node:crypto';
import { test } from 'node:test';
import type { NsmSource } from '../../attestation/index.js';
import {
  createAttestationVerifier,
  createChallenge,
  createEmulatedNsmSource,
  createNitroNsmSource,
  emulatedImageMeasurements,
  rawX25519PublicKey,
} from '../../attestation/index.js';
import { loadModelServer } from '../../model-server/index.js';
import { ATTESTATION_BURST } from '../../model-server/attestation-route.js';
import { modelServerConfig, testModelPath } from '../helpers/model-server.js';
import type { TestContext } from 'node:test';

async function enclaveServer(
  t: TestContext,
  source: NsmSource,
  flags: string[] = ['--enclave', 'emulated'],
): Promise<string> {
  const server = await loadModelServer(modelServerConfig(flags), { attestation: source });
  t.after(() => server.close());
  const url = await server.app.listen({ host: '127.0.0.1', port: 0 });
  await server.load(await testModelPath());
  return url;
}

async function attestation(
  url: string,
  query = '',
): Promise<{ status: number; type: string | null; source: string | null; bytes: Buffer }> {
  const response = await fetch(`${url}/attestation${query}`);
  return {
    status: response.status,
    type: response.headers.get('content-type'),
    source: response.headers.get('x-attestation-source'),
    bytes: Buffer.from(await response.arrayBuffer()),
  };
}

test('an emulated enclave answers with a document that verifies: its PCRs, the nonce sent, and the boot key /readyz names', async (t) => {
  const measurements = emulatedImageMeasurements({ modelPath: await testModelPath() });
  const source = createEmulatedNsmSource(measurements);
  const url = await enclaveServer(t, source);
  const nonce = Buffer.from('00112233445566778899aabbccddeeff', 'hex');

  const answer = await attestation(url, `?nonce=${nonce.toString('hex')}`);
  assert.equal(answer.status, 200);
  assert.equal(answer.type, 'application/cbor');
  assert.equal(answer.source, 'emulated');
  const verifier = createAttestationVerifier({
    expectedPcrs: measurements,
    trustedRoots: [source.nsm.rootCertificatePem],
    requirePublicKey: true,
  });
  const result = verifier.verify(answer.bytes, { nonce });
  assert.equal(result.ok, true, JSON.stringify(result.checks.at(-1)));

  const readyz = (await (await fetch(`${url}/readyz`)).json()) as { publicKeySha256: string; enclave: string };
  assert.equal(readyz.enclave, 'emulated');
  const publicKey = result.document!.publicKey!;
  assert.equal(publicKey.length, 32, 'an X25519 public key');
  assert.equal(createHash('sha256').update(publicKey).digest('hex'), readyz.publicKeySha256);
  const model = (await (await fetch(`${url}/v1/model`)).json()) as {
    attestation: { source: string; publicKey: string };
  };
  assert.deepEqual(model.attestation.source, 'emulated');
  assert.equal(
    Buffer.from(model.attestation.publicKey, 'base64').toString('hex'),
    Buffer.from(publicKey).toString('hex'),
  );

  // Another nonce, another document; the old nonce does not pass for the new one.
  const second = await attestation(url, '?nonce=ff');
  assert.equal(verifier.verify(second.bytes, { nonce: Buffer.from('ff', 'hex') }).ok, true);
  assert.equal(verifier.verify(second.bytes, { nonce }).reason, 'nonce');
});

test('bad nonces are refused with MS_INVALID_NONCE, and the server keeps serving', async (t) => {
  const source = createEmulatedNsmSource(emulatedImageMeasurements({ modelPath: await testModelPath() }));
  const url = await enclaveServer(t, source);
  for (const query of ['?nonce=xyz', '?nonce=abc', `?nonce=${'ab'.repeat(513)}`, '?nonce=', '?nonce=ab&nonce=cd']) {
    const response = await fetch(`${url}/attestation${query}`);
    assert.equal(response.status, 400, query);
    assert.equal(((await response.json()) as { code: string }).code, 'MS_INVALID_NONCE', query);
  }
  assert.equal(
    (await attestation(url, `?nonce=${'ab'.repeat(512)}`)).status,
    200,
    'a 512-byte nonce is the NSM limit, and accepted',
  );
});

test('without a nonce the document is cached; fresh documents are rate limited with 429 and Retry-After', async (t) => {
  const source = createEmulatedNsmSource(emulatedImageMeasurements({ modelPath: await testModelPath() }));
  const url = await enclaveServer(t, source);
  const first = await attestation(url);
  const again = await attestation(url);
  assert.equal(first.status, 200);
  assert.deepEqual(again.bytes, first.bytes, 'the same cached document');

  const statuses: number[] = [];
  let limited: { retryAfter: string | null; code: string } | undefined;
  for (let index = 0; index < ATTESTATION_BURST + 5; index += 1) {
    const response = await fetch(`${url}/attestation?nonce=${index.toString(16).padStart(2, '0')}`);
    statuses.push(response.status);
    if (response.status === 429 && !limited)
      limited = {
        retryAfter: response.headers.get('retry-after'),
        code: ((await response.json()) as { code: string }).code,
      };
    else await response.arrayBuffer();
  }
  assert.deepEqual(
    limited,
    { retryAfter: '1', code: 'MS_ATTESTATION_RATE_LIMITED' },
    `a burst of fresh documents is limited: ${statuses.join(',')}`,
  );
  assert.deepEqual(
    (await attestation(url)).bytes,
    first.bytes,
    'the cached document is still served while fresh ones are limited',
  );
  assert.equal((await fetch(`${url}/readyz`)).status, 200);
});

test('an NSM that cannot be reached gives 503 MS_ATTESTATION_UNAVAILABLE (the Nitro helper, absent here)', async (t) => {
  const url = await enclaveServer(t, createNitroNsmSource('/nonexistent/nsm-request'), ['--enclave', 'nitro']);
  const response = await fetch(`${url}/attestation?nonce=00`);
  assert.equal(response.status, 503);
  assert.equal(((await response.json()) as { code: string }).code, 'MS_ATTESTATION_UNAVAILABLE');
  assert.equal((await fetch(`${url}/readyz`)).status, 200, 'inference is not affected');
});

test('a model server outside an enclave has no /attestation', async (t) => {
  const server = await loadModelServer(modelServerConfig());
  t.after(() => server.close());
  const url = await server.app.listen({ host: '127.0.0.1', port: 0 });
  const response = await fetch(`${url}/attestation?nonce=00`);
  assert.equal(response.status, 404);
  assert.equal(((await response.json()) as { code: string }).code, 'MS_NOT_FOUND');
});

test('/readyz?proof= answers a possession challenge with the boot key, which only that key verifies; bad challenges are 400', async (t) => {
  const source = createEmulatedNsmSource(emulatedImageMeasurements({ modelPath: await testModelPath() }));
  const url = await enclaveServer(t, source);
  const model = (await (await fetch(`${url}/v1/model`)).json()) as { attestation: { publicKey: string } };
  const publicKey = Buffer.from(model.attestation.publicKey, 'base64');

  const challenge = createChallenge();
  const answer = (await (await fetch(`${url}/readyz?proof=${challenge.hex}`)).json()) as {
    status: string;
    proof: string;
  };
  assert.equal(answer.status, 'ready');
  assert.equal(challenge.check(publicKey, answer.proof), true);
  assert.equal(
    challenge.check(rawX25519PublicKey(generateKeyPairSync('x25519').publicKey), answer.proof),
    false,
    'another key does not verify',
  );
  assert.equal(createChallenge().check(publicKey, answer.proof), false, 'nor does the answer to another challenge');

  for (const bad of ['abc', 'zz'.repeat(48), 'ab'.repeat(47)]) {
    const response = await fetch(`${url}/readyz?proof=${bad}`);
    assert.equal(response.status, 400, bad);
    assert.equal(((await response.json()) as { code: string }).code, 'MS_INVALID_CHALLENGE');
  }
  const plain = await loadModelServer(modelServerConfig());
  t.after(() => plain.close());
  const plainUrl = await plain.app.listen({ host: '127.0.0.1', port: 0 });
  const notEnclave = await fetch(`${plainUrl}/readyz?proof=${challenge.hex}`);
  assert.equal(notEnclave.status, 400);
  assert.match(((await notEnclave.json()) as { message: string }).message, /not an enclave/);
});
