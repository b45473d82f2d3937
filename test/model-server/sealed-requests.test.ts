// The enclave's door for sealed (OHTTP) requests, on a real model server listening on port 0:
// the same predictions as plaintext, every outer refusal with its code, inner errors sealed, the
// attested key and the OHTTP key one and the same, and nothing of an inner request in any log line.
import assert from 'node:assert/strict';
import { createHash, randomUUID } from 'node:crypto';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import {
  createAttestationVerifier,
  createChallenge,
  createEmulatedNsmSource,
  emulatedImageMeasurements,
} from '../../attestation/index.js';
import { sampleImage } from '../../common/index.js';
import { loadModelServer } from '../../model-server/index.js';
import type { KeyConfig } from '../../ohttp/index.js';
import {
  AEAD_AES_256_GCM,
  KDF_HKDF_SHA256,
  OhttpKeyPair,
  decodeBinaryResponse,
  decodeKeyConfigList,
  encapsulateRequest,
  encodeBinaryRequest,
} from '../../ohttp/index.js';
import { modelServerConfig, postBytes, postJson, testModelPath } from '../helpers/model-server.js';

/** A JSON-line sink for the model server's logger, kept in memory. */
class LogCapture extends Writable {
  text = '';

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: () => void): void {
    this.text += chunk.toString();
    callback();
  }
}

interface Enclave {
  url: string;
  source: ReturnType<typeof createEmulatedNsmSource>;
  log: LogCapture;
}

async function startEnclave(
  t: TestContext,
  flags: string[] = [],
  { load = true } = {},
): Promise<Enclave & { close(): Promise<void> }> {
  const source = createEmulatedNsmSource(emulatedImageMeasurements({ modelPath: await testModelPath() }));
  const log = new LogCapture();
  const server = await loadModelServer(modelServerConfig(['--enclave', 'emulated', ...flags]), {
    attestation: source,
    logger: { level: 'trace', stream: log },
  });
  t.after(() => server.close());
  const url = await server.app.listen({ host: '127.0.0.1', port: 0 });
  if (load) await server.load(await testModelPath());
  return { url, source, log, close: () => server.close() };
}

async function keyConfig(url: string): Promise<KeyConfig> {
  const response = await fetch(`${url}/ohttp-keys`);
  assert.equal(response.status, 200);
  assert.equal(response.headers.get('content-type'), 'application/ohttp-keys');
  const configs = decodeKeyConfigList(new Uint8Array(await response.arrayBuffer()));
  assert.equal(configs.length, 1);
  return configs[0]!;
}

async function postSealed(url: string, message: Uint8Array): Promise<Response> {
  return fetch(`${url}/predict`, { method: 'POST', headers: { 'content-type': 'message/ohttp-req' }, body: message });
}

interface InnerAnswer {
  status: number;
  headers: Map<string, string>;
  body: Record<string, unknown>;
}

/** Seals `inner` to the enclave, sends it, checks the outer 200 and opens the answer. */
async function sealedCall(
  url: string,
  config: KeyConfig,
  inner: { method?: string; path?: string; headers: [string, string][]; body: Uint8Array },
  suite?: { kdfId: number; aeadId: number },
): Promise<InnerAnswer> {
  const bhttp = encodeBinaryRequest({
    method: inner.method ?? 'POST',
    scheme: 'https',
    authority: 'enclave',
    path: inner.path ?? '/predict',
    headers: inner.headers,
    body: inner.body,
  });
  const request = await encapsulateRequest(config, bhttp, suite);
  const response = await postSealed(url, request.message);
  assert.equal(response.status, 200);
  assert.equal(response.headers.get('content-type'), 'message/ohttp-res');
  const answer = decodeBinaryResponse(await request.openResponse(new Uint8Array(await response.arrayBuffer())));
  return {
    status: answer.status,
    headers: new Map(answer.headers),
    body: JSON.parse(Buffer.from(answer.body).toString('utf8')) as Record<string, unknown>,
  };
}

