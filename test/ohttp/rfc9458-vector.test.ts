// RFC 9458 Appendix A, byte for byte: the published key config, request and response. The vector
// pins the client's ephemeral key and the server's response nonce; the internal *With entry
// points take them, so encapsulation itself (not only opening) is checked against the RFC.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  AEAD_AES_128_GCM,
  OhttpKeyPair,
  decodeBinaryRequest,
  decodeBinaryResponse,
  decodeKeyConfigList,
  encodeKeyConfig,
  encodeKeyConfigList,
  encapsulateRequest,
  requestKeyId,
} from '../../ohttp/index.js';
import { hpkeSuite } from '../../ohttp/hpke-suite.js';
import { encapsulateRequestWith, requestInfo } from '../../ohttp/request.js';

const unhex = (text: string): Uint8Array => new Uint8Array(Buffer.from(text, 'hex'));
const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');

// RFC 9458 Appendix A.
const SERVER_PRIVATE_KEY = '3c168975674b2fa8e465970b79c8dcf09f1c741626480bd4c6162fc5b6a98e1a';
const KEY_CONFIG = '01002031e1f05a740102115220e9af918f738674aec95f54db6e04eb705aae8e79815500080001000100010003';
const BHTTP_REQUEST = '00034745540568747470730b6578616d706c652e636f6d012f';
const EPHEMERAL_PRIVATE_KEY = 'bc51d5e930bda26589890ac7032f70ad12e4ecb37abb1b65b1256c9c48999c73';
const EPHEMERAL_PUBLIC_KEY = '4b28f881333e7c164ffc499ad9796f877f4e1051ee6d31bad19dec96c208b472';
const INFO = '6d6573736167652f626874747020726571756573740001002000010001';
const ENCAPSULATED_REQUEST =
  '010020000100014b28f881333e7c164ffc499ad9796f877f4e1051ee6d31bad19dec96c208b472' +
  '6374e469135906992e1268c594d2a10c695d858c40a026e7965e7d86b83dd440b2c0185204b4d63525';
const BHTTP_RESPONSE = '0140c8';
const RESPONSE_NONCE = 'c789e7151fcba46158ca84b04464910d';
const ENCAPSULATED_RESPONSE = 'c789e7151fcba46158ca84b04464910d86f9013e404feea014e7be4a441f234f857fbd';

async function vectorKeyPair(): Promise<OhttpKeyPair> {
  return OhttpKeyPair.fromPrivateKey(1, unhex(SERVER_PRIVATE_KEY));
}

test('the key config: decoding the published bytes and encoding them back gives the same bytes', () => {
  const [config, ...more] = decodeKeyConfigList(unhex(`002d${KEY_CONFIG}`));
  assert.equal(more.length, 0);
  assert.deepEqual(
    { ...config!, publicKey: hex(config!.publicKey) },
    {
      keyId: 1,
      kemId: 0x0020,
      publicKey: '31e1f05a740102115220e9af918f738674aec95f54db6e04eb705aae8e798155',
      // The vector offers AES-128-GCM and ChaCha20-Poly1305 (0x0003), which this code does not speak.
      suites: [
        { kdfId: 1, aeadId: 1 },
        { kdfId: 1, aeadId: 3 },
      ],
    },
  );
  assert.equal(hex(encodeKeyConfig(config!)), KEY_CONFIG);
  assert.equal(hex(encodeKeyConfigList([config!, config!])), `002d${KEY_CONFIG}002d${KEY_CONFIG}`);
});

test('the server key pair made from the published private key has the published public key', async () => {
  const keyPair = await vectorKeyPair();
  assert.equal(hex(keyPair.config.publicKey), '31e1f05a740102115220e9af918f738674aec95f54db6e04eb705aae8e798155');
  assert.equal(keyPair.config.keyId, 1);
});

test('the request info string is the published one', () => {
  assert.equal(hex(requestInfo(unhex(ENCAPSULATED_REQUEST).subarray(0, 7))), INFO);
});

test('encapsulation with the published ephemeral key gives the published request, byte for byte', async () => {
  const [config] = decodeKeyConfigList(unhex(`002d${KEY_CONFIG}`));
  const kem = hpkeSuite(0x20, 1, 1).suite.kem;
  const ephemeralKeyPair = {
    privateKey: await kem.deserializePrivateKey(unhex(EPHEMERAL_PRIVATE_KEY)),
    publicKey: await kem.deserializePublicKey(unhex(EPHEMERAL_PUBLIC_KEY)),
  };
  const { message } = await encapsulateRequestWith(
    config!,
    unhex(BHTTP_REQUEST),
    { kdfId: 1, aeadId: AEAD_AES_128_GCM },
    { ephemeralKeyPair },
  );
  assert.equal(hex(message), ENCAPSULATED_REQUEST);
  assert.equal(requestKeyId(message), 1);
});

test('the server opens the published request and, with the published nonce, seals the published response', async () => {
  const keyPair = await vectorKeyPair();
  const opened = await keyPair.decapsulateRequestWith(unhex(ENCAPSULATED_REQUEST), {
    responseNonce: unhex(RESPONSE_NONCE),
  });
  assert.equal(hex(opened.bhttpRequest), BHTTP_REQUEST);
  assert.deepEqual(decodeBinaryRequest(opened.bhttpRequest), {
    method: 'GET',
    scheme: 'https',
    authority: 'example.com',
    path: '/',
    headers: [],
    body: new Uint8Array(0),
  });
  assert.equal(hex(await opened.sealResponse(unhex(BHTTP_RESPONSE))), ENCAPSULATED_RESPONSE);
});

test('the client opens the published response to the request it sealed with the published ephemeral key', async () => {
  const [config] = decodeKeyConfigList(unhex(`002d${KEY_CONFIG}`));
  const kem = hpkeSuite(0x20, 1, 1).suite.kem;
  const ephemeralKeyPair = {
    privateKey: await kem.deserializePrivateKey(unhex(EPHEMERAL_PRIVATE_KEY)),
    publicKey: await kem.deserializePublicKey(unhex(EPHEMERAL_PUBLIC_KEY)),
  };
  const request = await encapsulateRequestWith(config!, unhex(BHTTP_REQUEST), undefined, { ephemeralKeyPair });
  const response = await request.openResponse(unhex(ENCAPSULATED_RESPONSE));
  assert.equal(hex(response), BHTTP_RESPONSE);
  assert.deepEqual(decodeBinaryResponse(response), { status: 200, headers: [], body: new Uint8Array(0) });
});

test('a fresh request to the vector key (random ephemeral key) opens on the server and its answer opens on the client', async () => {
  const keyPair = await vectorKeyPair();
  const [config] = decodeKeyConfigList(unhex(`002d${KEY_CONFIG}`));
  const request = await encapsulateRequest(config!, unhex(BHTTP_REQUEST));
  assert.notEqual(hex(request.message), ENCAPSULATED_REQUEST);
  const opened = await keyPair.decapsulateRequest(request.message);
  assert.equal(hex(opened.bhttpRequest), BHTTP_REQUEST);
  assert.equal(hex(await request.openResponse(await opened.sealResponse(unhex(BHTTP_RESPONSE)))), BHTTP_RESPONSE);
});
