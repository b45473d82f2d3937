// `mpg enclave build | nitro-run | nitro-stop | nitro-status`: the Nitro enclave's life cycle on
// an EC2 parent instance, through nitro-cli. Every command prints JSON on stdout (what scripts
// read) and explanations on stderr; a failure says what nitro-cli said and what to check.
import { randomBytes } from 'node:crypto';
import { access, constants, rename, rm, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { Command, CommandContext, OptionSpecs } from '../common/index.js';
import { OptionError, formatOptionsHelp, integer, optionCommand, parseCommandLine, text, toggle } from '../common/index.js';
import type { BuildResult, DescribeResult, NitroCli } from './nitro-cli.js';
import { DEFAULT_NITRO_CLI, createNitroCli } from './nitro-cli.js';

/** Enclave memory must be at least this many times the EIF's size: the EIF is unpacked into it (kernel, initramfs) and the model server needs room to run. */
export const EIF_MEMORY_FACTOR = 4;
const MIB = 1024 * 1024;
/** CIDs 0-2 are the hypervisor, the local loopback and the parent; 3 is reserved. */
const MIN_ENCLAVE_CID = 4;
const MAX_ENCLAVE_CID = 2 ** 32 - 2;

const nitroCliOption = {
  nitroCli: text({ description: 'The nitro-cli executable: a name looked up on PATH, or a path', default: DEFAULT_NITRO_CLI, placeholder: 'PATH' }),
};

const usageOf = (lines: string[], specs: OptionSpecs) => () => [...lines, '', 'Options:', formatOptionsHelp(specs)].join('\n');

function nitroCliFor(binary: string, env: CommandContext['env']): NitroCli {
  return createNitroCli({ binary, env });
}

/** Reports a failure on stderr and gives the exit code: 1 for what nitro-cli or the machine did. */
function fail(path: string, stderr: NodeJS.WritableStream, error: unknown): number {
  if (!(error instanceof Error)) throw error;
  stderr.write(`mpg enclave ${path}: ${error.message}\n`);
  return 1;
}

function printJson(stdout: NodeJS.WritableStream, value: unknown): void {
  stdout.write(JSON.stringify(value, null, 2) + '\n');
}

/** Writes `contents` next to `path` first and renames it into place, so a reader never sees half a file. */
export async function writeFileAtomically(path: string, contents: string): Promise<void> {
  const temporary = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    await writeFile(temporary, contents, { flag: 'wx', mode: 0o644 });
    await rename(temporary, path);
  } catch (error) {
    await rm(temporary, { force: true });
    throw error;
  }
}

async function checkWritableDirectory(file: string, flag: string): Promise<void> {
  const directory = dirname(file);
  try {
    await access(directory, constants.W_OK);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new OptionError(`${flag} ${file}: its directory ${directory} ${code === 'ENOENT' ? 'does not exist' : 'is not writable'}`, { cause: error });
  }
}

// ---- mpg enclave build ----------------------------------------------------------------------

const buildOptions = {
  dockerUri: text({ description: 'The enclave image (docker/enclave.Dockerfile), as the local Docker daemon names it, e.g. mpg-enclave:latest', placeholder: 'IMAGE' }),
  eif: text({ description: 'Where to write the enclave image file (EIF)', placeholder: 'PATH' }),
  measurements: text({ description: "Where to write the EIF's measurements (PCR0, PCR1, PCR2) as JSON, for the gateway to pin", placeholder: 'PATH' }),
  ...nitroCliOption,
};

async function parseBuild(argv: readonly string[], env: CommandContext['env']) {
  const { options, help } = parseCommandLine(buildOptions, argv, env);
  if (help) return { help, options };
  for (const key of ['dockerUri', 'eif', 'measurements'] as const) {
    if (!options[key]) throw new OptionError(`--${key === 'dockerUri' ? 'docker-uri' : key} is required`);
  }
  // Checked before a build of several minutes, not after it.
  await checkWritableDirectory(options.eif!, '--eif');
  await checkWritableDirectory(options.measurements!, '--measurements');
  return { help, options };
}

