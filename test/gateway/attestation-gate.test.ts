// The attestation gate inside the secure route's health checks (UpstreamGroup + AttestationGate),
// against a stand-in enclave on a real socket whose boot, key and NSM a test can swap:
//   - when the process behind a member changes (another boot key), the member is out of rotation
//     before the gate awaits anything, and stays out until the new process is attested;
//   - a process that repeats the attested boot key's hash without holding the key is out at the
//     first health check that asks it to prove possession;
//   - a member ejected while a re-attestation runs is not brought back when it finishes.
import assert from 'node:assert/strict';
import type { KeyObject } from 'node:crypto';
import { createHash, generateKeyPairSync } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import type { Server } from 'node:http';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { test } from 'node:test';
import type { FastifyBaseLogger } from 'fastify';
import type { EmulatedNsm } from '../../attestation/index.js';
import {
  answerChallenge,
  createEmulatedNsm,
  emulatedMeasurements,
  rawX25519PublicKey,
} from '../../attestation/index.js';
import { AttestationGate } from '../../gateway/attestation-gate.js';
import type { AttestationTrust } from '../../gateway/attestation-trust.js';
import { createGatewayMetrics } from '../../gateway/metrics.js';
import { UpstreamGroup } from '../../gateway/upstream-group.js';

const PINNED = emulatedMeasurements({ application: [Buffer.from('the pinned image')] });
const OTHER = emulatedMeasurements({ application: [Buffer.from('other code')] });
const silent = {
  info() {},
  warn() {},
  error() {},
  debug() {},
  child() {
    return silent;
  },
} as unknown as FastifyBaseLogger;
const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface StandIn {
  /** The boot key: its raw public half goes in documents, its private half answers challenges. */
  keys: { publicKey: Buffer; privateKey: KeyObject };
  /** What /readyz reports as the boot key's hash; the real one unless a test makes it lie. */
  reportedKey?: Buffer;
  nsm: EmulatedNsm;
  attestDelayMs: number;
  /** How many /attestation requests it has received. */
  attestations: number;
}

function bootKey(): StandIn['keys'] {
  const { publicKey, privateKey } = generateKeyPairSync('x25519');
  return { publicKey: rawX25519PublicKey(publicKey), privateKey };
}

