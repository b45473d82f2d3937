// The README is the front door: short, every link leads somewhere, and every command it shows
// exists as shown. The reference tables live in docs/ and are kept true by test/docs.test.ts.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { flagName } from '../common/index.js';
import { predictOptions } from '../client/command.js';

const ROOT = new URL('../../', import.meta.url).pathname;
const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
const scripts = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> })
  .scripts;

test('the README is at most 200 lines and has the sections a newcomer needs', () => {
  assert.ok(readme.split('\n').length <= 200, `${readme.split('\n').length} lines`);
  for (const heading of [
    '## The path of a request, and where trust ends',
    '## Threat model in brief',
    '## Quickstart',
    '## What privacy costs: headline figures',
    '## Documentation',
  ]) {
    assert.ok(readme.includes(`\n${heading}\n`), heading);
  }
});

test('every relative link and image in the README exists', () => {
  const targets = [...readme.matchAll(/\]\(([^)#]+)(?:#[^)]*)?\)/g)]
    .map((match) => match[1]!)
    .filter((target) => !/^[a-z]+:/.test(target));
  assert.ok(targets.length >= 10, `only ${targets.length} links`);
  for (const target of targets)
    assert.ok(existsSync(join(ROOT, target)), `README links to ${target}, which does not exist`);
});

test('every npm script and benchmark file the README names exists', () => {
  for (const [, name] of readme.matchAll(/npm (?:run )?([a-z:]+)/g)) {
    if (name === 'install' || name === 'test' || name === 'start') continue;
    assert.ok(scripts[name!], `npm run ${name} is not a script`);
  }
  assert.equal(scripts.start, 'bin/mpg stack');
  for (const [, file] of readme.matchAll(/node (dist\/\S+\.js)/g)) {
    const source = join(ROOT, file!.replace(/^dist\//, '').replace(/\.js$/, '.ts'));
    assert.ok(existsSync(source), `${file} is built from no source file`);
  }
  for (const [, file] of readme.matchAll(/`(test\/\S+\.test\.ts)`/g)) assert.ok(existsSync(join(ROOT, file!)), file);
});

test("the quickstart's mpg client predict flags are the command's own", () => {
  const line = /bin\/mpg client predict([^\n]*\\\n[^\n]*)/.exec(readme)?.[1] ?? '';
  const flags = [...line.matchAll(/(--[a-z-]+)/g)].map((match) => match[1]!);
  assert.deepEqual(flags, ['--gateway', '--pcrs', '--insecure-trust-emulated-nsm-root']);
  const declared = Object.keys(predictOptions).map(flagName);
  for (const flag of flags) assert.ok(declared.includes(flag), `${flag} is not an option of mpg client predict`);
  assert.ok(existsSync(join(dirname(join(ROOT, 'bin/mpg')), 'mpg')));
});
