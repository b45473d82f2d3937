// The strict CBOR decoder and the deterministic encoder: edge cases one by one.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CborError, CborTag, decodeCbor, encodeCbor } from '../../attestation/index.js';

const bytes = (hex: string) => Buffer.from(hex.replace(/\s+/g, ''), 'hex');
const rejects = (hex: string, pattern: RegExp, limits = {}) =>
  assert.throws(
    () => decodeCbor(bytes(hex), limits),
    (error: unknown) => error instanceof CborError && pattern.test(error.message),
  );

test('integers: small, 1/2/4/8-byte heads (non-shortest too), negatives, bigint beyond 2^53', () => {
  assert.equal(decodeCbor(bytes('17')), 23);
  assert.equal(decodeCbor(bytes('1818')), 24);
  assert.equal(decodeCbor(bytes('190100')), 256);
  assert.equal(decodeCbor(bytes('1a00010000')), 65536);
  assert.equal(decodeCbor(bytes('1b0000019c320d4d14')), 0x19c320d4d14); // a genuine timestamp's 8-byte form
  assert.equal(decodeCbor(bytes('1b001fffffffffffff')), Number.MAX_SAFE_INTEGER);
  assert.equal(decodeCbor(bytes('1b0020000000000000')), 2n ** 53n);
  assert.equal(decodeCbor(bytes('1bffffffffffffffff')), 2n ** 64n - 1n);
  assert.equal(decodeCbor(bytes('3822')), -35);
  assert.equal(decodeCbor(bytes('3bffffffffffffffff')), -(2n ** 64n));
});

test('byte and text strings, definite and indefinite (chunked)', () => {
  assert.deepEqual(decodeCbor(bytes('43010203')), bytes('010203'));
  assert.deepEqual(decodeCbor(bytes('40')), bytes(''));
  // The parsers are browser-safe: byte strings they build (chunks joined, encoder output) are plain Uint8Array.
  assert.deepEqual(decodeCbor(bytes('5f 4201 02 4103 ff')), Uint8Array.from(bytes('010203')));
  assert.equal(decodeCbor(bytes('6568656c6c6f')), 'hello');
  assert.equal(decodeCbor(bytes('7f 6268 65 63 6c6c6f ff')), 'hello');
});

test('arrays and maps, definite and indefinite; text and integer keys; null and booleans; tags', () => {
  assert.deepEqual(decodeCbor(bytes('83 01 f6 f5')), [1, null, true]);
  assert.deepEqual(decodeCbor(bytes('9f 01 f4 ff')), [1, false]);
  assert.deepEqual(
    decodeCbor(bytes('a2 01 3822 6161 f6')),
    new Map<string | number, unknown>([
      [1, -35],
      ['a', null],
    ]),
  );
  assert.deepEqual(decodeCbor(bytes('bf 6161 01 ff')), new Map([['a', 1]]));
  const tagged = decodeCbor(bytes('d2 80'));
  assert.ok(tagged instanceof CborTag);
  assert.equal(tagged.tag, 18);
  assert.deepEqual(tagged.value, []);
});

test('rejects trailing bytes, truncation and empty input', () => {
  rejects('01 02', /1 trailing bytes/);
  rejects('', /empty/);
  rejects('43 0102', /truncated/);
  rejects('19 01', /truncated/);
  rejects('83 01 02', /truncated/);
  rejects('9f 01', /truncated/);
  rejects('5a ffffffff', /declares length 4294967295/);
});

test('rejects reserved additional information, a stray break and bad chunks', () => {
  rejects('1c', /reserved additional information 28/);
  rejects('1f', /indefinite length is not allowed for an integer/);
  rejects('ff', /unexpected break/);
  rejects('5f 6161 ff', /bad chunk/);
  rejects('5f 5f ff ff', /bad chunk/);
});

test('rejects floats, undefined, other simple values, invalid UTF-8', () => {
  rejects('f93c00', /floating-point/);
  rejects('fb3ff0000000000000', /floating-point/);
  rejects('f7', /undefined/);
  rejects('f0', /simple value/);
  rejects('62c328', /not valid UTF-8/);
});

test('rejects map keys that are not text or small integers, and duplicate keys', () => {
  rejects('a1 4101 01', /map key at offset 1 is not a text string or a small integer/);
  rejects('a1 f6 01', /map key/);
  rejects('a2 6161 01 6161 02', /duplicate map key "a"/);
});

test('enforces the size and depth limits', () => {
  rejects('43010203', /4 bytes, more than the limit of 3/, { maxBytes: 3 });
  rejects('81'.repeat(5) + '01', /nesting deeper than 4/, { maxDepth: 4 });
  assert.deepEqual(decodeCbor(bytes('81'.repeat(4) + '01'), { maxDepth: 4 }), [[[[1]]]]);
  rejects('d2'.repeat(20) + '01', /nesting deeper than 16/);
});

test('the encoder writes shortest heads, definite lengths, keys in the order given, and round-trips', () => {
  assert.equal(
    Buffer.from(encodeCbor(new Map<string | number, never>([[1, -35 as never]]))).toString('hex'),
    'a1013822',
  );
  assert.equal(Buffer.from(encodeCbor(24)).toString('hex'), '1818');
  assert.equal(Buffer.from(encodeCbor(0x19c320d4d14)).toString('hex'), '1b0000019c320d4d14');
  assert.equal(Buffer.from(encodeCbor(new Uint8Array())).toString('hex'), '40');
  assert.equal(Buffer.from(encodeCbor(new CborTag(18, [null, true, 'a']))).toString('hex'), 'd283f6f56161');
  const value = new Map<string | number, never>([
    ['z', 1 as never],
    ['a', [Uint8Array.from(bytes('00ff')), -1, 2n ** 64n - 1n] as never],
  ]);
  assert.deepEqual(decodeCbor(encodeCbor(value)), value);
  assert.throws(() => encodeCbor(1.5), /safe integers/);
});

test('a leading byte order mark in a text string is kept, never dropped (so "\\uFEFFnonce" is not "nonce")', () => {
  const text = Buffer.from('\uFEFFSHA384', 'utf8');
  const encoded = Buffer.concat([Buffer.from([0x60 | text.length]), text]);
  assert.equal(decodeCbor(encoded), '\uFEFFSHA384');
});
