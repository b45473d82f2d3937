// How `mpg stack` shows its parts' lines: prefixed by part, pino JSON rendered compactly (or
// passed on as JSON with the part added), whole lines only, however the bytes arrive.
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { test } from 'node:test';
import { partOutput, renderPartLine } from '../../stack/part-output.js';

const time = Date.UTC(2026, 0, 2, 3, 4, 5, 678);

test('a pino line is one compact line: part, time, level, message, then its fields; the usual noise is left out', () => {
  const line = JSON.stringify({
    level: 40,
    time,
    pid: 7,
    hostname: 'h',
    component: 'gateway',
    msg: 'member ejected',
    member: 'unix:/tmp/a b.sock',
    route: 'secure',
    err: { type: 'Error', code: 'ECONNREFUSED', message: 'connect failed', stack: 'Error: connect failed\n    at x' },
  });
  assert.equal(
    renderPartLine('gateway', line, 'pretty'),
    'gateway | 03:04:05.678 WARN  member ejected member="unix:/tmp/a b.sock" route=secure err="Error ECONNREFUSED: connect failed"',
  );
  assert.equal(
    renderPartLine('public', 'model-server listening on http://127.0.0.1:1', 'pretty'),
    'public  | model-server listening on http://127.0.0.1:1',
  );
  assert.equal(renderPartLine('enclave', '{not json', 'pretty'), 'enclave | {not json');
});

test('json format keeps the line machine-readable and adds the part', () => {
  assert.deepEqual(JSON.parse(renderPartLine('gateway', JSON.stringify({ level: 30, time, msg: 'routing' }), 'json')), {
    part: 'gateway',
    level: 30,
    time,
    msg: 'routing',
  });
  assert.deepEqual(JSON.parse(renderPartLine('public', 'plain text', 'json')), { part: 'public', msg: 'plain text' });
});

test('lines split across chunks arrive whole, and one stream never mixes into another line', async () => {
  const sink = new PassThrough();
  let seen = '';
  sink.on('data', (chunk: Buffer) => (seen += chunk.toString()));
  const stdout = partOutput('gateway', sink, 'pretty');
  const stderr = partOutput('gateway', sink, 'pretty');
  stdout.write('first half ');
  stderr.write('an error line\n');
  stdout.write('second half\n\n');
  await new Promise<void>((resolve) => stdout.end(resolve));
  assert.equal(seen, 'gateway | an error line\ngateway | first half second half\n');
});
