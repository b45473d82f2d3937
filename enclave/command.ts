// `mpg enclave relay | entrypoint | run`: the enclave's processes as commands, emulated or on
// Nitro; `build | stop | status` (through nitro-cli) are in nitro-commands.ts.
import type { Command, CommandContext } from '../common/index.js';
import {
  OptionError,
  choice,
  commandGroup,
  integer,
  optionCommand,
  parseCommandLine,
  stopOnSignals,
  text,
  usageWithOptions,
} from '../common/index.js';
import { CPU_LIST, EMULATION_WARNING, startEmulatedEnclave } from './emulated-enclave.js';
import { ENTRYPOINT_OWNED_MODEL_SERVER_FLAGS, ensureLoopbackUp, startEntrypoint } from './entrypoint.js';
import { jsonLineLog } from '../common/index.js';
import { nitroCommands } from './nitro-commands.js';
import type { NitroEnclave, NitroEnclaveOptions } from './nitro-enclave.js';
import { EIF_MEMORY_FACTOR, EnclaveConfigurationError, startNitroEnclave } from './nitro-enclave.js';
import { nitroEnclaveOptions, nitroEnclaveSettings } from './nitro-options.js';
import type { RelayTarget } from './relay.js';
import { createRelay, describeTarget } from './relay.js';

// ---- mpg enclave relay ----------------------------------------------------------------------

const relayOptions = {
  listenSocket: text({
    description: 'Unix socket to accept connections on (created with mode 0600)',
    placeholder: 'PATH',
  }),
  targetSocket: text({ description: 'Unix socket to relay each connection to', placeholder: 'PATH' }),
  targetHost: text({ description: 'TCP host to relay each connection to (with --target-port)', placeholder: 'HOST' }),
  targetPort: integer({ description: 'TCP port to relay each connection to (with --target-host)', min: 1, max: 65535 }),
};

function parseRelay(argv: readonly string[], env: CommandContext['env']) {
  const { options, help } = parseCommandLine(relayOptions, argv, env);
  if (help) return { help, listen: '', target: { path: '' } as RelayTarget };
  if (!options.listenSocket) throw new OptionError('--listen-socket is required');
  const tcp = options.targetHost !== undefined || options.targetPort !== undefined;
  if (options.targetSocket && tcp)
    throw new OptionError('--target-socket and --target-host/--target-port are exclusive');
  let target: RelayTarget;
  if (options.targetSocket) target = { path: options.targetSocket };
  else if (options.targetHost !== undefined && options.targetPort !== undefined)
    target = { host: options.targetHost, port: options.targetPort };
  else throw new OptionError('give a target: --target-socket PATH, or --target-host HOST with --target-port N');
  return { help, listen: options.listenSocket, target };
}

const relayCommand = optionCommand({
  path: 'enclave relay',
  options: relayOptions,
  summary: 'Relay every connection on a Unix socket to one target connection (both sides of the vsock channel)',
  usage: usageWithOptions(
    [
      'Usage: mpg enclave relay --listen-socket PATH (--target-socket PATH | --target-host HOST --target-port N)',
      '',
      'Each accepted connection gets exactly one target connection for its whole life, so keep-alive',
      'holds end to end. Stops on SIGTERM or SIGINT. Every option has an MPG_ environment twin.',
    ],
    relayOptions,
  ),
  parse: parseRelay,
  async run({ listen, target }, { stdout, stderr }) {
    const log = jsonLineLog(stderr, { component: 'enclave-relay' });
    const relay = await createRelay({ listen: { path: listen }, target, log });
    stdout.write(`relay listening on unix:${relay.address} -> ${describeTarget(target)}\n`);
    return stopOnSignals(() => relay.close(), log).stopped;
  },
});

// ---- mpg enclave entrypoint -----------------------------------------------------------------

const entrypointOptions = {
  vsockStandin: text({
    description: 'Unix socket standing in for the vsock port the parent connects to',
    placeholder: 'PATH',
  }),
  modelServerPort: integer({
    description: "The model server's port on the enclave's loopback; 0 picks a free one",
    default: 0,
    min: 0,
    max: 65535,
  }),
  enclaveMode: choice({
    description: 'Where this entrypoint runs; reported by the model server and in every log line',
    choices: ['emulated', 'nitro'] as const,
    default: 'emulated',
  }),
};

function parseEntrypoint(argv: readonly string[], env: CommandContext['env']) {
  const { options, positionals, help } = parseCommandLine(entrypointOptions, argv, env, { maxPositionals: Infinity });
  if (!help && !options.vsockStandin) throw new OptionError('--vsock-standin is required');
  const owned = positionals.find((arg) =>
    ENTRYPOINT_OWNED_MODEL_SERVER_FLAGS.some((flag) => arg === flag || arg.startsWith(`${flag}=`)),
  );
  if (owned)
    throw new OptionError(`the entrypoint sets the model server's ${owned.split('=')[0]} itself; leave it out`);
  return {
    help,
    vsockStandin: options.vsockStandin ?? '',
    modelServerPort: options.modelServerPort,
    enclaveMode: options.enclaveMode,
    modelServerArgs: positionals,
  };
}

