// Running `mpg loadtest` as users do, and reading back what it wrote.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import type { LoadtestResult } from '../../loadtest/results.js';
import { validateResult } from '../../loadtest/results.js';
import { runMpg } from '../helpers/process.js';

export function temporaryDirectory(t: TestContext, prefix = 'mpg-loadtest-test-'): string {
  const directory = mkdtempSync(join(tmpdir(), prefix));
  t.after(() => rmSync(directory, { recursive: true, force: true }));
  return directory;
}

/** Reads DIR/result.json and asserts it matches the schema. */
export function readValidResult(directory: string): LoadtestResult {
  const value: unknown = JSON.parse(readFileSync(join(directory, 'result.json'), 'utf8'));
  assert.deepEqual(validateResult(value), [], 'the result matches results.schema.json');
  return value as LoadtestResult;
}

/** `mpg loadtest <scenario> --quick --out DIR [...extra]`; asserts exit 0 and returns the valid result. */
export async function runQuick(t: TestContext, scenario: string, extra: string[] = []): Promise<LoadtestResult> {
  const out = temporaryDirectory(t);
  const { code, stdout, stderr } = await runMpg(['loadtest', scenario, '--quick', '--out', out, ...extra]);
  assert.equal(code, 0, `exit code; stderr:\n${stderr}`);
  assert.match(stdout, new RegExp(`result: ${out}/result\\.json\\n`));
  const result = readValidResult(out);
  assert.equal(result.complete, true);
  assert.equal(result.interrupted, null);
  assert.deepEqual(result.command.slice(0, 2), [scenario, '--quick']);
  return result;
}
