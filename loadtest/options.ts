// The harness's options, declared once for every `mpg loadtest` scenario (each flag has its MPG_
// twin), and the configuration they resolve to: what a run records beside its figures.
//
// Sizes left unset take the full default (a few minutes for `all` on a 2-core machine) or, with
// --quick, the CI default (seconds per scenario); a flag always wins over both.
import type { CommandContext, OptionsOf } from '../common/index.js';
import {
  OptionError,
  choice,
  decimal,
  flagName,
  integer,
  list,
  parseCommandLine,
  text,
  toggle,
} from '../common/index.js';
import { attestationPcrsOption, nitroEnclaveOptions, nitroEnclaveSettings } from '../enclave/index.js';
import type { EnclaveSettings } from '../stack/index.js';
import { splitCpus } from '../stack/index.js';
import { availableParallelism } from 'node:os';
import type { Static } from '@sinclair/typebox';
import type { HarnessConfigSchema } from './results-schema.js';

export const SCENARIOS = ['startup', 'channel', 'memory', 'latency', 'mixed'] as const;
export type ScenarioName = (typeof SCENARIOS)[number];

const CPU_LIST = /^\d+(-\d+)?(,\d+(-\d+)?)*$/;
const cpuList = (description: string) =>
  text({
    description,
    placeholder: 'LIST',
    check: (value) => (CPU_LIST.test(value) ? undefined : 'must be a CPU list for taskset, like 0-1 or 0,2'),
  });

const MIB = 1024 * 1024;

export const loadtestOptions = {
  out: text({ description: "Directory for this run's result.json [default: results/<timestamp>]", placeholder: 'DIR' }),
  quick: toggle({ description: 'Run each scenario briefly (seconds), for CI; explicit sizes still win' }),
  enclave: choice({
    description:
      'Where the secure route runs: "emulated" on this machine, or "nitro" on an EC2 parent (with the nitro: flags)',
    choices: ['emulated', 'nitro'] as const,
    default: 'emulated',
  }),
  threads: integer({
    description: 'onnxruntime threads of each model server [default: half the cores, as mpg stack]',
    min: 1,
    max: 1024,
  }),
  serverCpus: cpuList('Pin the public model server to these CPUs (taskset) [default: not pinned]'),
  gatewayCpus: cpuList('Pin the gateway and the parent relay to these CPUs [default: not pinned]'),
  enclaveCpus: cpuList(
    'emulated: pin the enclave to these CPUs [default: every CPU, the same set the public server may use]',
  ),
  generatorCpus: cpuList('Pin this process, the load generator, to these CPUs (taskset -a -p) [default: not pinned]'),
  timeoutS: integer({
    description: 'A request not answered in this time counts as a timeout',
    unit: 's',
    default: 30,
    min: 1,
    max: 600,
  }),
  trials: integer({ description: 'startup: cold starts per server [default: 5; --quick 1]', min: 1, max: 1000 }),
  messageSizes: list(
    integer({
      description: 'channel: bulk message sizes [default: 4096,65536,1048576; --quick 65536]',
      unit: 'bytes',
      min: 1,
      max: 64 * MIB,
    }),
  ),
  streams: list(integer({ description: 'channel: parallel streams [default: 1,4]', min: 1, max: 256 })),
  channelSeconds: decimal({
    description: 'channel: time per size, stream count and transport [default: 2; --quick 0.25]',
    unit: 's',
    min: 0.05,
    max: 3600,
  }),
  rttCount: integer({
    description: 'channel: small-message round trips per transport [default: 2000; --quick 200]',
    min: 10,
    max: 10_000_000,
  }),
  rttBytes: integer({
    description: 'channel: size of a round-trip message',
    unit: 'bytes',
    default: 64,
    min: 1,
    max: MIB,
  }),
  channelSocket: text({
    description:
      'channel: measure through this Unix socket, whose far end runs "mpg loadtest channel-sink", instead of the local relay chain (on EC2: a parent relay to an enclave running the sink)',
    placeholder: 'PATH',
  }),
  concurrency: list(
    integer({
      description: 'latency: concurrent requests, one step each [default: 1,10,50,100,200,300; --quick 1,4]',
      min: 1,
      max: 100_000,
    }),
  ),
  duration: decimal({ description: 'latency: time per step [default: 5; --quick 1]', unit: 's', min: 0.2, max: 3600 }),
  fractions: list(
    decimal({
      description: 'mixed: secure fractions, one step each [default: 0,0.25,0.5,0.75,1; --quick 0,0.5,1]',
      min: 0,
      max: 1,
    }),
  ),
  rate: decimal({
    description: 'mixed: offered rate through the gateway [default: 6]',
    unit: 'requests/s',
    min: 0.1,
    max: 100_000,
  }),
  mixedSeconds: decimal({
    description: 'mixed: time per fraction [default: 10; --quick 1.5]',
    unit: 's',
    min: 0.2,
    max: 3600,
  }),
  memoryStartupS: decimal({
    description: 'memory: window after start for the peak [default: 5; --quick 2]',
    unit: 's',
    min: 0.5,
    max: 600,
  }),
  memorySeconds: decimal({
    description: 'memory: light mixed load, sampled every second [default: 10; --quick 3]',
    unit: 's',
    min: 1,
    max: 3600,
  }),
  memoryRate: decimal({
    description: 'memory: offered rate of the light load, half of it secure [default: 2]',
    unit: 'requests/s',
    min: 0.1,
    max: 10_000,
  }),
  ...nitroEnclaveOptions,
  ...attestationPcrsOption,
};

