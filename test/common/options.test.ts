import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import {
  OptionError,
  choice,
  envName,
  flagName,
  formatOptionsHelp,
  integer,
  list,
  parseCommandLine,
  parseConfiguration,
  text,
  toggle,
} from '../../common/index.js';

const specs = {
  host: text({ description: 'Host', default: '127.0.0.1' }),
  maxBatch: integer({ description: 'Batch', default: 8, min: 1, max: 64, unit: 'images' }),
  socket: text({ description: 'Socket' }),
  mode: choice({ description: 'Mode', choices: ['a', 'b'] as const, default: 'a' }),
  warmup: toggle({ description: 'Warm', default: true }),
  upstream: list(text({ description: 'Upstream' })),
};

test('names: camelCase keys become kebab-case flags and MPG_ upper-snake variables', () => {
  assert.equal(flagName('batchWindowMs'), '--batch-window-ms');
  assert.equal(envName('batchWindowMs'), 'MPG_BATCH_WINDOW_MS');
});

test('flags win over the environment, the environment over defaults; the result is frozen', () => {
  const { options } = parseCommandLine(specs, ['--max-batch', '4'], { MPG_MAX_BATCH: '16', MPG_HOST: '0.0.0.0' });
  assert.equal(options.maxBatch, 4);
  assert.equal(options.host, '0.0.0.0');
  assert.equal(options.socket, undefined);
  assert.equal(options.mode, 'a');
  assert.ok(Object.isFrozen(options));
  assert.equal(parseCommandLine(specs, ['--max-batch=5'], {}).options.maxBatch, 5);
});

test('switches take --flag, --no-flag and an env twin', () => {
  assert.equal(parseCommandLine(specs, ['--no-warmup'], {}).options.warmup, false);
  assert.equal(parseCommandLine(specs, [], { MPG_WARMUP: 'false' }).options.warmup, false);
  assert.equal(parseCommandLine(specs, ['--warmup'], { MPG_WARMUP: 'false' }).options.warmup, true);
  assert.throws(() => parseCommandLine(specs, [], { MPG_WARMUP: 'maybe' }), /MPG_WARMUP must be true or false/);
});

test('repeatable options collect every occurrence; their env twin is comma-separated', () => {
  assert.deepEqual(parseCommandLine(specs, ['--upstream', 'a', '--upstream', 'b'], {}).options.upstream, ['a', 'b']);
  assert.deepEqual(parseCommandLine(specs, [], { MPG_UPSTREAM: 'x, y' }).options.upstream, ['x', 'y']);
  assert.deepEqual(parseCommandLine(specs, [], {}).options.upstream, []);
});

test('errors name the option, the range and the unit', () => {
  assert.throws(
    () => parseCommandLine(specs, ['--bogus'], {}),
    (error: unknown) => error instanceof OptionError && /unknown option --bogus/.test(error.message),
  );
  assert.throws(
    () => parseCommandLine(specs, ['--max-batch', '65'], {}),
    /--max-batch must be an integer from 1 to 64 \(images\), got "65"/,
  );
  assert.throws(() => parseCommandLine(specs, ['--max-batch', '1.5'], {}), /got "1.5"/);
  assert.throws(() => parseCommandLine(specs, ['--max-batch'], {}), /--max-batch needs a value/);
  assert.throws(() => parseCommandLine(specs, ['--mode', 'c'], {}), /--mode must be one of a, b, got "c"/);
  assert.throws(() => parseCommandLine(specs, ['stray'], {}), /unexpected argument "stray"/);
});

test('help lists every flag with its unit, default and environment twin', () => {
  const help = formatOptionsHelp(specs);
  assert.match(help, /--max-batch N\n\s+Batch \[unit: images; default: 8; env: MPG_MAX_BATCH\]/);
  assert.match(help, /--upstream TEXT\n\s+Upstream \[repeatable; env: MPG_UPSTREAM\]/);
  assert.equal(parseCommandLine(specs, ['--help'], {}).help, true);
});

// The configuration-file layer.

const fileSpecs = {
  ...specs,
  config: text({ description: 'Configuration file', placeholder: 'FILE' }),
  secret: text({ description: 'Only from a flag or the file', env: false }),
};

/** Writes `content` (an object is JSON-encoded) to a fresh temporary file removed after the test. */
function configFile(t: TestContext, content: unknown, name = 'gateway.json'): string {
  const directory = mkdtempSync(join(tmpdir(), 'mpg-options-'));
  t.after(() => rmSync(directory, { recursive: true, force: true }));
  const path = join(directory, name);
  writeFileSync(path, typeof content === 'string' ? content : JSON.stringify(content));
  return path;
}

