// One run's result: the machine, the versions, the configuration and every figure, in one JSON
// file (result.json), checked against its schema (results-schema.ts) on every write and read.
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import type { Static } from '@sinclair/typebox';
import type { ErrorObject } from 'ajv/dist/2020.js';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { describeEnvironment } from '../common/index.js';
import type { HarnessConfig, ScenarioName } from './options.js';
import { LoadtestResultSchema } from './results-schema.js';

export const RESULT_SCHEMA_ID = 'mpg-loadtest-result/1';
export const RESULT_FILE = 'result.json';

// Every type of the result is derived from its schema (results-schema.ts).
export type LoadtestResult = Static<typeof LoadtestResultSchema>;
export type ScenarioResults = LoadtestResult['scenarios'];
export type StartupResult = NonNullable<ScenarioResults['startup']>;
export type ChannelResult = NonNullable<ScenarioResults['channel']>;
export type MemoryResult = NonNullable<ScenarioResults['memory']>;
export type MemoryPart = MemoryResult['parts'][number];
export type LatencyResult = NonNullable<ScenarioResults['latency']>;
export type LatencyStep = LatencyResult['steps'][number];
export type LatencyTarget = LatencyStep['target'];
export type MixedResult = NonNullable<ScenarioResults['mixed']>;
export type MixedStep = MixedResult['steps'][number];

/** What is wrong with a result, at the JSON pointer of the value at fault. */
export interface SchemaProblem {
  path: string;
  message: string;
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
    versions: {
      node: environment.node,
      onnxruntime: environment.onnxruntime,
      gitCommit: environment.gitCommit ?? null,
      mpg: mpgVersion,
    },
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

/** The schema as JSON Schema 2020-12: what loadtest/results.schema.json holds. */
export const resultSchema: Record<string, unknown> = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  ...LoadtestResultSchema,
};

const validate = new Ajv2020({ allErrors: true, verbose: true, allowUnionTypes: true }).compile(resultSchema);

function typeOf(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'number') return Number.isInteger(value) ? 'integer' : 'number';
  return typeof value;
}

/** One of Ajv's errors, in the words of a problem: where, and what the value must be. */
function describeError(error: ErrorObject): SchemaProblem {
  const path = error.instancePath || '/';
  const params = error.params as Record<string, unknown>;
  const shown = (value: unknown) => JSON.stringify(value);
  switch (error.keyword) {
    case 'required':
      return { path, message: `must have property "${String(params.missingProperty)}"` };
    case 'additionalProperties':
      return { path: `${error.instancePath}/${String(params.additionalProperty)}`, message: 'is not allowed here' };
    case 'type':
      return { path, message: `must be ${String(params.type).split(',').join(' or ')}, got ${typeOf(error.data)}` };
    case 'minimum':
    case 'maximum':
      return {
        path,
        message: `must be ${String(params.comparison)} ${String(params.limit)}, got ${shown(error.data)}`,
      };
    case 'minItems':
      return {
        path,
        message: `must have at least ${String(params.limit)} items, got ${Array.isArray(error.data) ? error.data.length : 0}`,
      };
    case 'const':
      return { path, message: `must be ${shown(params.allowedValue)}` };
    default:
      return { path, message: error.message ?? error.keyword };
  }
}

export function validateResult(value: unknown): SchemaProblem[] {
  if (validate(value)) return [];
  // A value of a union (one literal of several) fails each branch, then anyOf: one problem says it.
  const errors = (validate.errors ?? []).filter(
    (error) => error.keyword !== 'const' || !error.schemaPath.includes('/anyOf/'),
  );
  return errors.map(describeError);
}

export class InvalidResultError extends Error {
  override name = 'InvalidResultError';
}

function describeProblems(problems: SchemaProblem[]): string {
  return (
    problems
      .slice(0, 10)
      .map((problem) => `${problem.path} ${problem.message}`)
      .join('; ') + (problems.length > 10 ? ` (and ${problems.length - 10} more)` : '')
  );
}

/** Writes DIR/result.json through a temporary file and a rename, after checking it against the schema. */
export async function writeResult(directory: string, result: LoadtestResult): Promise<string> {
  const problems = validateResult(result);
  if (problems.length > 0)
    throw new InvalidResultError(`the result does not match results.schema.json: ${describeProblems(problems)}`);
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
    throw new InvalidResultError(
      `cannot read ${file}: ${code === 'ENOENT' ? 'no such file (give the directory of a run, e.g. results/<timestamp>)' : (code ?? (error as Error).message)}`,
      { cause: error },
    );
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new InvalidResultError(`${file}: not valid JSON: ${(error as Error).message}`, { cause: error });
  }
  const problems = validateResult(value);
  if (problems.length > 0)
    throw new InvalidResultError(`${file} does not match results.schema.json: ${describeProblems(problems)}`);
  return value as LoadtestResult;
}
