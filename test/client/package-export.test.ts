// The SDK ships as the package export `mixed-privacy-gateway/client`: Node resolves it (with its
// type declarations beside it), a browser bundler gets the browser-safe entry without the Node
// command, and the prebuilt browser bundle is exported too.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import * as local from '../../client/index.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const manifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
  name: string;
  exports: Record<string, string | Record<string, string>>;
};

test('import "mixed-privacy-gateway/client" gives the SDK, and every exported file exists', async () => {
  const exported = (await import(`${manifest.name}/client`)) as typeof local;
  assert.equal(exported.createSecureClient, local.createSecureClient);
  assert.equal(typeof exported.verifyAttestationWeb, 'function');
  assert.equal(typeof exported.SecureClientError, 'function');
  const client = manifest.exports['./client'] as Record<string, string>;
  assert.deepEqual(Object.keys(client), ['types', 'browser', 'default']);
  for (const file of [...Object.values(client), manifest.exports['./client/browser-bundle'] as string])
    assert.ok(readFileSync(join(root, file)).length > 0, file);
  assert.match(
    readFileSync(join(root, client.types!.replace('index.d.ts', 'secure-client.d.ts')), 'utf8'),
    /export declare function createSecureClient\(options: SecureClientOptions\): SecureClient;/,
  );
});

test('the browser entry reaches no node: module, no Buffer and not the Node command', () => {
  const seen = new Set<string>();
  const visit = (file: string) => {
    if (seen.has(file)) return;
    seen.add(file);
    // Comments may name Node things; code may not use them.
    const source = readFileSync(file, 'utf8').replace(/\/\*[\s\S]*?\*\/|^\s*\/\/.*$/gm, '');
    assert.doesNotMatch(
      source,
      /from ['"]node:|import\(['"]node:|\bBuffer\b|\bprocess\./,
      `${file} is not browser-safe`,
    );
    for (const match of source.matchAll(/(?:from|import)\s*\(?\s*['"](\.[^'"]+)['"]/g))
      visit(join(dirname(file), match[1]!));
  };
  visit(join(root, (manifest.exports['./client'] as Record<string, string>).browser!));
  const files = [...seen].map((file) => file.slice(root.length));
  assert.ok(
    files.some((file) => file.startsWith('dist/ohttp/')),
    'reaches ohttp/',
  );
  assert.ok(files.includes('dist/attestation/web-verifier.js'));
  assert.ok(!files.some((file) => file.startsWith('dist/common/') || file.endsWith('command.js')), files.join(' '));
});

test('client/README.md documents every refusal reason, and no other', () => {
  const readme = readFileSync(join(root, 'client/README.md'), 'utf8');
  const documented = [...readme.matchAll(/^\| `([a-z-]+)` \| /gm)]
    .map((match) => match[1])
    .filter((name) => !['gatewayUrl', 'pcrs'].includes(name!));
  assert.deepEqual(documented, [...local.SECURE_CLIENT_REASONS]);
});
