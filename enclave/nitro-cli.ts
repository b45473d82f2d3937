// A thin typed wrapper around AWS `nitro-cli`: it builds the argument lists, runs the tool with
// execFile (no shell), reads the JSON it prints on stdout into typed objects, and turns every
// failure into a NitroCliError that says what failed, nitro-cli's own message and exit code, and
// what to check. The JSON shapes are those of aws-nitro-enclaves-cli's src/common/json_output.rs.
import { execFile } from 'node:child_process';

/** The executable looked up on PATH unless `--nitro-cli` / `MPG_NITRO_CLI` names another. */
export const DEFAULT_NITRO_CLI = 'nitro-cli';
/** stdout and stderr kept from one nitro-cli call; its JSON is a few KiB at most. */
const MAX_OUTPUT_BYTES = 4 * 1024 * 1024; // 4 MiB

export type NitroCliErrorCode =
  /** The executable is not there (ENOENT) or not runnable (EACCES). */
  | 'ENC_NITRO_CLI_MISSING'
  /** nitro-cli exited with a failure: `nitroCode` holds its `[ Exx ]` code when it printed one. */
  | 'ENC_NITRO_CLI_FAILED'
  /** nitro-cli said it succeeded but did not print the JSON it documents. */
  | 'ENC_NITRO_CLI_OUTPUT';

export class NitroCliError extends Error {
  override name = 'NitroCliError';
  readonly code: NitroCliErrorCode;
  /** The subcommand, e.g. 'run-enclave'. */
  readonly subcommand: string;
  readonly args: readonly string[];
  /** nitro-cli's exit code (its error number, E26 -> 26), or undefined when it did not run or was killed. */
  readonly exitCode: number | undefined;
  /** nitro-cli's error code, e.g. 'E26', when its stderr carries one. */
  readonly nitroCode: string | undefined;
  readonly stdout: string;
  readonly stderr: string;

  constructor(
    code: NitroCliErrorCode,
    message: string,
    details: {
      subcommand: string;
      args: readonly string[];
      exitCode?: number;
      nitroCode?: string;
      stdout?: string;
      stderr?: string;
      cause?: unknown;
    },
  ) {
    super(message, { cause: details.cause });
    this.code = code;
    this.subcommand = details.subcommand;
    this.args = details.args;
    this.exitCode = details.exitCode;
    this.nitroCode = details.nitroCode;
    this.stdout = details.stdout ?? '';
    this.stderr = details.stderr ?? '';
  }
}

// ---- the documented output shapes ------------------------------------------------------------

export interface Measurements {
  /** nitro-cli prints the Rust debug name, "Sha384 { ... }". */
  HashAlgorithm: string;
  /** The enclave image file (SHA-384, 96 hex digits). */
  PCR0: string;
  /** The Linux kernel and bootstrap. */
  PCR1: string;
  /** The application. */
  PCR2: string;
}

/** What `nitro-cli build-enclave` prints. */
export interface BuildResult {
  Measurements: Measurements;
}

/** What `nitro-cli run-enclave` prints. */
export interface RunResult {
  EnclaveName?: string;
  EnclaveID: string;
  ProcessID: number;
  EnclaveCID: number;
  NumberOfCPUs: number;
  CPUIDs: number[];
  MemoryMiB: number;
}

/** 'DEBUG_MODE' when started with --debug-mode (its attestation PCRs are all zeros), else 'NONE'. */
export type EnclaveFlags = 'NONE' | 'DEBUG_MODE';

/** One item of what `nitro-cli describe-enclaves` prints. */
export interface DescribeResult extends RunResult {
  /** 'RUNNING' or 'TERMINATING'. */
  State: string;
  Flags: EnclaveFlags | (string & {});
}

/** What `nitro-cli terminate-enclave` prints (an array of these with --all). */
export interface TerminateResult {
  EnclaveName?: string;
  EnclaveID: string;
  Terminated: boolean;
}

// ---- what to check, per nitro-cli error code (src/common/document_errors.rs) -----------------

