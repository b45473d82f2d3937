// COSE_Sign1 structure and the exact Sig_structure bytes.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  AttestationFailure,
  CborTag,
  checkEs384,
  decodeCbor,
  encodeCbor,
  parseCoseSign1,
  sigStructure,
} from '../../attestation/index.js';

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString('hex');

test('Sig_structure is ["Signature1", protected bstr, empty bstr, payload bstr], byte for byte', () => {
  const protectedHeader = Buffer.from('a1013822', 'hex'); // {1: -35}
  const payload = Buffer.from('hi');
  // 84 array(4) | 6a "Signature1" | 44 bstr(4) a1013822 | 40 bstr(0) | 42 bstr(2) 6869
  assert.equal(hex(sigStructure(protectedHeader, payload)), '846a5369676e61747572653144a101382240426869');
});

test('Sig_structure uses a 2-byte length head for a payload of 4721 bytes, as a genuine document has', () => {
  const bytes = sigStructure(Buffer.from('a1013822', 'hex'), Buffer.alloc(4721, 7));
  assert.equal(hex(bytes.subarray(0, 21)), '846a5369676e61747572653144a10138224059' + '1271');
  assert.equal(bytes[21], 7);
  assert.equal(bytes.length, 21 + 4721);
});

test('a COSE_Sign1 parses tagged or untagged; anything else is cose_structure', () => {
  const array = [Buffer.from('a1013822', 'hex'), new Map(), Buffer.from('payload'), Buffer.alloc(96)];
  assert.equal(parseCoseSign1(decodeCbor(encodeCbor(new CborTag(18, array)))).tagged, true);
  assert.equal(parseCoseSign1(decodeCbor(encodeCbor(array))).tagged, false);
  const bad: [string, unknown][] = [
    ['tag 17', new CborTag(17, array)],
    ['3 items', array.slice(0, 3)],
    ['not an array', new Map()],
    ['protected header text', ['a1013822', ...array.slice(1)]],
    ['unprotected not a map', [array[0], [], array[2], array[3]]],
    ['payload null', [array[0], array[1], null, array[3]]],
    ['signature 64 bytes', [...array.slice(0, 3), Buffer.alloc(64)]],
  ];
  for (const [name, value] of bad) {
    assert.throws(
      () => parseCoseSign1(value as never),
      (error: unknown) => error instanceof AttestationFailure && error.reason === 'cose_structure',
      name,
    );
  }
});

test('the protected header must be exactly {1: -35}', () => {
  checkEs384(Buffer.from('a1013822', 'hex'));
  for (const header of [
    'a10126' /* ES256 */,
    'a1013823' /* ES512 */,
    'a0',
    'a2013822026161' /* extra entry */,
    '',
    '80',
  ]) {
    assert.throws(
      () => checkEs384(Buffer.from(header, 'hex')),
      (error: unknown) => error instanceof AttestationFailure && error.reason === 'algorithm',
      header,
    );
  }
});
