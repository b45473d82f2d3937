// Fuzzing the attestation decoders (fast-check, fixed seed), on arbitrary bytes and on a genuine
// emulated-NSM document, certificate and payload mutated (bytes flipped, cut, inserted, dropped):
// CBOR refuses with CborError only, COSE and the payload with their AttestationFailure reason
// only, DER with DerError only, and the verifier never throws and never accepts changed signed parts.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import type { CborValue } from '../../attestation/index.js';
import {
  AttestationFailure,
  CborError,
  CborTag,
  FAILURE_REASONS,
  decodeCbor,
  encodeCbor,
  parseAttestationPayload,
} from '../../attestation/index.js';
import { readCertificateFacts } from '../../attestation/certificate.js';
import { checkEs384, parseCoseSign1 } from '../../attestation/cose.js';
import type { DerNode } from '../../attestation/der.js';
import { DerError, derChildren, readDer } from '../../attestation/der.js';
import { HANG_GUARD_MS, fuzzParameters, refusalOf } from '../helpers/fuzz.js';
import { NONCE, testNsm, verifyWith } from './fixtures.js';

const nsm = testNsm();
const document = nsm.attest({ nonce: NONCE, userData: Buffer.from('user data'), publicKey: Buffer.alloc(32, 7) });
const cose = parseCoseSign1(decodeCbor(document));
const payload = cose.payload;

type Edit =
  | { kind: 'flip'; at: number; xor: number }
  | { kind: 'cut'; at: number }
  | { kind: 'insert'; at: number; bytes: Uint8Array }
  | { kind: 'drop'; at: number; count: number };

const edit: fc.Arbitrary<Edit> = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), xor: fc.integer({ min: 1, max: 255 }) }),
  fc.record({ kind: fc.constant('cut' as const), at: fc.nat() }),
  fc.record({
    kind: fc.constant('insert' as const),
    at: fc.nat(),
    bytes: fc.uint8Array({ minLength: 1, maxLength: 9 }),
  }),
  fc.record({ kind: fc.constant('drop' as const), at: fc.nat(), count: fc.integer({ min: 1, max: 9 }) }),
);

function applyEdit(bytes: Uint8Array, change: Edit): Uint8Array {
  const copy = Buffer.from(bytes);
  const at = bytes.length === 0 ? 0 : change.at % bytes.length;
  switch (change.kind) {
    case 'flip':
      if (copy.length > 0) copy[at] = copy[at]! ^ change.xor;
      return copy;
    case 'cut':
      return copy.subarray(0, at);
    case 'insert':
      return Buffer.concat([copy.subarray(0, at), change.bytes, copy.subarray(at)]);
    case 'drop':
      return Buffer.concat([copy.subarray(0, at), copy.subarray(at + change.count)]);
  }
}

/** `original` changed by 1 to 4 edits; at least one byte differs (or the length does). */
const mutated = (original: Uint8Array) =>
  fc
    .array(edit, { minLength: 1, maxLength: 4 })
    .map((edits) => edits.reduce(applyEdit, original))
    .filter((bytes) => !Buffer.from(bytes).equals(Buffer.from(original)));

/** CBOR as it could arrive: random bytes, random heads followed by random bytes, and the real document changed. */
const cborBytes = fc.oneof(
  fc.uint8Array({ maxLength: 300 }),
  fc
    .tuple(fc.integer({ min: 0, max: 255 }), fc.uint8Array({ maxLength: 40 }))
    .map(([head, rest]) => Uint8Array.of(head, ...rest)),
  mutated(document),
  mutated(payload),
);

const cborValue: fc.Arbitrary<CborValue> = fc.letrec<{ value: CborValue }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.integer(),
    fc.bigInt({ min: -(2n ** 64n), max: 2n ** 64n - 1n }).filter((value) => value < -(2n ** 53n) || value > 2n ** 53n),
    fc.string(),
    fc.uint8Array({ maxLength: 40 }),
    fc.boolean(),
    fc.constant(null),
    fc.array(tie('value'), { maxLength: 4 }),
    fc
      .array(fc.tuple(fc.oneof(fc.string({ maxLength: 8 }), fc.integer()), tie('value')), { maxLength: 4 })
      .map((entries) => new Map(entries)),
    fc.tuple(fc.integer({ min: 0, max: 1000 }), tie('value')).map(([tag, value]) => new CborTag(tag, value)),
  ),
})).value;

test('CBOR: any bytes decode to a value or a CborError; nothing else is thrown', { timeout: HANG_GUARD_MS }, () => {
  fc.assert(
    fc.property(cborBytes, (bytes) => {
      refusalOf(() => decodeCbor(bytes), [CborError]);
      refusalOf(() => decodeCbor(bytes, { maxDepth: 2, maxBytes: 64 }), [CborError]);
    }),
    fuzzParameters(5_000),
  );
});

