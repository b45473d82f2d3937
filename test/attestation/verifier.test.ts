// verifyAttestation on documents from the emulated NSM: what it accepts, and one test per way a
// document is refused, each with its stable reason.
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { test } from 'node:test';
import type { CborValue, VerificationResult } from '../../attestation/index.js';
import {
  CborTag,
  FAILURE_REASONS,
  decodeCbor,
  emulatedMeasurements,
  encodeCbor,
  parseAttestationPayload,
} from '../../attestation/index.js';
import { NONCE, NOW, flipByte, offsetOf, testNsm, verifyWith } from './fixtures.js';

const nsm = testNsm();
const good = nsm.attest({ nonce: NONCE });

function assertRefused(result: VerificationResult, reason: string, detail?: RegExp): void {
  const last = result.checks.at(-1)!;
  assert.equal(result.ok, false, 'expected a refusal');
  assert.equal(result.reason, reason, last.detail);
  assert.equal(last.status, 'failed');
  assert.equal(last.reason, reason);
  if (detail) assert.match(last.detail, detail);
  assert.ok(result.checks.slice(0, -1).every((check) => check.status !== 'failed'));
}

test('a good document passes every check, in order', () => {
  const result = verifyWith(nsm, good, { requirePublicKey: false });
  assert.equal(result.ok, true, JSON.stringify(result.checks.at(-1)));
  assert.deepEqual(
    result.checks.map((check) => `${check.name}:${check.status}`),
    [
      'size',
      'cose',
      'algorithm',
      'payload',
      'root',
      'chain',
      'validity',
      'signature',
      'debug_mode',
      'pcrs',
      'nonce',
      'freshness',
      'public_key:skipped',
    ].map((name) => (name.includes(':') ? name : `${name}:passed`)),
  );
  assert.match(result.document!.moduleId, /^emulated-nsm-[0-9a-f]{16}$/);
  assert.equal(result.document!.timestamp, NOW.getTime());
  assert.equal(result.document!.publicKey, null);
  assert.equal(result.document!.userData, null);
});

test('accepted: untagged COSE_Sign1', () => {
  assert.equal(verifyWith(nsm, nsm.attest({ nonce: NONCE }, { tagged: false })).ok, true);
});

test('accepted: an indefinite-length payload map', () => {
  const document = nsm.attest({ nonce: NONCE }, { indefiniteLengthPayload: true });
  const payload = ((decodeCbor(document) as CborTag).value as Uint8Array[])[2]!;
  assert.equal(payload[0], 0xbf);
  assert.equal(verifyWith(nsm, document).ok, true);
});

test('accepted: optional fields null, absent, or set', () => {
  const absent = nsm.attest({}, { payload: { public_key: undefined, user_data: undefined, nonce: undefined } });
  assert.equal(verifyWith(nsm, absent, { nonce: undefined }).ok, true);
  const set = nsm.attest({ nonce: NONCE, userData: Buffer.from('hello'), publicKey: Buffer.alloc(97, 4) });
  const result = verifyWith(nsm, set, { requirePublicKey: true });
  assert.equal(result.ok, true);
  assert.equal(result.document!.publicKey!.length, 97);
});

test('accepted: a timestamp a CBOR decoder returned as a bigint', () => {
  const payload = decodeCbor(((decodeCbor(good) as CborTag).value as Uint8Array[])[2]!) as Map<string, unknown>;
  payload.set('timestamp', BigInt(NOW.getTime()));
  assert.equal(parseAttestationPayload(payload as never).timestamp, NOW.getTime());
  payload.set('timestamp', 2n ** 64n - 1n);
  assert.throws(() => parseAttestationPayload(payload as never), /timestamp/);
});

test('accepted: debug-mode PCRs when explicitly allowed', () => {
  const debug = testNsm({ debugMode: true });
  const result = verifyWith(debug, debug.attest({ nonce: NONCE }), { allowDebugMode: true, expectedPcrs: undefined });
  assert.equal(result.ok, true);
  assert.match(result.checks.find((check) => check.name === 'debug_mode')!.detail, /allowed/);
});