const buildCommand = optionCommand({
  path: 'enclave build',
  summary: 'Build the enclave image file (EIF) from a Docker image with nitro-cli; write its PCR measurements',
  usage: usageOf(
    [
      'Usage: mpg enclave build --docker-uri IMAGE --eif PATH --measurements PATH [--nitro-cli PATH]',
      '',
      'Runs "nitro-cli build-enclave --docker-uri IMAGE --output-file PATH" and writes what it prints,',
      '{"Measurements": {"HashAlgorithm", "PCR0", "PCR1", "PCR2"}}, to --measurements (atomically) and',
      'to stdout. The gateway pins PCR0/1/2 from that file. Every option has an MPG_ twin.',
    ],
    buildOptions,
  ),
  parse: parseBuild,
  async run({ options }, { env, stdout, stderr }) {
    const eif = options.eif!;
    const measurementsFile = options.measurements!;
    stderr.write(`mpg enclave build: building ${eif} from ${options.dockerUri!} with ${options.nitroCli} (this takes minutes)\n`);
    let built: BuildResult;
    try {
      built = await nitroCliFor(options.nitroCli, env).buildEnclave({ dockerUri: options.dockerUri!, outputFile: eif });
    } catch (error) {
      return fail('build', stderr, error);
    }
    const document = JSON.stringify(built, null, 2) + '\n';
    try {
      await writeFileAtomically(measurementsFile, document);
    } catch (error) {
      // The EIF is built; only its measurements file is missing. Say so and print them anyway.
      stdout.write(document);
      stderr.write(`mpg enclave build: the EIF ${eif} was built, but its measurements could not be written to ${measurementsFile} (${(error as Error).message}); they are on stdout\n`);
      return 1;
    }
    stdout.write(document);
    const { size } = await stat(eif).catch(() => ({ size: undefined }));
    stderr.write(`mpg enclave build: EIF ${eif}${size === undefined ? '' : ` (${size} bytes)`}; measurements in ${measurementsFile}\n`);
    return 0;
  },
});

// ---- mpg enclave nitro-run ------------------------------------------------------------------

/** The memory an enclave needs for an EIF of `eifBytes`, in whole MiB. */
export function minimumEnclaveMemoryMiB(eifBytes: number): number {
  return Math.ceil((EIF_MEMORY_FACTOR * eifBytes) / MIB);
}

/** Why `memoryMiB` is too little for an EIF of `eifBytes`, or undefined when it is enough. */
export function enclaveMemoryProblem(eifBytes: number, memoryMiB: number, eif: string): string | undefined {
  const minimum = minimumEnclaveMemoryMiB(eifBytes);
  if (memoryMiB >= minimum) return undefined;
  const eifMiB = (eifBytes / MIB).toFixed(1);
  return `--memory-mib ${memoryMiB} is too little for ${eif} (${eifBytes} bytes, ${eifMiB} MiB): enclave memory must be at least ${EIF_MEMORY_FACTOR} times the EIF's size, so give --memory-mib ${minimum} or more`;
}

const nitroRunOptions = {
  eif: text({ description: 'The enclave image file to run (from "mpg enclave build")', placeholder: 'PATH' }),
  cpuCount: integer({ description: 'vCPUs for the enclave, taken from the enclave CPU pool (allocator.yaml)', default: 2, min: 1, max: 1024 }),
  memoryMib: integer({ description: `Enclave memory, at least ${EIF_MEMORY_FACTOR}x the EIF's size; taken from the enclave memory pool (allocator.yaml)`, unit: 'MiB', min: 64 }),
  enclaveCid: integer({ description: "The enclave's vsock context ID, which the parent relay connects to", min: MIN_ENCLAVE_CID, max: MAX_ENCLAVE_CID }),
  debugMode: toggle({ description: 'Start in debug mode: console readable from the parent, attestation PCRs all zeros. Never for secure traffic' }),
  ...nitroCliOption,
};

function parseNitroRun(argv: readonly string[], env: CommandContext['env']) {
  const { options, help } = parseCommandLine(nitroRunOptions, argv, env);
  if (help) return { help, options };
  if (!options.eif) throw new OptionError('--eif is required');
  if (options.memoryMib === undefined) throw new OptionError('--memory-mib is required');
  if (options.enclaveCid === undefined) throw new OptionError('--enclave-cid is required');
  return { help, options };
}

const nitroRunCommand = optionCommand({
  path: 'enclave nitro-run',
  summary: 'Start the Nitro enclave from its EIF with nitro-cli (memory checked against the EIF first)',
  usage: usageOf(
    [
      'Usage: mpg enclave nitro-run --eif PATH --memory-mib N --enclave-cid N [--cpu-count N] [--debug-mode] [--nitro-cli PATH]',
      '',
      `Checks that --memory-mib is at least ${EIF_MEMORY_FACTOR}x the EIF's size (exit 2 otherwise, nitro-cli not called),`,
      'then runs "nitro-cli run-enclave" and prints its JSON (EnclaveID, EnclaveCID, CPUs, memory).',
      'Every option has an MPG_ twin.',
    ],
    nitroRunOptions,
  ),
  parse: parseNitroRun,
  async run({ options }, { env, stdout, stderr }) {
    const eif = options.eif!;
    const memoryMiB = options.memoryMib!;
    let eifBytes: number;
    try {
      const info = await stat(eif);
      if (!info.isFile()) throw Object.assign(new Error('not a file'), { code: 'EISDIR' });
      eifBytes = info.size;
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      const why = code === 'ENOENT' ? 'there is no such file; build it with "mpg enclave build"' : code === 'EISDIR' ? 'it is not a file' : (code ?? (error as Error).message);
      stderr.write(`mpg enclave nitro-run: --eif ${eif}: ${why}\n`);
      return 2;
    }
    const problem = enclaveMemoryProblem(eifBytes, memoryMiB, eif);
    if (problem) {
      stderr.write(`mpg enclave nitro-run: ${problem}\n`);
      return 2;
    }
    if (options.debugMode) {
      stderr.write('mpg enclave nitro-run: warning: debug mode: the enclave console is readable from the parent and its attestation carries all-zero PCRs: do not send it secure traffic\n');
    }
    try {
      const started = await nitroCliFor(options.nitroCli, env).runEnclave({
        eifPath: eif,
        cpuCount: options.cpuCount,
        memoryMiB,
        enclaveCid: options.enclaveCid,
        debugMode: options.debugMode,
      });
      printJson(stdout, started);
      return 0;
    } catch (error) {
      return fail('nitro-run', stderr, error);
    }
  },
});

