// Every document verifier.test.ts accepts or refuses, as plain data (bytes and JSON-able options),
// plus the genuine AWS document and bad variants of it: so that the WebCrypto verifier can be held
// to the Node verifier's answers, in Node and inside a real browser (the options cross into the
// page as JSON).
import { readFileSync } from 'node:fs';
import { generateKeyPairSync } from 'node:crypto';
import type {
  CborValue,
  EmulatedNsm,
  PcrMeasurements,
  VerifyOptions,
  WebVerifyOptions,
} from '../../attestation/index.js';
import { CborTag, decodeCbor, emulatedMeasurements, encodeCbor } from '../../attestation/index.js';
import { MEASUREMENTS, NONCE, NOW, flipByte, offsetOf, testNsm } from './fixtures.js';

export const GENUINE = Buffer.from(
  readFileSync(
    new URL('../../../test/fixtures/attestation/aws-genuine-2026-02-06.b64', import.meta.url),
    'utf8',
  ).trim(),
  'base64',
);
/** Inside the genuine document's certificates' one-day validity. */
export const GENUINE_AT = new Date('2026-02-06T08:30:00Z');

/** Verification options that survive JSON (into a browser page). */
export interface PlainOptions {
  /** PEM roots; absent = the AWS root. */
  roots?: string[];
  at: string;
  pcrs?: PcrMeasurements;
  nonceHex?: string;
  maxAgeMs?: number;
  allowDebugMode?: boolean;
  requirePublicKey?: boolean;
  maxBytes?: number;
}

export interface DocumentCase {
  name: string;
  documentBase64: string;
  options: PlainOptions;
  /** undefined: accepted. */
  reason: string | undefined;
}

export function nodeOptions(options: PlainOptions): VerifyOptions {
  return {
    trustedRoots: options.roots,
    at: new Date(options.at),
    expectedPcrs: options.pcrs,
    nonce: options.nonceHex === undefined ? undefined : Buffer.from(options.nonceHex, 'hex'),
    maxAgeMs: options.maxAgeMs,
    allowDebugMode: options.allowDebugMode,
    requirePublicKey: options.requirePublicKey,
    maxBytes: options.maxBytes,
  };
}

export function webOptions(options: PlainOptions): WebVerifyOptions {
  return {
    ...nodeOptions(options),
    trustedRoots: options.roots,
    nonce: options.nonceHex === undefined ? undefined : Uint8Array.from(Buffer.from(options.nonceHex, 'hex')),
  };
}

