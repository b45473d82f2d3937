// What a client does before it encrypts, against the real emulated enclave behind a real gateway
// that refuses plaintext on the secure route: fetch the key configs from
// /.well-known/ohttp-gateway, fetch a fresh attestation over its own nonce from
// /attestation?nonce=&key-id=, verify it as the client SDK must (chain to the emulated root, PCRs,
// nonce, public_key = the config's key, user_data = SHA-256 of the config), then send a sealed
// request through /predict-secure and open the answer. A plaintext request is refused, coded.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  createAttestationVerifier,
  emulatedImageMeasurements,
  writeMeasurementsFile,
  AWS_NITRO_ROOT_G1_PEM,
} from '../../attestation/index.js';
import { startEmulatedEnclave } from '../../enclave/index.js';
import { sampleImage } from '../../common/index.js';
import {
  decodeBinaryResponse,
  decodeKeyConfigList,
  encapsulateRequest,
  encodeBinaryRequest,
  encodeKeyConfig,
} from '../../ohttp/index.js';
import { expectCodedError, startGateway, waitFor } from '../helpers/gateway.js';
import { startModelServer, testModelPath } from '../helpers/model-server.js';

const KEY_ID = 77;

test('a client gets the attested key config and a fresh document bound to it through the gateway, and its sealed request is answered', async (t) => {
  const modelPath = await testModelPath();
  const dir = await mkdtemp(join(tmpdir(), 'mpg-discovery-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const socketPath = join(dir, 'secure.sock');
  const pins = join(dir, 'pcrs.json');
  const measurements = emulatedImageMeasurements({ modelPath });
  await writeMeasurementsFile(pins, measurements);
  const publicServer = await startModelServer(t, ['--threads', '1']);
  const enclave = await startEmulatedEnclave({
    socketPath,
    modelServerArgs: ['--threads', '1', '--log-level', 'warn', '--ohttp-key-id', String(KEY_ID)],
  });
  t.after(() => enclave.stop());
  await enclave.ready;
  const { url } = await startGateway(t, [
    '--secure-upstream',
    `unix:${socketPath}`,
    '--public-upstream',
    publicServer.url,
    '--attestation-pcrs',
    pins,
    '--insecure-trust-emulated-nsm-root',
    enclave.nsmRootFile,
    '--secure-plaintext',
    'refuse',
  ]);
  await waitFor(
    async () => (await fetch(`${url}/.well-known/ohttp-gateway`)).status === 200,
    'the attested key config to be advertised',
    20_000,
  );

  const keys = await fetch(`${url}/.well-known/ohttp-gateway`);
  assert.equal(keys.headers.get('content-type'), 'application/ohttp-keys');
  assert.equal(keys.headers.get('cache-control'), 'no-store');
  const configs = decodeKeyConfigList(new Uint8Array(await keys.arrayBuffer()));
  assert.deepEqual(
    configs.map((config) => config.keyId),
    [KEY_ID],
  );
  const config = configs[0]!;

  const nonce = randomBytes(32);
  const attestation = await fetch(`${url}/attestation?nonce=${nonce.toString('hex')}&key-id=${KEY_ID}`);
  assert.equal(attestation.status, 200);
  assert.equal(attestation.headers.get('content-type'), 'application/cbor');
  assert.equal(attestation.headers.get('cache-control'), 'no-store');
  const verifier = createAttestationVerifier({
    expectedPcrs: measurements,
    trustedRoots: [AWS_NITRO_ROOT_G1_PEM, await readFile(enclave.nsmRootFile, 'utf8')],
    requirePublicKey: true,
  });
  const verified = verifier.verify(new Uint8Array(await attestation.arrayBuffer()), { nonce });
  assert.ok(verified.ok, `the document verifies: ${verified.reason}`);
  assert.deepEqual(
    Buffer.from(verified.document!.publicKey!),
    Buffer.from(config.publicKey),
    "public_key is the config's key",
  );
  assert.deepEqual(
    Buffer.from(verified.document!.userData!),
    createHash('sha256').update(encodeKeyConfig(config)).digest(),
    'user_data binds the config',
  );
  await expectCodedError(
    await fetch(`${url}/attestation?nonce=${nonce.toString('hex')}&key-id=${(KEY_ID + 1) % 256}`),
    422,
    'GW_OHTTP_UNKNOWN_KEY',
  );

  const body = Buffer.from(
    JSON.stringify({ images: [(await sampleImage({ width: 64, height: 64 })).toString('base64')], topk: 3 }),
  );
  await expectCodedError(
    await fetch(`${url}/predict-secure`, { method: 'POST', headers: { 'content-type': 'application/json' }, body }),
    415,
    'GW_SECURE_PLAINTEXT_REFUSED',
  );
  const sealed = await encapsulateRequest(
    config,
    encodeBinaryRequest({
      method: 'POST',
      scheme: 'https',
      authority: 'enclave',
      path: '/predict',
      headers: [['content-type', 'application/json']],
      body,
    }),
  );
  const answer = await fetch(`${url}/predict-secure`, {
    method: 'POST',
    headers: { 'content-type': 'message/ohttp-req' },
    body: sealed.message,
  });
  assert.equal(answer.status, 200);
  assert.equal(answer.headers.get('content-type'), 'message/ohttp-res');
  const inner = decodeBinaryResponse(await sealed.openResponse(new Uint8Array(await answer.arrayBuffer())));
  assert.equal(inner.status, 200);
  const result = JSON.parse(Buffer.from(inner.body).toString('utf8')) as { model: string; predictions: unknown[] };
  assert.equal(typeof result.model, 'string');
  assert.equal(result.predictions.length, 1, 'one prediction for the one image');

  const readyz = (await (await fetch(`${url}/readyz`)).json()) as {
    attestation: { members: { attested: boolean; ohttpKeyId?: number }[] };
  };
  assert.deepEqual(
    readyz.attestation.members.map((member) => [member.attested, member.ohttpKeyId]),
    [[true, KEY_ID]],
  );
});