// ---- mpg enclave nitro-stop -----------------------------------------------------------------

const nitroStopOptions = {
  enclaveId: text({ description: 'The enclave to terminate (EnclaveID from nitro-run or nitro-status)', placeholder: 'ID' }),
  all: toggle({ description: 'Terminate every enclave on this parent' }),
  ...nitroCliOption,
};

function parseNitroStop(argv: readonly string[], env: CommandContext['env']) {
  const { options, help } = parseCommandLine(nitroStopOptions, argv, env);
  if (!help && (options.enclaveId === undefined) === !options.all) throw new OptionError('give exactly one of --enclave-id ID and --all');
  return { help, options };
}

const nitroStopCommand = optionCommand({
  path: 'enclave nitro-stop',
  summary: 'Terminate a Nitro enclave (or all of them) with nitro-cli',
  usage: usageOf(
    [
      'Usage: mpg enclave nitro-stop (--enclave-id ID | --all) [--nitro-cli PATH]',
      '',
      'Runs "nitro-cli terminate-enclave" and prints a JSON array of {EnclaveName, EnclaveID, Terminated}.',
    ],
    nitroStopOptions,
  ),
  parse: parseNitroStop,
  async run({ options }, { env, stdout, stderr }) {
    try {
      const target = options.all ? ({ all: true } as const) : { enclaveId: options.enclaveId! };
      const terminated = await nitroCliFor(options.nitroCli, env).terminateEnclave(target);
      printJson(stdout, terminated);
      const left = terminated.filter((item) => !item.Terminated);
      if (left.length === 0) return 0;
      stderr.write(`mpg enclave nitro-stop: not terminated: ${left.map((item) => item.EnclaveID).join(', ')}\n`);
      return 1;
    } catch (error) {
      return fail('nitro-stop', stderr, error);
    }
  },
});

// ---- mpg enclave nitro-status ---------------------------------------------------------------

export interface EnclaveStatus {
  enclaveId: string;
  enclaveName?: string;
  state: string;
  cid: number;
  memoryMiB: number;
  cpus: number;
  cpuIds: number[];
  flags: string;
  debugMode: boolean;
}

export function enclaveStatus(described: DescribeResult): EnclaveStatus {
  return {
    enclaveId: described.EnclaveID,
    ...(described.EnclaveName === undefined ? {} : { enclaveName: described.EnclaveName }),
    state: described.State,
    cid: described.EnclaveCID,
    memoryMiB: described.MemoryMiB,
    cpus: described.NumberOfCPUs,
    cpuIds: described.CPUIDs,
    flags: described.Flags,
    debugMode: described.Flags === 'DEBUG_MODE',
  };
}

const nitroStatusOptions = { ...nitroCliOption };

const nitroStatusCommand = optionCommand({
  path: 'enclave nitro-status',
  summary: 'The Nitro enclaves on this parent (nitro-cli describe-enclaves) as JSON',
  usage: usageOf(
    [
      'Usage: mpg enclave nitro-status [--nitro-cli PATH]',
      '',
      'Prints a JSON array, one item per enclave: {enclaveId, enclaveName, state, cid, memoryMiB, cpus,',
      'cpuIds, flags, debugMode}; [] when none runs.',
    ],
    nitroStatusOptions,
  ),
  parse: (argv, env) => parseCommandLine(nitroStatusOptions, argv, env),
  async run({ options }, { env, stdout, stderr }) {
    try {
      const described = await nitroCliFor(options.nitroCli, env).describeEnclaves();
      printJson(stdout, described.map(enclaveStatus));
      return 0;
    } catch (error) {
      return fail('nitro-status', stderr, error);
    }
  },
});

export const nitroCommands: readonly Command[] = [buildCommand, nitroRunCommand, nitroStopCommand, nitroStatusCommand];
