// One run of the harness: the scenarios asked for, in order, each filling its section of the
// result, written after every scenario and once more at the end. SIGINT or SIGTERM stops the
// current step, keeps every finished one (the result says "complete": false and what was
// interrupted), stops whatever was started and exits 130 or 143.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { CommandContext } from '../common/index.js';
import { QUIET_MACHINE_CORES, jsonLineLog } from '../common/index.js';
import { studyRequestBody } from './load/check.js';
import type { CoresUsed } from '../common/index.js';
import type { ParsedLoadtest, ScenarioName } from './options.js';
import { stackHostArguments } from './options.js';
import { createProgress, formatDuration } from './progress.js';
import type { LoadtestResult } from './results.js';
import { finishResult, newResult, writeResult } from './results.js';
import { sampleImage } from '../common/index.js';
import { channelScenario } from './scenarios/channel.js';
import type { Scenario, ScenarioContext } from './scenarios/context.js';
import { latencyScenario } from './scenarios/latency.js';
import { memoryScenario } from './scenarios/memory.js';
import { mixedScenario } from './scenarios/mixed.js';
import { startupScenario } from './scenarios/startup.js';
import type { StackUnderTest } from './stack-under-test.js';
import { startStackUnderTest } from './stack-under-test.js';

const SCENARIO_BY_NAME: Record<ScenarioName, Scenario<never>> = {
  startup: startupScenario as Scenario<never>,
  channel: channelScenario as Scenario<never>,
  memory: memoryScenario as Scenario<never>,
  latency: latencyScenario as Scenario<never>,
  mixed: mixedScenario as Scenario<never>,
};

/** Others using more than this (cores) during a step make its figures suspect. */

function mpgVersion(): string {
  try {
    return (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string })
      .version;
  } catch {
    return 'unknown';
  }
}

export function defaultOutputDirectory(now = new Date()): string {
  return join('results', now.toISOString().replace(/[:.]/g, '-'));
}

/** Pins this process (every thread: -a) to `cpus`; threads started later inherit it. */
function pinGenerator(cpus: string): void {
  execFileSync('taskset', ['-a', '-p', '-c', cpus, String(process.pid)], { stdio: ['ignore', 'ignore', 'pipe'] });
}

/** Warnings from the figures: CPU taken by others, and the generator's own share. */
function cpuNotes(result: LoadtestResult): string[] {
  const steps: { where: string; cpu: CoresUsed }[] = [
    ...(result.scenarios.channel?.throughput ?? []).map((step) => ({
      where: `channel ${step.transport} ${step.messageBytes} B x${step.streams}`,
      cpu: step.cpu,
    })),
    ...(result.scenarios.latency?.steps ?? []).map((step) => ({
      where: `latency ${step.target} c=${step.concurrency}`,
      cpu: step.cpu,
    })),
    ...(result.scenarios.mixed?.steps ?? []).map((step) => ({ where: `mixed ${step.secureFraction}`, cpu: step.cpu })),
  ];
  if (steps.length === 0) return [];
  const busiest = (name: string) =>
    steps.reduce((best, step) => ((step.cpu[name] ?? 0) > (best.cpu[name] ?? 0) ? step : best));
  const notes: string[] = [];
  const others = busiest('others');
  if ((others.cpu.others ?? 0) > QUIET_MACHINE_CORES) {
    notes.push(
      `other processes used up to ${others.cpu.others} cores (${others.where}): the machine was not quiet, and those figures are suspect`,
    );
  }
  const generator = busiest('load generator');
  notes.push(
    `the load generator used up to ${generator.cpu['load generator']} cores (${generator.where}), on the same cores as the servers unless pinned apart`,
  );
  return notes;
}

