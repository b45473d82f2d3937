// The stack's supervisor: the restart schedule (time passed in), and a real process that keeps
// dying, restarted slower and reported loudly, while a healthy one beside it is left alone.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { test } from 'node:test';
import { RestartBackoff } from '../../stack/restart-backoff.js';
import type { SupervisedProcess, SupervisionEvent } from '../../stack/supervisor.js';
import { superviseStack } from '../../stack/supervisor.js';
import { waitFor } from '../helpers/gateway.js';

const POLICY = {
  initialDelayMs: 100,
  maxDelayMs: 800,
  stableAfterMs: 10_000,
  crashLoopDeaths: 5,
  crashLoopDelayMs: 2_000,
};

test('restart delays double from the first death up to the cap, a crash loop waits longer, and a part that stayed up starts again from the first delay', () => {
  const backoff = new RestartBackoff(POLICY);
  const delays = Array.from({ length: 7 }, () => backoff.died(50));
  assert.deepEqual(
    delays.map(({ delayMs, crashLoop }) => [delayMs, crashLoop]),
    [
      [100, false],
      [200, false],
      [400, false],
      [800, false],
      [2_000, true],
      [2_000, true],
      [2_000, true],
    ],
  );
  assert.deepEqual(
    backoff.died(POLICY.stableAfterMs),
    { deathsInARow: 1, delayMs: 100, crashLoop: false },
    'up long enough: the count starts again',
  );
  assert.deepEqual(
    backoff.died(POLICY.stableAfterMs - 1),
    { deathsInARow: 2, delayMs: 200, crashLoop: false },
    'not up long enough: still in a row',
  );
});

/** A real child process as the supervisor sees a part. */
function spawnPart(script: string): SupervisedProcess & { pid: number } {
  const child = spawn(process.execPath, ['-e', script], { stdio: 'ignore' });
  const exited = new Promise<number | string>((resolve) =>
    child.once('exit', (code, signal) => resolve(code ?? signal ?? 'unknown')),
  );
  return {
    pid: child.pid!,
    exited,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
}

test('a part that keeps dying is restarted with growing delays, then reported as a crash loop and retried slower; the healthy part is never touched', async (t) => {
  const events: SupervisionEvent[] = [];
  const healthy = spawnPart('setInterval(() => {}, 1000)');
  let healthyRestarts = 0;
  const parts = {
    crashing: {
      current: spawnPart('process.exit(3)'),
      restart: () => Promise.resolve(spawnPart('process.exit(3)')),
      replaced: () => {},
    },
    healthy: {
      current: healthy,
      restart: () => {
        healthyRestarts++;
        return Promise.resolve(spawnPart('setInterval(() => {}, 1000)'));
      },
      replaced: () => {},
    },
  };
  const supervisor = superviseStack(parts, { policy: POLICY, report: (event) => events.push(event) });
  t.after(async () => {
    await supervisor.stop();
    await parts.crashing.current.stop();
    await healthy.stop();
  });

  await waitFor(
    () => events.filter((event) => event.event === 'died' && event.crashLoop).length >= 1,
    'a crash loop to be reported',
    20_000,
  );
  const deaths = events.filter((event) => event.event === 'died');
  assert.ok(
    deaths.every((event) => event.part === 'crashing' && event.code === 3),
    'only the crashing part died, with its own exit code',
  );
  assert.deepEqual(
    deaths.map((event) => event.event === 'died' && [event.deathsInARow, event.restartInMs, event.crashLoop]),
    [
      [1, 100, false],
      [2, 200, false],
      [3, 400, false],
      [4, 800, false],
      [5, 2_000, true],
    ],
  );
  assert.equal(
    events.filter((event) => event.event === 'restarted').length,
    4,
    'restarted after each death but the last, whose delay is still running',
  );
  assert.equal(healthyRestarts, 0);
  assert.equal(healthy.pid > 0 && (process.kill(healthy.pid, 0), true), true, 'the healthy part still runs');

  // Stopping ends supervision at once: the crash loop's long delay is not waited out, and nothing restarts after.
  await supervisor.stop();
  const after = events.length;
  await new Promise((resolve) => setTimeout(resolve, 300));
  assert.equal(events.length, after);
});