const json = (value: unknown): [[string, string][], Uint8Array] => [
  [['content-type', 'application/json']],
  Buffer.from(JSON.stringify(value)),
];

/** A JPEG carrying `marker` in a comment segment right after SOI: decodable, and the marker is in its bytes. */
function jpegWithMarker(jpeg: Buffer, marker: string): Buffer {
  const text = Buffer.from(marker);
  const length = Buffer.alloc(2);
  length.writeUInt16BE(text.length + 2);
  return Buffer.concat([jpeg.subarray(0, 2), Buffer.from([0xff, 0xfe]), length, text, jpeg.subarray(2)]);
}

function withoutTimings(body: Record<string, unknown>): unknown {
  return { model: body.model, predictions: body.predictions };
}

test('a sealed JSON batch and a sealed raw JPEG get the same predictions as plaintext; AES-256-GCM too', async (t) => {
  const { url } = await startEnclave(t, ['--ohttp-key-id', '42']);
  const config = await keyConfig(url);
  assert.equal(config.keyId, 42);
  const image = await sampleImage();
  const other = await sampleImage({ seed: 7 });
  const batch = { images: [image.toString('base64'), other.toString('base64')], topk: 3 };

  const plainBatch = await postJson(`${url}/predict`, batch);
  assert.equal(plainBatch.status, 200);
  const [headers, body] = json(batch);
  const sealedBatch = await sealedCall(url, config, { headers, body });
  assert.equal(sealedBatch.status, 200);
  assert.match(sealedBatch.headers.get('content-type')!, /^application\/json/);
  assert.deepEqual(withoutTimings(sealedBatch.body), withoutTimings(plainBatch.body));

  const plainImage = await postBytes(`${url}/predict?topk=2`, image, 'image/jpeg');
  const sealedImage = await sealedCall(url, config, {
    path: '/predict?topk=2',
    headers: [['content-type', 'image/jpeg']],
    body: image,
  });
  assert.deepEqual(withoutTimings(sealedImage.body), withoutTimings(plainImage.body));
  const aes256 = await sealedCall(
    url,
    config,
    { path: '/predict?topk=2', headers: [['content-type', 'image/jpeg']], body: image },
    { kdfId: KDF_HKDF_SHA256, aeadId: AEAD_AES_256_GCM },
  );
  assert.deepEqual(withoutTimings(aes256.body), withoutTimings(plainImage.body));

  const readyz = (await (await fetch(`${url}/readyz`)).json()) as { ohttpKeyId: number };
  assert.equal(readyz.ohttpKeyId, 42);

  // What crosses the parent: neither the image nor the predictions are in the bytes.
  const bhttp = encodeBinaryRequest({
    method: 'POST',
    scheme: 'https',
    authority: 'enclave',
    path: '/predict',
    headers,
    body,
  });
  const sealed = await encapsulateRequest(config, bhttp);
  const answer = Buffer.from(await (await postSealed(url, sealed.message)).arrayBuffer());
  const imagePiece = image.subarray(99, 129).toString('base64'); // 3-byte aligned: as it appears in the JSON
  assert.ok(Buffer.from(bhttp).includes(imagePiece), 'the piece is in the plaintext');
  assert.ok(!Buffer.from(sealed.message).includes(imagePiece), 'the image is in the sealed request');
  assert.ok(!answer.includes('resnet18') && !answer.includes('predictions'), 'the answer is in the sealed response');
});