test('refused: oversize document (too_large)', () => {
  assertRefused(verifyWith(nsm, good, { maxBytes: good.length - 1 }), 'too_large');
  assertRefused(verifyWith(nsm, Buffer.concat([good, Buffer.alloc(20_000)])), 'too_large');
});

test('refused: malformed CBOR (cbor): truncated, trailing bytes, garbage, malformed payload', () => {
  assertRefused(verifyWith(nsm, good.subarray(0, good.length - 1)), 'cbor', /truncated/);
  assertRefused(verifyWith(nsm, Buffer.concat([good, Uint8Array.of(0)])), 'cbor', /trailing/);
  assertRefused(verifyWith(nsm, Buffer.from('ff00', 'hex')), 'cbor', /unexpected break/);
  assertRefused(
    verifyWith(nsm, nsm.attest({ nonce: NONCE }, { rawPayload: Uint8Array.of(0xa1, 0x61) })),
    'cbor',
    /payload/,
  );
});

test('refused: not a COSE_Sign1 (cose_structure)', () => {
  const [protectedHeader, unprotected, payload, signature] = (decodeCbor(good) as CborTag).value as [
    CborValue,
    CborValue,
    CborValue,
    Uint8Array,
  ];
  assertRefused(
    verifyWith(nsm, encodeCbor(new CborTag(98, [protectedHeader, unprotected, payload, signature]))),
    'cose_structure',
    /tag 98/,
  );
  assertRefused(verifyWith(nsm, encodeCbor([protectedHeader, unprotected, payload])), 'cose_structure');
  assertRefused(
    verifyWith(nsm, encodeCbor(new CborTag(18, [protectedHeader, unprotected, payload, signature.subarray(0, 64)]))),
    'cose_structure',
    /64 bytes/,
  );
});

test('refused: wrong algorithm (algorithm)', () => {
  assertRefused(
    verifyWith(nsm, nsm.attest({ nonce: NONCE }, { protectedHeader: encodeCbor(new Map([[1, -7]])) })),
    'algorithm',
    /-7/,
  );
  assertRefused(
    verifyWith(nsm, nsm.attest({ nonce: NONCE }, { protectedHeader: encodeCbor(new Map()) })),
    'algorithm',
    /missing/,
  );
});

const REQUIRED = ['module_id', 'digest', 'timestamp', 'pcrs', 'certificate', 'cabundle'];
for (const field of REQUIRED) {
  test(`refused: payload without ${field} (payload_field)`, () => {
    assertRefused(
      verifyWith(nsm, nsm.attest({ nonce: NONCE }, { payload: { [field]: undefined } })),
      'payload_field',
      new RegExp(`${field} is missing`),
    );
  });
}

const WRONG_TYPES: [string, unknown, RegExp][] = [
  ['module_id', 42, /module_id/],
  ['module_id', '', /module_id is empty/],
  ['digest', 'SHA256', /digest is "SHA256"/],
  ['digest', Buffer.from('SHA384'), /digest/],
  ['timestamp', '2026-03-01', /timestamp/],
  ['timestamp', -5, /timestamp is -5/],
  ['timestamp', 0, /timestamp is 0/],
  ['pcrs', [Buffer.alloc(48)], /pcrs is an array/],
  ['pcrs', new Map(), /pcrs has 0 entries/],
  ['pcrs', new Map([[32, Buffer.alloc(48)]]), /pcrs key 32/],
  ['pcrs', new Map([['0', Buffer.alloc(48)]]), /pcrs key "0"/],
  ['pcrs', new Map([[0, Buffer.alloc(47)]]), /pcrs\[0\]/],
  ['pcrs', new Map([[0, 'zeros']]), /pcrs\[0\]/],
  ['certificate', 'MIIB...', /certificate is a string/],
  ['certificate', Buffer.alloc(0), /certificate is 0 bytes/],
  ['cabundle', Buffer.alloc(10), /cabundle is a byte string/],
  ['cabundle', [], /cabundle has 0 certificates/],
  ['cabundle', ['cert'], /cabundle\[0\]/],
  ['public_key', 'key', /public_key is a string/],
  ['public_key', Buffer.alloc(1025), /public_key is 1025 bytes/],
  ['public_key', Buffer.alloc(0), /public_key is 0 bytes, expected 1 to 1024/],
  ['timestamp', 8.64e15 + 1, /timestamp is 8640000000000001, expected a positive integer \(ms\) up to/],
  ['user_data', 7, /user_data/],
  ['user_data', Buffer.alloc(513), /user_data is 513 bytes, expected 0 to 512/],
  ['nonce', true, /nonce/],
  ['nonce', Buffer.alloc(513), /nonce is 513 bytes, expected 0 to 512/],
  ['unexpected_field', 1, /unknown field "unexpected_field"/],
];
for (const [field, value, detail] of WRONG_TYPES) {
  test(`refused: ${field} = ${Buffer.isBuffer(value) ? `${value.length} bytes` : JSON.stringify(value, (_key, item: unknown) => (item instanceof Map ? `Map(${item.size})` : item))} (payload_field)`, () => {
    assertRefused(
      verifyWith(nsm, nsm.attest({ nonce: NONCE }, { payload: { [field]: value as never } })),
      'payload_field',
      detail,
    );
  });
}

