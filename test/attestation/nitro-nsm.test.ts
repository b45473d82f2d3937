// The real NSM's side of attestation, as far as it runs without Nitro: the CBOR request the
// helper passes to /dev/nsm and the response it reads back (built and read in TypeScript), and
// the helper itself, compiled from enclave/nsm/nsm-request.c, failing clearly with no /dev/nsm.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  NsmError,
  createNitroNsmSource,
  decodeCbor,
  encodeCbor,
  nsmAttestationDocument,
  nsmAttestationRequest,
} from '../../attestation/index.js';

const HELPER_SOURCE = new URL('../../../enclave/nsm/nsm-request.c', import.meta.url).pathname;

test('the NSM request is {"Attestation": {"user_data", "nonce", "public_key"}}, absent fields null, byte for byte', () => {
  const request = nsmAttestationRequest({ nonce: Buffer.from([0xff]), publicKey: Buffer.from([1, 2]) });
  const expected = Buffer.concat([
    Buffer.from([0xa1, 0x6b]),
    Buffer.from('Attestation'),
    Buffer.from([0xa3, 0x69]),
    Buffer.from('user_data'),
    Buffer.from([0xf6]),
    Buffer.from([0x65]),
    Buffer.from('nonce'),
    Buffer.from([0x41, 0xff]),
    Buffer.from([0x6a]),
    Buffer.from('public_key'),
    Buffer.from([0x42, 0x01, 0x02]),
  ]);
  assert.equal(Buffer.from(request).toString('hex'), expected.toString('hex'));
  const empty = decodeCbor(nsmAttestationRequest({})) as Map<string, Map<string, unknown>>;
  assert.deepEqual([...empty.get('Attestation')!.values()], [null, null, null]);
});

test('the NSM response gives the document, or an NsmError naming what the NSM said', () => {
  const document = Buffer.from('d28443a10126a0f65860', 'hex');
  const ok = encodeCbor(new Map([['Attestation', new Map([['document', document]])]]));
  assert.deepEqual(Buffer.from(nsmAttestationDocument(ok)), document);
  assert.throws(
    () => nsmAttestationDocument(encodeCbor(new Map([['Error', 'InvalidArgument']]))),
    (error: unknown) => error instanceof NsmError && /refused the request: InvalidArgument/.test(error.message),
  );
  assert.throws(() => nsmAttestationDocument(encodeCbor('InternalError')), /the NSM answered InternalError/);
  assert.throws(() => nsmAttestationDocument(Buffer.from([0xff, 0x00])), /not CBOR/);
  assert.throws(
    () => nsmAttestationDocument(encodeCbor(new Map([['Attestation', new Map()]]))),
    /no Attestation\.document/,
  );
});

test('the helper compiles warning-free and, with no /dev/nsm here, fails with a message the model server passes on', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'mpg-nsm-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const helper = join(dir, 'nsm-request');
  execFileSync('cc', ['-O2', '-Wall', '-Wextra', '-Werror', '-o', helper, HELPER_SOURCE]);
  await assert.rejects(
    createNitroNsmSource(helper).attest({ nonce: Buffer.from([1]) }),
    (error: unknown) =>
      error instanceof NsmError &&
      /the NSM could not be asked: nsm-request: cannot open \/dev\/nsm: No such file or directory \(is this a Nitro Enclave\?\)/.test(
        error.message,
      ),
  );
  await assert.rejects(
    createNitroNsmSource(join(dir, 'absent')).attest({}),
    /is not installed \(it is built into the enclave image\)/,
  );
});
