// Each scenario with --quick against the real local stack (the launcher, an emulated enclave, the
// gateway, each its own process): it exits 0 and writes a result that matches the schema, with
// the figures each scenario promises. Sizes, not timings, are asserted.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { testModelPath } from '../helpers/model-server.js';
import { runQuick } from './helpers.js';

test('loadtest startup --quick times a cold start of the public model server and of the emulated enclave', async (t) => {
  await testModelPath();
  const result = await runQuick(t, 'startup');
  const startup = result.scenarios.startup!;
  assert.deepEqual(Object.keys(result.scenarios), ['startup']);
  assert.deepEqual(
    startup.parts.map((part) => [part.part, part.how, part.trialsSeconds.length]),
    [
      ['public model server', 'process', 1],
      ['enclave', 'emulated enclave', 1],
    ],
  );
  for (const part of startup.parts) {
    assert.ok(part.trialsSeconds[0]! > 0);
    assert.equal(part.medianSeconds, part.trialsSeconds[0]);
  }
  assert.equal(result.config.startup.trials, 1);
  assert.match(result.versions.node, /^\d+\.\d+\.\d+$/);
  assert.ok(result.machine.cores >= 1);
});

test('loadtest channel --quick measures the relay chain against loopback TCP, in bulk and in round trips', async (t) => {
  const result = await runQuick(t, 'channel', ['--streams', '1,2']);
  const channel = result.scenarios.channel!;
  assert.equal(channel.channel, 'unix relay chain');
  assert.deepEqual(
    channel.throughput.map((step) => [step.transport, step.messageBytes, step.streams]),
    [
      ['tcp', 65536, 1],
      ['channel', 65536, 1],
      ['tcp', 65536, 2],
      ['channel', 65536, 2],
    ],
  );
  for (const step of channel.throughput) {
    assert.ok(step.bytes > 0 && step.gbitPerSecond > 0, `${step.transport}: bytes went through`);
    assert.ok('load generator' in step.cpu && 'channel sink' in step.cpu);
  }
  assert.ok('parent relay' in channel.throughput[1]!.cpu && 'enclave relay' in channel.throughput[1]!.cpu);
  assert.equal(channel.ratios.length, 2);
  for (const ratio of channel.ratios) {
    const tcp = channel.throughput.find((step) => step.transport === 'tcp' && step.streams === ratio.streams)!;
    const through = channel.throughput.find((step) => step.transport === 'channel' && step.streams === ratio.streams)!;
    assert.ok(Math.abs(ratio.channelOverTcp - through.gbitPerSecond / tcp.gbitPerSecond) < 0.01);
  }
  assert.deepEqual(
    channel.roundTrip.map((entry) => [entry.transport, entry.count, entry.messageBytes]),
    [
      ['tcp', 200, 64],
      ['channel', 200, 64],
    ],
  );
  for (const entry of channel.roundTrip)
    assert.ok(entry.latencyUs.p50! > 0 && entry.latencyUs.p99! >= entry.latencyUs.p50!);
});

test('loadtest latency --quick sweeps both routes, direct and through the gateway, and every answer is checked good', async (t) => {
  await testModelPath();
  const result = await runQuick(t, 'latency');
  const steps = result.scenarios.latency!.steps;
  assert.deepEqual(
    steps.map((step) => `${step.target} ${step.concurrency}`),
    [1, 4].flatMap((c) =>
      ['public direct', 'secure direct', 'public gateway', 'secure gateway'].map((target) => `${target} ${c}`),
    ),
  );
  for (const step of steps) {
    const label = `${step.target} at ${step.concurrency}`;
    assert.ok(step.ok > 0, `${label}: good answers`);
    assert.equal(step.mismatches, 0, `${label}: no wrong answers (the gateway's route header matched)`);
    assert.equal(step.non2xx, 0, label);
    assert.equal(step.latencyMs.count, step.ok);
    assert.ok(Math.abs(step.queueSeconds! - step.concurrency / step.requestsPerSecond) < 0.01, `${label}: queue time`);
    const { min, p50, p90, p99, max } = step.latencyMs;
    assert.ok(min! <= p50! && p50! <= p90! && p90! <= p99! && p99! <= max!, `${label}: percentiles in order`);
    assert.ok(
      step.cpu['load generator']! >= 0 &&
        'public model server' in step.cpu &&
        'enclave' in step.cpu &&
        'gateway' in step.cpu,
    );
  }
});

test('loadtest mixed --quick sends one paced stream through the gateway with the asked secure fraction', async (t) => {
  await testModelPath();
  const result = await runQuick(t, 'mixed', ['--fractions', '0,0.5,1', '--rate', '4']);
  const steps = result.scenarios.mixed!.steps;
  assert.deepEqual(
    steps.map((step) => step.secureFraction),
    [0, 0.5, 1],
  );
  for (const step of steps) {
    assert.equal(step.sent, 6, '4 requests/s for 1.5 s');
    assert.equal(step.routes.secure.sent, Math.round(step.sent * step.secureFraction));
    assert.equal(step.routes.public.sent + step.routes.secure.sent, step.sent);
    for (const route of ['public', 'secure'] as const) {
      const figures = step.routes[route];
      assert.equal(figures.ok, figures.sent, `${route} at ${step.secureFraction}: every answer good`);
      assert.equal(figures.latencyMs.count, figures.ok);
    }
  }
});

test("loadtest memory --quick reports each part's start-up peak and its mean under light mixed load", async (t) => {
  await testModelPath();
  const result = await runQuick(t, 'memory');
  const memory = result.scenarios.memory!;
  assert.deepEqual(
    memory.parts.map((part) => part.part),
    ['public model server', 'enclave', 'gateway', 'parent relay'],
  );
  for (const part of memory.parts) {
    assert.equal(part.source, 'proc-rss');
    assert.ok(part.startupPeakMiB! > 10, `${part.part}: a start-up peak`);
    assert.ok(part.runtimeMeanMiB! > 10 && part.runtimeMaxMiB! >= part.runtimeMeanMiB!, `${part.part}: runtime memory`);
    assert.ok(part.runtimeSamples >= 3, `${part.part}: sampled every second`);
  }
  assert.equal(memory.load!.routes.secure.ok + memory.load!.routes.public.ok, memory.load!.sent);
});