test('refused: a flipped byte in the payload (signature)', () => {
  const moduleId = Buffer.from(nsm.moduleId);
  assertRefused(verifyWith(nsm, flipByte(good, offsetOf(good, moduleId) + moduleId.length - 1)), 'signature');
});

test('refused: a flipped byte in the signature (signature)', () => {
  assertRefused(verifyWith(nsm, flipByte(good, good.length - 1)), 'signature');
});

test('refused: a flipped byte in the leaf certificate (chain)', () => {
  const leaf = offsetOf(good, nsm.leafCertificate);
  assertRefused(verifyWith(nsm, flipByte(good, leaf + nsm.leafCertificate.length - 2)), 'chain');
});

test('refused: a flipped byte in the intermediate certificate (chain)', () => {
  const intermediate = offsetOf(good, nsm.intermediateCertificate);
  assertRefused(verifyWith(nsm, flipByte(good, intermediate + nsm.intermediateCertificate.length - 2)), 'chain');
});

test("refused: signed by a key other than the leaf certificate's (signature)", () => {
  const stranger = generateKeyPairSync('ec', { namedCurve: 'secp384r1' }).privateKey;
  assertRefused(verifyWith(nsm, nsm.attest({ nonce: NONCE }, { signingKey: stranger })), 'signature');
});

test('refused: a root that is not trusted (root), including the AWS root by default', () => {
  const other = testNsm();
  assertRefused(verifyWith(nsm, other.attest({ nonce: NONCE })), 'root', /not a trusted root/);
  assertRefused(verifyWith(nsm, good, { trustedRoots: undefined }), 'root');
});

test('refused: broken chain order (root, chain)', () => {
  assertRefused(
    verifyWith(
      nsm,
      nsm.attest({ nonce: NONCE }, { payload: { cabundle: [nsm.intermediateCertificate, nsm.rootCertificate] } }),
    ),
    'root',
  );
  assertRefused(
    verifyWith(nsm, nsm.attest({ nonce: NONCE }, { payload: { cabundle: [nsm.rootCertificate] } })),
    'chain',
    /certificate is not issued by cabundle\[0\]/,
  );
  const other = testNsm();
  assertRefused(
    verifyWith(
      nsm,
      nsm.attest({ nonce: NONCE }, { payload: { cabundle: [nsm.rootCertificate, other.intermediateCertificate] } }),
    ),
    'chain',
    /cabundle\[1\]/,
  );
});

test('refused: more CA certificates than a pathLenConstraint allows (chain)', () => {
  const cabundle = [nsm.rootCertificate, nsm.intermediateCertificate, nsm.intermediateCertificate];
  assertRefused(verifyWith(nsm, nsm.attest({ nonce: NONCE }, { payload: { cabundle } })), 'chain', /pathLenConstraint/);
});

