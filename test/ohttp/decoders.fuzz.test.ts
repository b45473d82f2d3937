// Fuzzing the OHTTP and Binary HTTP decoders (fast-check, fixed seed), on arbitrary bytes and on
// genuine messages mutated (bytes flipped, cut, inserted, dropped): every refusal is an OhttpError
// with its documented reason; what the decoders accept they re-encode, and a changed sealed request
// or response never opens.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import type { BinaryRequest, BinaryResponse, OhttpErrorReason } from '../../ohttp/index.js';
import {
  OhttpError,
  OhttpKeyPair,
  decodeBinaryRequest,
  decodeBinaryResponse,
  decodeKeyConfigList,
  encapsulateRequest,
  encodeBinaryRequest,
  encodeBinaryResponse,
  encodeKeyConfigList,
  requestKeyId,
} from '../../ohttp/index.js';
import { HANG_GUARD_MS, fuzzParameters, refusalOf } from '../helpers/fuzz.js';

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
  const at = bytes.length === 0 ? 0 : change.at % bytes.length;
  switch (change.kind) {
    case 'flip': {
      const copy = Uint8Array.from(bytes);
      if (copy.length > 0) copy[at] = copy[at]! ^ change.xor;
      return copy;
    }
    case 'cut':
      return bytes.slice(0, at);
    case 'insert':
      return Uint8Array.from([...bytes.slice(0, at), ...change.bytes, ...bytes.slice(at)]);
    case 'drop':
      return Uint8Array.from([...bytes.slice(0, at), ...bytes.slice(at + change.count)]);
  }
}

const sameBytes = (a: Uint8Array, b: Uint8Array) =>
  a.length === b.length && a.every((byte, index) => byte === b[index]);

/** `original` changed by 1 to 4 edits, never back to itself. */
const mutated = (original: Uint8Array) =>
  fc
    .array(edit, { minLength: 1, maxLength: 4 })
    .map((edits) => edits.reduce(applyEdit, original))
    .filter((bytes) => !sameBytes(bytes, original));

const token = fc.stringMatching(/^[!#$%&'*+\-.^_`|~0-9a-z]{1,12}$/);
const visible = fc.stringMatching(/^[!-~]{1,30}$/);
const fieldValue = fc.stringMatching(/^[ -~]{0,30}$/).map((value) => value.trim());
const headers = fc.array(fc.tuple(token, fieldValue), { maxLength: 5 });
const binaryRequest: fc.Arbitrary<BinaryRequest> = fc.record({
  method: fc.oneof(
    fc.constantFrom('POST', 'GET'),
    token.map((value) => value.toUpperCase()),
  ),
  scheme: fc.constantFrom('https', 'http'),
  authority: visible,
  path: visible.map((value) => `/${value}`),
  headers,
  body: fc.uint8Array({ maxLength: 200 }),
});
const binaryResponse: fc.Arbitrary<BinaryResponse> = fc.record({
  status: fc.integer({ min: 200, max: 599 }),
  headers,
  body: fc.uint8Array({ maxLength: 200 }),
});

const GENUINE_REQUEST = encodeBinaryRequest({
  method: 'POST',
  scheme: 'https',
  authority: 'enclave',
  path: '/predict',
  headers: [['content-type', 'application/json']],
  body: new TextEncoder().encode('{"images":["AAAA"],"topk":5}'),
});
const GENUINE_RESPONSE = encodeBinaryResponse({
  status: 200,
  headers: [['content-type', 'application/json']],
  body: new TextEncoder().encode('{"predictions":[]}'),
});

function refusedAs(refusal: Error | undefined, reasons: readonly OhttpErrorReason[]): void {
  if (refusal) assert.ok(reasons.includes((refusal as OhttpError).reason), `reason ${(refusal as OhttpError).reason}`);
}

test(
  'Binary HTTP: what the encoder writes decodes to the same message, and any bytes decode or are refused as malformed',
  { timeout: HANG_GUARD_MS },
  () => {
    fc.assert(
      fc.property(binaryRequest, binaryResponse, (request, response) => {
        assert.deepEqual(decodeBinaryRequest(encodeBinaryRequest(request)), {
          ...request,
          body: Uint8Array.from(request.body),
        });
        assert.deepEqual(decodeBinaryResponse(encodeBinaryResponse(response)), {
          ...response,
          body: Uint8Array.from(response.body),
        });
      }),
      fuzzParameters(1_000),
    );
    const bytes = fc.oneof(fc.uint8Array({ maxLength: 200 }), mutated(GENUINE_REQUEST), mutated(GENUINE_RESPONSE));
    fc.assert(
      fc.property(bytes, (input) => {
        refusedAs(
          refusalOf(() => decodeBinaryRequest(input), [OhttpError]),
          ['malformed'],
        );
        refusedAs(
          refusalOf(() => decodeBinaryResponse(input), [OhttpError]),
          ['malformed'],
        );
      }),
      fuzzParameters(5_000),
    );
  },
);

test(
  'key config lists: any bytes decode or are refused as malformed; what is accepted encodes back to a list that decodes the same',
  { timeout: HANG_GUARD_MS },
  async () => {
    const keyPairs = await Promise.all([OhttpKeyPair.generate(1), OhttpKeyPair.generate(200)]);
    const genuine = encodeKeyConfigList(keyPairs.map((keyPair) => keyPair.config));
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 120 }), mutated(genuine)), (bytes) => {
        let configs: ReturnType<typeof decodeKeyConfigList>;
        try {
          configs = decodeKeyConfigList(bytes);
        } catch (error) {
          refusedAs(
            refusalOf(() => {
              throw error;
            }, [OhttpError]),
            ['malformed'],
          );
          return;
        }
        // A well-formed list whose configs all name KEMs this code does not know decodes to none
        // (RFC 9458 section 3.2: clients skip them); callers must treat [] as "no usable key".
        if (configs.length === 0) return;
        assert.deepEqual(decodeKeyConfigList(encodeKeyConfigList(configs)), configs);
      }),
      fuzzParameters(5_000),
    );
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 12 }), (bytes) => {
        const keyId = requestKeyId(bytes);
        assert.equal(keyId, bytes.length >= 7 ? bytes[0] : undefined);
      }),
      fuzzParameters(500),
    );
  },
);