export type LoadtestOptions = OptionsOf<typeof loadtestOptions>;

const SCENARIO_PREFIX = new RegExp(`^(${SCENARIOS.join('|')}):`);

/**
 * The options that apply to these scenarios: the shared ones, and those whose description names
 * one of them ("channel: ..."). What each scenario's help lists; every scenario still accepts all.
 */
export function scenarioOptions(scenarios: readonly ScenarioName[]): Partial<typeof loadtestOptions> {
  return Object.fromEntries(
    Object.entries(loadtestOptions).filter(([, spec]) => {
      const named = SCENARIO_PREFIX.exec(spec.description)?.[1];
      return named === undefined || scenarios.includes(named as ScenarioName);
    }),
  );
}

/** Everything a run was configured with; recorded in the result as `config` (its schema: results-schema.ts). */
export type HarnessConfig = Static<typeof HarnessConfigSchema>;

/** Keep-alive connections the paced generator opens to the gateway: enough that it never waits for one at the offered rates. */
export const PACED_CONNECTIONS = 32;
export const MEMORY_SECURE_FRACTION = 0.5;
export const LATENCY_TARGETS = ['public direct', 'secure direct', 'public gateway', 'secure gateway'] as const;

const pick = <T>(given: T | undefined, quick: boolean, full: T, brief: T): T => given ?? (quick ? brief : full);
const pickList = <T>(given: readonly T[], quick: boolean, full: T[], brief: T[]): T[] =>
  given.length > 0 ? [...given] : quick ? brief : full;

export interface ParsedLoadtest {
  help: boolean;
  options: LoadtestOptions;
  config: HarnessConfig;
  /** What startNitroEnclave needs, with --enclave nitro. */
  nitro: Extract<EnclaveSettings, { mode: 'nitro' }>['nitro'] | undefined;
}