function parseWithFile(argv: readonly string[], env: Record<string, string> = {}) {
  return parseConfiguration(fileSpecs, argv, env, { fileOption: 'config' }).options;
}

/** Asserts an OptionError with exactly this message. */
function throwsOption(run: () => unknown, message: string): void {
  assert.throws(run, (error: unknown) => {
    assert.ok(error instanceof OptionError, `expected an OptionError, got ${String(error)}`);
    assert.equal(error.message, message);
    return true;
  });
}

test('file: flags win over the environment, the environment over the file, the file over defaults', (t) => {
  const path = configFile(t, { maxBatch: 16 });
  assert.equal(parseWithFile([]).maxBatch, 8);
  assert.equal(parseWithFile(['--config', path]).maxBatch, 16);
  assert.equal(parseWithFile(['--config', path], { MPG_MAX_BATCH: '32' }).maxBatch, 32);
  assert.equal(parseWithFile(['--config', path, '--max-batch', '4'], { MPG_MAX_BATCH: '32' }).maxBatch, 4);

  const mixed = configFile(t, { host: 'file-host', maxBatch: 16, mode: 'b', socket: '/run/file.sock' });
  const options = parseWithFile(['--config', mixed, '--socket', '/run/flag.sock'], { MPG_MAX_BATCH: '32' });
  assert.equal(options.socket, '/run/flag.sock');
  assert.equal(options.maxBatch, 32);
  assert.equal(options.host, 'file-host');
  assert.equal(options.mode, 'b');
  assert.equal(options.warmup, true);
  assert.equal(options.config, mixed);
  assert.ok(Object.isFrozen(options));
});

test('file: the path comes from the flag or from its environment twin, the flag first', (t) => {
  const fromEnv = configFile(t, { host: 'env-file' });
  const fromFlag = configFile(t, { host: 'flag-file' });
  assert.equal(parseWithFile([], { MPG_CONFIG: fromEnv }).host, 'env-file');
  assert.equal(parseWithFile(['--config', fromFlag], { MPG_CONFIG: fromEnv }).host, 'flag-file');
  assert.equal(parseWithFile([], {}).host, '127.0.0.1');
});

test('file: numbers, booleans and strings are checked by the same parser as flags', (t) => {
  const path = configFile(t, { maxBatch: 64, warmup: false, mode: 'b', host: '0.0.0.0' });
  const options = parseWithFile(['--config', path]);
  assert.equal(options.maxBatch, 64);
  assert.equal(options.warmup, false);
  assert.equal(options.mode, 'b');
  assert.equal(parseWithFile(['--config', configFile(t, { warmup: 'off', maxBatch: '7' })]).maxBatch, 7);
});

test('file: a list option takes an array; a flag or the environment replaces it, never merges', (t) => {
  const path = configFile(t, { upstream: ['http://a:1', 'unix:/run/x.sock'] });
  assert.deepEqual(parseWithFile(['--config', path]).upstream, ['http://a:1', 'unix:/run/x.sock']);
  assert.deepEqual(parseWithFile(['--config', path], { MPG_UPSTREAM: 'http://e:1' }).upstream, ['http://e:1']);
  assert.deepEqual(
    parseWithFile(['--config', path, '--upstream', 'http://f:1', '--upstream', 'http://g:1'], {
      MPG_UPSTREAM: 'http://e:1',
    }).upstream,
    ['http://f:1', 'http://g:1'],
  );
  assert.deepEqual(parseWithFile(['--config', configFile(t, { upstream: [] })]).upstream, []);
  // A single string reads like the comma-separated environment twin.
  assert.deepEqual(parseWithFile(['--config', configFile(t, { upstream: 'a, b' })]).upstream, ['a', 'b']);
});

test('file: a key for an option without an environment twin still works', (t) => {
  const path = configFile(t, { secret: 'from-file' });
  assert.equal(parseWithFile(['--config', path], { MPG_SECRET: 'ignored' }).secret, 'from-file');
  assert.equal(parseWithFile(['--config', path, '--secret', 'from-flag']).secret, 'from-flag');
});

