// The pinned AWS root, and a genuine document recorded from a Nitro enclave (test/fixtures/
// attestation/README.md says where it comes from) verified against it at its recorded time.
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import {
  AWS_NITRO_ROOT_G1_PEM,
  AWS_NITRO_ROOT_G1_SHA256,
  createEmulatedNsm,
  emulatedMeasurements,
  verifyAttestation,
} from '../../attestation/index.js';

const GENUINE = Buffer.from(
  readFileSync(
    new URL('../../../test/fixtures/attestation/aws-genuine-2026-02-06.b64', import.meta.url),
    'utf8',
  ).trim(),
  'base64',
);
const RECORDED_AT = new Date('2026-02-06T08:30:00Z');

test('the shipped AWS root has the fingerprint AWS publishes', () => {
  const root = new X509Certificate(AWS_NITRO_ROOT_G1_PEM);
  assert.equal(
    root.fingerprint256,
    '64:1A:03:21:A3:E2:44:EF:E4:56:46:31:95:D6:06:31:7E:D7:CD:CC:3C:17:56:E0:98:93:F3:C6:8F:79:BB:5B',
  );
  assert.equal(AWS_NITRO_ROOT_G1_SHA256, root.fingerprint256);
  assert.equal(
    root.subject.split('\n').find((part) => part.startsWith('CN=')),
    'CN=aws.nitro-enclaves',
  );
});

test('a genuine document (untagged, indefinite-length map, 8-byte timestamp, null public_key) verifies against the AWS root at its time', () => {
  const result = verifyAttestation(GENUINE, { at: RECORDED_AT, maxAgeMs: 10 * 60_000 });
  assert.equal(result.ok, true, JSON.stringify(result.checks.at(-1)));
  assert.equal(result.document?.cabundle.length, 4);
  assert.equal(result.document?.publicKey, null);
  assert.equal(result.document?.pcrs.size, 16);
  assert.deepEqual(
    result.checks.filter((check) => check.status === 'skipped').map((check) => check.name),
    ['pcrs', 'nonce', 'public_key'],
  );
});

test('the same genuine document is refused once its certificates expired, or under another root', () => {
  assert.equal(verifyAttestation(GENUINE, { at: new Date('2026-02-08T00:00:00Z') }).reason, 'validity');
  const otherRoot = verifyAttestation(GENUINE, {
    at: RECORDED_AT,
    trustedRoots: [createEmulatedNsm().rootCertificatePem],
  });
  assert.equal(otherRoot.reason, 'root');
  assert.equal(
    verifyAttestation(GENUINE, { at: RECORDED_AT, expectedPcrs: emulatedMeasurements() }).reason,
    'pcr_mismatch',
  );
});