export function parseLoadtestOptions(
  argv: readonly string[],
  env: CommandContext['env'],
  scenarios: ScenarioName[],
): ParsedLoadtest {
  const { options, help } = parseCommandLine(loadtestOptions, argv, env);
  const quick = options.quick;
  let nitro: ParsedLoadtest['nitro'];
  if (!help && options.enclave === 'nitro') {
    if (options.enclaveCpus !== undefined)
      throw new OptionError(
        "--enclave-cpus is for the emulated enclave; a Nitro enclave takes --cpu-count from the allocator's pool",
      );
    nitro = nitroEnclaveSettings(options, '/set-by-the-launcher', env);
  }
  const duplicates = (values: readonly number[], flag: string) => {
    if (new Set(values).size !== values.length)
      throw new OptionError(`${flag} lists a value twice: ${values.join(',')}`);
  };
  duplicates(options.concurrency, '--concurrency');
  duplicates(options.fractions, '--fractions');
  duplicates(options.messageSizes, '--message-sizes');
  duplicates(options.streams, '--streams');
  const config: HarnessConfig = {
    scenarios,
    quick,
    enclave: options.enclave,
    threads: options.threads ?? splitCpus().threadsEach,
    cpus: {
      server: options.serverCpus ?? null,
      gateway: options.gatewayCpus ?? null,
      enclave: options.enclave === 'nitro' ? null : (options.enclaveCpus ?? `0-${availableParallelism() - 1}`),
      generator: options.generatorCpus ?? null,
    },
    timeoutSeconds: options.timeoutS,
    requestBody: { images: 2, topk: 5, imageBytes: 0 },
    startup: { trials: pick(options.trials, quick, 5, 1) },
    channel: {
      messageSizes: pickList(options.messageSizes, quick, [4096, 65536, MIB], [65536]),
      streams: pickList(options.streams, quick, [1, 4], [1, 4]),
      seconds: pick(options.channelSeconds, quick, 2, 0.25),
      rttCount: pick(options.rttCount, quick, 2000, 200),
      rttBytes: options.rttBytes,
      externalSocket: options.channelSocket ?? null,
    },
    latency: {
      concurrency: pickList(options.concurrency, quick, [1, 10, 50, 100, 200, 300], [1, 4]).sort((a, b) => a - b),
      seconds: pick(options.duration, quick, 5, 1),
      targets: [...LATENCY_TARGETS],
    },
    mixed: {
      fractions: pickList(options.fractions, quick, [0, 0.25, 0.5, 0.75, 1], [0, 0.5, 1]).sort((a, b) => a - b),
      rate: pick(options.rate, quick, 6, 6),
      seconds: pick(options.mixedSeconds, quick, 10, 1.5),
      connections: PACED_CONNECTIONS,
    },
    memory: {
      startupSeconds: pick(options.memoryStartupS, quick, 5, 2),
      seconds: pick(options.memorySeconds, quick, 10, 3),
      rate: pick(options.memoryRate, quick, 2, 2),
      secureFraction: MEMORY_SECURE_FRACTION,
      sampleEverySeconds: 1,
    },
    nitro: nitro
      ? { eif: nitro.eif, memoryMiB: nitro.memoryMiB, cpuCount: nitro.cpuCount, enclaveCid: nitro.enclaveCid }
      : null,
  };
  if (!help && options.enclave === 'nitro' && scenarios.includes('channel') && config.channel.externalSocket === null) {
    throw new OptionError(
      'the channel scenario on Nitro needs --channel-socket PATH: a parent relay to an enclave that runs "mpg loadtest channel-sink" (see docs/loadtest.md)',
    );
  }
  return { help, options, config, nitro };
}

/** The flags that start the same stack in another process (`mpg loadtest stack-host`). */
export function stackHostArguments(options: LoadtestOptions, config: HarnessConfig): string[] {
  const args = ['--enclave', config.enclave, '--threads', String(config.threads)];
  if (config.cpus.server !== null) args.push('--server-cpus', config.cpus.server);
  if (config.cpus.gateway !== null) args.push('--gateway-cpus', config.cpus.gateway);
  if (config.cpus.enclave !== null) args.push('--enclave-cpus', config.cpus.enclave);
  if (config.enclave === 'nitro') {
    for (const key of [...Object.keys(nitroEnclaveOptions), ...Object.keys(attestationPcrsOption)] as (
      keyof typeof nitroEnclaveOptions | keyof typeof attestationPcrsOption
    )[]) {
      const value = options[key];
      if (value === undefined) continue;
      const flag = flagName(key);
      if (typeof value === 'boolean') args.push(value ? flag : `--no-${flag.slice(2)}`);
      else args.push(flag, String(value));
    }
  }
  return args;
}
