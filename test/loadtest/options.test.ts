// Bad flags (and their MPG_ twins) stop `mpg loadtest` before anything starts, with exit 2 and a
// message naming the flag and what it takes.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { OptionError } from '../../common/index.js';
import { isSecureRequest } from '../../loadtest/load/paced.js';
import { parseLoadtestOptions, stackHostArguments } from '../../loadtest/options.js';
import { runMpg } from '../helpers/process.js';

const refusals: [string[], RegExp][] = [
  [['--concurrency', '0'], /--concurrency must be an integer from 1 to 100000, got "0"/],
  [['--concurrency', '10,x'], /--concurrency must be an integer from 1 to 100000, got "x"/],
  [['--concurrency', '10,10'], /--concurrency lists a value twice: 10,10/],
  [['--fractions', '0,1.5'], /--fractions must be a number from 0 to 1, got "1\.5"/],
  [['--rate', '0'], /--rate must be a number from 0\.1 to 100000 \(requests\/s\), got "0"/],
  [['--duration', 'soon'], /--duration must be a number from 0\.2 to 3600 \(s\), got "soon"/],
  [['--enclave-cpus', 'two'], /--enclave-cpus must be a CPU list for taskset, like 0-1 or 0,2, got "two"/],
  [['--generator-cpus', '0;1'], /--generator-cpus must be a CPU list for taskset/],
  [['--enclave', 'sgx'], /--enclave must be one of emulated, nitro, got "sgx"/],
  [['--enclave', 'nitro'], /--eif is required with the nitro enclave/],
  [
    ['--enclave', 'nitro', '--eif', 'x.eif', '--memory-mib', '4096', '--enclave-cpus', '1'],
    /--enclave-cpus is for the emulated enclave/,
  ],
  [
    ['--enclave', 'nitro', '--eif', 'x.eif', '--memory-mib', '4096'],
    /the channel scenario on Nitro needs --channel-socket PATH/,
  ],
  [['--speed', 'max'], /unknown option --speed; known options: .*--concurrency/],
  [['extra'], /unexpected argument "extra"/],
];

for (const [flags, message] of refusals) {
  test(`loadtest refuses ${flags.join(' ')}`, () => {
    assert.throws(
      () => parseLoadtestOptions(flags, {}, ['channel', 'latency']),
      (error: unknown) => error instanceof OptionError && message.test(error.message),
    );
  });
}

test('a bad flag exits 2 before anything starts, naming it and pointing to --help', async () => {
  const { code, stderr, stdout } = await runMpg(['loadtest', 'latency', '--concurrency', '0']);
  assert.equal(code, 2);
  assert.equal(stdout, '');
  assert.match(
    stderr,
    /^mpg loadtest latency: --concurrency must be an integer from 1 to 100000, got "0"\nRun "mpg loadtest latency --help" for the options\.\n$/,
  );
});

test('a bad environment twin exits 2 naming the variable', async () => {
  const { code, stderr } = await runMpg(['loadtest', 'mixed'], { MPG_FRACTIONS: '0,2' });
  assert.equal(code, 2);
  assert.match(stderr, /MPG_FRACTIONS must be a number from 0 to 1, got "2"/);
});

test('an unknown scenario, and a report without its directory, exit 2 with what to do', async () => {
  const unknown = await runMpg(['loadtest', 'throughput']);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /mpg loadtest: unknown command "throughput"/);
  assert.match(unknown.stderr, /startup .*\n.*channel/s);
  const report = await runMpg(['loadtest', 'report']);
  assert.equal(report.code, 2);
  assert.match(report.stderr, /give the directory of a run: mpg loadtest report results\/<timestamp>/);
});

test('--help lists every flag with its MPG_ twin and exits 0', async () => {
  const { code, stdout } = await runMpg(['loadtest', 'all', '--help']);
  assert.equal(code, 0);
  for (const flag of [
    '--quick',
    '--out DIR',
    '--concurrency N',
    '--fractions X',
    '--generator-cpus LIST',
    '--eif PATH',
  ])
    assert.ok(stdout.includes(flag), flag);
  assert.match(stdout, /env: MPG_CONCURRENCY/);
  assert.match(stdout, /Runs startup, channel, memory, latency, mixed, in that order/);
});

test("a scenario's --help lists the shared options and its own, not the other scenarios'", async () => {
  const { code, stdout } = await runMpg(['loadtest', 'latency', '--help']);
  assert.equal(code, 0);
  for (const flag of [
    '--quick',
    '--out DIR',
    '--timeout-s N',
    '--enclave emulated|nitro',
    '--eif PATH',
    '--concurrency N',
    '--duration X',
  ])
    assert.ok(stdout.includes(flag), flag);
  for (const flag of ['--fractions', '--trials', '--message-sizes', '--memory-rate', '--rate X'])
    assert.ok(!stdout.includes(flag), flag);
  assert.match(stdout, /"mpg loadtest all --help" lists every one/);
});

test('the internal stack-host command runs but is not listed', async () => {
  const { code, stdout } = await runMpg(['loadtest', '--help']);
  assert.equal(code, 0);
  assert.match(stdout, /channel-sink/);
  assert.doesNotMatch(stdout, /stack-host/);
  const help = await runMpg(['loadtest', 'stack-host', '--help']);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /Usage: mpg loadtest stack-host/);
});

test('--quick shrinks the sizes left unset; explicit flags win', () => {
  const quick = parseLoadtestOptions(['--quick', '--concurrency', '3'], {}, ['latency']).config;
  assert.deepEqual(quick.latency.concurrency, [3]);
  assert.equal(quick.latency.seconds, 1);
  assert.deepEqual(quick.mixed.fractions, [0, 0.5, 1]);
  const full = parseLoadtestOptions([], { MPG_DURATION: '7' }, ['latency']).config;
  assert.deepEqual(full.latency.concurrency, [1, 10, 50, 100, 200, 300]);
  assert.equal(full.latency.seconds, 7);
  assert.deepEqual(full.mixed.fractions, [0, 0.25, 0.5, 0.75, 1]);
  assert.equal(full.startup.trials, 5);
});

test('the stack host gets the Nitro flags passed through', () => {
  const parsed = parseLoadtestOptions(
    [
      '--enclave',
      'nitro',
      '--eif',
      '/x.eif',
      '--memory-mib',
      '4096',
      '--cpu-count',
      '4',
      '--allow-debug-mode',
      '--server-cpus',
      '0',
    ],
    {},
    ['latency'],
  );
  const args = stackHostArguments(parsed.options, parsed.config);
  assert.deepEqual(args.slice(0, 6), [
    '--enclave',
    'nitro',
    '--threads',
    String(parsed.config.threads),
    '--server-cpus',
    '0',
  ]);
  for (const pair of [
    ['--eif', '/x.eif'],
    ['--memory-mib', '4096'],
    ['--cpu-count', '4'],
  ])
    assert.ok(args.join(' ').includes(pair.join(' ')), pair.join(' '));
  assert.ok(args.includes('--allow-debug-mode') && args.includes('--no-debug-mode'));
});

test('a secure fraction is spread evenly through the stream', () => {
  for (const fraction of [0, 0.25, 0.5, 0.75, 1]) {
    const secure = Array.from({ length: 100 }, (_, index) => isSecureRequest(index, fraction));
    assert.equal(secure.filter(Boolean).length, 100 * fraction, `fraction ${fraction}`);
    if (fraction === 0.25) assert.deepEqual(secure.slice(0, 8), [false, false, false, true, false, false, false, true]);
  }
});
