// The README's tables of error codes and options are the documentation users read: keep them in
// step with the code.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { flagName } from '../common/index.js';
import { modelServerErrors, modelServerOptions } from '../model-server/index.js';

const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');

test('every model-server error code is in the README with its status, and the README lists no other', () => {
  for (const [code, { statusCode }] of Object.entries(modelServerErrors.table)) {
    assert.match(readme, new RegExp(`\\| \`${code}\` \\| ${statusCode} \\|`), `${code} ${statusCode}`);
  }
  const documented = [...new Set([...readme.matchAll(/^\| `(MS_[A-Z0-9_]+)` \|/gm)].map((match) => match[1]))];
  assert.deepEqual(documented.sort(), Object.keys(modelServerErrors.table).sort());
});

test('every model-server option is in the README configuration table', () => {
  for (const key of Object.keys(modelServerOptions)) {
    const flag = flagName(key);
    assert.ok(readme.includes(`| \`${flag}`) || readme.includes(`| \`--[no-]${flag.slice(2)}`), flag);
  }
});
