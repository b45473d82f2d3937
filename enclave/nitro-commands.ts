// `mpg enclave build | stop | status`: the Nitro enclave's life cycle on
// an EC2 parent instance, through nitro-cli. Every command prints JSON on stdout (what scripts
// read) and explanations on stderr; a failure says what nitro-cli said and what to check.
import { randomBytes } from 'node:crypto';
import { access, constants, rename, rm, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { Command, CommandContext } from '../common/index.js';
import {
  OptionError,
  choice,
  optionCommand,
  parseCommandLine,
  text,
  toggle,
  usageWithOptions,
} from '../common/index.js';
import { probe, reportedEnclaveMode } from './readiness.js';
import type { BuildResult, DescribeResult, NitroCli } from './nitro-cli.js';
import { DEFAULT_NITRO_CLI, createNitroCli } from './nitro-cli.js';

export const nitroCliOption = {
  nitroCli: text({
    description: 'The nitro-cli executable: a name looked up on PATH, or a path',
    default: DEFAULT_NITRO_CLI,
    placeholder: 'PATH',
  }),
};

export function nitroCliFor(binary: string, env: CommandContext['env']): NitroCli {
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
    throw new OptionError(
      `${flag} ${file}: its directory ${directory} ${code === 'ENOENT' ? 'does not exist' : 'is not writable'}`,
      { cause: error },
    );
  }
}

// ---- mpg enclave build ----------------------------------------------------------------------

const buildOptions = {
  mode: choice({
    description:
      '"nitro": an EIF with nitro-cli; "emulated": only the measurements of the emulated enclave (this project\'s compiled code and --model)',
    choices: ['nitro', 'emulated'] as const,
    default: 'nitro',
  }),
  model: text({
    description: 'emulated: the model file the enclave will load; default: models/resnet18.onnx',
    placeholder: 'PATH',
  }),
  dockerUri: text({
    description:
      'The enclave image (docker/Dockerfile, target enclave), as the local Docker daemon names it, e.g. mpg-enclave:latest',
    placeholder: 'IMAGE',
  }),
  eif: text({ description: 'Where to write the enclave image file (EIF)', placeholder: 'PATH' }),
  measurements: text({
    description: "Where to write the EIF's measurements (PCR0, PCR1, PCR2) as JSON, for the gateway to pin",
    placeholder: 'PATH',
  }),
  ...nitroCliOption,
};

async function parseBuild(argv: readonly string[], env: CommandContext['env']) {
  const { options, help } = parseCommandLine(buildOptions, argv, env);
  if (help) return { help, options };
  if (options.mode === 'emulated') {
    if (!options.measurements) throw new OptionError('--measurements is required');
    if (options.dockerUri || options.eif)
      throw new OptionError('--docker-uri and --eif are for --mode nitro; the emulated enclave has no image file');
    await checkWritableDirectory(options.measurements, '--measurements');
    return { help, options };
  }
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
  options: buildOptions,
  summary: 'Build the enclave image file (EIF) from a Docker image with nitro-cli; write its PCR measurements',
  usage: usageWithOptions(
    [
      'Usage: mpg enclave build --docker-uri IMAGE --eif PATH --measurements PATH [--nitro-cli PATH]',
      '       mpg enclave build --mode emulated --measurements PATH [--model PATH]',
      '',
      'Runs "nitro-cli build-enclave --docker-uri IMAGE --output-file PATH" and writes what it prints,',
      '{"Measurements": {"HashAlgorithm", "PCR0", "PCR1", "PCR2"}}, to --measurements (atomically) and',
      'to stdout. The gateway pins PCR0/1/2 from that file. Every option has an MPG_ twin.',
    ],
    buildOptions,
  ),
  parse: parseBuild,
  async run({ options }, { env, stdout, stderr }) {
    if (options.mode === 'emulated') return buildEmulated(options.measurements!, options.model, { stdout, stderr });
    const eif = options.eif!;
    const measurementsFile = options.measurements!;
    stderr.write(
      `mpg enclave build: building ${eif} from ${options.dockerUri!} with ${options.nitroCli} (this takes minutes)\n`,
    );
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
      stderr.write(
        `mpg enclave build: the EIF ${eif} was built, but its measurements could not be written to ${measurementsFile} (${(error as Error).message}); they are on stdout\n`,
      );
      return 1;
    }
    stdout.write(document);
    const { size } = await stat(eif).catch(() => ({ size: undefined }));
    stderr.write(
      `mpg enclave build: EIF ${eif}${size === undefined ? '' : ` (${size} bytes)`}; measurements in ${measurementsFile}\n`,
    );
    return 0;
  },
});

/** The emulated enclave's "build": its PCRs, computed from what it will run, in nitro-cli's format. */
async function buildEmulated(
  measurementsFile: string,
  model: string | undefined,
  { stdout, stderr }: Pick<CommandContext, 'stdout' | 'stderr'>,
): Promise<number> {
  const { emulatedImageMeasurements, formatMeasurements } = await import('../attestation/index.js');
  const { DEFAULT_MODEL_PATH, ensureModel } = await import('../model/index.js');
  const modelPath = model ?? DEFAULT_MODEL_PATH;
  try {
    if (!model) await ensureModel(modelPath, (line) => stderr.write(`mpg enclave build: ${line}\n`));
    const document = formatMeasurements(emulatedImageMeasurements({ modelPath }));
    await writeFileAtomically(measurementsFile, document);
    stdout.write(document);
    stderr.write(
      `mpg enclave build: EMULATED measurements of this project's dist/ and ${modelPath} in ${measurementsFile}; pin them with the gateway's --attestation-pcrs\n`,
    );
    return 0;
  } catch (error) {
    return fail('build', stderr, error);
  }
}