test(
  'an enclave key pair: arbitrary bytes and every changed request are refused with an OhttpError reason, never opened',
  { timeout: HANG_GUARD_MS },
  async () => {
    const keyPair = await OhttpKeyPair.generate(7);
    const { message } = await encapsulateRequest(keyPair.config, GENUINE_REQUEST);
    await fc.assert(
      fc.asyncProperty(fc.oneof(fc.uint8Array({ maxLength: 120 }), mutated(message)), async (bytes) => {
        try {
          await keyPair.decapsulateRequest(bytes);
        } catch (error) {
          assert.ok(error instanceof OhttpError, `threw ${String(error)}`);
          assert.ok(
            (['malformed', 'unknown-key', 'unsupported-suite', 'decrypt-failed'] as const).includes(error.reason),
          );
          return;
        }
        assert.fail('a changed or arbitrary message/ohttp-req was opened');
      }),
      fuzzParameters(400),
    );
  },
);

test(
  'a client: every changed response is refused as malformed or decrypt-failed, never opened',
  { timeout: HANG_GUARD_MS },
  async () => {
    const keyPair = await OhttpKeyPair.generate(9);
    await fc.assert(
      fc.asyncProperty(fc.array(edit, { minLength: 1, maxLength: 4 }), async (edits) => {
        // A fresh request each time: a response opens once.
        const request = await encapsulateRequest(keyPair.config, GENUINE_REQUEST);
        const opened = await keyPair.decapsulateRequest(request.message);
        const sealed = await opened.sealResponse(GENUINE_RESPONSE);
        const changed = edits.reduce(applyEdit, sealed);
        if (sameBytes(changed, sealed)) return;
        try {
          await request.openResponse(changed);
        } catch (error) {
          assert.ok(
            error instanceof OhttpError && (error.reason === 'malformed' || error.reason === 'decrypt-failed'),
            `threw ${String(error)}`,
          );
          return;
        }
        assert.fail('a changed message/ohttp-res was opened');
      }),
      fuzzParameters(300),
    );
  },
);
