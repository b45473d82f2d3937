// The attestation gate learns a secure member's OHTTP key config only when the attested document
// binds it: public_key is the config's key and user_data the SHA-256 of its encoding. Against
// stand-in enclaves on real sockets whose documents and key lists a test can make wrong:
//   - a bound config is set on the member, and cleared when the gate forgets the member;
//   - user_data that does not bind the config, or a config with another key, refuses the member;
//   - two attested members with one key id: the second is refused, saying why;
//   - a member without /ohttp-keys is attested for plaintext only (no config, never advertised).
import assert from 'node:assert/strict';
import type { KeyObject } from 'node:crypto';
import { createHash, generateKeyPairSync } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { test } from 'node:test';
import type { FastifyBaseLogger } from 'fastify';
import {
  answerChallenge,
  createEmulatedNsm,
  emulatedMeasurements,
  rawX25519PublicKey,
} from '../../attestation/index.js';
import type { KeyConfig } from '../../ohttp/index.js';
import {
  AEAD_AES_128_GCM,
  KDF_HKDF_SHA256,
  KEM_X25519_HKDF_SHA256,
  encodeKeyConfig,
  encodeKeyConfigList,
} from '../../ohttp/index.js';
import { AttestationGate } from '../../gateway/attestation-gate.js';
import type { AttestationTrust } from '../../gateway/attestation-trust.js';
import { createGatewayMetrics } from '../../gateway/metrics.js';
import { ohttpKeyBinding } from '../../gateway/ohttp-key-binding.js';
import { UpstreamGroup } from '../../gateway/upstream-group.js';

const PINNED = emulatedMeasurements({ application: [Buffer.from('the pinned image')] });
const silent = {
  info() {},
  warn() {},
  error() {},
  debug() {},
  child() {
    return silent;
  },
} as unknown as FastifyBaseLogger;
const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest();

interface StandIn {
  url: string;
  publicKey: Buffer;
  privateKey: KeyObject;
  config: KeyConfig;
  /** What the document's user_data carries; the real binding unless a test changes it. */
  userData: Uint8Array;
  /** The key config list served; the real one unless a test changes it; undefined: 404. */
  keyList: Uint8Array | undefined;
}

function keyConfig(keyId: number, publicKey: Uint8Array): KeyConfig {
  return {
    keyId,
    kemId: KEM_X25519_HKDF_SHA256,
    publicKey,
    suites: [{ kdfId: KDF_HKDF_SHA256, aeadId: AEAD_AES_128_GCM }],
  };
}

