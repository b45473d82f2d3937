import assert from 'node:assert/strict';
import { test } from 'node:test';
import { OptionError, choice, envName, flagName, formatOptionsHelp, integer, list, parseCommandLine, text, toggle } from '../../common/index.js';

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
  assert.throws(() => parseCommandLine(specs, ['--bogus'], {}), (error: unknown) => error instanceof OptionError && /unknown option --bogus/.test(error.message));
  assert.throws(() => parseCommandLine(specs, ['--max-batch', '65'], {}), /--max-batch must be an integer from 1 to 64 \(images\), got "65"/);
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
