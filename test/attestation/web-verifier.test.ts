// The WebCrypto verifier (browsers, the client SDK) against the node:crypto one: on the genuine AWS
// document and on every document verifier.test.ts builds, both give the same checks, statuses and
// reasons. The same cases run inside a real browser in test/client/page.test.ts.
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  AWS_NITRO_ROOT_G1_PEM,
  AWS_NITRO_ROOT_G1_SHA256,
  TrustedRootError,
  loadWebTrustedRoots,
  verifyAttestation,
  verifyAttestationWeb,
} from '../../attestation/index.js';
import { GENUINE, GENUINE_AT, documentCases, nodeOptions, webOptions } from './bad-documents.js';

const summary = (checks: readonly { name: string; status: string; reason?: string }[]) =>
  checks.map((check) => `${check.name}:${check.status}${check.reason ? `:${check.reason}` : ''}`);

for (const documentCase of documentCases()) {
  test(`WebCrypto and node:crypto agree: ${documentCase.name} (${documentCase.reason ?? 'accepted'})`, async () => {
    const bytes = Buffer.from(documentCase.documentBase64, 'base64');
    const node = verifyAttestation(bytes, nodeOptions(documentCase.options));
    const web = await verifyAttestationWeb(Uint8Array.from(bytes), webOptions(documentCase.options));
    assert.equal(node.reason, documentCase.reason, `node: ${node.checks.at(-1)?.detail}`);
    assert.equal(web.reason, documentCase.reason, `web: ${web.checks.at(-1)?.detail}`);
    assert.equal(web.ok, node.ok);
    assert.deepEqual(summary(web.checks), summary(node.checks));
  });
}

test('the genuine AWS document: every check passes under the pinned AWS root, whose fingerprint is the one AWS publishes', async () => {
  const web = await verifyAttestationWeb(Uint8Array.from(GENUINE), { at: GENUINE_AT, maxAgeMs: 10 * 60_000 });
  assert.equal(web.ok, true, JSON.stringify(web.checks.at(-1)));
  assert.equal(web.root?.fingerprint256, AWS_NITRO_ROOT_G1_SHA256);
  assert.equal(web.document?.cabundle.length, 4);
});

test("trusted roots that are not certificates are the caller's error, not a refusal", async () => {
  await assert.rejects(loadWebTrustedRoots(['not a certificate']), TrustedRootError);
  await assert.rejects(loadWebTrustedRoots([AWS_NITRO_ROOT_G1_PEM.replace('MIIC', 'MIIX')]), TrustedRootError);
  await assert.rejects(verifyAttestationWeb(GENUINE, { maxAgeMs: -1 }), RangeError);
});

test('the browser-safe door reaches no node: module and no Buffer', () => {
  const root = join(dirname(fileURLToPath(import.meta.url)), '../../attestation');
  const seen = new Set<string>();
  const visit = (file: string) => {
    if (seen.has(file)) return;
    seen.add(file);
    // Comments may say "no Buffer"; code may not use it.
    const source = readFileSync(file, 'utf8').replace(/\/\*[\s\S]*?\*\/|^\s*\/\/.*$/gm, '');
    assert.doesNotMatch(source, /from ['"]node:|import\(['"]node:|\bBuffer\b/, `${file} is not browser-safe`);
    for (const match of source.matchAll(/(?:from|import)\s*\(?\s*['"](\.[^'"]+)['"]/g))
      visit(join(dirname(file), match[1]!));
  };
  visit(join(root, 'web.js'));
  assert.ok(seen.size >= 10, `only ${seen.size} files reached`);
  assert.ok(readdirSync(root).includes('web.js'));
});
