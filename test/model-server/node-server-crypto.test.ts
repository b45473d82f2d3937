// The enclave's node:crypto HPKE recipient against RFC 9458 Appendix A, byte for byte, and against
// @hpke/core clients (both suites); everything it cannot open is refused like the WebCrypto one.
import assert from 'node:assert/strict';
import { createPrivateKey, createPublicKey, generateKeyPairSync } from 'node:crypto';
import { test } from 'node:test';
import { rawX25519PublicKey } from '../../attestation/index.js';
import { nodeServerCrypto } from '../../model-server/index.js';
import {
  AEAD_AES_128_GCM,
  AEAD_AES_256_GCM,
  KDF_HKDF_SHA256,
  OhttpError,
  OhttpKeyPair,
  encapsulateRequest,
} from '../../ohttp/index.js';

const unhex = (text: string): Uint8Array => new Uint8Array(Buffer.from(text, 'hex'));
const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');

// RFC 9458 Appendix A.
const SERVER_PRIVATE_KEY = '3c168975674b2fa8e465970b79c8dcf09f1c741626480bd4c6162fc5b6a98e1a';
const SERVER_PUBLIC_KEY = '31e1f05a740102115220e9af918f738674aec95f54db6e04eb705aae8e798155';
const BHTTP_REQUEST = '00034745540568747470730b6578616d706c652e636f6d012f';
const ENCAPSULATED_REQUEST =
  '010020000100014b28f881333e7c164ffc499ad9796f877f4e1051ee6d31bad19dec96c208b472' +
  '6374e469135906992e1268c594d2a10c695d858c40a026e7965e7d86b83dd440b2c0185204b4d63525';
const RESPONSE_NONCE = 'c789e7151fcba46158ca84b04464910d';
const ENCAPSULATED_RESPONSE = 'c789e7151fcba46158ca84b04464910d86f9013e404feea014e7be4a441f234f857fbd';

function nodeKeyPair(keyId: number) {
  const { privateKey, publicKey } = generateKeyPairSync('x25519');
  const raw = rawX25519PublicKey(publicKey);
  return OhttpKeyPair.withCrypto(keyId, raw, nodeServerCrypto(privateKey, raw));
}

test('RFC 9458 Appendix A: the node:crypto recipient opens the published request and seals the published response', async () => {
  const privateKey = createPrivateKey({
    key: Buffer.concat([Buffer.from('302e020100300506032b656e04220420', 'hex'), unhex(SERVER_PRIVATE_KEY)]),
    format: 'der',
    type: 'pkcs8',
  });
  const publicKey = rawX25519PublicKey(createPublicKey(privateKey));
  assert.equal(hex(publicKey), SERVER_PUBLIC_KEY);
  const keyPair = OhttpKeyPair.withCrypto(1, publicKey, nodeServerCrypto(privateKey, publicKey));
  const opened = await keyPair.decapsulateRequestWith(unhex(ENCAPSULATED_REQUEST), {
    responseNonce: unhex(RESPONSE_NONCE),
  });
  assert.equal(hex(opened.bhttpRequest), BHTTP_REQUEST);
  assert.equal(hex(await opened.sealResponse(unhex('0140c8'))), ENCAPSULATED_RESPONSE);
});

test('@hpke/core clients and the node:crypto recipient agree in both suites, large bodies included', async () => {
  const keyPair = nodeKeyPair(9);
  const body = new Uint8Array(300_000).map((_, i) => (i * 31) & 0xff);
  for (const aeadId of [AEAD_AES_128_GCM, AEAD_AES_256_GCM]) {
    const request = await encapsulateRequest(keyPair.config, body, { kdfId: KDF_HKDF_SHA256, aeadId });
    const opened = await keyPair.decapsulateRequest(request.message);
    assert.deepEqual(opened.bhttpRequest, body);
    const answer = body.subarray(0, 5000);
    assert.deepEqual(await request.openResponse(await opened.sealResponse(answer)), answer);
  }
});

test('the node:crypto recipient refuses what does not open: every flipped bit, another key, the all-zero enc', async () => {
  const keyPair = nodeKeyPair(9);
  const { message } = await encapsulateRequest(keyPair.config, new Uint8Array(64));
  const refused = (bytes: Uint8Array, label: string) =>
    assert.rejects(
      () => keyPair.decapsulateRequest(bytes),
      (error: unknown) => error instanceof OhttpError && error.reason === 'decrypt-failed',
      label,
    );
  for (let i = 7; i < message.length; i++) {
    const flipped = message.slice();
    flipped[i]! ^= 1 << (i % 8);
    await refused(flipped, `byte ${i}`);
  }
  await refused(
    (await encapsulateRequest(nodeKeyPair(9).config, new Uint8Array(64))).message,
    'sealed to another key with the same id',
  );
  const zeroEnc = message.slice();
  zeroEnc.fill(0, 7, 39);
  await refused(zeroEnc, 'the all-zero enc (a low-order point)');
});
