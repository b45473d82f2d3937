// The measurements file (nitro-cli's JSON), emulated PCRs from content, and the gateway-facing
// verifier built on them.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { CodedError } from '../../common/index.js';
import {
  AttestationFailure,
  createAttestationVerifier,
  createNonce,
  emulatedMeasurements,
  extendPcr,
  parseMeasurements,
  readMeasurementsFile,
  writeMeasurementsFile,
} from '../../attestation/index.js';
import { MEASUREMENTS, NONCE, NOW, testNsm } from './fixtures.js';

const PCR = (digit: string) => digit.repeat(96);
const nitroJson = (measurements: Record<string, unknown>) => JSON.stringify({ Measurements: measurements });

test('parses what nitro-cli build-enclave prints', () => {
  const parsed = parseMeasurements(
    nitroJson({ HashAlgorithm: 'Sha384 { ... }', PCR0: PCR('A'), PCR1: PCR('b'), PCR2: PCR('0') }),
    'm.json',
  );
  assert.deepEqual(parsed, { hashAlgorithm: 'Sha384 { ... }', pcrs: { 0: PCR('a'), 1: PCR('b'), 2: PCR('0') } });
});

test('a bad measurements file is ATT_MEASUREMENTS_INVALID naming the file and the field', () => {
  const cases: [string, RegExp][] = [
    ['not json', /m\.json: not valid JSON/],
    ['{}', /m\.json: no "Measurements" object/],
    [
      nitroJson({ HashAlgorithm: 'Sha256', PCR0: PCR('a'), PCR1: PCR('a'), PCR2: PCR('a') }),
      /"Measurements\.HashAlgorithm" is "Sha256"/,
    ],
    [nitroJson({ HashAlgorithm: 'Sha384 { ... }', PCR1: PCR('a'), PCR2: PCR('a') }), /"Measurements\.PCR0" is missing/],
    [
      nitroJson({ HashAlgorithm: 'Sha384 { ... }', PCR0: PCR('a'), PCR1: 'abc', PCR2: PCR('a') }),
      /"Measurements\.PCR1" is 3 characters/,
    ],
    [
      nitroJson({ HashAlgorithm: 'Sha384 { ... }', PCR0: PCR('a'), PCR1: PCR('a'), PCR2: PCR('g') }),
      /"Measurements\.PCR2"/,
    ],
  ];
  for (const [json, message] of cases) {
    assert.throws(
      () => parseMeasurements(json, 'm.json'),
      (error: CodedError) => error.code === 'ATT_MEASUREMENTS_INVALID' && message.test(error.message),
      json,
    );
  }
});

test('emulated measurements are deterministic SHA-384 extensions of the contents, never all zeros', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'mpg-measure-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const app = join(dir, 'app.js');
  await writeFile(app, 'console.log(1)');
  const fromPath = emulatedMeasurements({ kernel: [Buffer.from('k')], application: [app] });
  const fromBytes = emulatedMeasurements({ kernel: [Buffer.from('k')], application: [Buffer.from('console.log(1)')] });
  assert.deepEqual(fromPath, fromBytes);
  assert.equal(
    fromPath.pcrs[0],
    extendPcr('mpg-emulated-pcr0', [Buffer.from('k'), Buffer.from('console.log(1)')]).toString('hex'),
  );
  assert.notEqual(emulatedMeasurements({ application: [Buffer.from('console.log(2)')] }).pcrs[2], fromPath.pcrs[2]);
  assert.equal(
    emulatedMeasurements({ image: [Buffer.from('eif')] }).pcrs[0],
    extendPcr('mpg-emulated-pcr0', [Buffer.from('eif')]).toString('hex'),
  );
  for (const pcr of Object.values(emulatedMeasurements().pcrs)) assert.match(pcr, /^(?!0+$)[0-9a-f]{96}$/);

  const file = join(dir, 'measurements.json');
  await writeMeasurementsFile(file, fromPath);
  assert.deepEqual(await readMeasurementsFile(file), fromPath);
  await assert.rejects(readMeasurementsFile(join(dir, 'missing.json')), /missing\.json: no such file/);
});

test('createAttestationVerifier: nonce required, verifyOrThrow gives the document or ATT_VERIFICATION_FAILED with the reason', () => {
  const nsm = testNsm();
  const verifier = createAttestationVerifier({
    trustedRoots: [nsm.rootCertificatePem],
    expectedPcrs: MEASUREMENTS,
    now: () => NOW,
  });
  const document = nsm.attest({ nonce: NONCE });
  assert.equal(verifier.verifyOrThrow(document, { nonce: NONCE }).moduleId, nsm.moduleId);
  // The second time the chain's links come from the cache; the result is the same.
  assert.equal(verifier.verify(document, { nonce: NONCE }).ok, true);
  assert.throws(
    () => verifier.verifyOrThrow(document, { nonce: createNonce() }),
    (error: CodedError) =>
      error.code === 'ATT_VERIFICATION_FAILED' &&
      error.statusCode === 503 &&
      error.cause instanceof AttestationFailure &&
      error.cause.reason === 'nonce',
  );
  assert.throws(() => verifier.verify(document, { nonce: new Uint8Array() }), /non-empty nonce/);
  const stale = createAttestationVerifier({
    trustedRoots: [nsm.rootCertificate],
    expectedPcrs: MEASUREMENTS,
    now: () => new Date(NOW.getTime() + 5 * 60_000 + 1),
  });
  assert.equal(stale.verify(document, { nonce: NONCE }).reason, 'stale');
});

test('the emulated NSM refuses oversize request fields (ATT_NSM_REQUEST_INVALID)', () => {
  assert.throws(
    () => testNsm().attest({ userData: Buffer.alloc(513) }),
    (error: CodedError) => error.code === 'ATT_NSM_REQUEST_INVALID',
  );
});

test('bad verifier options are ATT_OPTION_INVALID or ATT_ROOT_INVALID', () => {
  const nsm = testNsm();
  const document = nsm.attest();
  assert.throws(
    () => createAttestationVerifier({ trustedRoots: ['not a pem'], expectedPcrs: MEASUREMENTS }),
    (error: CodedError) => error.code === 'ATT_ROOT_INVALID',
  );
  assert.throws(
    () =>
      createAttestationVerifier({
        trustedRoots: [Buffer.from([0x30, 0x03, 0x02, 0x01, 0x00])],
        expectedPcrs: MEASUREMENTS,
      }),
    (error: CodedError) => error.code === 'ATT_ROOT_INVALID',
  );
  assert.throws(
    () => createAttestationVerifier({ expectedPcrs: undefined as never }),
    (error: CodedError) => error.code === 'ATT_OPTION_INVALID',
  );
  const verifier = createAttestationVerifier({
    trustedRoots: [nsm.rootCertificate],
    expectedPcrs: MEASUREMENTS,
    maxAgeMs: -1,
    now: () => NOW,
  });
  assert.throws(
    () => verifier.verify(document, { nonce: NONCE }),
    (error: CodedError) => error.code === 'ATT_OPTION_INVALID',
  );
});
