// The client SDK end to end, in Node, against real enclave model servers (emulated NSM, OHTTP key
// made at boot) behind a stand-in for the gateway's three routes that also plays a hostile parent:
// what it encrypts is what the enclave classifies, the key is verified before anything is sent,
// the verified key is cached and re-attested single-flight, an enclave restart costs exactly one
// retry, and every refusal is a SecureClientError with its reason.
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import type { TestContext } from 'node:test';
import { test } from 'node:test';
import type { CborTag, EmulatedNsm } from '../../attestation/index.js';
import { createEmulatedNsm, decodeCbor } from '../../attestation/index.js';
import type { SecureClient, SecureClientOptions } from '../../client/index.js';
import { MAX_KEYS_BYTES, SecureClientError, createSecureClient } from '../../client/index.js';
import { sampleImage } from '../../common/index.js';
import { OhttpKeyPair, decodeKeyConfigList, encodeKeyConfig, encodeKeyConfigList } from '../../ohttp/index.js';
import type { EnclaveNsm, RunningEnclaveModelServer } from '../helpers/enclave-model-server.js';
import { startEnclaveModelServer, testEnclaveNsm } from '../helpers/enclave-model-server.js';
import { postBytes } from '../helpers/model-server.js';
import type { TestSecureGateway } from '../helpers/secure-gateway.js';
import { startTestSecureGateway } from '../helpers/secure-gateway.js';

interface Setup {
  nsm: EnclaveNsm;
  first: RunningEnclaveModelServer;
  gateway: TestSecureGateway;
  image: Buffer;
  client: (options?: Partial<SecureClientOptions>) => SecureClient;
}

async function setup(t: TestContext, keyId = 1): Promise<Setup> {
  const nsm = await testEnclaveNsm();
  const first = await startEnclaveModelServer(t, nsm, keyId);
  const gateway = await startTestSecureGateway(t, { url: first.url });
  const image = await sampleImage();
  const client = (options: Partial<SecureClientOptions> = {}) =>
    createSecureClient({
      gatewayUrl: gateway.url,
      pcrs: nsm.measurements,
      insecureTrustEmulatedNsmRoot: nsm.rootPem,
      maxKeyAgeMs: 60_000,
      ...options,
    });
  return { nsm, first, gateway, image, client };
}

async function refusal(promise: Promise<unknown>): Promise<SecureClientError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof SecureClientError, `expected a SecureClientError, got ${String(error)}`);
    return error;
  }
  assert.fail('expected a refusal');
}

