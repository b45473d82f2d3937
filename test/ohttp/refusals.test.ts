// Everything the OHTTP layer must refuse, each with its stable reason: every truncation and every
// bit flip of a request and of a response, another key id, another suite, bad key config lists.
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { test } from 'node:test';
import type { OhttpErrorReason } from '../../ohttp/index.js';
import {
  AEAD_AES_128_GCM,
  AEAD_AES_256_GCM,
  KDF_HKDF_SHA256,
  OhttpError,
  OhttpKeyPair,
  decodeKeyConfig,
  decodeKeyConfigList,
  encapsulateRequest,
  encodeKeyConfigList,
  requestKeyId,
} from '../../ohttp/index.js';

const body = new TextEncoder().encode('a binary HTTP request stands in here');

async function refusedWith(reason: OhttpErrorReason, action: () => Promise<unknown>, label: string): Promise<void> {
  await assert.rejects(action, (error: unknown) => error instanceof OhttpError && error.reason === reason, label);
}

test('a round trip with each offered suite; the key config offers AES-128-GCM first, then AES-256-GCM', async () => {
  const keyPair = await OhttpKeyPair.generate(7);
  assert.deepEqual(keyPair.config.suites, [
    { kdfId: KDF_HKDF_SHA256, aeadId: AEAD_AES_128_GCM },
    { kdfId: KDF_HKDF_SHA256, aeadId: AEAD_AES_256_GCM },
  ]);
  assert.deepEqual(decodeKeyConfig(keyPair.encodedConfig), keyPair.config);
  for (const suite of [undefined, ...keyPair.config.suites]) {
    const request = await encapsulateRequest(keyPair.config, body, suite);
    assert.equal(request.message[6], suite?.aeadId ?? AEAD_AES_128_GCM);
    const opened = await keyPair.decapsulateRequest(request.message);
    assert.deepEqual(opened.bhttpRequest, body);
    const answer = new Uint8Array(1000).fill(42);
    const sealed = await opened.sealResponse(answer);
    // The response nonce is max(Nn, Nk): 16 bytes for AES-128-GCM, 32 for AES-256-GCM.
    assert.equal(sealed.length, (suite?.aeadId === AEAD_AES_256_GCM ? 32 : 16) + answer.length + 16);
    assert.deepEqual(await request.openResponse(sealed), answer);
    await assert.rejects(() => opened.sealResponse(answer), /already been answered/);
  }
});

test('every truncation of a request is refused: malformed while it cannot hold header, enc and tag, then decrypt-failed', async () => {
  const keyPair = await OhttpKeyPair.generate(7);
  const { message } = await encapsulateRequest(keyPair.config, body);
  for (let length = 0; length < message.length; length++) {
    const cut = message.subarray(0, length);
    const reason = length < 7 + 32 + 16 ? 'malformed' : 'decrypt-failed';
    await refusedWith(reason, () => keyPair.decapsulateRequest(cut), `cut at ${length}`);
  }
  assert.equal(requestKeyId(message.subarray(0, 6)), undefined);
  assert.equal(requestKeyId(message.subarray(0, 7)), 7);
});

test('every bit flip of a request is refused, with the reason its place implies', async () => {
  const keyPair = await OhttpKeyPair.generate(7);
  const { message } = await encapsulateRequest(keyPair.config, body);
  for (let i = 0; i < message.length; i++) {
    for (let bit = 0; bit < 8; bit++) {
      const flipped = message.slice();
      flipped[i]! ^= 1 << bit;
      // The key id is checked first, then KEM and suite (an AEAD of 0x0003 after a flip is offered by
      // nobody; 0x0001 -> 0x0002 is offered, but the header is in the HPKE info, so opening fails).
      let reason: OhttpErrorReason = 'decrypt-failed';
      if (i === 0) reason = 'unknown-key';
      else if (i < 7 && !(i === 6 && flipped[6] === AEAD_AES_256_GCM)) reason = 'unsupported-suite';
      await refusedWith(reason, () => keyPair.decapsulateRequest(flipped), `byte ${i} bit ${bit}`);
    }
  }
});