// ---- mpg enclave stop -----------------------------------------------------------------------

const stopOptions = {
  enclaveId: text({ description: 'The enclave to terminate (EnclaveID from "run" or "status")', placeholder: 'ID' }),
  all: toggle({ description: 'Terminate every enclave on this parent' }),
  ...nitroCliOption,
};

function parseStop(argv: readonly string[], env: CommandContext['env']) {
  const { options, help } = parseCommandLine(stopOptions, argv, env);
  if (!help && (options.enclaveId === undefined) === !options.all)
    throw new OptionError('give exactly one of --enclave-id ID and --all');
  return { help, options };
}

const stopCommand = optionCommand({
  path: 'enclave stop',
  options: stopOptions,
  summary: 'Terminate a Nitro enclave (or all of them) with nitro-cli',
  usage: usageWithOptions(
    [
      'Usage: mpg enclave stop (--enclave-id ID | --all) [--nitro-cli PATH]',
      '',
      'Runs "nitro-cli terminate-enclave" and prints a JSON array of {EnclaveName, EnclaveID, Terminated}.',
      'An emulated enclave stops with its "mpg enclave run" (Ctrl-C or SIGTERM).',
    ],
    stopOptions,
  ),
  parse: parseStop,
  async run({ options }, { env, stdout, stderr }) {
    try {
      const target = options.all ? ({ all: true } as const) : { enclaveId: options.enclaveId! };
      const terminated = await nitroCliFor(options.nitroCli, env).terminateEnclave(target);
      printJson(stdout, terminated);
      const left = terminated.filter((item) => !item.Terminated);
      if (left.length === 0) return 0;
      stderr.write(`mpg enclave stop: not terminated: ${left.map((item) => item.EnclaveID).join(', ')}\n`);
      return 1;
    } catch (error) {
      return fail('stop', stderr, error);
    }
  },
});

// ---- mpg enclave status ---------------------------------------------------------------------

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

/** What the model server behind the parent relay's socket says: ready or not, and where it runs. */
async function relayStatus(
  socketPath: string,
): Promise<{ socket: string; ready: boolean; readyzStatus: number; enclave: string | undefined }> {
  const readyz = await probe(socketPath, '/readyz');
  return {
    socket: socketPath,
    ready: readyz.status === 200,
    readyzStatus: readyz.status,
    enclave: await reportedEnclaveMode(socketPath),
  };
}

const statusOptions = {
  mode: choice({
    description:
      'Which enclave: "nitro" asks nitro-cli describe-enclaves; "emulated" asks the model server through --enclave-socket',
    choices: ['emulated', 'nitro'] as const,
    default: 'emulated',
  }),
  enclaveSocket: text({
    description: "The parent relay's Unix socket: when given, whether the model server answers /readyz through it",
    placeholder: 'PATH',
  }),
  ...nitroCliOption,
};

const statusCommand = optionCommand({
  path: 'enclave status',
  options: statusOptions,
  summary: "The enclave's state as JSON: describe-enclaves on Nitro, the model server through the relay in either mode",
  usage: usageWithOptions(
    [
      'Usage: mpg enclave status [--mode emulated|nitro] [--enclave-socket PATH] [--nitro-cli PATH]',
      '',
      'nitro:    {"mode":"nitro","enclaves":[{enclaveId, enclaveName, state, cid, memoryMiB, cpus, cpuIds, flags,',
      '          debugMode}], "relay":{...}} ("enclaves" is [] when none runs; "relay" only with --enclave-socket).',
      'emulated: {"mode":"emulated","relay":{"socket","ready","readyzStatus","enclave":"emulated"}}; needs --enclave-socket.',
      'Exits 0 when it could ask, and 1 when nitro-cli failed or, with --enclave-socket, the model server is not ready.',
    ],
    statusOptions,
  ),
  parse: (argv, env) => {
    const parsed = parseCommandLine(statusOptions, argv, env);
    if (!parsed.help && parsed.options.mode === 'emulated' && !parsed.options.enclaveSocket)
      throw new OptionError('--mode emulated needs --enclave-socket: the emulated enclave is known only by its relay');
    return parsed;
  },
  async run({ options }, { env, stdout, stderr }) {
    const relay = options.enclaveSocket === undefined ? undefined : await relayStatus(options.enclaveSocket);
    if (options.mode === 'emulated') {
      printJson(stdout, { mode: 'emulated', relay });
      return relay?.ready ? 0 : 1;
    }
    try {
      const described = await nitroCliFor(options.nitroCli, env).describeEnclaves();
      printJson(stdout, { mode: 'nitro', enclaves: described.map(enclaveStatus), ...(relay ? { relay } : {}) });
      return relay && !relay.ready ? 1 : 0;
    } catch (error) {
      return fail('status', stderr, error);
    }
  },
});

export const nitroCommands: readonly Command[] = [buildCommand, stopCommand, statusCommand];
