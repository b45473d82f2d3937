// Starting the stack's parts, each in its own process as on an EC2 parent: the public model
// server, the enclave (emulated here, Nitro on a parent) and the gateway in front of both. Used by
// `mpg stack` and by the load-test harness, which also starts the parts one by one (to time cold
// starts) and needs each part's process tree (to measure its CPU and memory).
import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import { rm } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { emulatedImageMeasurements, writeMeasurementsFile } from '../attestation/index.js';
import { exitWithParentEnvironment, stopChild, waitForLine } from '../common/index.js';
import { DEFAULT_MODEL_PATH, ensureModel } from '../model/index.js';
import type { Log } from '../common/index.js';
import { silentLog } from '../common/index.js';
import type { EmulatedEnclave, NitroEnclave, NitroEnclaveOptions } from '../enclave/index.js';
import { EnclaveConfigurationError, MPG_LAUNCHER, startEmulatedEnclave, startNitroEnclave } from '../enclave/index.js';
import type { PartName } from './part-output.js';
import { createRuntimeDir } from './runtime-dir.js';
import type { StackSupervisor, SupervisionOptions } from './supervisor.js';
import { superviseStack } from './supervisor.js';

export const STOP_GRACE_MS = 15_000;
// Both model servers queue up to this many images: 100 concurrent batch-2 requests (the study's
// heaviest load) queue rather than bounce off the default bound of 64 as 503s.
export const STACK_MAX_QUEUE_IMAGES = 256;

type Env = Readonly<Record<string, string | undefined>>;
/** Where one process's output goes. */
export type Output = { stdout: NodeJS.WritableStream; stderr: NodeJS.WritableStream };
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
/** What the load-test harness and benchmarks want from their parts: problems only. */
export const DEFAULT_PART_LOG_LEVEL: LogLevel = 'warn';

/** As a Nitro parent's allocator does, the enclave gets CPUs of its own: the upper half. */
export function splitCpus(): { enclaveCpus: string; threadsEach: number } {
  const cores = availableParallelism();
  if (cores < 2) return { enclaveCpus: '0', threadsEach: 1 };
  const half = Math.floor(cores / 2);
  return { enclaveCpus: half === cores - 1 ? `${half}` : `${half}-${cores - 1}`, threadsEach: half };
}

/** Children get explicit addresses: MPG_PORT and friends are the caller's, and must not move the model servers. */
export function childEnvironment(env: Env): Env {
  return { ...env, MPG_PORT: undefined, MPG_HOST: undefined, MPG_SOCKET: undefined, MPG_ENCLAVE: undefined };
}

async function waitUntilReady(url: string, child: ChildProcess): Promise<void> {
  while (child.exitCode === null && child.signalCode === null) {
    if (
      await fetch(url).then(
        (response) => response.ok,
        () => false,
      )
    )
      return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`${url} never answered: the process exited`);
}

/**
 * The launcher, under `taskset -c cpus` when given (taskset execs: the pid is the server's). Its
 * stdin is a pipe this process holds and never writes to: the child stops when this process dies,
 * even by SIGKILL (exitWithParent). Its output goes to `output`, or stdout is drained and stderr
 * shared with this process.
 */
function spawnMpg(args: string[], env: Env, cpus: string | undefined, output: Output | undefined): ChildProcess {
  const [command, ...rest] =
    cpus === undefined ? [MPG_LAUNCHER, ...args] : ['taskset', '-c', cpus, MPG_LAUNCHER, ...args];
  const child = spawn(command, rest, {
    env: { ...env, ...exitWithParentEnvironment },
    stdio: ['pipe', 'pipe', output ? 'pipe' : 'inherit'],
  });
  if (output) {
    child.stdout!.pipe(output.stdout, { end: false });
    child.stderr!.pipe(output.stderr, { end: false });
  }
  return child;
}

/** One process of the stack (the model server or the gateway). */
export interface StackProcess {
  readonly url: string;
  readonly pid: number;
  readonly child: ChildProcess;
  /** Resolves with the exit code (or the signal's name) whenever the process exits. */
  readonly exited: Promise<number | string>;
  stop(): Promise<void>;
}

function asStackProcess(child: ChildProcess, url: string): StackProcess {
  const exited = new Promise<number | string>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve(child.exitCode ?? child.signalCode ?? 'unknown');
    child.once('exit', (code, signal) => resolve(code ?? signal ?? 'unknown'));
  });
  return { url, pid: child.pid ?? -1, child, exited, stop: () => stopChild(child, STOP_GRACE_MS) };
}

