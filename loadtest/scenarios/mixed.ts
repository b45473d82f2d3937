// mixed: one request stream through the gateway at a fixed offered rate, a given fraction of it
// secure (evenly spread), one step per fraction; latency per route at each. Open loop (paced.ts),
// so a route that cannot keep up shows its queue in its latency instead of slowing the stream.
import { partsCpuMeter } from '../../common/index.js';
import { paced } from '../load/paced.js';
import type { MixedResult } from '../results.js';
import type { Scenario } from './context.js';
import { modelServers, settle } from '../load/settle.js';

export const mixedScenario: Scenario<MixedResult> = {
  name: 'mixed',
  steps: (config) => config.mixed.fractions.length,
  estimateSeconds: (config) => config.mixed.fractions.length * (config.mixed.seconds + 1),
  empty: () => ({ complete: false, error: null, steps: [] }),
  async run(context, section) {
    const { config, signal } = context;
    const stack = await context.sharedStack();
    for (const secureFraction of config.mixed.fractions) {
      if (signal.aborted) return;
      const label = `${Math.round(secureFraction * 100)}% secure at ${config.mixed.rate} req/s`;
      context.setStep(label);
      context.progress.step(label, config.mixed.seconds);
      const meter = partsCpuMeter(stack.parts);
      const figures = await Promise.race([
        paced({
          gatewayUrl: stack.gatewayUrl,
          body: context.body,
          rate: config.mixed.rate,
          seconds: config.mixed.seconds,
          secureFraction,
          timeoutSeconds: config.timeoutSeconds,
          connections: config.mixed.connections,
          signal,
        }),
        stack.failed,
      ]);
      const cpu = meter();
      if (signal.aborted) return;
      section.steps.push({ secureFraction, offeredRate: config.mixed.rate, ...figures, cpu });
      if (figures.sentPerSecond < 0.95 * config.mixed.rate) {
        context.note(
          `mixed, ${label}: the generator sent only ${figures.sentPerSecond} req/s of the ${config.mixed.rate} offered (most late ${figures.maxSendLagMs} ms)`,
        );
      }
      await settle(modelServers(stack.parts), signal);
    }
    section.complete = true;
  },
};