export async function runLoadtest(
  parsed: ParsedLoadtest,
  argv: readonly string[],
  { stdout, stderr, env }: CommandContext,
): Promise<number> {
  const { config, options } = parsed;
  if (config.cpus.generator !== null) {
    try {
      pinGenerator(config.cpus.generator);
    } catch (error) {
      stderr.write(
        `mpg loadtest: could not pin the load generator with taskset -a -p -c ${config.cpus.generator}: ${(error as Error).message.trim()}\n`,
      );
      return 1;
    }
  }
  const directory = options.out ?? defaultOutputDirectory();
  const body = await studyRequestBody();
  config.requestBody.imageBytes = (await sampleImage()).length;
  const result = newResult([...argv], config, mpgVersion());
  const scenarios = config.scenarios.map((name) => SCENARIO_BY_NAME[name]);
  const progress = createProgress(
    stderr,
    Object.fromEntries(scenarios.map((scenario) => [scenario.name, scenario.estimateSeconds(config)])),
  );
  // Warnings only, and through the progress line, so a terminal's line is redrawn after them.
  const log = jsonLineLog({ write: (line) => progress.note(line.trimEnd()) }, { component: 'loadtest' }, 'warn');

  const controller = new AbortController();
  let current: { scenario: string | null; step: string | null } = { scenario: null, step: null };
  const onSignal = (signal: 'SIGINT' | 'SIGTERM') => {
    if (result.interrupted) return; // already stopping: a second Ctrl-C must not orphan the stack
    result.interrupted = { signal, ...current };
    progress.note(`${signal}: stopping the current step; the result keeps every finished one`);
    controller.abort();
  };
  const onSigint = () => onSignal('SIGINT');
  const onSigterm = () => onSignal('SIGTERM');
  process.on('SIGINT', onSigint).on('SIGTERM', onSigterm);

  let shared: Promise<StackUnderTest> | undefined;
  const started: Promise<StackUnderTest>[] = [];
  const startStack = (
    onSpawn?: (part: string, root: { pid: number; by: 'group' | 'descendants' | 'process' }) => void,
  ) => {
    const starting = startStackUnderTest({
      hostArguments: stackHostArguments(options, config),
      gatewayCpus: config.cpus.gateway,
      env,
      stderr,
      signal: controller.signal,
      ...(onSpawn ? { onSpawn } : {}),
    });
    started.push(starting);
    return starting;
  };
  const context: ScenarioContext = {
    config,
    nitro: parsed.nitro,
    env,
    stderr,
    log,
    progress,
    signal: controller.signal,
    body,
    sharedStack: () => (shared ??= startStack()),
    freshStack: (onSpawn) => startStack(onSpawn),
    setStep: (step) => (current = { ...current, step }),
    note: (text) => {
      result.notes.push(text);
      progress.note(`note: ${text}`);
    },
  };

  let failures = 0;
  let file: string | undefined;
  try {
    for (const scenario of scenarios) {
      if (controller.signal.aborted) break;
      current = { scenario: scenario.name, step: null };
      const section = scenario.empty(config);
      (result.scenarios as Record<string, unknown>)[scenario.name] = section;
      progress.scenario(scenario.name, scenario.steps(config), scenario.estimateSeconds(config));
      const began = performance.now();
      try {
        await scenario.run(context, section);
      } catch (error) {
        if (!controller.signal.aborted) {
          failures++;
          (section as { error: string | null }).error = (error as Error).message;
          progress.note(`mpg loadtest ${scenario.name}: ${(error as Error).message}`);
        }
      }
      progress.done();
      stdout.write(
        `${scenario.name}: ${(section as { complete: boolean }).complete ? 'done' : 'incomplete'} in ${formatDuration((performance.now() - began) / 1000)}\n`,
      );
      file = await writeResult(directory, result);
    }
  } finally {
    progress.done();
    await Promise.all(
      started.map((starting) =>
        starting.then(
          (stack) => stack.stop(),
          () => {},
        ),
      ),
    );
    process.off('SIGINT', onSigint).off('SIGTERM', onSigterm);
  }
  result.notes.push(...cpuNotes(result));
  finishResult(result, config.scenarios);
  file = await writeResult(directory, result);
  for (const note of result.notes) stdout.write(`note: ${note}\n`);
  stdout.write(`result: ${file}${result.complete ? '' : ' (incomplete)'}\n`);
  stdout.write(`report: mpg loadtest report ${directory}\n`);
  if (result.interrupted) return result.interrupted.signal === 'SIGINT' ? 130 : 143;
  return failures > 0 ? 1 : 0;
}