const entrypointCommand = optionCommand({
  path: 'enclave entrypoint',
  options: entrypointOptions,
  summary: "The enclave's first process: loopback up, the model server on 127.0.0.1, the relay to it",
  usage: usageWithOptions(
    [
      'Usage: mpg enclave entrypoint --vsock-standin PATH [--enclave-mode emulated|nitro] [--model-server-port N] [-- model-server options]',
      '',
      'Brings up lo when it is down, starts the model server on 127.0.0.1 and, once it listens,',
      'relays the vsock stand-in socket to it. SIGTERM or SIGINT stops the model server (requests in',
      "flight finish); the entrypoint exits with the model server's code.",
    ],
    entrypointOptions,
  ),
  parse: parseEntrypoint,
  async run(parsed, { env, stdout, stderr }) {
    const log = jsonLineLog(stderr, { component: 'enclave-entrypoint', mode: parsed.enclaveMode });
    try {
      await ensureLoopbackUp(log);
    } catch (error) {
      log.error({ err: error }, 'cannot start');
      return 1;
    }
    const entrypoint = startEntrypoint({ ...parsed, env, stdout, log });
    // The model server has its own grace period; ours only has to outlast it.
    const shutdown = stopOnSignals(
      async () => {
        entrypoint.stop();
        await entrypoint.exited;
      },
      log,
      15_000,
    );
    // If whatever started the enclave dies without stopping it (SIGKILL), stop too rather than
    // run on as an orphan holding the model in memory.
    const parent = process.ppid;
    const orphanWatch = setInterval(() => {
      if (process.ppid === parent) return;
      log.warn({ parent }, 'the process that started the enclave is gone; stopping');
      shutdown.fail(1);
    }, 1_000);
    orphanWatch.unref();
    return Promise.race([entrypoint.exited, shutdown.stopped]);
  },
});

// ---- mpg enclave run ------------------------------------------------------------------------

const runOptions = {
  mode: choice({
    description:
      'Where the enclave runs: "emulated", a local process tree with the same boundaries; "nitro", a Nitro Enclave on this EC2 parent',
    choices: ['emulated', 'nitro'] as const,
    default: 'emulated',
  }),
  enclaveSocket: text({
    description: "The gateway's secure upstream: the parent relay listens on this Unix socket",
    placeholder: 'PATH',
  }),
  enclaveCpus: text({
    description: 'emulated: pin the enclave to these CPUs with taskset, e.g. 2-3',
    placeholder: 'LIST',
    check: (value) => (CPU_LIST.test(value) ? undefined : 'must be a CPU list such as 2-3 or 1,3'),
  }),
  modelServerPort: integer({
    description: "emulated: the model server's port on the enclave's loopback; 0 picks a free one",
    default: 0,
    min: 0,
    max: 65535,
  }),
  ...nitroEnclaveOptions,
};

function parseRun(argv: readonly string[], env: CommandContext['env']) {
  const { options, positionals, help } = parseCommandLine(runOptions, argv, env, { maxPositionals: Infinity });
  if (help) return { help, options, modelServerArgs: positionals, nitro: undefined };
  if (!options.enclaveSocket) throw new OptionError('--enclave-socket is required');
  const owned = positionals.find((arg) =>
    ENTRYPOINT_OWNED_MODEL_SERVER_FLAGS.some((flag) => arg === flag || arg.startsWith(`${flag}=`)),
  );
  if (owned) throw new OptionError(`the enclave sets the model server's ${owned.split('=')[0]} itself; leave it out`);
  if (options.mode === 'emulated') return { help, options, modelServerArgs: positionals, nitro: undefined };
  if (positionals.length > 0)
    throw new OptionError(
      'model server options cannot be passed to a Nitro enclave: they are part of its image (docker/Dockerfile, target enclave), hence of its measurements',
    );
  return {
    help,
    options,
    modelServerArgs: positionals,
    nitro: nitroEnclaveSettings(options, options.enclaveSocket, env),
  };
}