const ALLOCATOR = '/etc/nitro_enclaves/allocator.yaml';
const NITRO_HINTS: Readonly<Record<string, string>> = {
  E01: 'an argument is missing: a bug in how mpg called nitro-cli',
  E03: 'an argument is invalid: check the values passed (see the message)',
  E18: 'permissions: the user must be in the "ne" group (sudo usermod -aG ne $USER, then log in again) and /dev/nitro_enclaves must exist',
  E19: "the EIF (or nitro-cli's log directory) could not be opened: check the path and that it is readable",
  E21: `a requested CPU is not in the enclave CPU pool: check cpu_pool in ${ALLOCATOR}, then restart nitro-enclaves-allocator.service`,
  E22: `more CPUs requested than the enclave CPU pool holds: raise cpu_count in ${ALLOCATOR} and restart nitro-enclaves-allocator.service, or ask for fewer`,
  E26: 'the enclave memory requested is too small for this EIF: raise --memory-mib (mpg asks for at least 4x the EIF size)',
  E27: `more memory requested than is reserved for enclaves: raise memory_mib in ${ALLOCATOR} and restart nitro-enclaves-allocator.service, or ask for less`,
  E28: 'the Nitro Enclaves driver refused to create an enclave: is the instance launched with enclave support enabled, and is the nitro_enclaves module loaded?',
  E29: 'an ioctl to /dev/nitro_enclaves failed: is the instance launched with enclave support enabled? Run with NITRO_CLI_BACKTRACE=1 for details',
  E35: `the EIF could not be loaded into enclave memory: hugepages may be missing; check memory_mib in ${ALLOCATOR} and restart nitro-enclaves-allocator.service`,
  E36: 'the enclave did not boot: rebuild the EIF, then run with --debug-mode and read "nitro-cli console --enclave-id ID"',
  E39: 'nitro-cli could not reach an enclave process: a stale enclave may be left; check "mpg enclave status --mode nitro"',
  E48: "the EIF could not be built: see nitro-cli's message and its error log",
  E49: 'the Docker image could not be built: check the Dockerfile and that the Docker daemon runs and this user may use it',
  E50: 'the Docker image could not be found or pulled: build it locally first (docker images should list it) and check the daemon runs and this user may use it',
  E51: 'NITRO_CLI_ARTIFACTS is not set: set it to a writable directory',
  E52: 'NITRO_CLI_BLOBS is not set: install aws-nitro-enclaves-cli-devel, which provides the kernel and init blobs',
};

const ERROR_LINE = /\[ (E\d{2}) \] ?(.*)/;

/** nitro-cli's error: its code and the paragraph after it (the help link and log path dropped). */
export function parseNitroError(stderr: string): { nitroCode?: string; message: string } {
  const lines = stderr.split('\n');
  const start = lines.findIndex((line) => ERROR_LINE.test(line));
  if (start === -1) {
    const last = lines
      .map((line) => line.trim())
      .filter((line) => line !== '')
      .slice(-3);
    return { message: last.join(' / ') };
  }
  const [, nitroCode, first] = ERROR_LINE.exec(lines[start]!)!;
  const paragraph = [first!];
  for (const line of lines.slice(start + 1)) {
    if (line.trim() === '') break;
    paragraph.push(line.trim());
  }
  return { nitroCode, message: paragraph.join(' ').trim() };
}

// ---- running it ------------------------------------------------------------------------------

export interface NitroCliOptions {
  /** The executable: a name looked up on `env.PATH`, or a path. */
  binary?: string;
  /** The environment nitro-cli runs with (NITRO_CLI_ARTIFACTS, NITRO_CLI_BLOBS, PATH...). */
  env?: Readonly<Record<string, string | undefined>>;
}

export interface RunEnclaveOptions {
  eifPath: string;
  cpuCount: number;
  memoryMiB: number;
  /** Left to nitro-cli when undefined. */
  enclaveCid?: number;
  debugMode: boolean;
}

export interface NitroCli {
  readonly binary: string;
  buildEnclave(options: { dockerUri: string; outputFile: string }): Promise<BuildResult>;
  runEnclave(options: RunEnclaveOptions): Promise<RunResult>;
  describeEnclaves(): Promise<DescribeResult[]>;
  terminateEnclave(target: { enclaveId: string } | { all: true }): Promise<TerminateResult[]>;
}

export function buildEnclaveArgs(options: { dockerUri: string; outputFile: string }): string[] {
  return ['build-enclave', '--docker-uri', options.dockerUri, '--output-file', options.outputFile];
}

export function runEnclaveArgs(options: RunEnclaveOptions): string[] {
  return [
    'run-enclave',
    '--eif-path',
    options.eifPath,
    '--cpu-count',
    String(options.cpuCount),
    '--memory',
    String(options.memoryMiB),
    ...(options.enclaveCid === undefined ? [] : ['--enclave-cid', String(options.enclaveCid)]),
    ...(options.debugMode ? ['--debug-mode'] : []),
  ];
}

