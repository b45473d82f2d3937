// startup: cold start to ready, trial after trial, for the public model server (a process) and the
// enclave (emulated here: entrypoint in its own namespace behind both relays; on EC2 nitro-cli
// run-enclave, the parent relay and the model server's start inside). Each trial runs from spawn
// until /readyz answers 200 (for the enclave, through the parent relay), then the part is stopped.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { EnclaveSettings } from '../../stack/index.js';
import { childEnvironment, startEnclave, startPublicServer } from '../../stack/index.js';
import type { StartupResult } from '../results.js';
import type { Scenario, ScenarioContext } from './context.js';
import { median, round3 } from './context.js';

type Part = StartupResult['parts'][number];

async function timePublicServer(context: ScenarioContext): Promise<number> {
  const started = performance.now();
  const server = await startPublicServer({
    port: 0,
    threads: context.config.threads,
    cpus: context.config.cpus.server ?? undefined,
    env: childEnvironment(context.env),
  });
  const seconds = (performance.now() - started) / 1000;
  await server.stop();
  return seconds;
}

async function timeEnclave(context: ScenarioContext): Promise<number> {
  const { config } = context;
  const settings: EnclaveSettings = context.nitro
    ? { mode: 'nitro', nitro: { ...context.nitro, env: childEnvironment(context.env) } }
    : { mode: 'emulated', cpus: config.cpus.enclave ?? '0', threads: config.threads };
  const directory = await mkdtemp(join(tmpdir(), 'mpg-loadtest-startup-'));
  try {
    const started = performance.now();
    const enclave = await startEnclave(
      settings,
      join(directory, 'enclave.sock'),
      childEnvironment(context.env),
      context.log,
    );
    try {
      await enclave.ready;
      return (performance.now() - started) / 1000;
    } finally {
      await enclave.stop();
    }
  } finally {
    await rm(directory, { recursive: true, force: true });
  }
}

function summarise(part: Part): void {
  const values = part.trialsSeconds;
  part.minSeconds = values.length ? Math.min(...values) : null;
  part.medianSeconds = median(values);
  part.maxSeconds = values.length ? Math.max(...values) : null;
}

export const startupScenario: Scenario<StartupResult> = {
  name: 'startup',
  steps: (config) => 2 * config.startup.trials,
  estimateSeconds: (config) => config.startup.trials * (config.enclave === 'nitro' ? 30 : 3),
  empty: (config) => ({
    complete: false,
    error: null,
    parts: [
      {
        part: 'public model server',
        how: 'process',
        trialsSeconds: [],
        minSeconds: null,
        medianSeconds: null,
        maxSeconds: null,
      },
      {
        part: 'enclave',
        how: config.enclave === 'nitro' ? 'nitro enclave' : 'emulated enclave',
        trialsSeconds: [],
        minSeconds: null,
        medianSeconds: null,
        maxSeconds: null,
      },
    ],
  }),
  async run(context, section) {
    const [publicPart, enclavePart] = section.parts as [Part, Part];
    // Alternated, so a machine that gets busier part-way affects both alike.
    for (let trial = 1; trial <= context.config.startup.trials; trial++) {
      for (const [part, time] of [
        [publicPart, timePublicServer],
        [enclavePart, timeEnclave],
      ] as const) {
        if (context.signal.aborted) return;
        const label = `${part.part}, trial ${trial}/${context.config.startup.trials}`;
        context.setStep(label);
        context.progress.step(label);
        const seconds = await time(context);
        if (context.signal.aborted) return; // the signal reached the part while it started: not a clean trial
        part.trialsSeconds.push(round3(seconds));
        summarise(part);
      }
    }
    section.complete = true;
  },
};