test(
  'an encrypted image and an encrypted JSON batch give exactly the plaintext predictions, and the answer says what was verified',
  { timeout: 120_000 },
  async (t) => {
    const { nsm, first, gateway, image, client } = await setup(t);
    const secure = client();
    const raw = await secure.predict(image, 'image/jpeg', { topk: 3 });
    const plain = await postBytes(`${first.url}/predict?topk=3`, image, 'image/jpeg');
    assert.equal(raw.status, 200);
    assert.deepEqual((raw.json as { predictions: unknown }).predictions, plain.body.predictions);

    const batch = await secure.predict({ images: [image.toString('base64'), image.toString('base64')], topk: 2 });
    assert.equal(batch.status, 200);
    const predictions = (batch.json as { predictions: { topk: { label: string }[] }[] }).predictions;
    assert.equal(predictions.length, 2);
    assert.deepEqual(
      predictions[0]!.topk.map((scored) => scored.label),
      (plain.body.predictions as { topk: { label: string }[] }[])[0]!.topk.slice(0, 2).map((scored) => scored.label),
    );

    const readyz = (await (await fetch(`${first.url}/readyz`)).json()) as {
      publicKeySha256: string;
      ohttpKeyId: number;
    };
    assert.deepEqual(raw.verified.pcrs, nsm.measurements.pcrs);
    assert.equal(raw.verified.keyId, 1);
    assert.equal(readyz.ohttpKeyId, 1);
    assert.equal(raw.verified.publicKeySha256, readyz.publicKeySha256);
    assert.equal(raw.verified.emulated, true);
    assert.match(raw.verified.moduleId, /^emulated-nsm-/);
    assert.match(raw.verified.rootFingerprint, /^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
    // One attestation for both requests: the key was cached.
    assert.deepEqual(gateway.counts, { keys: 1, attestation: 1, predict: 2 });
  },
);

test('no byte of the image crosses the parent in the clear', { timeout: 120_000 }, async (t) => {
  const { gateway, image, client } = await setup(t);
  const secure = client();
  assert.equal((await secure.predict(image, 'image/jpeg')).status, 200);
  assert.equal((await secure.predict({ images: [image.toString('base64')] })).status, 200);
  // Any 24 consecutive bytes of the image, or of its base64, would betray it.
  const windows = [image.subarray(1000, 1024), Buffer.from(image.toString('base64').slice(2000, 2024))];
  for (const crossed of gateway.crossed)
    for (const window of windows) assert.equal(Buffer.from(crossed).indexOf(window), -1);
  assert.ok(gateway.crossed.length >= 4);
});

test(
  'concurrent calls share one attestation; the key is re-attested after maxKeyAgeMs, and after forgetKey',
  { timeout: 120_000 },
  async (t) => {
    const { gateway, image, client } = await setup(t);
    let now = Date.now();
    const secure = client({ maxKeyAgeMs: 30_000, now: () => now });
    const answers = await Promise.all(
      Array.from({ length: 6 }, () => secure.predict(image, 'image/jpeg', { topk: 1 })),
    );
    assert.ok(answers.every((answer) => answer.status === 200));
    assert.equal(gateway.counts.attestation, 1);
    assert.equal(gateway.counts.keys, 1);

    now += 29_999;
    await secure.predict(image, 'image/jpeg', { topk: 1 });
    assert.equal(gateway.counts.attestation, 1);
    now += 1;
    await Promise.all([
      secure.predict(image, 'image/jpeg', { topk: 1 }),
      secure.predict(image, 'image/jpeg', { topk: 1 }),
    ]);
    assert.equal(gateway.counts.attestation, 2);
    secure.forgetKey();
    await secure.verify();
    assert.equal(gateway.counts.attestation, 3);
  },
);

test(
  'an enclave restart (new key id, same image and root) costs one refused request and one re-attestation; the retry is answered; a key gone before its attestation costs one fresh key list',
  { timeout: 180_000 },
  async (t) => {
    const { nsm, first, gateway, image, client } = await setup(t);
    const secure = client();
    const before = await secure.predict(image, 'image/jpeg', { topk: 1 });
    const second = await startEnclaveModelServer(t, nsm, 2);
    gateway.member = { url: second.url };
    const after = await secure.predict(image, 'image/jpeg', { topk: 1 });
    assert.equal(after.status, 200);
    assert.deepEqual(
      (after.json as { predictions: unknown }).predictions,
      (before.json as { predictions: unknown }).predictions,
    );
    assert.equal(after.verified.keyId, 2);
    assert.notEqual(after.verified.publicKeySha256, before.verified.publicKeySha256);
    assert.deepEqual(gateway.counts, { keys: 2, attestation: 2, predict: 3 });

    // The enclaves change again, twice in a row: the request to key 2 meets the first enclave (key 1,
    // 422), and the key list the client then gets names key 1, whose enclave is gone again by the time
    // the client asks for its attestation (404 GW_UNKNOWN_KEY_ID): one fresh list, and it goes through.
    gateway.member = { url: first.url };
    gateway.tamper.keys = (list) => {
      gateway.member = { url: second.url };
      delete gateway.tamper.keys;
      return list;
    };
    const again = await secure.predict(image, 'image/jpeg', { topk: 1 });
    assert.equal(again.status, 200);
    assert.equal(again.verified.keyId, 2);
    assert.deepEqual(gateway.counts, { keys: 4, attestation: 4, predict: 5 });
  },
);

test(
  'a key id the enclave never knows is retried exactly once, then refused (unknown-key)',
  { timeout: 120_000 },
  async (t) => {
    const { gateway, image, client } = await setup(t);
    // The parent rewrites the key id byte of every request: the enclave never knows it.
    gateway.tamper.request = (message) => Uint8Array.of(message[0]! ^ 0x80, ...message.subarray(1));
    const error = await refusal(client().predict(image, 'image/jpeg'));
    assert.equal(error.reason, 'unknown-key');
    assert.equal(error.code, 'MS_OHTTP_UNKNOWN_KEY');
    assert.equal(error.status, 422);
    assert.deepEqual(gateway.counts, { keys: 2, attestation: 2, predict: 2 });
  },
);

/** The same request (nonce, key, user_data) signed by another NSM: a parent that runs its own. */
function reSign(document: Uint8Array, by: EmulatedNsm): Uint8Array {
  const payload = decodeCbor(((decodeCbor(document) as CborTag).value as Uint8Array[])[2]!) as Map<
    string,
    Uint8Array | null
  >;
  return by.attest({
    nonce: payload.get('nonce'),
    publicKey: payload.get('public_key'),
    userData: payload.get('user_data'),
  });
}

test(
  'refused before anything is sent: wrong pins, the emulated root not trusted, a forged document, a replayed nonce, debug mode',
  { timeout: 120_000 },
  async (t) => {
    const { nsm, gateway, image, client } = await setup(t);
    const otherPins = { ...nsm.measurements, pcrs: { ...nsm.measurements.pcrs, 2: 'ab'.repeat(48) } };
    const wrongPins = await refusal(client({ pcrs: otherPins }).predict(image, 'image/jpeg'));
    assert.equal(wrongPins.reason, 'attestation-failed');
    assert.equal(wrongPins.attestationReason, 'pcr_mismatch');
    assert.equal(wrongPins.checks?.at(-1)?.name, 'pcrs');

    const notTrusted = await refusal(client({ insecureTrustEmulatedNsmRoot: undefined }).predict(image, 'image/jpeg'));
    assert.equal(notTrusted.attestationReason, 'root');

    gateway.tamper.attestation = (document) => Uint8Array.of(...document.subarray(0, -1), document.at(-1)! ^ 1);
    const forged = await refusal(client().predict(image, 'image/jpeg'));
    assert.equal(forged.attestationReason, 'signature');
    delete gateway.tamper.attestation;

    // A document signed with another nonce (a replayed one) is refused too.
    gateway.tamper.attestation = () =>
      nsm.source.nsm.attest({ nonce: new Uint8Array(32), publicKey: new Uint8Array(32) });
    assert.equal((await refusal(client().predict(image, 'image/jpeg'))).attestationReason, 'nonce');
    delete gateway.tamper.attestation;

    // An enclave in debug mode (all-zero PCRs) binding the right key: refused whatever the pins.
    const debug = createEmulatedNsm({ debugMode: true, measurements: nsm.measurements });
    gateway.tamper.attestation = (document) => reSign(document, debug);
    const debugMode = await refusal(
      client({ insecureTrustEmulatedNsmRoot: debug.rootCertificatePem }).predict(image, 'image/jpeg'),
    );
    assert.equal(debugMode.attestationReason, 'debug_mode');
    // The same re-signing without debug mode passes: the refusal above is debug mode's alone.
    const twin = createEmulatedNsm({ measurements: nsm.measurements });
    gateway.tamper.attestation = (document) => reSign(document, twin);
    assert.equal((await client({ insecureTrustEmulatedNsmRoot: twin.rootCertificatePem }).verify()).emulated, true);
    delete gateway.tamper.attestation;
    assert.equal(gateway.counts.predict, 0);
  },
);

test(
  'refused: a key config the enclave did not attest (another key, or its own key with other suites)',
  { timeout: 120_000 },
  async (t) => {
    const { gateway, image, client } = await setup(t);
    const impostor = await OhttpKeyPair.generate(1);
    gateway.tamper.keys = () => encodeKeyConfigList([impostor.config]);
    const otherKey = await refusal(client().predict(image, 'image/jpeg'));
    assert.equal(otherKey.reason, 'key-not-bound');
    assert.match(otherKey.message, /public_key/);

    // The real key, but the parent strips a suite: user_data (SHA-256 of the whole config) no longer matches.
    gateway.tamper.keys = (list) => {
      const [config] = decodeKeyConfigList(list);
      return encodeKeyConfigList([{ ...config!, suites: config!.suites.slice(0, 1) }]);
    };
    const downgraded = await refusal(client().predict(image, 'image/jpeg'));
    assert.equal(downgraded.reason, 'key-not-bound');
    assert.match(downgraded.message, /user_data/);
    assert.equal(gateway.counts.predict, 0);
    assert.ok(encodeKeyConfig(impostor.config).length > 0);
  },
);

test(
  'refused with a reason: malformed keys, no usable suite, a tampered request or response, a refusing or unreachable gateway',
  { timeout: 120_000 },
  async (t) => {
    const { gateway, image, client } = await setup(t);
    gateway.tamper.keys = () => Uint8Array.of(0, 9, 1);
    assert.equal((await refusal(client().predict(image, 'image/jpeg'))).reason, 'keys-malformed');
    // A hostile gateway cannot make the client hold more than the limits: a huge key list, a huge document.
    gateway.tamper.keys = () => new Uint8Array(MAX_KEYS_BYTES + 1);
    assert.match((await refusal(client().predict(image, 'image/jpeg'))).message, /larger than 65536 bytes/);
    delete gateway.tamper.keys;
    gateway.tamper.attestation = () => new Uint8Array(8 * 1024 * 1024);
    assert.equal((await refusal(client().predict(image, 'image/jpeg'))).attestationReason, 'too_large');
    delete gateway.tamper.attestation;
    gateway.tamper.keys = () => Uint8Array.of(0, 9, 1);
    gateway.tamper.keys = (list) => {
      const [config] = decodeKeyConfigList(list);
      return encodeKeyConfigList([{ ...config!, suites: [{ kdfId: 1, aeadId: 3 }] }]);
    };
    assert.equal((await refusal(client().predict(image, 'image/jpeg'))).reason, 'no-usable-key');
    delete gateway.tamper.keys;

    gateway.tamper.request = (message) => Uint8Array.of(...message.subarray(0, -1), message.at(-1)! ^ 1);
    const tamperedRequest = await refusal(client().predict(image, 'image/jpeg'));
    assert.equal(tamperedRequest.reason, 'gateway-error');
    assert.equal(tamperedRequest.status, 400);
    assert.equal(tamperedRequest.code, 'MS_OHTTP_DECRYPT_FAILED');
    delete gateway.tamper.request;

    gateway.tamper.response = (message) => Uint8Array.of(...message.subarray(0, -1), message.at(-1)! ^ 1);
    assert.equal((await refusal(client().predict(image, 'image/jpeg'))).reason, 'response-malformed');
    delete gateway.tamper.response;

    gateway.refuse = { status: 503, code: 'GW_NO_SECURE_UPSTREAM' };
    const refused = await refusal(client().predict(image, 'image/jpeg'));
    assert.deepEqual([refused.reason, refused.status, refused.code], ['gateway-error', 503, 'GW_NO_SECURE_UPSTREAM']);
    delete gateway.refuse;

    assert.equal(
      (await refusal(client({ gatewayUrl: 'http://127.0.0.1:1' }).predict(image, 'image/jpeg'))).reason,
      'gateway-unreachable',
    );
    // Still serving after all of it.
    assert.equal((await client().predict(image, 'image/jpeg')).status, 200);
  },
);

test("the model server's own coded errors come back inside the encrypted answer", { timeout: 120_000 }, async (t) => {
  const { image, client } = await setup(t);
  const answer = await client().predict(image.subarray(0, 200), 'image/jpeg');
  assert.equal(answer.status, 400);
  assert.match(String((answer.json as { code: string }).code), /^MS_/);
});

test('bad options are invalid-option errors at once', () => {
  const pem = generateKeyPairSync('ec', { namedCurve: 'P-256' })
    .publicKey.export({ type: 'spki', format: 'pem' })
    .toString();
  const base = {
    gatewayUrl: 'http://127.0.0.1:1',
    pcrs: { PCR0: 'a'.repeat(96), PCR1: 'b'.repeat(96), PCR2: 'c'.repeat(96) },
    maxKeyAgeMs: 1000,
  };
  const invalid = (options: Partial<SecureClientOptions>, message: RegExp) =>
    assert.throws(
      () => createSecureClient({ ...base, ...options }),
      (error: SecureClientError) => error.reason === 'invalid-option' && message.test(error.message),
    );
  invalid({ gatewayUrl: 'not a url' }, /gatewayUrl/);
  invalid({ gatewayUrl: 'ftp://example.com' }, /http: or https:/);
  invalid({ pcrs: { PCR0: 'zz' } }, /PCR0 is not 96 hex digits/);
  invalid({ pcrs: '{' }, /not valid JSON/);
  invalid({ maxKeyAgeMs: -1 }, /maxKeyAgeMs/);
  return refusal(createSecureClient({ ...base, insecureTrustEmulatedNsmRoot: pem }).verify()).then((error) =>
    assert.equal(error.reason, 'invalid-option'),
  );
});
