// npm must say nothing nobody explains: no unknown key in the project's .npmrc (npm 11 warns about
// one on every command), no installed package that wants a newer Node than `engines` promises, and
// onnxruntime-node's install script (a CUDA download from outside the registry) denied.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import semver from 'semver';
import { PACKAGE_ROOT } from '../scripts/generate-docs.js';

const manifest = JSON.parse(readFileSync(join(PACKAGE_ROOT, 'package.json'), 'utf8')) as {
  engines: { node: string };
  allowScripts?: Record<string, boolean>;
};
const lockfile = JSON.parse(readFileSync(join(PACKAGE_ROOT, 'package-lock.json'), 'utf8')) as {
  packages: Record<string, { version?: string; engines?: { node?: string } | string[] }>;
};

test('npm reads the project configuration without a warning', () => {
  const result = spawnSync('npm', ['config', 'get', 'registry'], { cwd: PACKAGE_ROOT, encoding: 'utf8' });
  assert.equal(result.status, 0, result.stderr);
  assert.doesNotMatch(result.stderr, /Unknown (project|env|user|global) config/);
});

test('every locked package runs on the oldest Node that engines promises', () => {
  const oldest = semver.minVersion(manifest.engines.node)!.version;
  const refusing = Object.entries(lockfile.packages)
    .filter(([path]) => path !== '')
    .filter(
      ([, entry]) =>
        !Array.isArray(entry.engines) &&
        entry.engines?.node !== undefined &&
        !semver.satisfies(oldest, entry.engines.node),
    )
    .map(([path, entry]) => `${path}@${entry.version}: node ${(entry.engines as { node: string }).node}`);
  assert.deepEqual(refusing, [], `engines says ${manifest.engines.node}`);
});

test("onnxruntime-node's install script is denied (npm 11.16 and later honour allowScripts)", () => {
  assert.equal(manifest.allowScripts?.['onnxruntime-node'], false);
});