export function documentCases(): DocumentCase[] {
  const cases: DocumentCase[] = [];
  const nsm = testNsm();
  const good = nsm.attest({ nonce: NONCE });
  /** Every policy check on, as verifier.test.ts's verifyWith does. */
  const add = (
    name: string,
    reason: string | undefined,
    document: Uint8Array,
    using: EmulatedNsm = nsm,
    options: Partial<PlainOptions> = {},
  ) => {
    const base: PlainOptions = {
      roots: [using.rootCertificatePem],
      at: NOW.toISOString(),
      pcrs: MEASUREMENTS,
      nonceHex: NONCE.toString('hex'),
      maxAgeMs: 60_000,
    };
    const merged = { ...base, ...options };
    for (const key of Object.keys(options) as (keyof PlainOptions)[])
      if (options[key] === undefined) delete merged[key];
    cases.push({ name, documentBase64: Buffer.from(document).toString('base64'), options: merged, reason });
  };

  add('good', undefined, good);
  add('untagged', undefined, nsm.attest({ nonce: NONCE }, { tagged: false }));
  add('indefinite-length payload', undefined, nsm.attest({ nonce: NONCE }, { indefiniteLengthPayload: true }));
  add(
    'public key required and present',
    undefined,
    nsm.attest({ nonce: NONCE, userData: Buffer.from('hello'), publicKey: Buffer.alloc(97, 4) }),
    nsm,
    { requirePublicKey: true },
  );
  const debug = testNsm({ debugMode: true });
  add('debug mode allowed', undefined, debug.attest({ nonce: NONCE }), debug, { allowDebugMode: true });
  add('debug mode refused', 'debug_mode', debug.attest({ nonce: NONCE }), debug);

  add('too large', 'too_large', good, nsm, { maxBytes: good.length - 1 });
  add('truncated', 'cbor', good.subarray(0, good.length - 1));
  add('trailing byte', 'cbor', Buffer.concat([good, Uint8Array.of(0)]));
  add('malformed payload', 'cbor', nsm.attest({ nonce: NONCE }, { rawPayload: Uint8Array.of(0xa1, 0x61) }));
  const [protectedHeader, unprotected, payload, signature] = (decodeCbor(good) as CborTag).value as [
    CborValue,
    CborValue,
    CborValue,
    Uint8Array,
  ];
  add('tag 98', 'cose_structure', encodeCbor(new CborTag(98, [protectedHeader, unprotected, payload, signature])));
  add('three items', 'cose_structure', encodeCbor([protectedHeader, unprotected, payload]));
  add(
    'short signature',
    'cose_structure',
    encodeCbor(new CborTag(18, [protectedHeader, unprotected, payload, signature.subarray(0, 64)])),
  );
  add('ES256 header', 'algorithm', nsm.attest({ nonce: NONCE }, { protectedHeader: encodeCbor(new Map([[1, -7]])) }));
  for (const field of ['module_id', 'digest', 'timestamp', 'pcrs', 'certificate', 'cabundle'])
    add(`no ${field}`, 'payload_field', nsm.attest({ nonce: NONCE }, { payload: { [field]: undefined } }));
  add('digest SHA256', 'payload_field', nsm.attest({ nonce: NONCE }, { payload: { digest: 'SHA256' } }));
  add('unknown field', 'payload_field', nsm.attest({ nonce: NONCE }, { payload: { unexpected_field: 1 } }));
  add(
    'PCR of 47 bytes',
    'payload_field',
    nsm.attest({ nonce: NONCE }, { payload: { pcrs: new Map([[0, Buffer.alloc(47)]]) } }),
  );
  add('empty cabundle', 'payload_field', nsm.attest({ nonce: NONCE }, { payload: { cabundle: [] } }));
  add(
    'public_key of 1025 bytes',
    'payload_field',
    nsm.attest({ nonce: NONCE }, { payload: { public_key: Buffer.alloc(1025) } }),
  );
  add(
    'timestamp beyond a Date',
    'payload_field',
    nsm.attest({ nonce: NONCE }, { payload: { timestamp: 8.64e15 + 1 } }),
  );
  add(
    'certificate not DER',
    'chain',
    nsm.attest({ nonce: NONCE }, { payload: { certificate: Buffer.from('not a certificate') } }),
  );

  const moduleId = Buffer.from(nsm.moduleId);
  add('forged: a flipped payload byte', 'signature', flipByte(good, offsetOf(good, moduleId) + moduleId.length - 1));
  add('forged: a flipped signature byte', 'signature', flipByte(good, good.length - 1));
  add(
    'forged: signed by a stranger',
    'signature',
    nsm.attest({ nonce: NONCE }, { signingKey: generateKeyPairSync('ec', { namedCurve: 'secp384r1' }).privateKey }),
  );
  add(
    'forged leaf certificate',
    'chain',
    flipByte(good, offsetOf(good, nsm.leafCertificate) + nsm.leafCertificate.length - 2),
  );
  add(
    'forged intermediate certificate',
    'chain',
    flipByte(good, offsetOf(good, nsm.intermediateCertificate) + nsm.intermediateCertificate.length - 2),
  );
  const other = testNsm();
  add('other root', 'root', other.attest({ nonce: NONCE }));
  add('emulated root against the AWS default', 'root', good, nsm, { roots: undefined });
  add(
    'chain order: intermediate first',
    'root',
    nsm.attest({ nonce: NONCE }, { payload: { cabundle: [nsm.intermediateCertificate, nsm.rootCertificate] } }),
  );
  add(
    'chain: no intermediate',
    'chain',
    nsm.attest({ nonce: NONCE }, { payload: { cabundle: [nsm.rootCertificate] } }),
  );
  add(
    'chain: another intermediate',
    'chain',
    nsm.attest({ nonce: NONCE }, { payload: { cabundle: [nsm.rootCertificate, other.intermediateCertificate] } }),
  );
  add(
    'chain: pathLenConstraint',
    'chain',
    nsm.attest(
      { nonce: NONCE },
      { payload: { cabundle: [nsm.rootCertificate, nsm.intermediateCertificate, nsm.intermediateCertificate] } },
    ),
  );
  add(
    'chain: CA as leaf',
    'chain',
    nsm.attest(
      { nonce: NONCE },
      { payload: { certificate: nsm.intermediateCertificate, cabundle: [nsm.rootCertificate] } },
    ),
  );
  const expired = testNsm({
    leafNotBefore: new Date(NOW.getTime() - 7200_000),
    leafNotAfter: new Date(NOW.getTime() - 1000),
  });
  add('expired leaf', 'validity', expired.attest({ nonce: NONCE }), expired);
  const early = testNsm({
    leafNotBefore: new Date(NOW.getTime() + 60_000),
    leafNotAfter: new Date(NOW.getTime() + 7200_000),
  });
  add('leaf not yet valid', 'validity', early.attest({ nonce: NONCE }), early);
  add('much later', 'validity', good, nsm, {
    at: new Date(NOW.getTime() + 400 * 86_400_000).toISOString(),
    maxAgeMs: undefined,
  });
  add('wrong PCRs', 'pcr_mismatch', good, nsm, {
    pcrs: emulatedMeasurements({ application: [Buffer.from('another model server')] }),
  });
  add('wrong nonce', 'nonce', nsm.attest({ nonce: Buffer.from('another nonce') }));
  add('no nonce', 'nonce', nsm.attest({}));
  add('stale', 'stale', good, nsm, { at: new Date(NOW.getTime() + 60_001).toISOString() });
  add('from the future', 'stale', good, nsm, { at: new Date(NOW.getTime() - 60_001).toISOString() });
  add('public key required, absent', 'public_key_missing', good, nsm, { requirePublicKey: true });

  const genuine = (
    name: string,
    reason: string | undefined,
    document: Uint8Array,
    options: Partial<PlainOptions> = {},
  ) =>
    cases.push({
      name: `genuine AWS: ${name}`,
      documentBase64: Buffer.from(document).toString('base64'),
      options: { at: GENUINE_AT.toISOString(), maxAgeMs: 10 * 60_000, ...options },
      reason,
    });
  genuine('as recorded', undefined, GENUINE);
  genuine('expired', 'validity', GENUINE, { at: '2026-02-08T00:00:00Z', maxAgeMs: undefined });
  genuine('under the emulated root', 'root', GENUINE, { roots: [nsm.rootCertificatePem] });
  genuine('wrong PCRs', 'pcr_mismatch', GENUINE, { pcrs: emulatedMeasurements() });
  genuine('wrong nonce', 'nonce', GENUINE, { nonceHex: NONCE.toString('hex') });
  genuine('a flipped signature byte', 'signature', flipByte(GENUINE, GENUINE.length - 1));
  return cases;
}