async function setup(t: TestContext, intervalMs: number) {
  const dir = await mkdtemp(join(tmpdir(), 'mpg-gate-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const pinnedNsm = createEmulatedNsm({ measurements: PINNED });
  const otherNsm = createEmulatedNsm({ measurements: OTHER });
  const rootFile = join(dir, 'root.pem');
  // Both emulated roots are trusted: only the PCRs tell the two enclaves apart.
  await writeFile(rootFile, pinnedNsm.rootCertificatePem + otherNsm.rootCertificatePem);
  const enclave: StandIn = { keys: bootKey(), nsm: pinnedNsm, attestDelayMs: 0, attestations: 0 };
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://enclave');
    if (url.pathname === '/readyz') {
      const challenge = url.searchParams.get('proof');
      const proof = challenge
        ? { proof: answerChallenge(enclave.keys.privateKey, Buffer.from(challenge, 'hex')).toString('hex') }
        : {};
      return void res.end(
        JSON.stringify({
          status: 'ready',
          publicKeySha256: sha256(enclave.reportedKey ?? enclave.keys.publicKey),
          ...proof,
        }),
      );
    }
    enclave.attestations += 1;
    const served = { ...enclave };
    void sleep(served.attestDelayMs).then(() => {
      res.setHeader('content-type', 'application/cbor');
      res.end(
        Buffer.from(
          served.nsm.attest({
            nonce: Buffer.from(url.searchParams.get('nonce') ?? '', 'hex'),
            publicKey: served.keys.publicKey,
          }),
        ),
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const trust: AttestationTrust = {
    mode: 'insecure-emulated-nsm-root',
    expectedPcrs: PINNED,
    emulatedRootFile: rootFile,
    allowDebugMode: false,
    intervalMs,
    retryMs: 5_000,
    maxAgeMs: 60_000,
  };
  // The gate's clock is the test's: the attestation interval passes when the test says so.
  const clock = { now: 0 };
  const gate = new AttestationGate(trust, createGatewayMetrics(), silent, undefined, () => clock.now);
  const timeouts = {
    connections: 2,
    connectTimeoutMs: 1_000,
    headersTimeoutMs: 5_000,
    bodyTimeoutMs: 5_000,
    healthIntervalMs: 10_000,
    healthTimeoutMs: 2_000,
  };
  const group = new UpstreamGroup(
    'secure',
    [`http://127.0.0.1:${(server.address() as AddressInfo).port}`],
    timeouts,
    {},
    gate,
  );
  t.after(() => group.stop());
  return { group, gate, member: group.members[0]!, enclave, otherNsm, clock };
}

test('a member whose process changed is out of rotation from the first health check that sees it, until the new process is attested', async (t) => {
  const { group, member, enclave, otherNsm } = await setup(t, 60_000);
  await group.checkAll();
  assert.equal(group.pick(), member, 'the pinned enclave is attested and takes traffic');

  // Replaced by an enclave running other code, with a new boot key, slow to answer /attestation.
  Object.assign(enclave, { keys: bootKey(), nsm: otherNsm, attestDelayMs: 1_000 });
  let settled = false;
  const attestedBefore = enclave.attestations;
  const check = group.checkAll().finally(() => {
    settled = true;
  });
  // From the moment the health check has seen the new process (it asks for its attestation),
  // sampled on every turn of the event loop until the (slow) attestation is over.
  while (enclave.attestations === attestedBefore) await new Promise((resolve) => setImmediate(resolve));
  const picks: unknown[] = [];
  const problems = new Set<string | undefined>();
  while (!settled) {
    await new Promise((resolve) => setImmediate(resolve));
    if (settled) break;
    picks.push(group.pick());
    problems.add(member.lastProblem);
  }
  assert.ok(picks.length > 0);
  assert.deepEqual(
    picks.filter((pick) => pick !== undefined),
    [],
    'no request may be routed while the new process is being attested',
  );
  assert.deepEqual([...problems], ['attestation: being attested']);
  await check;
  assert.equal(group.pick(), undefined);
  assert.match(member.lastProblem ?? '', /^attestation: pcr_mismatch: /);
});

test('a member ejected while it is being re-attested stays out when the attestation finishes', async (t) => {
  const { group, gate, member, enclave, clock } = await setup(t, 200);
  await group.checkAll();
  assert.equal(group.pick(), member);
  clock.now += 250; // the interval has passed: the next check attests again
  enclave.attestDelayMs = 500;
  const attestedBefore = enclave.attestations;
  const check = group.checkAll();
  while (enclave.attestations === attestedBefore) await new Promise((resolve) => setImmediate(resolve));
  group.eject(member, 'GW_UPSTREAM_CONNECTION_FAILED (a request failed)');
  await check;
  assert.equal(member.healthy, false, 'the ejection stands');
  assert.equal(group.pick(), undefined);
  assert.equal(gate.status(member).attested, false);
  assert.match(gate.status(member).problem ?? '', /^superseded: /);
});

test("a process repeating the attested boot key's hash without holding its private half is out at the next health check", async (t) => {
  const { group, member, enclave } = await setup(t, 60_000);
  await group.checkAll();
  assert.equal(group.pick(), member);
  assert.equal(member.healthy, true);

  // Another process takes the socket, running the pinned image even, but with a boot key of its
  // own, and reports the attested key's hash (which anyone could read from /readyz).
  const attested = enclave.keys.publicKey;
  Object.assign(enclave, { keys: bootKey(), reportedKey: attested });
  await group.checkAll();
  assert.equal(group.pick(), undefined, 'its health check could not prove possession of the attested key');
  assert.match(member.lastProblem ?? '', /^attestation: unproven: /);
});