test('a request to another key id, to another key with the same id, or in a suite not offered is refused', async () => {
  const keyPair = await OhttpKeyPair.generate(7);
  const other = await OhttpKeyPair.generate(8);
  const sameIdOtherKey = await OhttpKeyPair.generate(7);
  await refusedWith(
    'unknown-key',
    async () => keyPair.decapsulateRequest((await encapsulateRequest(other.config, body)).message),
    'other key id',
  );
  await refusedWith(
    'decrypt-failed',
    async () => keyPair.decapsulateRequest((await encapsulateRequest(sameIdOtherKey.config, body)).message),
    'same id, other key',
  );
  const chacha = { kdfId: KDF_HKDF_SHA256, aeadId: 0x0003 };
  await refusedWith(
    'unsupported-suite',
    () => encapsulateRequest({ ...keyPair.config, suites: [chacha] }, body),
    'client: no suite it speaks',
  );
  await refusedWith(
    'unsupported-suite',
    () => encapsulateRequest(keyPair.config, body, chacha),
    'client: a suite the config does not offer',
  );
  // A client that thinks the key offers ChaCha20 and hand-writes the header: the server refuses the suite.
  const { message } = await encapsulateRequest(keyPair.config, body);
  const header = message.slice();
  header[6] = 0x03;
  await refusedWith('unsupported-suite', () => keyPair.decapsulateRequest(header), 'server: a suite it does not offer');
  // An all-zero enc is X25519's low-order point: no shared secret, so no request.
  const zeroEnc = message.slice();
  zeroEnc.fill(0, 7, 39);
  await refusedWith('decrypt-failed', () => keyPair.decapsulateRequest(zeroEnc), 'all-zero enc');
});

test('every truncation and bit flip of a response is refused: malformed if too short, otherwise decrypt-failed', async () => {
  const keyPair = await OhttpKeyPair.generate(7);
  const request = await encapsulateRequest(keyPair.config, body);
  const sealed = await (await keyPair.decapsulateRequest(request.message)).sealResponse(new Uint8Array(40).fill(9));
  for (let length = 0; length < sealed.length; length++) {
    await refusedWith(
      length < 16 + 16 ? 'malformed' : 'decrypt-failed',
      () => request.openResponse(sealed.subarray(0, length)),
      `cut at ${length}`,
    );
  }
  for (let i = 0; i < sealed.length; i++) {
    const flipped = sealed.slice();
    flipped[i]! ^= 1 << (i % 8);
    await refusedWith('decrypt-failed', () => request.openResponse(flipped), `byte ${i}`);
  }
  // The answer to another request does not open either.
  const another = await encapsulateRequest(keyPair.config, body);
  const anotherSealed = await (await keyPair.decapsulateRequest(another.message)).sealResponse(new Uint8Array(40));
  await refusedWith('decrypt-failed', () => request.openResponse(anotherSealed), "another request's answer");
});

test('bad key config lists are refused as malformed; a config with a KEM we do not know is skipped', async () => {
  const keyPair = await OhttpKeyPair.generate(3);
  const list = encodeKeyConfigList([keyPair.config]);
  const malformed = (bytes: Uint8Array, label: string) =>
    assert.throws(
      () => decodeKeyConfigList(bytes),
      (error: unknown) => error instanceof OhttpError && error.reason === 'malformed',
      label,
    );
  for (let length = 0; length < list.length; length++) malformed(list.subarray(0, length), `cut at ${length}`);
  malformed(new Uint8Array([...list, 0]), 'a stray byte');
  const longer = list.slice();
  longer[1]! += 1;
  malformed(new Uint8Array([...longer, 0]), 'a config longer than its contents');
  const odd = list.slice();
  odd[2 + 1 + 2 + 32 + 1] = 6;
  malformed(odd, 'suites not a multiple of 4');
  const unknownKem = list.slice();
  unknownKem[2 + 1 + 1] = 0x21;
  assert.deepEqual(decodeKeyConfigList(new Uint8Array([...unknownKem, ...list])), [keyPair.config]);
  assert.throws(() => decodeKeyConfig(unknownKem.subarray(2)), OhttpError);
});

test('the ohttp component is browser-safe: no node: imports, no Buffer', () => {
  const dir = new URL('../../../ohttp/', import.meta.url);
  const sources = readdirSync(dir).filter((name) => name.endsWith('.ts'));
  assert.ok(sources.includes('index.ts'));
  for (const name of sources) {
    const source = readFileSync(new URL(name, dir), 'utf8');
    assert.doesNotMatch(source, /from ['"]node:|require\(|\bBuffer\b|\bprocess\./, name);
  }
});