const runCommand = optionCommand({
  path: 'enclave run',
  options: runOptions,
  summary: 'Run the enclave (emulated, or a Nitro Enclave on an EC2 parent) behind a Unix socket, until stopped',
  usage: usageWithOptions(
    [
      'Usage: mpg enclave run --enclave-socket PATH [--mode emulated] [--enclave-cpus LIST] [-- model-server options]',
      '       mpg enclave run --enclave-socket PATH --mode nitro --eif PATH --memory-mib N [--cpu-count N] [--enclave-cid N] ...',
      '',
      'Emulated: the model server runs in its own network namespace with only loopback when this',
      'machine permits (root, unshare, ip), pinned to --enclave-cpus with taskset, reachable only',
      'through --enclave-socket. It is an emulation: no memory encryption, no hardware root of trust.',
      `Nitro: checks --memory-mib against the EIF (${EIF_MEMORY_FACTOR}x its size), refuses --debug-mode without`,
      '--allow-debug-mode, runs "nitro-cli run-enclave", starts the parent relay (socat, restarted if it',
      "dies) from --enclave-socket to the enclave's vsock port, waits until the model server answers",
      '/readyz through it, prints the enclave as JSON and stays in the foreground; an enclave that',
      'never gets ready is terminated.',
      'Both stop on SIGTERM or SIGINT, leaving no process or socket behind (Nitro: terminate-enclave).',
      'Every option has an MPG_ twin.',
    ],
    runOptions,
  ),
  parse: parseRun,
  async run({ options, modelServerArgs, nitro }, context) {
    if (nitro) return runNitro(nitro, context);
    const { env, stdout, stderr } = context;
    const log = jsonLineLog(stderr, { component: 'enclave', mode: 'emulated' });
    let enclave;
    try {
      enclave = await startEmulatedEnclave({
        socketPath: options.enclaveSocket!,
        cpus: options.enclaveCpus,
        modelServerPort: options.modelServerPort,
        modelServerArgs,
        env,
        log,
        output: { stdout, stderr },
      });
    } catch (error) {
      stderr.write(`mpg enclave run: ${(error as Error).message}\n`);
      return 1;
    }
    const { network, reason, cpus } = enclave.isolation;
    stdout.write(`enclave (mode: emulated) listening on unix:${enclave.socketPath}\n`);
    stdout.write(
      `isolation: network ${network === 'namespace' ? 'namespace (loopback only)' : `none (not isolated: ${reason})`}; cpus ${cpus ?? 'all (not pinned)'}\n`,
    );
    stdout.write(`warning: ${EMULATION_WARNING}\n`);

    const supervised = supervise(enclave, log, 20_000, (code) =>
      log.error({ code }, 'the emulated enclave exited by itself'),
    );
    enclave.ready.then(
      () => log.info({ socket: enclave.socketPath }, 'emulated enclave ready'),
      (error: unknown) => log.error({ err: error }, 'emulated enclave failed before it was ready'),
    );
    return supervised.done;
  },
});

/**
 * Stops the enclave on SIGTERM or SIGINT. An enclave that exits without being asked to has
 * failed, whatever its code: `report` says so, the rest is stopped, and `done` resolves non-zero.
 */
function supervise(
  enclave: { stop(): Promise<void>; exited: Promise<number | string> },
  log: ReturnType<typeof jsonLineLog>,
  graceMs: number,
  report: (how: number | string) => void,
): { signalled(): boolean; stopped: Promise<number>; done: Promise<number> } {
  let signalled = false;
  const shutdown = stopOnSignals(
    () => {
      signalled = true;
      return enclave.stop();
    },
    log,
    graceMs,
  );
  const exitedByItself = enclave.exited.then(async (how) => {
    if (signalled) return shutdown.stopped;
    report(how);
    await enclave.stop();
    return typeof how === 'number' && how !== 0 ? how : 1;
  });
  return {
    signalled: () => signalled,
    stopped: shutdown.stopped,
    done: Promise.race([shutdown.stopped, exitedByItself]),
  };
}

async function runNitro(
  settings: Omit<NitroEnclaveOptions, 'log'>,
  { stdout, stderr }: CommandContext,
): Promise<number> {
  const log = jsonLineLog(stderr, { component: 'enclave', mode: 'nitro' });
  let enclave: NitroEnclave;
  try {
    enclave = await startNitroEnclave({ ...settings, log });
  } catch (error) {
    stderr.write(`mpg enclave run: ${(error as Error).message}\n`);
    return error instanceof EnclaveConfigurationError ? 2 : 1;
  }
  const { started } = enclave;
  const relay =
    settings.parentRelay === 'start'
      ? `parent relay (socat) on unix:${settings.socketPath}`
      : `parent relay (external) expected on unix:${settings.socketPath}`;
  stderr.write(
    `mpg enclave run: enclave ${started.EnclaveID} (mode: nitro) started, CID ${started.EnclaveCID}; ${relay} -> vsock:${started.EnclaveCID}:${settings.vsockPort}; waiting for /readyz\n`,
  );

  const supervised = supervise(enclave, log, 30_000, (reason) =>
    stderr.write(`mpg enclave run: ${reason}; stopping\n`),
  );
  try {
    await enclave.ready;
  } catch (error) {
    if (supervised.signalled()) return supervised.stopped;
    stderr.write(
      `mpg enclave run: the enclave did not get ready: ${(error as Error).message}. Terminating it. ` +
        (settings.debugMode
          ? `Its console: nitro-cli console --enclave-id ${started.EnclaveID}\n`
          : 'Start it with --debug-mode --allow-debug-mode to read its console (development only).\n'),
    );
    await enclave.stop();
    return 1;
  }
  stdout.write(
    JSON.stringify({ mode: 'nitro', ready: true, socket: settings.socketPath, enclave: started }, null, 2) + '\n',
  );
  return supervised.done;
}

export const enclaveCommand: Command = commandGroup(
  'enclave',
  'The enclave: its entrypoint, the relays on both sides of its channel, and its local emulation.',
  [relayCommand, entrypointCommand, runCommand, ...nitroCommands],
);
