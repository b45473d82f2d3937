// What every scenario is given: the configuration, where to report progress, the stop signal,
// the stack under test (started on first use, shared by the scenarios that drive the same stack)
// and the result section it fills in as it goes, so an interrupted run keeps every finished step.
import type { Log } from '../../common/index.js';
import type { EnclaveSettings } from '../../stack/index.js';
import type { HarnessConfig } from '../options.js';
import type { Progress } from '../progress.js';
import type { StackUnderTest, StartOptions } from '../stack-under-test.js';

export interface ScenarioContext {
  config: HarnessConfig;
  /** With --enclave nitro: what startNitroEnclave needs. */
  nitro: Extract<EnclaveSettings, { mode: 'nitro' }>['nitro'] | undefined;
  env: Readonly<Record<string, string | undefined>>;
  stderr: NodeJS.WritableStream;
  log: Log;
  progress: Progress;
  /** Aborted by SIGINT or SIGTERM: stop the current step and return what was measured. */
  signal: AbortSignal;
  /** The study's request body: batch-2 base64 JSON of the sample image. */
  body: string;
  /** The stack shared by the latency and mixed scenarios (started once). */
  sharedStack(): Promise<StackUnderTest>;
  /** A new stack of the scenario's own (memory watches it from its first process). */
  freshStack(onSpawn: NonNullable<StartOptions['onSpawn']>): Promise<StackUnderTest>;
  /** Sets the label of the step running now, recorded if the run is interrupted. */
  setStep(label: string | null): void;
  /** A warning kept in the result's notes and shown on the terminal. */
  note(text: string): void;
}

export interface Scenario<Section> {
  name: string;
  /** How many steps it will report to the progress line. */
  steps(config: HarnessConfig): number;
  /** Its rough duration with this configuration, for the time left. */
  estimateSeconds(config: HarnessConfig): number;
  /** The section it fills, empty and incomplete. */
  empty(config: HarnessConfig): Section;
  run(context: ScenarioContext, section: Section): Promise<void>;
}

/** Resolves after `ms`, or at once when the signal aborts. */
export function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}

export const round3 = (value: number) => Math.round(value * 1000) / 1000;

export function median(values: readonly number[]): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}