test('refused: a leaf certificate that is a CA, or a CA used as the leaf (chain)', () => {
  assertRefused(
    verifyWith(
      nsm,
      nsm.attest(
        { nonce: NONCE },
        { payload: { certificate: nsm.intermediateCertificate, cabundle: [nsm.rootCertificate] } },
      ),
    ),
    'chain',
    /leaf certificate is a CA/,
  );
});

test('refused: an expired leaf (validity)', () => {
  const expired = testNsm({
    leafNotBefore: new Date(NOW.getTime() - 7200_000),
    leafNotAfter: new Date(NOW.getTime() - 1000),
  });
  assertRefused(verifyWith(expired, expired.attest({ nonce: NONCE })), 'validity', /certificate expired at/);
});

test('refused: a leaf not yet valid (validity)', () => {
  const early = testNsm({
    leafNotBefore: new Date(NOW.getTime() + 60_000),
    leafNotAfter: new Date(NOW.getTime() + 7200_000),
  });
  assertRefused(verifyWith(early, early.attest({ nonce: NONCE })), 'validity', /not valid before/);
});

test('re-verifying a recorded document at its own time passes; much later it is refused (validity)', () => {
  assert.equal(verifyWith(nsm, good, { at: NOW, maxAgeMs: undefined }).ok, true);
  assertRefused(
    verifyWith(nsm, good, { at: new Date(NOW.getTime() + 400 * 86_400_000), maxAgeMs: undefined }),
    'validity',
  );
});

test('refused: PCR mismatch (pcr_mismatch)', () => {
  const other = emulatedMeasurements({ application: [Buffer.from('another model server')] });
  assertRefused(verifyWith(nsm, good, { expectedPcrs: other }), 'pcr_mismatch', /PCR0 is [0-9a-f]{96}; expected/);
  const onlyPcr2 = { ...other, pcrs: { ...nsm.measurements.pcrs, 2: other.pcrs[2] } };
  assertRefused(verifyWith(nsm, good, { expectedPcrs: onlyPcr2 }), 'pcr_mismatch', /PCR2/);
});

test('refused: debug-mode PCRs unless allowed (debug_mode)', () => {
  const debug = testNsm({ debugMode: true });
  assertRefused(verifyWith(debug, debug.attest({ nonce: NONCE })), 'debug_mode', /all zeros/);
});

test('refused: nonce mismatch or absent (nonce)', () => {
  assertRefused(verifyWith(nsm, nsm.attest({ nonce: Buffer.from('another nonce') })), 'nonce', /differs/);
  assertRefused(verifyWith(nsm, nsm.attest({})), 'nonce', /no nonce/);
});

test('refused: stale or future timestamp (stale)', () => {
  assertRefused(verifyWith(nsm, good, { at: new Date(NOW.getTime() + 60_001) }), 'stale', /60001 ms old/);
  assertRefused(verifyWith(nsm, good, { at: new Date(NOW.getTime() - 60_001) }), 'stale', /in the future/);
  assert.equal(verifyWith(nsm, good, { at: new Date(NOW.getTime() + 60_000) }).ok, true);
});

test('refused: public_key required but absent (public_key_missing)', () => {
  assertRefused(verifyWith(nsm, good, { requirePublicKey: true }), 'public_key_missing');
});

test('every reason is produced by some check and the set is what the README documents', () => {
  assert.deepEqual(
    [...FAILURE_REASONS],
    [
      'too_large',
      'cbor',
      'cose_structure',
      'algorithm',
      'payload_field',
      'root',
      'chain',
      'validity',
      'signature',
      'pcr_mismatch',
      'debug_mode',
      'nonce',
      'stale',
      'public_key_missing',
    ],
  );
});

test('debug mode allowed with pinned measurements: accepted, and the pins are reported as not checked, since zeros measure nothing', () => {
  const debug = testNsm({ debugMode: true });
  const result = verifyWith(debug, debug.attest({ nonce: NONCE }), { allowDebugMode: true });
  assert.equal(result.ok, true, JSON.stringify(result.checks.at(-1)));
  const pcrs = result.checks.find((check) => check.name === 'pcrs')!;
  assert.equal(pcrs.status, 'skipped');
  assert.match(pcrs.detail, /debug mode: all-zero PCRs measure nothing/);
});