/** Resolves once the process has printed its URL and its /readyz answers 200; stops it on failure. */
async function untilReady(child: ChildProcess, listening: RegExp, what: string): Promise<StackProcess> {
  try {
    const [, url = ''] = await waitForLine(child, listening, what);
    await waitUntilReady(`${url}/readyz`, child);
    return asStackProcess(child, url);
  } catch (error) {
    await stopChild(child, STOP_GRACE_MS);
    throw error;
  }
}

export interface PublicServerOptions {
  port: number;
  threads: number;
  logLevel?: LogLevel;
  /** Where its output goes; stdout is drained when not given. */
  output?: Output | undefined;
  cpus?: string | undefined;
  env: Env;
  /** Called as soon as the process exists, before it is ready (to watch its memory from the start). */
  onSpawn?: (pid: number) => void;
}

/** A public model server on 127.0.0.1; resolves once its /readyz answers 200. */
export async function startPublicServer(options: PublicServerOptions): Promise<StackProcess> {
  const child = spawnMpg(
    [
      'model-server',
      '--host',
      '127.0.0.1',
      '--port',
      String(options.port),
      '--threads',
      String(options.threads),
      '--max-queue',
      String(STACK_MAX_QUEUE_IMAGES),
      '--log-level',
      options.logLevel ?? DEFAULT_PART_LOG_LEVEL,
    ],
    options.env,
    options.cpus,
    options.output,
  );
  if (child.pid !== undefined) options.onSpawn?.(child.pid);
  return untilReady(child, /listening on (http:\/\/\S+)/, 'public model server');
}

export type EnclaveSettings =
  | { mode: 'emulated'; cpus: string; threads: number }
  /** attestationPcrs: the EIF's measurements, which the gateway pins; launchStack requires them. */
  | { mode: 'nitro'; nitro: Omit<NitroEnclaveOptions, 'log' | 'socketPath'>; attestationPcrs?: string | undefined };

export type StackEnclave = EmulatedEnclave | NitroEnclave;

export interface EnclaveStartOptions {
  logLevel?: LogLevel;
  /** Where the emulated enclave's output goes; discarded when not given. */
  output?: Output | undefined;
  /** Where the emulated enclave makes its private channel directory; default: the temporary directory. */
  channelParent?: string;
}

/** The enclave behind the parent relay on `socketPath`; resolves once started (wait on `.ready`). */
export function startEnclave(
  settings: EnclaveSettings,
  socketPath: string,
  env: Env,
  log: Log,
  options: EnclaveStartOptions = {},
): Promise<StackEnclave> {
  if (settings.mode === 'nitro') return startNitroEnclave({ ...settings.nitro, socketPath, log });
  return startEmulatedEnclave({
    socketPath,
    // Beside the parent relay's socket, in the caller's private runtime directory. A restarted
    // enclave writes its new root to the same file, which the gateway re-reads when it changes.
    nsmRootFile: join(dirname(socketPath), 'nsm-root.pem'),
    cpus: settings.cpus,
    modelServerArgs: [
      '--threads',
      String(settings.threads),
      '--max-queue',
      String(STACK_MAX_QUEUE_IMAGES),
      '--log-level',
      options.logLevel ?? DEFAULT_PART_LOG_LEVEL,
    ],
    env,
    log,
    ...(options.output ? { output: options.output } : {}),
    ...(options.channelParent ? { channelParent: options.channelParent } : {}),
  });
}

export interface GatewayOptions {
  host: string;
  port: number;
  publicUrl: string;
  secureSocket: string;
  /** How the gateway attests the secure member: --attestation-pcrs and, emulated, the insecure root. */
  attestationFlags: readonly string[];
  cpus?: string | undefined;
  env: Env;
  logLevel?: LogLevel;
  /** Where its output goes; stdout is drained when not given. */
  output?: Output | undefined;
}

export async function startGateway(options: GatewayOptions): Promise<StackProcess> {
  const child = spawnMpg(
    [
      'gateway',
      '--host',
      options.host,
      '--port',
      String(options.port),
      '--public-upstream',
      options.publicUrl,
      '--secure-upstream',
      `unix:${options.secureSocket}`,
      '--log-level',
      options.logLevel ?? DEFAULT_PART_LOG_LEVEL,
      ...options.attestationFlags,
    ],
    options.env,
    options.cpus,
    options.output,
  );
  return untilReady(child, /gateway listening on (http:\/\/\S+)/, 'gateway');
}