test('a restarted enclave (new key) refuses requests sealed to the old one: 422 for another key id, 400 for the same id; not ready is an outer 503', async (t) => {
  const first = await startEnclave(t, ['--ohttp-key-id', '7'], { load: false });
  const oldConfig = await keyConfig(first.url);
  const [headers, body] = json({ images: [(await sampleImage()).toString('base64')] });
  const bhttp = encodeBinaryRequest({
    method: 'POST',
    scheme: 'https',
    authority: 'enclave',
    path: '/predict',
    headers,
    body,
  });
  // Not ready yet: refused before opening, in the clear, so the gateway can try another member.
  const early = await postSealed(first.url, (await encapsulateRequest(oldConfig, bhttp)).message);
  assert.equal(early.status, 503);
  assert.equal(((await early.json()) as { code: string }).code, 'MS_NOT_READY');
  await first.close();

  const otherId = await startEnclave(t, ['--ohttp-key-id', '8']);
  const moved = await postSealed(otherId.url, (await encapsulateRequest(oldConfig, bhttp)).message);
  assert.equal(moved.status, 422);
  assert.equal(((await moved.json()) as { code: string }).code, 'MS_OHTTP_UNKNOWN_KEY');
  await otherId.close();
  // One restart in 256 draws the same random key id: the request then does not open.
  const sameId = await startEnclave(t, ['--ohttp-key-id', '7']);
  const collided = await postSealed(sameId.url, (await encapsulateRequest(oldConfig, bhttp)).message);
  assert.equal(collided.status, 400);
  assert.equal(((await collided.json()) as { code: string }).code, 'MS_OHTTP_DECRYPT_FAILED');
});

test("the attested document binds the OHTTP key: public_key is the config's key, user_data its hash; /readyz proofs use the same key", async (t) => {
  const { url, source } = await startEnclave(t);
  const response = await fetch(`${url}/ohttp-keys`);
  const list = new Uint8Array(await response.arrayBuffer());
  const [config] = decodeKeyConfigList(list);
  const encodedConfig = list.subarray(2); // one config after its 2-byte length
  const nonce = Buffer.from('0badc0de', 'hex');
  const documentBytes = Buffer.from(
    await (await fetch(`${url}/attestation?nonce=${nonce.toString('hex')}`)).arrayBuffer(),
  );
  const verifier = createAttestationVerifier({
    expectedPcrs: emulatedImageMeasurements({ modelPath: await testModelPath() }),
    trustedRoots: [source.nsm.rootCertificatePem],
    requirePublicKey: true,
  });
  const verified = verifier.verify(documentBytes, { nonce });
  assert.equal(verified.ok, true);
  assert.deepEqual(Buffer.from(verified.document!.publicKey!), Buffer.from(config!.publicKey));
  assert.deepEqual(Buffer.from(verified.document!.userData!), createHash('sha256').update(encodedConfig).digest());

  const challenge = createChallenge();
  const readyz = (await (await fetch(`${url}/readyz?proof=${challenge.hex}`)).json()) as {
    proof: string;
    publicKeySha256: string;
    ohttpKeyId: number;
  };
  assert.equal(
    challenge.check(config!.publicKey, readyz.proof),
    true,
    'the possession proof verifies against the OHTTP key',
  );
  assert.equal(readyz.publicKeySha256, createHash('sha256').update(config!.publicKey).digest('hex'));
  assert.equal(readyz.ohttpKeyId, config!.keyId);
});