export function terminateEnclaveArgs(target: { enclaveId: string } | { all: true }): string[] {
  return 'all' in target ? ['terminate-enclave', '--all'] : ['terminate-enclave', '--enclave-id', target.enclaveId];
}

export function createNitroCli(options: NitroCliOptions = {}): NitroCli {
  const binary = options.binary ?? DEFAULT_NITRO_CLI;
  const env: NodeJS.ProcessEnv | undefined = options.env
    ? Object.fromEntries(
        Object.entries(options.env).filter((entry): entry is [string, string] => entry[1] !== undefined),
      )
    : undefined;

  /**
   * Runs nitro-cli and parses its stdout as JSON. `afterFailure` says what the failure may have
   * left behind, so nothing is left half done without a word.
   */
  async function call(args: string[], afterFailure: string): Promise<unknown> {
    const subcommand = args[0]!;
    const { error, stdout, stderr } = await new Promise<{
      error: (Error & { code?: unknown; signal?: unknown }) | null;
      stdout: string;
      stderr: string;
    }>((resolve) => {
      execFile(binary, args, { env, maxBuffer: MAX_OUTPUT_BYTES, encoding: 'utf8' }, (error, stdout, stderr) =>
        resolve({ error, stdout, stderr }),
      );
    });
    const details = { subcommand, args, stdout, stderr };
    const where = `${binary} ${subcommand}`;
    if (error) {
      if (error.code === 'ENOENT' || error.code === 'EACCES') {
        const why = error.code === 'ENOENT' ? 'was not found' : 'is not executable';
        throw new NitroCliError(
          'ENC_NITRO_CLI_MISSING',
          `${binary} ${why}${binary.includes('/') ? '' : ' on PATH'}: install the AWS Nitro Enclaves CLI (aws-nitro-enclaves-cli) on the EC2 parent instance, or name the executable with --nitro-cli PATH or MPG_NITRO_CLI`,
          { ...details, cause: error },
        );
      }
      const exitCode = typeof error.code === 'number' ? error.code : undefined;
      const how =
        exitCode !== undefined
          ? `exit code ${exitCode}`
          : typeof error.signal === 'string'
            ? `killed by ${error.signal}`
            : error.message;
      const { nitroCode, message } = parseNitroError(stderr);
      const hint = nitroCode ? NITRO_HINTS[nitroCode] : undefined;
      const text = [
        `${where} failed (${how}${nitroCode ? `, ${nitroCode}` : ''}): ${sentence(message || 'no message on stderr')}`,
        hint
          ? `Check: ${hint}.`
          : nitroCode
            ? `See https://docs.aws.amazon.com/enclaves/latest/user/cli-errors.html#${nitroCode}.`
            : '',
        afterFailure,
      ];
      throw new NitroCliError('ENC_NITRO_CLI_FAILED', text.filter((part) => part !== '').join(' '), {
        ...details,
        exitCode,
        nitroCode,
        cause: error,
      });
    }
    try {
      return JSON.parse(stdout) as unknown;
    } catch (cause) {
      const shown = stdout.trim().slice(0, 200) || '(nothing)';
      throw new NitroCliError(
        'ENC_NITRO_CLI_OUTPUT',
        `${where} exited 0 but printed no JSON (got: ${JSON.stringify(shown)}). ${afterSuccessWithoutOutput(subcommand)}`,
        {
          ...details,
          exitCode: 0,
          cause,
        },
      );
    }
  }

  /** Checks one parsed value against its documented shape; a mismatch is ENC_NITRO_CLI_OUTPUT. */
  function expect<T>(
    subcommand: string,
    args: string[],
    value: unknown,
    check: (value: unknown) => string | undefined,
  ): T {
    const problem = check(value);
    if (problem !== undefined) {
      throw new NitroCliError(
        'ENC_NITRO_CLI_OUTPUT',
        `${binary} ${subcommand} printed JSON that is not what it documents: ${problem}. ${afterSuccessWithoutOutput(subcommand)}`,
        {
          subcommand,
          args,
          exitCode: 0,
          stdout: JSON.stringify(value),
        },
      );
    }
    return value as T;
  }

  return {
    binary,
    async buildEnclave(options) {
      const args = buildEnclaveArgs(options);
      const output = await call(args, `The EIF ${options.outputFile} may be missing or incomplete.`);
      return expect<BuildResult>('build-enclave', args, output, checkBuildResult);
    },
    async runEnclave(options) {
      const args = runEnclaveArgs(options);
      const output = await call(
        args,
        'nitro-cli releases what it allocated when run-enclave fails; "mpg enclave status --mode nitro" shows whether anything is left.',
      );
      return expect<RunResult>('run-enclave', args, output, (value) => checkRunResult(value, ''));
    },
    async describeEnclaves() {
      const args = ['describe-enclaves'];
      const output = await call(args, '');
      return expect<DescribeResult[]>('describe-enclaves', args, output, (value) =>
        Array.isArray(value)
          ? value.map((item, index) => checkDescribeResult(item, `[${index}]`)).find((problem) => problem !== undefined)
          : 'expected an array',
      );
    },
    async terminateEnclave(target) {
      const args = terminateEnclaveArgs(target);
      const output = await call(
        args,
        'Enclaves may still be running; "mpg enclave status --mode nitro" shows what is.',
      );
      const list = 'all' in target ? output : [output];
      return expect<TerminateResult[]>('terminate-enclave', args, list, (value) =>
        Array.isArray(value)
          ? value
              .map((item, index) => checkTerminateResult(item, `[${index}]`))
              .find((problem) => problem !== undefined)
          : 'expected an array',
      );
    },
  };
}