export interface LaunchOptions {
  host: string;
  port: number;
  publicPort: number;
  enclave: EnclaveSettings;
  /** Threads of the public model server. */
  threads: number;
  /** taskset lists for the public model server and the gateway; unpinned when not given. */
  publicCpus?: string | undefined;
  gatewayCpus?: string | undefined;
  env: Env;
  log?: Log;
  /** The parts' log level; default: warn. */
  logLevel?: LogLevel;
  /**
   * Where each process's output goes, asked once per process started (a restarted part gets fresh
   * streams). Not given: the emulated enclave's output is discarded, the other parts' stdout too.
   */
  output?: (part: PartName) => Output;
  /** Called with each part's first pid as soon as it exists (the enclave's is its process group). */
  onSpawn?: (part: StackPart, pid: number) => void;
  /** Aborting stops whatever has started; launchStack then rejects. */
  signal?: AbortSignal;
  /**
   * Restart a part that dies (see supervisor.ts) instead of reporting it on `unexpectedExit`:
   * what `mpg stack` does. The load-test harness wants a death reported, not hidden by a restart.
   */
  supervise?: SupervisionOptions;
  /** Where the runtime directory is made; default: the temporary directory. */
  runtimeParent?: string;
}

export type StackPart = 'public model server' | 'enclave' | 'gateway';

export interface LaunchedStack {
  readonly gatewayUrl: string;
  readonly publicUrl: string;
  /** The parent relay's Unix socket: the secure model server, reached directly. */
  readonly secureSocket: string;
  /** A private directory holding the socket; removed by stop(). */
  readonly runtimeDir: string;
  /** The measurements the gateway pins: the emulated build's, or the EIF's. */
  readonly measurementsFile: string;
  /** The parts as they are now (a supervised part that was restarted is its new process). */
  readonly publicServer: StackProcess;
  readonly gateway: StackProcess;
  readonly enclave: StackEnclave;
  /** Resolves when a part exits while the stack is not stopping; never, when supervised. */
  readonly unexpectedExit: Promise<{ part: StackPart; code: number | string | null }>;
  /** Stops the gateway, then both model servers; removes the runtime directory. Idempotent. */
  stop(): Promise<void>;
}

/** The port a server was started on, from its URL: a restart takes the same one, which the gateway knows. */
function portOf(url: string): number {
  return Number(new URL(url).port);
}

/**
 * Starts the public model server and the enclave side by side, then the gateway in front of both
 * once both are ready. On any failure, whatever was started is stopped before the error is thrown.
 */