test('outer refusals: tampered, truncated, another key id, another key, a suite not offered, too large; each with its code, and the server keeps serving', async (t) => {
  const { url } = await startEnclave(t, ['--ohttp-key-id', '5', '--body-limit', '200000']);
  const config = await keyConfig(url);
  const [headers, body] = json({ images: [(await sampleImage()).toString('base64')] });
  const bhttp = encodeBinaryRequest({
    method: 'POST',
    scheme: 'https',
    authority: 'enclave',
    path: '/predict',
    headers,
    body,
  });
  const { message } = await encapsulateRequest(config, bhttp);

  const refusal = async (bytes: Uint8Array, status: number, code: string, label: string) => {
    const response = await postSealed(url, bytes);
    assert.equal(response.status, status, label);
    const answer = (await response.json()) as { code: string; statusCode: number };
    assert.equal(answer.code, code, label);
    assert.equal(answer.statusCode, status, label);
  };
  const tampered = message.slice();
  tampered[message.length - 20]! ^= 0x01;
  await refusal(tampered, 400, 'MS_OHTTP_DECRYPT_FAILED', 'a flipped ciphertext bit');
  await refusal(message.subarray(0, message.length - 1), 400, 'MS_OHTTP_DECRYPT_FAILED', 'one byte cut off');
  await refusal(message.subarray(0, 30), 400, 'MS_OHTTP_MALFORMED', 'cut inside the encapsulated key');
  await refusal(message.subarray(0, 3), 400, 'MS_OHTTP_MALFORMED', 'cut inside the header');
  await refusal(new Uint8Array(0), 400, 'MS_OHTTP_MALFORMED', 'empty');
  const otherId = message.slice();
  otherId[0] = 6;
  await refusal(otherId, 422, 'MS_OHTTP_UNKNOWN_KEY', 'another key id');
  const otherKey = await OhttpKeyPair.generate(5);
  await refusal(
    (await encapsulateRequest(otherKey.config, bhttp)).message,
    400,
    'MS_OHTTP_DECRYPT_FAILED',
    'sealed to another key with the same id',
  );
  const chacha = message.slice();
  chacha[6] = 0x03;
  await refusal(chacha, 400, 'MS_OHTTP_UNSUPPORTED_SUITE', 'ChaCha20-Poly1305, not offered');
  const otherKem = message.slice();
  otherKem[2] = 0x10;
  await refusal(otherKem, 400, 'MS_OHTTP_UNSUPPORTED_SUITE', 'P-256, not offered');
  // The body limit applies to the encrypted body.
  const big = encodeBinaryRequest({
    method: 'POST',
    scheme: 'https',
    authority: 'enclave',
    path: '/predict',
    headers: [['content-type', 'image/jpeg']],
    body: new Uint8Array(200_000),
  });
  await refusal((await encapsulateRequest(config, big)).message, 413, 'MS_BODY_TOO_LARGE', 'over the body limit');

  const answer = await sealedCall(url, config, { headers, body });
  assert.equal(answer.status, 200, 'still serving sealed requests');
  assert.equal((await fetch(`${url}/readyz`)).status, 200);
});

test('inner refusals come back sealed with their codes: another route, another method, malformed Binary HTTP, a bad image, bad JSON, a nested sealed request', async (t) => {
  const { url } = await startEnclave(t);
  const config = await keyConfig(url);
  const image: [[string, string][], Uint8Array] = [[['content-type', 'image/jpeg']], await sampleImage()];

  const route = await sealedCall(url, config, { path: '/metrics', headers: image[0], body: image[1] });
  assert.deepEqual([route.status, route.body.code], [404, 'MS_OHTTP_INNER_ROUTE']);
  const keys = await sealedCall(url, config, { method: 'GET', path: '/predict', headers: [], body: new Uint8Array(0) });
  assert.deepEqual([keys.status, keys.body.code], [404, 'MS_OHTTP_INNER_ROUTE']);
  const sneaky = await sealedCall(url, config, { path: '/predict/../metrics', headers: image[0], body: image[1] });
  assert.deepEqual([sneaky.status, sneaky.body.code], [404, 'MS_OHTTP_INNER_ROUTE']);

  const badImage = await sealedCall(url, config, {
    headers: [['content-type', 'image/jpeg']],
    body: Buffer.from('not a jpeg at all'),
  });
  assert.deepEqual([badImage.status, badImage.body.code], [400, 'MS_NOT_AN_IMAGE']);
  const [, badJsonBody] = json({});
  const badJson = await sealedCall(url, config, {
    headers: [['content-type', 'application/json']],
    body: badJsonBody.subarray(0, 1),
  });
  assert.deepEqual([badJson.status, badJson.body.code], [400, 'MS_INVALID_JSON']);
  const noType = await sealedCall(url, config, { headers: [], body: image[1] });
  assert.deepEqual([noType.status, noType.body.code], [415, 'MS_UNSUPPORTED_MEDIA_TYPE']);
  const nested = await sealedCall(url, config, {
    headers: [['content-type', 'message/ohttp-req']],
    body: (await encapsulateRequest(config, new Uint8Array(10))).message,
  });
  assert.deepEqual([nested.status, nested.body.code], [415, 'MS_UNSUPPORTED_MEDIA_TYPE']);

  // A Binary HTTP message that opens but does not decode.
  const request = await encapsulateRequest(config, Uint8Array.of(0, 3, 0x47));
  const response = await postSealed(url, request.message);
  assert.equal(response.status, 200);
  const malformed = decodeBinaryResponse(await request.openResponse(new Uint8Array(await response.arrayBuffer())));
  assert.equal(malformed.status, 400);
  assert.equal((JSON.parse(Buffer.from(malformed.body).toString()) as { code: string }).code, 'MS_OHTTP_MALFORMED');

  // Inner errors count in no per-request metric (the outer request is a 200).
  const metrics = await (await fetch(`${url}/metrics`)).text();
  assert.doesNotMatch(metrics, /code="MS_NOT_AN_IMAGE"/);
  assert.doesNotMatch(metrics, /code="MS_INVALID_JSON"/);
});

