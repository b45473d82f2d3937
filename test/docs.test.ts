// The reference in docs/ is made from the code (npm run docs): a document that differs from what
// the code makes now has drifted, and this names the command that repairs it.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { ERROR_TABLES, PACKAGE_ROOT, referenceDocuments } from '../scripts/generate-docs.js';

const documents = await referenceDocuments();

for (const [path, expected] of Object.entries(documents)) {
  test(`${path} is what the code makes now (run "npm run docs" and commit it when this fails)`, () => {
    const actual = readFileSync(join(PACKAGE_ROOT, path), 'utf8');
    assert.equal(actual, expected, `${path} has drifted from the code: run "npm run docs"`);
  });
}

test('docs/errors.md takes every component that has an error table', () => {
  const dist = join(PACKAGE_ROOT, 'dist');
  const withTables = readdirSync(dist).filter((folder) => {
    const errors = join(dist, folder, 'errors.js');
    return existsSync(errors) && /= defineErrors\(/.test(readFileSync(errors, 'utf8'));
  });
  assert.ok(withTables.length >= 3, `found ${withTables.join(', ')}`);
  assert.deepEqual(withTables.sort(), ERROR_TABLES.map((table) => table.component).sort());
});

test('every code is listed once with its status, and each component keeps its prefix', () => {
  const errors = documents['docs/errors.md']!;
  for (const { prefix, table } of ERROR_TABLES) {
    for (const [code, { statusCode }] of Object.entries(table)) {
      assert.ok(code.startsWith(`${prefix}_`), code);
      assert.equal(errors.split(`| \`${code}\` | ${statusCode} |`).length, 2, code);
    }
  }
});

test('docs/configuration.md lists each command once and leaves out internal commands', () => {
  const configuration = documents['docs/configuration.md']!;
  for (const command of ['mpg gateway', 'mpg model-server', 'mpg stack', 'mpg loadtest all', 'mpg enclave run']) {
    assert.equal(configuration.split(`\n## ${command}\n`).length, 2, command);
  }
  assert.doesNotMatch(configuration, /stack-host/);
  // A default that depends on the machine is described, never this machine's figure.
  assert.match(
    configuration,
    /\| `--threads N` \| `MPG_THREADS` \| threads \| {2}\| [^|\n]*the cores divided among the sessions \|/,
  );
});
