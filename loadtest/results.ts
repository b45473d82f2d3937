// One run's result: the machine, the versions, the configuration and every figure, in one JSON
// file (result.json) that results.schema.json documents and every write is checked against.
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { describeEnvironment } from '../common/index.js';
import { validateJson } from './json-schema.js';
import type { SchemaProblem } from './json-schema.js';
import type { CoresUsed } from '../common/index.js';
import type { ClosedLoopFigures } from './load/closed-loop.js';
import type { LatencySummary } from '../common/index.js';
import type { PacedFigures } from './load/paced.js';
import type { HarnessConfig, ScenarioName } from './options.js';
import schema from './results.schema.json' with { type: 'json' };

export const RESULT_SCHEMA_ID = 'mpg-loadtest-result/1';
export const RESULT_FILE = 'result.json';

export interface ScenarioStatus {
  /** Every step ran. */
  complete: boolean;
  /** Why the scenario stopped early, when it failed (not when it was interrupted). */
  error: string | null;
}

export interface StartupResult extends ScenarioStatus {
  parts: {
    part: 'public model server' | 'enclave';
    /** What was started: a process, the emulated enclave (own namespace, relays), or a Nitro enclave (nitro-cli run-enclave). */
    how: 'process' | 'emulated enclave' | 'nitro enclave';
    /** Spawn to /readyz answering 200 (through the parent relay for the enclave), each trial. */
    trialsSeconds: number[];
    minSeconds: number | null;
    medianSeconds: number | null;
    maxSeconds: number | null;
  }[];
}

export interface ChannelResult extends ScenarioStatus {
  /** What "channel" was: the emulated relay chain, or an external socket (--channel-socket). */
  channel: 'unix relay chain' | 'external socket';
  description: string;
  throughput: {
    transport: 'tcp' | 'channel';
    messageBytes: number;
    streams: number;
    seconds: number;
    bytes: number;
    gbitPerSecond: number;
    cpu: CoresUsed;
  }[];
  /** channel Gbit/s over TCP Gbit/s, per message size and stream count. */
  ratios: { messageBytes: number; streams: number; channelOverTcp: number }[];
  roundTrip: { transport: 'tcp' | 'channel'; messageBytes: number; count: number; latencyUs: LatencySummary }[];
}

export type LatencyTarget = 'public direct' | 'secure direct' | 'public gateway' | 'secure gateway';

export interface LatencyStep extends ClosedLoopFigures {
  target: LatencyTarget;
  route: 'public' | 'secure';
  via: 'direct' | 'gateway';
  concurrency: number;
  /**
   * concurrency / good answers per second: how long a request waits in a full queue. When it is
   * longer than the step, answers slower than the step never came back inside it, and the latency
   * figures are censored (too low); null when nothing was answered.
   */
  queueSeconds: number | null;
  cpu: CoresUsed;
}

export interface LatencyResult extends ScenarioStatus {
  steps: LatencyStep[];
}

export interface MixedStep extends PacedFigures {
  secureFraction: number;
  offeredRate: number;
  cpu: CoresUsed;
}

export interface MixedResult extends ScenarioStatus {
  steps: MixedStep[];
}

export interface MemoryPart {
  part: string;
  /** 'proc-rss': the summed RSS of the part's process tree, from /proc; 'nitro-allotted': the enclave's memory as nitro-cli reports it (an enclave's use is not visible from the parent). */
  source: 'proc-rss' | 'nitro-allotted';
  startupPeakMiB: number | null;
  runtimeMeanMiB: number | null;
  runtimeMaxMiB: number | null;
  runtimeSamples: number;
}

export interface MemoryResult extends ScenarioStatus {
  parts: MemoryPart[];
  load: (PacedFigures & { secureFraction: number; offeredRate: number }) | null;
}

export interface ScenarioResults {
  startup?: StartupResult;
  channel?: ChannelResult;
  memory?: MemoryResult;
  latency?: LatencyResult;
  mixed?: MixedResult;
}