test('nothing of a sealed request reaches a log line: a marker inside image bytes, in a good and in a bad image', async (t) => {
  const { url, log } = await startEnclave(t);
  const config = await keyConfig(url);
  const marker = `mkimage${randomUUID().replaceAll('-', '')}`;
  const headerMarker = `mkheader${randomUUID().replaceAll('-', '')}`;
  const pathMarker = `mkpath${randomUUID().replaceAll('-', '')}`;
  const good = jpegWithMarker(await sampleImage(), marker);
  const ok = await sealedCall(url, config, {
    path: `/predict?topk=1&x=${pathMarker}`,
    headers: [
      ['content-type', 'image/jpeg'],
      ['x-patient', headerMarker],
    ],
    body: good,
  });
  assert.equal(ok.status, 200);
  const bad = await sealedCall(url, config, {
    headers: [
      ['content-type', 'image/jpeg'],
      ['x-patient', headerMarker],
    ],
    body: Buffer.concat([Buffer.from([0xff, 0xd8, 0xff]), Buffer.from(marker)]),
  });
  assert.equal(bad.status, 400);
  const [headers, body] = json({ images: [good.toString('base64'), 'not*base64' + marker] });
  assert.equal((await sealedCall(url, config, { headers, body })).body.code, 'MS_INVALID_BASE64');
  const route = await sealedCall(url, config, { path: `/${pathMarker}`, headers: [], body: new Uint8Array(0) });
  assert.equal(route.status, 404);

  const lines = log.text.split('\n').filter((line) => line !== '');
  // The outer requests are logged, so a server that logged nothing could not pass.
  assert.ok(
    lines.some((line) => (JSON.parse(line) as { msg?: string }).msg === 'request done'),
    'the outer requests are logged',
  );
  for (const secret of [marker, headerMarker, pathMarker, Buffer.from(marker).toString('base64').slice(0, 20)]) {
    assert.ok(!log.text.includes(secret), `a log line carries ${secret}`);
  }
  // The inner requests leave no line at all: no second 'request done' per sealed call, no rejection.
  assert.ok(
    !lines.some((line) => /MS_NOT_AN_IMAGE|MS_INVALID_BASE64|MS_OHTTP_INNER_ROUTE/.test(line)),
    'an inner error code reached the log',
  );
});

test('a model server outside an enclave has no /ohttp-keys and refuses message/ohttp-req with 415', async (t) => {
  const server = await loadModelServer(modelServerConfig());
  t.after(() => server.close());
  const url = await server.app.listen({ host: '127.0.0.1', port: 0 });
  assert.equal((await fetch(`${url}/ohttp-keys`)).status, 404);
  const response = await postSealed(url, new Uint8Array(100));
  assert.equal(response.status, 415);
  assert.equal(((await response.json()) as { code: string }).code, 'MS_UNSUPPORTED_MEDIA_TYPE');
});