function sentence(text: string): string {
  return /[.!?]$/.test(text) ? text : `${text}.`;
}

function afterSuccessWithoutOutput(subcommand: string): string {
  switch (subcommand) {
    case 'build-enclave':
      return 'The EIF may have been written, but its measurements are unknown: read them with "nitro-cli describe-eif --eif-path EIF" or build again.';
    case 'run-enclave':
      return 'An enclave may be running: check "mpg enclave status --mode nitro" and stop it with "mpg enclave stop".';
    case 'terminate-enclave':
      return 'Enclaves may or may not have stopped: check "mpg enclave status --mode nitro".';
    default:
      return 'Is this the AWS Nitro Enclaves CLI?';
  }
}

// ---- shape checks ----------------------------------------------------------------------------

const SHA384_HEX = /^[0-9a-f]{96}$/i;

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function checkFields(
  value: unknown,
  at: string,
  fields: Record<string, (field: unknown) => boolean>,
  optional: readonly string[] = [],
): string | undefined {
  if (!isObject(value)) return `${at || 'the output'} is not an object`;
  for (const [key, valid] of Object.entries(fields)) {
    if (!(key in value) && optional.includes(key)) continue;
    if (!valid(value[key]))
      return `${at}.${key} is ${key in value ? `invalid (${JSON.stringify(value[key])})` : 'missing'}`;
  }
  return undefined;
}

const isString = (value: unknown) => typeof value === 'string';
const isCount = (value: unknown) => Number.isSafeInteger(value) && (value as number) >= 0;
const isCountList = (value: unknown) => Array.isArray(value) && value.every(isCount);

const RUN_FIELDS = {
  EnclaveName: isString,
  EnclaveID: (value: unknown) => typeof value === 'string' && value !== '',
  ProcessID: isCount,
  EnclaveCID: isCount,
  NumberOfCPUs: isCount,
  CPUIDs: isCountList,
  MemoryMiB: isCount,
};

function checkBuildResult(value: unknown): string | undefined {
  if (!isObject(value)) return 'the output is not an object';
  return checkFields(value.Measurements, 'Measurements', {
    HashAlgorithm: isString,
    PCR0: (pcr) => typeof pcr === 'string' && SHA384_HEX.test(pcr),
    PCR1: (pcr) => typeof pcr === 'string' && SHA384_HEX.test(pcr),
    PCR2: (pcr) => typeof pcr === 'string' && SHA384_HEX.test(pcr),
  });
}

function checkRunResult(value: unknown, at: string): string | undefined {
  return checkFields(value, at, RUN_FIELDS, ['EnclaveName']);
}

function checkDescribeResult(value: unknown, at: string): string | undefined {
  return checkFields(value, at, { ...RUN_FIELDS, State: isString, Flags: isString }, ['EnclaveName']);
}

function checkTerminateResult(value: unknown, at: string): string | undefined {
  return checkFields(
    value,
    at,
    { EnclaveName: isString, EnclaveID: isString, Terminated: (flag) => typeof flag === 'boolean' },
    ['EnclaveName'],
  );
}