async function setup(t: TestContext, keyIds: number[]) {
  const dir = await mkdtemp(join(tmpdir(), 'mpg-ohttp-bind-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const nsm = createEmulatedNsm({ measurements: PINNED });
  const rootFile = join(dir, 'root.pem');
  await writeFile(rootFile, nsm.rootCertificatePem);
  const enclaves: StandIn[] = [];
  for (const keyId of keyIds) {
    const { publicKey: publicKeyObject, privateKey } = generateKeyPairSync('x25519');
    const publicKey = rawX25519PublicKey(publicKeyObject);
    const config = keyConfig(keyId, publicKey);
    const enclave: StandIn = {
      url: '',
      publicKey,
      privateKey,
      config,
      userData: sha256(encodeKeyConfig(config)),
      keyList: encodeKeyConfigList([config]),
    };
    const server = createServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://enclave');
      if (url.pathname === '/readyz') {
        const challenge = url.searchParams.get('proof');
        const proof = challenge
          ? { proof: answerChallenge(enclave.privateKey, Buffer.from(challenge, 'hex')).toString('hex') }
          : {};
        return void res.end(
          JSON.stringify({ status: 'ready', publicKeySha256: sha256(enclave.publicKey).toString('hex'), ...proof }),
        );
      }
      if (url.pathname === '/ohttp-keys') {
        // With a Content-Length, as the model server (Fastify) sends it: the gateway's connection reads no other framing.
        if (!enclave.keyList) return void res.writeHead(404, { 'content-length': 2 }).end('{}');
        return void res
          .writeHead(200, { 'content-type': 'application/ohttp-keys', 'content-length': enclave.keyList.length })
          .end(Buffer.from(enclave.keyList));
      }
      res.setHeader('content-type', 'application/cbor');
      res.end(
        Buffer.from(
          nsm.attest({
            nonce: Buffer.from(url.searchParams.get('nonce') ?? '', 'hex'),
            publicKey: enclave.publicKey,
            userData: enclave.userData,
          }),
        ),
      );
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
    enclave.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    enclaves.push(enclave);
  }
  const trust: AttestationTrust = {
    mode: 'insecure-emulated-nsm-root',
    expectedPcrs: PINNED,
    emulatedRootFile: rootFile,
    allowDebugMode: false,
    intervalMs: 60_000,
    retryMs: 5_000,
    maxAgeMs: 60_000,
  };
  const options = {
    connections: 2,
    connectTimeoutMs: 1_000,
    headersTimeoutMs: 5_000,
    bodyTimeoutMs: 5_000,
    healthIntervalMs: 10_000,
    healthTimeoutMs: 2_000,
  };
  const members: { group?: UpstreamGroup } = {};
  const gate = new AttestationGate(
    trust,
    createGatewayMetrics(),
    silent,
    ohttpKeyBinding(() => members.group!.members),
  );
  const group = (members.group = new UpstreamGroup(
    'secure',
    enclaves.map((enclave) => enclave.url),
    options,
    {},
    gate,
  ));
  t.after(() => group.stop());
  return { group, gate, enclaves };
}

test('a member whose attestation binds its key config gets it; forgetting the member clears it', async (t) => {
  const { group, gate, enclaves } = await setup(t, [7]);
  const member = group.members[0]!;
  await group.checkAll();
  assert.equal(member.healthy, true);
  assert.equal(member.ohttpKeyConfig?.keyId, 7);
  assert.deepEqual(Buffer.from(member.ohttpKeyConfig.encoded), Buffer.from(encodeKeyConfig(enclaves[0]!.config)));
  group.eject(member, 'a request failed');
  assert.equal(member.ohttpKeyConfig, undefined, 'cleared with the attestation');
  assert.equal(gate.status(member).attested, false);
});

test('user_data that does not bind the served config refuses the member', async (t) => {
  const { group, enclaves } = await setup(t, [7]);
  // The document binds key id 8; the member serves key id 7 with the same key.
  enclaves[0]!.userData = sha256(encodeKeyConfig(keyConfig(8, enclaves[0]!.publicKey)));
  await group.checkAll();
  const member = group.members[0]!;
  assert.equal(member.healthy, false);
  assert.equal(member.ohttpKeyConfig, undefined);
  assert.match(member.lastProblem ?? '', /^attestation: ohttp_key_mismatch: the attested user_data is not the SHA-256/);
});

test('a served config whose key is not the attested public_key refuses the member', async (t) => {
  const { group, enclaves } = await setup(t, [7]);
  const other = rawX25519PublicKey(generateKeyPairSync('x25519').publicKey);
  const config = keyConfig(7, other);
  Object.assign(enclaves[0]!, { keyList: encodeKeyConfigList([config]), userData: sha256(encodeKeyConfig(config)) });
  await group.checkAll();
  assert.equal(group.members[0]!.healthy, false);
  assert.match(
    group.members[0]!.lastProblem ?? '',
    /^attestation: ohttp_key_mismatch: the OHTTP key config's public key is not the attested public_key/,
  );
});

test('a malformed or longer key list refuses the member', async (t) => {
  const { group, enclaves } = await setup(t, [7, 9]);
  enclaves[0]!.keyList = Uint8Array.from([0, 45, 7]);
  enclaves[1]!.keyList = encodeKeyConfigList([enclaves[1]!.config, keyConfig(10, enclaves[1]!.publicKey)]);
  await group.checkAll();
  assert.match(
    group.members[0]!.lastProblem ?? '',
    /^attestation: ohttp_keys: GET \/ohttp-keys sent no valid key config list/,
  );
  assert.match(group.members[1]!.lastProblem ?? '', /^attestation: ohttp_keys: GET \/ohttp-keys listed 2 key configs/);
  assert.equal(group.healthyCount, 0);
});

test('two attested members with the same key id: the second is refused, naming the first', async (t) => {
  const { group } = await setup(t, [7, 7]);
  await group.checkAll();
  const [first, second] = [group.members[0]!, group.members[1]!];
  const holder = first.ohttpKeyConfig ? first : second;
  const refused = holder === first ? second : first;
  assert.equal(holder.healthy, true);
  assert.equal(holder.ohttpKeyConfig?.keyId, 7);
  assert.equal(refused.healthy, false);
  assert.equal(refused.ohttpKeyConfig, undefined);
  assert.match(
    refused.lastProblem ?? '',
    new RegExp(
      `^attestation: ohttp_key_id_taken: key id 7 is already held by the attested member ${holder.url.replaceAll('.', '\\.')}`,
    ),
  );
});

test('a member without /ohttp-keys is attested for plaintext only: no key config', async (t) => {
  const { group, enclaves } = await setup(t, [7]);
  enclaves[0]!.keyList = undefined;
  await group.checkAll();
  assert.equal(group.members[0]!.healthy, true);
  assert.equal(group.members[0]!.ohttpKeyConfig, undefined);
});