export async function launchStack(options: LaunchOptions): Promise<LaunchedStack> {
  const log = options.log ?? silentLog;
  const runtimeDir = await createRuntimeDir(options.runtimeParent);
  const secureSocket = join(runtimeDir, 'enclave.sock');
  const settings = options.enclave;
  if (settings.mode === 'nitro' && !settings.attestationPcrs) {
    await rm(runtimeDir, { recursive: true, force: true });
    throw new EnclaveConfigurationError(
      '--attestation-pcrs is required with the nitro enclave: the measurements "mpg enclave build" wrote, which the gateway attests it against',
    );
  }
  const measurementsFile =
    settings.mode === 'nitro' ? settings.attestationPcrs! : join(runtimeDir, 'measurements.json');
  const logLevel = options.logLevel ?? DEFAULT_PART_LOG_LEVEL;
  let publicServer: StackProcess | undefined;
  let publicStarting: Promise<StackProcess> | undefined;
  let gateway: StackProcess | undefined;
  let enclave: StackEnclave | undefined;
  let supervisor: StackSupervisor | undefined;
  let stopping: Promise<void> | undefined;

  const stop = () =>
    (stopping ??= (async () => {
      // No restart may begin once stopping has; one under way is waited for and stopped below.
      await supervisor?.stop();
      await gateway?.stop();
      const publicStopped =
        (publicServer
          ? publicServer.stop()
          : publicStarting?.then(
              (server) => server.stop(),
              () => {},
            )) ?? Promise.resolve();
      await Promise.all([publicStopped, enclave?.stop()]);
      await rm(runtimeDir, { recursive: true, force: true });
    })());

  const startPublic = (port: number) =>
    startPublicServer({
      port,
      threads: options.threads,
      cpus: options.publicCpus,
      env: options.env,
      logLevel,
      output: options.output?.('public'),
      onSpawn: (pid) => options.onSpawn?.('public model server', pid),
    });
  const startSecure = async () => {
    const started = await startEnclave(settings, secureSocket, options.env, log, {
      logLevel,
      output: options.output?.('enclave'),
      channelParent: runtimeDir,
    });
    if (started.mode === 'emulated') options.onSpawn?.('enclave', started.pid);
    return started;
  };
  const startFront = (port: number, publicUrl: string, attestationFlags: readonly string[]) =>
    startGateway({
      host: options.host,
      port,
      publicUrl,
      secureSocket,
      attestationFlags,
      cpus: options.gatewayCpus,
      env: options.env,
      logLevel,
      output: options.output?.('gateway'),
    });

  const onAbort = () => void stop();
  options.signal?.addEventListener('abort', onAbort, { once: true });
  const stillWanted = () => {
    if (stopping) throw new Error('stopped while starting');
  };
  let attestationFlags: string[] = [];
  try {
    stillWanted();
    if (settings.mode === 'emulated') {
      // The emulated "enclave build": the PCRs of what the enclave will run (this project's code
      // and the model), computed here, outside it. The gateway pins them; the enclave's emulated
      // NSM measures what it actually runs.
      await ensureModel(DEFAULT_MODEL_PATH);
      await writeMeasurementsFile(measurementsFile, emulatedImageMeasurements({ modelPath: DEFAULT_MODEL_PATH }));
    }
    publicStarting = startPublic(options.publicPort);
    // Observed at once: if the enclave fails first, stopping the public server must not crash us.
    publicStarting.catch(() => {});
    enclave = await startSecure();
    stillWanted();
    // Both at once: an enclave that never gets ready fails the start when its readiness timeout
    // says so, not only after the public server has loaded its model.
    [publicServer] = await Promise.all([publicStarting, enclave.ready]);
    stillWanted();
    attestationFlags =
      enclave.mode === 'nitro'
        ? ['--attestation-pcrs', measurementsFile]
        : ['--attestation-pcrs', measurementsFile, '--insecure-trust-emulated-nsm-root', enclave.nsmRootFile];
    gateway = await startFront(options.port, publicServer.url, attestationFlags);
    options.onSpawn?.('gateway', gateway.pid);
    stillWanted();
  } catch (error) {
    await stop();
    // A part that finished starting after stop() began is stopped too (each stop is idempotent).
    await Promise.all([gateway?.stop(), publicServer?.stop(), enclave?.stop()]);
    throw error;
  } finally {
    options.signal?.removeEventListener('abort', onAbort);
  }

  const publicUrl = publicServer.url;
  const gatewayUrl = gateway.url;
  let reportExit: (exit: { part: StackPart; code: number | string | null }) => void = () => {};
  const unexpectedExit = new Promise<{ part: StackPart; code: number | string | null }>(
    (resolve) => (reportExit = resolve),
  );

  if (options.supervise) {
    // The same ports and the same attestation flags on every restart: the gateway keeps the public
    // server's URL and the enclave's socket, and re-reads the emulated root a new enclave writes.
    supervisor = superviseStack(
      {
        'public model server': {
          current: publicServer,
          restart: () => startPublic(portOf(publicUrl)),
          replaced: (next) => (publicServer = next),
        },
        enclave: {
          current: enclave,
          // The supervisor has stopped the dead one first (its parent relay and channel with it):
          // the new one listens on the same socket.
          restart: async () => {
            const next = await startSecure();
            enclave = next;
            try {
              await next.ready;
            } catch (error) {
              await next.stop();
              throw error;
            }
            return next;
          },
          replaced: (next) => (enclave = next),
        },
        gateway: {
          current: gateway,
          restart: () => startFront(portOf(gatewayUrl), publicUrl, attestationFlags),
          replaced: (next) => (gateway = next),
        },
      },
      options.supervise,
    );
  } else {
    const watch = (part: StackPart, exited: Promise<unknown>) =>
      void exited.then((code) => {
        if (!stopping) reportExit({ part, code: typeof code === 'number' || typeof code === 'string' ? code : null });
      });
    watch('public model server', publicServer.exited);
    watch('gateway', gateway.exited);
    watch('enclave', enclave.exited);
  }

  return {
    gatewayUrl,
    publicUrl,
    secureSocket,
    runtimeDir,
    measurementsFile,
    get publicServer() {
      return publicServer!;
    },
    get gateway() {
      return gateway!;
    },
    get enclave() {
      return enclave!;
    },
    unexpectedExit,
    stop,
  };
}
