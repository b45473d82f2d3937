#!/usr/bin/env node
// Runs every compiled test file under dist/test with Node's own test runner.
// Files are listed explicitly because Node 20 and Node 22+ disagree on how directory and
// glob arguments to `node --test` are expanded.
//
//   node scripts/run-tests.mjs [PART ...]      every test but dist/test/docker (npm test)
//   node scripts/run-tests.mjs --docker        only dist/test/docker, which build and run images on
//                                              a Docker engine (npm run test:docker starts one first)
import { readdirSync, statSync } from 'node:fs';
import { join, sep } from 'node:path';
import { spawnSync } from 'node:child_process';

const root = new URL('../dist/test/', import.meta.url).pathname;
const docker = process.argv.includes('--docker');
const only = process.argv.slice(2).filter((arg) => arg !== '--docker');

function findTests(dir) {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return findTests(path);
    return name.endsWith('.test.js') ? [path] : [];
  });
}

const dockerDir = `${root}docker${sep}`;
const files = findTests(root)
  .filter((file) => file.startsWith(dockerDir) === docker)
  .filter((file) => only.length === 0 || only.some((part) => file.includes(part)))
  .sort();
if (files.length === 0) {
  console.error(`no test files found under ${root}; run "npm run build" first`);
  process.exit(1);
}
const result = spawnSync(process.execPath, ['--test', '--test-concurrency=1', ...files], { stdio: 'inherit' });
process.exit(result.status ?? 1);
