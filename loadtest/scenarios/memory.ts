// memory: each part's resident memory (the summed RSS of its process tree, from /proc): the peak
// in the first seconds after its first process exists, sampled every 100 ms, then the mean under
// light mixed load (half secure, paced through the gateway), sampled every second. On Nitro the
// enclave's memory is what nitro-cli allotted it: its pages are not visible from the parent.
import { paced } from '../load/paced.js';
import type { ProcessTreeRoot } from '../../common/index.js';
import { treeRssBytes } from '../../common/index.js';
import type { MemoryPart, MemoryResult } from '../results.js';
import type { StackUnderTest } from '../stack-under-test.js';
import type { Scenario } from './context.js';
import { pause, round3 } from './context.js';

const STARTUP_SAMPLE_MS = 100;
const MIB = 1024 * 1024;
const PARTS = ['public model server', 'enclave', 'gateway', 'parent relay'];

interface Watch {
  root: ProcessTreeRoot;
  peakBytes: number;
  timer: NodeJS.Timeout;
  done: Promise<void>;
}

/** Samples a tree's RSS every 100 ms for `seconds` from now, keeping the peak. */
function watchStartup(root: ProcessTreeRoot, seconds: number): Watch {
  const started = performance.now();
  let finish: () => void = () => {};
  const done = new Promise<void>((resolve) => (finish = resolve));
  const timer = setInterval(() => {
    watch.peakBytes = Math.max(watch.peakBytes, treeRssBytes(root));
    if (performance.now() - started >= seconds * 1000) {
      clearInterval(timer);
      finish();
    }
  }, STARTUP_SAMPLE_MS);
  const watch: Watch = { root, peakBytes: treeRssBytes(root), timer, done };
  return watch;
}

export const memoryScenario: Scenario<MemoryResult> = {
  name: 'memory',
  steps: () => 2,
  estimateSeconds: (config) => config.memory.startupSeconds + config.memory.seconds + 3,
  empty: () => ({ complete: false, error: null, parts: [], load: null }),
  async run(context, section) {
    const { config, signal } = context;
    const watches = new Map<string, Watch>();
    context.setStep('start-up peak');
    context.progress.step('start-up peak: a fresh stack', config.memory.startupSeconds);
    let stack: StackUnderTest | undefined;
    try {
      stack = await context.freshStack((part, root) =>
        watches.set(part, watchStartup(root, config.memory.startupSeconds)),
      );
      // Every part's window must have run out before the load starts.
      await Promise.race([
        Promise.all([...watches.values()].map((watch) => watch.done)),
        pause(config.memory.startupSeconds * 1000 + 1000, signal),
      ]);
      if (signal.aborted) return;
      const nitroMiB = stack.enclave.mode === 'nitro' ? stack.enclave.memoryMiB : undefined;

      context.setStep('under light mixed load');
      context.progress.step(`under light mixed load, ${config.memory.rate} req/s`, config.memory.seconds);
      const samples = new Map<string, number[]>(PARTS.map((part) => [part, []]));
      const sample = () => {
        for (const part of PARTS) {
          const root = stack!.parts[part];
          if (root) samples.get(part)!.push(treeRssBytes(root));
        }
      };
      sample();
      const sampler = setInterval(sample, config.memory.sampleEverySeconds * 1000);
      let load;
      try {
        load = await Promise.race([
          paced({
            gatewayUrl: stack.gatewayUrl,
            body: context.body,
            rate: config.memory.rate,
            seconds: config.memory.seconds,
            secureFraction: config.memory.secureFraction,
            timeoutSeconds: config.timeoutSeconds,
            connections: config.mixed.connections,
            signal,
          }),
          stack.failed,
        ]);
      } finally {
        clearInterval(sampler);
      }
      if (signal.aborted) return;
      section.load = { ...load, secureFraction: config.memory.secureFraction, offeredRate: config.memory.rate };
      const mib = (bytes: number) => round3(bytes / MIB);
      for (const part of PARTS) {
        const values = samples.get(part)!;
        const watch = watches.get(part);
        if (part === 'enclave' && nitroMiB !== undefined) {
          section.parts.push({
            part,
            source: 'nitro-allotted',
            startupPeakMiB: nitroMiB,
            runtimeMeanMiB: nitroMiB,
            runtimeMaxMiB: nitroMiB,
            runtimeSamples: values.length,
          });
          continue;
        }
        if (!watch && values.length === 0) continue;
        const entry: MemoryPart = {
          part,
          source: 'proc-rss',
          startupPeakMiB: watch ? mib(watch.peakBytes) : null,
          runtimeMeanMiB: values.length ? mib(values.reduce((total, value) => total + value, 0) / values.length) : null,
          runtimeMaxMiB: values.length ? mib(Math.max(...values)) : null,
          runtimeSamples: values.length,
        };
        section.parts.push(entry);
      }
      section.complete = true;
    } finally {
      for (const watch of watches.values()) clearInterval(watch.timer);
      await stack?.stop();
    }
  },
};