test(
  'CBOR: what the encoder writes decodes to a value it writes the same way, and the decoder keeps to its depth limit',
  { timeout: HANG_GUARD_MS },
  () => {
    fc.assert(
      fc.property(cborValue, (value) => {
        // Compared as bytes: the decoder hands out Buffers where the value held Uint8Arrays, and
        // TextEncoder writes a lone surrogate as U+FFFD.
        const encoded = Buffer.from(encodeCbor(value));
        assert.deepEqual(Buffer.from(encodeCbor(decodeCbor(encoded, { maxDepth: 64, maxBytes: 1 << 20 }))), encoded);
      }),
      fuzzParameters(2_000),
    );
    // Nesting one deeper than allowed is refused, whether of arrays, maps or tags; at the limit it is read.
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 40 }), fc.constantFrom([0x81], [0xa1, 0x00], [0xd2]), (depth, head) => {
        const bytes = Uint8Array.from([...Array.from({ length: depth }, () => head).flat(), 0x00]);
        assert.ok(
          refusalOf(() => decodeCbor(bytes, { maxDepth: depth - 1 }), [CborError]),
          `nesting of ${depth} accepted with a limit of ${depth - 1}`,
        );
        decodeCbor(bytes, { maxDepth: depth });
      }),
      fuzzParameters(200),
    );
  },
);

test(
  'COSE_Sign1: any decoded value is a COSE_Sign1 or refused with cose_structure; any protected header is ES384 or refused with algorithm',
  { timeout: HANG_GUARD_MS },
  () => {
    const decodedDocuments = fc.oneof(
      cborValue,
      mutated(document).map((bytes) => {
        try {
          return decodeCbor(bytes);
        } catch {
          return null;
        }
      }),
    );
    fc.assert(
      fc.property(
        decodedDocuments,
        fc.oneof(fc.uint8Array({ maxLength: 20 }), mutated(cose.protectedHeader)),
        (decoded, header) => {
          const structure = refusalOf(() => parseCoseSign1(decoded), [AttestationFailure]);
          if (structure) assert.equal((structure as AttestationFailure).reason, 'cose_structure');
          const algorithm = refusalOf(() => checkEs384(header), [AttestationFailure]);
          if (algorithm) assert.equal((algorithm as AttestationFailure).reason, 'algorithm');
        },
      ),
      fuzzParameters(3_000),
    );
  },
);

test(
  'attestation payload: any map, or the genuine payload with fields changed, is a document or refused with payload_field',
  { timeout: HANG_GUARD_MS },
  () => {
    const genuine = decodeCbor(payload) as Map<string, CborValue>;
    const changedFields = fc
      .tuple(fc.constantFrom(...genuine.keys(), 'extra'), fc.oneof(cborValue, fc.constant(undefined)))
      .map(([field, value]) => {
        const copy = new Map(genuine);
        if (value === undefined) copy.delete(field);
        else copy.set(field, value);
        return copy;
      });
    const payloads = fc.oneof(
      cborValue,
      changedFields,
      mutated(payload).map((bytes) => {
        try {
          return decodeCbor(bytes);
        } catch {
          return null;
        }
      }),
    );
    fc.assert(
      fc.property(payloads, (value) => {
        const refusal = refusalOf(() => parseAttestationPayload(value), [AttestationFailure]);
        if (refusal) assert.equal((refusal as AttestationFailure).reason, 'payload_field');
      }),
      fuzzParameters(3_000),
    );
  },
);

/** Reads every TLV below `node`, as the certificate reader may. */
function walk(node: DerNode, depth = 0): void {
  if (depth > 20 || (node.tag & 0x20) === 0) return;
  for (const child of derChildren(node)) walk(child, depth + 1);
}

test(
  'DER: any bytes, and the genuine certificates changed, read as TLVs or refused with DerError',
  { timeout: HANG_GUARD_MS },
  () => {
    const certificates = [nsm.rootCertificate, nsm.intermediateCertificate, nsm.leafCertificate];
    const derBytes = fc.oneof(
      fc.uint8Array({ maxLength: 200 }),
      fc.constantFrom(...certificates).chain((certificate) => mutated(certificate)),
    );
    fc.assert(
      fc.property(derBytes, (bytes) => {
        refusalOf(() => walk(readDer(bytes)), [DerError]);
        refusalOf(() => readCertificateFacts(bytes), [DerError]);
      }),
      fuzzParameters(4_000),
    );
  },
);

test(
  'the verifier: arbitrary bytes and every document whose signed parts changed are refused with a known reason, never thrown',
  { timeout: HANG_GUARD_MS },
  () => {
    assert.equal(verifyWith(nsm, document).ok, true, 'the genuine document verifies');
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 400 }), mutated(document)), (bytes) => {
        const result = verifyWith(nsm, bytes);
        if (result.ok) {
          // Only a change outside what is signed may pass (dropping the optional tag 18, say).
          const accepted = parseCoseSign1(decodeCbor(bytes));
          for (const part of ['protectedHeader', 'payload', 'signature'] as const)
            assert.deepEqual(
              Buffer.from(accepted[part]),
              Buffer.from(cose[part]),
              `a document with a changed ${part} was accepted`,
            );
          return;
        }
        assert.ok(
          result.reason !== undefined && (FAILURE_REASONS as readonly string[]).includes(result.reason),
          `reason ${String(result.reason)}`,
        );
      }),
      fuzzParameters(1_500),
    );
  },
);
