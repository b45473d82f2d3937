// The README's tables of error codes and options are the documentation users read: keep them in
// step with the code.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import type { ErrorDefinition } from '../common/index.js';
import { flagName } from '../common/index.js';
import { attestationErrors } from '../attestation/index.js';
import { gatewayErrors, gatewayOptions } from '../gateway/index.js';
import { modelServerErrors, modelServerOptions } from '../model-server/index.js';

const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');

function assertCodesDocumented(prefix: string, table: Record<string, ErrorDefinition>): void {
  for (const [code, { statusCode }] of Object.entries(table)) {
    assert.match(readme, new RegExp(`\\| \`${code}\` \\| ${statusCode} \\|`), `${code} ${statusCode}`);
  }
  const documented = [...new Set([...readme.matchAll(new RegExp(`^\\| \`(${prefix}_[A-Z0-9_]+)\` \\|`, 'gm'))].map((match) => match[1]))];
  assert.deepEqual(documented.sort(), Object.keys(table).sort());
}

function assertOptionsDocumented(options: Record<string, unknown>): void {
  for (const key of Object.keys(options)) {
    const flag = flagName(key);
    assert.ok(readme.includes(`| \`${flag}`) || readme.includes(`| \`--[no-]${flag.slice(2)}`), flag);
  }
}

test('every model-server error code is in the README with its status, and the README lists no other', () => {
  assertCodesDocumented('MS', modelServerErrors.table);
});

test('every gateway error code is in the README with its status, and the README lists no other', () => {
  assertCodesDocumented('GW', gatewayErrors.table);
});

test('every model-server and gateway option is in the README', () => {
  assertOptionsDocumented(modelServerOptions);
  assertOptionsDocumented(gatewayOptions);
});

test('every attestation error code is in the README with its status, and the README lists no other', () => {
  assertCodesDocumented('ATT', attestationErrors.table);
});