export interface LoadtestResult {
  schema: typeof RESULT_SCHEMA_ID;
  /** Every scenario asked for ran to its end. */
  complete: boolean;
  interrupted: { signal: 'SIGINT' | 'SIGTERM'; scenario: string | null; step: string | null } | null;
  startedAt: string;
  finishedAt: string | null;
  durationSeconds: number | null;
  /** The arguments after "mpg loadtest". */
  command: string[];
  machine: { cpuModel: string; cores: number; memoryGiB: number; kernel: string; loadAverageAtStart: number[]; loadAverageAtEnd: number[] | null };
  versions: { node: string; onnxruntime: string; gitCommit: string | null; mpg: string };
  config: HarnessConfig;
  /** Warnings worth reading beside the figures (a busy machine, a generator that fell behind). */
  notes: string[];
  scenarios: ScenarioResults;
}

const roundedLoad = () => loadavg().map((value) => Math.round(value * 100) / 100);

export function newResult(command: string[], config: HarnessConfig, mpgVersion: string): LoadtestResult {
  const environment = describeEnvironment();
  return {
    schema: RESULT_SCHEMA_ID,
    complete: false,
    interrupted: null,
    startedAt: new Date().toISOString(),
    finishedAt: null,
    durationSeconds: null,
    command,
    machine: {
      cpuModel: environment.cpuModel,
      cores: environment.cores,
      memoryGiB: environment.memoryGiB,
      kernel: environment.kernel,
      loadAverageAtStart: roundedLoad(),
      loadAverageAtEnd: null,
    },
    versions: { node: environment.node, onnxruntime: environment.onnxruntime, gitCommit: environment.gitCommit ?? null, mpg: mpgVersion },
    config,
    notes: [],
    scenarios: {},
  };
}

export function finishResult(result: LoadtestResult, scenarios: readonly ScenarioName[]): void {
  result.finishedAt = new Date().toISOString();
  result.durationSeconds = Math.round((Date.parse(result.finishedAt) - Date.parse(result.startedAt)) / 100) / 10;
  result.machine.loadAverageAtEnd = roundedLoad();
  result.complete = result.interrupted === null && scenarios.every((name) => result.scenarios[name]?.complete === true);
}

export const resultSchema = schema as Record<string, unknown>;

export function validateResult(value: unknown): SchemaProblem[] {
  return validateJson(resultSchema, value);
}

export class InvalidResultError extends Error {
  override name = 'InvalidResultError';
}

function describeProblems(problems: SchemaProblem[]): string {
  return problems.slice(0, 10).map((problem) => `${problem.path} ${problem.message}`).join('; ') + (problems.length > 10 ? ` (and ${problems.length - 10} more)` : '');
}

/** Writes DIR/result.json through a temporary file and a rename, after checking it against the schema. */
export async function writeResult(directory: string, result: LoadtestResult): Promise<string> {
  const problems = validateResult(result);
  if (problems.length > 0) throw new InvalidResultError(`the result does not match results.schema.json: ${describeProblems(problems)}`);
  await mkdir(directory, { recursive: true });
  const file = join(directory, RESULT_FILE);
  const partial = `${file}.partial-${process.pid}`;
  await writeFile(partial, JSON.stringify(result, null, 2) + '\n');
  await rename(partial, file);
  return file;
}

/** Reads DIR/result.json (or the file itself) and checks it against the schema. */
export async function readResult(path: string): Promise<LoadtestResult> {
  const file = path.endsWith('.json') ? path : join(path, RESULT_FILE);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new InvalidResultError(`cannot read ${file}: ${code === 'ENOENT' ? 'no such file (give the directory of a run, e.g. results/<timestamp>)' : (code ?? (error as Error).message)}`, { cause: error });
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new InvalidResultError(`${file}: not valid JSON: ${(error as Error).message}`, { cause: error });
  }
  const problems = validateResult(value);
  if (problems.length > 0) throw new InvalidResultError(`${file} does not match results.schema.json: ${describeProblems(problems)}`);
  return value as LoadtestResult;
}
