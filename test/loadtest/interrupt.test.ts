// Ctrl-C or SIGTERM mid-run: the current step stops, the result keeps every finished step (and
// says what was interrupted), matches the schema, and nothing the run started is left behind.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { test } from 'node:test';
import { testModelPath } from '../helpers/model-server.js';
import { startMpg } from '../helpers/process.js';
import { readValidResult, temporaryDirectory } from './helpers.js';

// Every process a run starts inherits this marker in its environment, so the checks below see
// this run's processes only, not those of another test run on the same machine.
const MARKER = `MPG_TEST_RUN=${randomUUID()}`;

function processesRunning(fragment: string): number[] {
  return readdirSync('/proc')
    .filter((pid) => /^\d+$/.test(pid) && Number(pid) !== process.pid)
    .filter((pid) => {
      try {
        if (!readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').includes(MARKER)) return false;
        return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').includes(fragment);
      } catch {
        return false;
      }
    })
    .map(Number);
}

const markedEnv = { [MARKER.split('=')[0]!]: MARKER.split('=')[1]! };

/** Waits until the run's progress (stderr, plain lines when not a terminal) shows `pattern`. */
async function waitForProgress(run: ReturnType<typeof startMpg>, pattern: RegExp): Promise<void> {
  while (!pattern.test(run.stderr())) {
    if (run.child.exitCode !== null) throw new Error(`mpg loadtest exited early: ${run.stderr()}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

test('SIGINT during latency keeps the finished steps in a valid, incomplete result, stops the stack and exits 130', async (t) => {
  await testModelPath();
  const out = temporaryDirectory(t);
  const run = startMpg(
    t,
    ['loadtest', 'latency', '--quick', '--concurrency', '1,2', '--duration', '1', '--out', out],
    markedEnv,
  );
  // The second step starts once the first has finished and been recorded.
  await waitForProgress(run, /\[latency 2\/8\] secure direct, 1 concurrent/);
  assert.ok(processesRunning('loadtest stack-host').length > 0, 'the stack under test runs');
  run.child.kill('SIGINT');
  assert.equal(await run.exited, 130, run.stderr());
  assert.match(run.stdout(), /result: \S+result\.json \(incomplete\)/);
  const result = readValidResult(out);
  assert.equal(result.complete, false);
  assert.equal(result.scenarios.latency!.complete, false);
  assert.equal(result.scenarios.latency!.error, null);
  assert.deepEqual(result.interrupted, { signal: 'SIGINT', scenario: 'latency', step: 'secure direct, 1 concurrent' });
  assert.deepEqual(
    result.scenarios.latency!.steps.map((step) => step.target),
    ['public direct'],
    'the finished step is kept, the interrupted one is not',
  );
  assert.ok(result.scenarios.latency!.steps[0]!.ok > 0);
  assert.ok(result.finishedAt !== null);
  assert.deepEqual(processesRunning('loadtest stack-host'), [], 'the stack under test is stopped');
});

test('SIGTERM during channel writes the partial result and exits 143, leaving no relay or sink behind', async (t) => {
  const out = temporaryDirectory(t);
  const run = startMpg(t, ['loadtest', 'channel', '--quick', '--rtt-count', '10000000', '--out', out], markedEnv);
  await waitForProgress(run, /\[channel 5\/6\] tcp, 10000000 round trips of 64 B/);
  assert.ok(processesRunning('loadtest channel-sink').length > 0, 'the sink runs, and carries the marker');
  assert.ok(processesRunning('mpg-loadtest-channel-').length > 0, 'the relays run, and carry the marker');
  run.child.kill('SIGTERM');
  assert.equal(await run.exited, 143, run.stderr());
  const result = readValidResult(out);
  assert.equal(result.complete, false);
  assert.deepEqual(result.interrupted, {
    signal: 'SIGTERM',
    scenario: 'channel',
    step: 'tcp, 10000000 round trips of 64 B',
  });
  assert.deepEqual(
    result.scenarios.channel!.throughput.map((step) => step.transport),
    ['tcp', 'channel', 'tcp', 'channel'],
  );
  assert.equal(result.scenarios.channel!.ratios.length, 2);
  assert.deepEqual(result.scenarios.channel!.roundTrip, []);
  assert.deepEqual(processesRunning(`mpg-loadtest-channel-`), [], 'the relays are stopped');
  assert.deepEqual(processesRunning('loadtest channel-sink'), [], 'the sink is stopped');
});