test('file: an invalid value names the file and the key, the range and the unit', (t) => {
  const path = configFile(t, { maxBatch: 0 });
  throwsOption(
    () => parseWithFile(['--config', path]),
    `${path}: "maxBatch" must be an integer from 1 to 64 (images), got "0"`,
  );
  // Every key is checked, even one a flag overrides.
  throwsOption(
    () => parseWithFile(['--config', path, '--max-batch', '4']),
    `${path}: "maxBatch" must be an integer from 1 to 64 (images), got "0"`,
  );
  const badMode = configFile(t, { mode: 'c' });
  throwsOption(() => parseWithFile(['--config', badMode]), `${badMode}: "mode" must be one of a, b, got "c"`);
  const fraction = configFile(t, { maxBatch: 1.5 });
  throwsOption(
    () => parseWithFile(['--config', fraction]),
    `${fraction}: "maxBatch" must be an integer from 1 to 64 (images), got "1.5"`,
  );
  const emptyItem = configFile(t, { upstream: ['ok'], host: '' });
  throwsOption(() => parseWithFile(['--config', emptyItem]), `${emptyItem}: "host" must not be empty`);
  const nested = configFile(t, { upstream: ['ok', { url: 'x' }] });
  throwsOption(
    () => parseWithFile(['--config', nested]),
    `${nested}: "upstream"[1] must be a string, number or boolean, got an object`,
  );
  const nullValue = configFile(t, { host: null });
  throwsOption(
    () => parseWithFile(['--config', nullValue]),
    `${nullValue}: "host" must be a string, number or boolean, got null`,
  );
});

test('file: an array for an option that is not repeatable is an error', (t) => {
  const path = configFile(t, { host: ['a', 'b'] });
  throwsOption(() => parseWithFile(['--config', path]), `${path}: "host" takes one value, not an array`);
});

test('file: unknown keys are errors listing the known keys', (t) => {
  const path = configFile(t, { host: 'h', bogus: 1, toString: 'x' });
  throwsOption(
    () => parseWithFile(['--config', path]),
    `${path}: unknown keys "bogus", "toString"; known keys: host, maxBatch, mode, secret, socket, upstream, warmup`,
  );
});

test('file: the file option inside the file is an error', (t) => {
  const path = configFile(t, { config: 'other.json' });
  throwsOption(
    () => parseWithFile(['--config', path]),
    `${path}: "config" cannot be set inside the configuration file; use --config or MPG_CONFIG`,
  );
});

test('file: a missing or unreadable file names the path and where it came from', (t) => {
  const directory = mkdtempSync(join(tmpdir(), 'mpg-options-'));
  t.after(() => rmSync(directory, { recursive: true, force: true }));
  const missing = join(directory, 'missing.json');
  throwsOption(
    () => parseWithFile(['--config', missing]),
    `cannot read configuration file ${missing} (from --config): no such file`,
  );
  throwsOption(
    () => parseWithFile([], { MPG_CONFIG: missing }),
    `cannot read configuration file ${missing} (from MPG_CONFIG): no such file`,
  );
  const folder = join(directory, 'folder.json');
  mkdirSync(folder);
  throwsOption(
    () => parseWithFile(['--config', folder]),
    `cannot read configuration file ${folder} (from --config): it is a directory`,
  );
  throwsOption(() => parseWithFile(['--config', '']), '--config must not be empty');
});

test('file: invalid JSON or a document that is not an object names the path', (t) => {
  const broken = configFile(t, '{"host": ');
  assert.throws(
    () => parseWithFile(['--config', broken]),
    (error: unknown) =>
      error instanceof OptionError &&
      error.message.startsWith(`${broken}: not valid JSON: `) &&
      error.cause instanceof SyntaxError,
  );
  const array = configFile(t, '[1, 2]');
  throwsOption(
    () => parseWithFile(['--config', array]),
    `${array}: must be a JSON object keyed by option name, got an array`,
  );
  // A byte-order mark, as some editors write, is not an error.
  assert.equal(parseWithFile(['--config', configFile(t, '\uFEFF{"host": "bom"}')]).host, 'bom');
});

test('file: without fileOption nothing is read and parseConfiguration parses like parseCommandLine', (t) => {
  const path = configFile(t, { host: 'file-host' });
  const { options, positionals } = parseConfiguration(fileSpecs, ['--config', path, 'one'], {}, { maxPositionals: 1 });
  assert.equal(options.host, '127.0.0.1');
  assert.equal(options.config, path);
  assert.deepEqual(positionals, ['one']);
  assert.throws(
    () => parseConfiguration(fileSpecs, ['one', 'two'], {}, { fileOption: 'config', maxPositionals: 1 }),
    /unexpected argument "two"/,
  );
});
