// Encrypted requests through the gateway (message/ohttp-req on /predict-secure): routed by key id
// to the secure member holding that key, forwarded and answered byte for byte, never decrypted;
// an unknown key id is 422 GW_OHTTP_UNKNOWN_KEY, a body too short for a header 400
// GW_OHTTP_MALFORMED. The key configs are set on the members here as the attestation gate sets them
// once an attestation binds them (gateway/attestation-gate.ts, the "gw-secure" branch).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createEmulatedNsmSource, emulatedImageMeasurements } from '../../attestation/index.js';
import type { Gateway } from '../../gateway/index.js';
import { sampleImage } from '../../common/index.js';
import { loadModelServer } from '../../model-server/index.js';
import type { KeyConfig } from '../../ohttp/index.js';
import {
  decodeBinaryResponse,
  decodeKeyConfigList,
  encapsulateRequest,
  encodeBinaryRequest,
  encodeKeyConfig,
} from '../../ohttp/index.js';
import { expectCodedError, startGateway, startRecordingUpstream, waitFor } from '../helpers/gateway.js';
import { modelServerConfig, testModelPath } from '../helpers/model-server.js';

/** What the attestation gate does once a member's attestation binds its key config. */
function bindKey(gateway: Gateway, memberUrl: string, config: KeyConfig): void {
  const member = gateway.groups.secure.members.find((candidate) => candidate.url === memberUrl);
  assert.ok(member, memberUrl);
  member.ohttpKeyConfig = { keyId: config.keyId, encoded: encodeKeyConfig(config) };
}

/** A message/ohttp-req shaped body: key id, then KEM, KDF and AEAD ids, then opaque bytes. */
function sealedLooking(keyId: number, length = 64): Buffer {
  const message = Buffer.alloc(length, 0xab);
  message.writeUInt8(keyId, 0);
  message.writeUInt16BE(0x0020, 1);
  message.writeUInt16BE(0x0001, 3);
  message.writeUInt16BE(0x0001, 5);
  return message;
}

const postSealed = (gatewayUrl: string, body: Uint8Array, path = '/predict-secure') =>
  fetch(`${gatewayUrl}${path}`, { method: 'POST', headers: { 'content-type': 'message/ohttp-req' }, body });

for (const streamed of [false, true]) {
  test(`encrypted requests go to the member holding their key id, byte for byte both ways${streamed ? ' (streamed)' : ''}; an unknown key id is 422, a short body 400`, async (t) => {
    const first = await startRecordingUpstream(t, 'enclave-1', { unix: true });
    const second = await startRecordingUpstream(t, 'enclave-2', { unix: true });
    const { gateway, url } = await startGateway(t, [
      '--secure-upstream',
      first.url,
      '--secure-upstream',
      second.url,
      ...(streamed ? ['--body-buffer-bytes', '0'] : []),
    ]);
    const keyOf = (keyId: number): KeyConfig => ({
      keyId,
      kemId: 0x0020,
      publicKey: new Uint8Array(32).fill(keyId),
      suites: [{ kdfId: 1, aeadId: 1 }],
    });
    bindKey(gateway, first.url, keyOf(7));
    bindKey(gateway, second.url, keyOf(9));

    for (const [keyId, upstream] of [
      [9, second],
      [7, first],
      [9, second],
    ] as const) {
      const message = sealedLooking(keyId, 4096);
      const response = await postSealed(url, message);
      assert.equal(response.status, 200);
      assert.equal(response.headers.get('x-upstream'), upstream.name);
      const received = upstream.received.at(-1)!;
      assert.deepEqual(received.body, message, 'forwarded untouched');
      assert.equal(received.headers['content-type'], 'message/ohttp-req');
    }
    assert.deepEqual([first.received.length, second.received.length], [1, 2]);

    const unknown = await postSealed(url, sealedLooking(8));
    await expectCodedError(unknown, 422, 'GW_OHTTP_UNKNOWN_KEY');
    await expectCodedError(await postSealed(url, Buffer.from([7, 0, 0x20])), 400, 'GW_OHTTP_MALFORMED');
    await expectCodedError(await postSealed(url, Buffer.alloc(0)), 400, 'GW_OHTTP_MALFORMED');
    assert.deepEqual([first.received.length, second.received.length], [1, 2], 'nothing refused was forwarded');

    // A member out of rotation takes no encrypted request even for its own key.
    first.ready = false;
    await waitFor(async () => {
      const response = await postSealed(url, sealedLooking(7));
      await response.arrayBuffer();
      return response.status === 422;
    }, 'key 7 to be refused with its only member out of rotation');
  });
}

test('no healthy secure member: an encrypted request is 503 GW_NO_SECURE_UPSTREAM, as any secure request', async (t) => {
  const enclave = await startRecordingUpstream(t, 'enclave', { unix: true });
  enclave.ready = false;
  const { url } = await startGateway(t, ['--secure-upstream', enclave.url]);
  await expectCodedError(await postSealed(url, sealedLooking(1)), 503, 'GW_NO_SECURE_UPSTREAM');
  assert.equal(enclave.received.length, 0);
});

test(
  'a real enclave model server behind the gateway: a sealed batch comes back sealed and opens to its predictions',
  { timeout: 120_000 },
  async (t) => {
    const modelPath = await testModelPath();
    const server = await loadModelServer(modelServerConfig(['--enclave', 'emulated', '--ohttp-key-id', '77']), {
      attestation: createEmulatedNsmSource(emulatedImageMeasurements({ modelPath })),
    });
    t.after(() => server.close());
    const enclaveUrl = await server.app.listen({ host: '127.0.0.1', port: 0 });
    await server.load(modelPath);
    const { gateway, url } = await startGateway(t, ['--secure-upstream', enclaveUrl]);
    const [config] = decodeKeyConfigList(new Uint8Array(await (await fetch(`${enclaveUrl}/ohttp-keys`)).arrayBuffer()));
    assert.ok(config);
    bindKey(gateway, enclaveUrl, config);

    const image = await sampleImage();
    const bhttp = encodeBinaryRequest({
      method: 'POST',
      scheme: 'https',
      authority: 'enclave',
      path: '/predict',
      headers: [['content-type', 'application/json']],
      body: Buffer.from(JSON.stringify({ images: [image.toString('base64')], topk: 2 })),
    });
    const sealed = await encapsulateRequest(config, bhttp);
    const response = await postSealed(url, sealed.message);
    assert.equal(response.status, 200);
    assert.equal(response.headers.get('content-type'), 'message/ohttp-res');
    assert.equal(response.headers.get('x-privacy-route'), 'secure');
    const inner = decodeBinaryResponse(await sealed.openResponse(new Uint8Array(await response.arrayBuffer())));
    assert.equal(inner.status, 200);
    const body = JSON.parse(Buffer.from(inner.body).toString('utf8')) as { predictions: unknown };
    // The same predictions as the plaintext request straight to the model server.
    const plain = (await (
      await fetch(`${enclaveUrl}/predict`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ images: [image.toString('base64')], topk: 2 }),
      })
    ).json()) as { predictions: unknown };
    assert.deepEqual(body.predictions, plain.predictions);

    // Another key id: the gateway refuses it itself (the enclave would only say 422 after the trip).
    const other = await encapsulateRequest({ ...config, keyId: 78 }, bhttp);
    await expectCodedError(await postSealed(url, other.message), 422, 'GW_OHTTP_UNKNOWN_KEY');
  },
);
