// latency: a concurrency sweep per route, direct to each model server (the public one over TCP,
// the secure one through the parent relay's Unix socket) and through the gateway, with the
// study's batch-2 base64 request. autocannon's closed loop; every answer checked.
import type { HttpTarget } from '../load/closed-loop.js';
import { checkTarget, closedLoop } from '../load/closed-loop.js';
import { partsCpuMeter } from '../../common/index.js';
import type { LatencyResult, LatencyTarget } from '../results.js';
import type { StackUnderTest } from '../stack-under-test.js';
import type { Scenario } from './context.js';
import { modelServers, settle } from '../load/settle.js';

export function latencyTargets(stack: StackUnderTest): Record<LatencyTarget, HttpTarget> {
  return {
    'public direct': { url: `${stack.publicUrl}/predict` },
    'secure direct': { url: 'http://localhost/predict', socketPath: stack.secureSocket },
    'public gateway': { url: `${stack.gatewayUrl}/predict-public`, route: 'public' },
    'secure gateway': { url: `${stack.gatewayUrl}/predict-secure`, route: 'secure' },
  };
}

const TARGETS: LatencyTarget[] = ['public direct', 'secure direct', 'public gateway', 'secure gateway'];

export const latencyScenario: Scenario<LatencyResult> = {
  name: 'latency',
  steps: (config) => config.latency.concurrency.length * TARGETS.length,
  // Each step, then the servers draining what the closed loop left queued (about c / 12 s here).
  estimateSeconds: (config) =>
    config.latency.concurrency.reduce(
      (total, c) => total + TARGETS.length * (config.latency.seconds + 1 + Math.min(20, c / 25)),
      0,
    ),
  empty: () => ({ complete: false, error: null, steps: [] }),
  async run(context, section) {
    const { config, signal } = context;
    const stack = await context.sharedStack();
    const targets = latencyTargets(stack);
    for (const target of TARGETS) await checkTarget(targets[target], context.body, config.timeoutSeconds);
    for (const concurrency of config.latency.concurrency) {
      // Concurrency outermost: the four targets of one level are measured minutes apart at most.
      for (const target of TARGETS) {
        if (signal.aborted) return;
        const label = `${target}, ${concurrency} concurrent`;
        context.setStep(label);
        context.progress.step(label, config.latency.seconds);
        const meter = partsCpuMeter(stack.parts);
        const figures = await Promise.race([
          closedLoop(targets[target], {
            body: context.body,
            connections: concurrency,
            seconds: config.latency.seconds,
            timeoutSeconds: config.timeoutSeconds,
            signal,
          }),
          stack.failed,
        ]);
        const cpu = meter();
        if (signal.aborted) return;
        const [route, via] = target.split(' ') as ['public' | 'secure', 'direct' | 'gateway'];
        const queueSeconds =
          figures.requestsPerSecond > 0 ? Math.round((concurrency / figures.requestsPerSecond) * 1000) / 1000 : null;
        section.steps.push({ target, route, via, concurrency, queueSeconds, ...figures, cpu });
        await settle(modelServers(stack.parts), signal);
      }
    }
    section.complete = true;
  },
};
