// verifyAttestationAsync runs a cold document's signatures at once on the thread pool, then the
// same synchronous checks: for every document, good or bad, its result equals verifyAttestation's,
// and what it leaves in a shared cache never lets a bad document pass afterwards.
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import type { VerifyOptions } from '../../attestation/index.js';
import { VerifiedLinkCache, verifyAttestation, verifyAttestationAsync } from '../../attestation/index.js';
import { MEASUREMENTS, NONCE, NOW, flipByte, offsetOf, testNsm } from './fixtures.js';

const nsm = testNsm();
const other = testNsm();
const good = nsm.attest({ nonce: NONCE, publicKey: Buffer.alloc(32, 1) });
const moduleId = Buffer.from(nsm.moduleId);
const leaf = offsetOf(good, nsm.leafCertificate);
const intermediate = offsetOf(good, nsm.intermediateCertificate);

const documents: Record<string, Uint8Array> = {
  good,
  'flipped payload byte': flipByte(good, offsetOf(good, moduleId) + moduleId.length - 1),
  'flipped signature byte': flipByte(good, good.length - 1),
  'flipped leaf certificate byte': flipByte(good, leaf + nsm.leafCertificate.length - 2),
  'flipped intermediate certificate byte': flipByte(good, intermediate + nsm.intermediateCertificate.length - 2),
  'another signing key': nsm.attest({ nonce: NONCE }, { signingKey: generateKeyPairSync('ec', { namedCurve: 'secp384r1' }).privateKey }),
  'another root': other.attest({ nonce: NONCE }),
  'another intermediate': nsm.attest({ nonce: NONCE }, { payload: { cabundle: [nsm.rootCertificate, other.intermediateCertificate] } }),
  'chain out of order': nsm.attest({ nonce: NONCE }, { payload: { cabundle: [nsm.intermediateCertificate, nsm.rootCertificate] } }),
  'wrong algorithm': nsm.attest({ nonce: NONCE }, { protectedHeader: Buffer.from([0xa1, 0x01, 0x26]) }),
  'not CBOR': Buffer.from([0xff, 0x00, 0x01]),
  'truncated': good.subarray(0, good.length - 10),
};

const options = (linkCache: VerifyOptions['linkCache']): VerifyOptions => ({
  trustedRoots: [nsm.rootCertificate],
  at: NOW,
  expectedPcrs: MEASUREMENTS,
  nonce: NONCE,
  maxAgeMs: 60_000,
  ...(linkCache ? { linkCache } : {}),
});

for (const [name, document] of Object.entries(documents)) {
  test(`async and sync agree on: ${name}`, async () => {
    const sync = verifyAttestation(document, options(undefined));
    const shared = new VerifiedLinkCache();
    const parallel = await verifyAttestationAsync(document, options(shared));
    assert.equal(parallel.ok, sync.ok);
    assert.equal(parallel.reason, sync.reason);
    assert.deepEqual(parallel.checks, sync.checks);
    // Whatever the parallel pass cached, a synchronous verification with that cache agrees too.
    const again = verifyAttestation(document, options(shared));
    assert.equal(again.ok, sync.ok);
    assert.equal(again.reason, sync.reason);
  });
}

test('a bad signature verified in parallel first is still refused by every later verification sharing the cache', async () => {
  const shared = new VerifiedLinkCache();
  assert.equal((await verifyAttestationAsync(good, options(shared))).ok, true);
  for (const name of ['flipped payload byte', 'flipped signature byte', 'another signing key']) {
    assert.equal((await verifyAttestationAsync(documents[name]!, options(shared))).reason, 'signature', name);
    assert.equal(verifyAttestation(documents[name]!, options(shared)).reason, 'signature', name);
  }
});

test('a genuine AWS document verifies in parallel against the pinned AWS root at its own time', async () => {
  const genuine = Buffer.from(readFileSync(new URL('../../../test/fixtures/attestation/aws-genuine-2026-02-06.b64', import.meta.url), 'utf8').trim(), 'base64');
  const result = await verifyAttestationAsync(genuine, { at: new Date('2026-02-06T08:30:00Z'), maxAgeMs: 600_000 });
  assert.equal(result.ok, true, JSON.stringify(result.checks.at(-1)));
  assert.deepEqual(result.checks, verifyAttestation(genuine, { at: new Date('2026-02-06T08:30:00Z'), maxAgeMs: 600_000 }).checks);
});
