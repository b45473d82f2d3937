// The enclave emulated as a local process tree with Nitro's boundaries:
//
//   caller (this process)                     the enclave stand-in (one process group)
//   parent relay  ══ unix socket standing ══► entrypoint: enclave relay ──► model server
//   on socketPath     in for the vsock port   (its own network namespace with only lo, where the
//                                              OS permits; pinned to the configured CPUs)
//
// A Unix socket on the filesystem is reachable across network namespaces while TCP is not: that
// is exactly the property of the vsock channel it stands in for. Everything else the enclave runs
// (entrypoint, relay, model server) is the same code the real enclave image runs.
//
// It is an emulation and says so: no memory encryption, no hardware root of trust.
import type { ChildProcess } from 'node:child_process';
import { spawn, spawnSync } from 'node:child_process';
import { accessSync, existsSync, constants as fsConstants } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { exitWithParentEnvironment } from '../common/index.js';
import { MPG_LAUNCHER } from './entrypoint.js';
import { readyzStatus } from './readiness.js';
import type { Log } from '../common/index.js';
import { silentLog } from '../common/index.js';
import type { Relay, RelayStats } from './relay.js';
import { createRelay } from './relay.js';

export const EMULATION_WARNING =
  'emulated enclave: no memory encryption and no hardware root of trust; the operator of this machine can read everything it processes';

/** How long stop() lets the model server finish the requests in flight before it kills the process group. */
export const ENCLAVE_STOP_GRACE_MS = 15_000;
const READY_POLL_MS = 100;

export interface EnclaveIsolation {
  network: 'namespace' | 'none';
  /** Why the network is not isolated. */
  reason?: string;
  /** The CPUs the enclave is pinned to, when it is. */
  cpus?: string;
  /** Why configured CPUs are not applied. */
  cpusReason?: string;
}

export interface EmulatedEnclaveOptions {
  /** The gateway's secure upstream: the parent relay listens here. */
  socketPath: string;
  /** CPU list for taskset, e.g. "2-3" or "1,3". */
  cpus?: string;
  /** The model server's loopback port inside the enclave; 0 picks a free one. */
  modelServerPort?: number;
  modelServerArgs?: readonly string[];
  /** The enclave processes' environment. */
  env?: Readonly<Record<string, string | undefined>>;
  log?: Log;
  /** Where the enclave processes' output goes; discarded when not given. */
  output?: { stdout: NodeJS.WritableStream; stderr: NodeJS.WritableStream };
  /** Where the emulated NSM writes its throwaway root certificate; default: beside the vsock stand-in. */
  nsmRootFile?: string;
  /**
   * The directory in which the private channel directory (the vsock stand-in) is made; default:
   * the temporary directory. `mpg stack` puts it in its own runtime directory, so a stack killed
   * with SIGKILL leaves one directory for the next start to remove.
   */
  channelParent?: string;
}

export interface EmulatedEnclave {
  readonly mode: 'emulated';
  readonly socketPath: string;
  /** The Unix socket standing in for the vsock port, in a private temporary directory. */
  readonly vsockStandin: string;
  /**
   * The emulated NSM's root certificate (PEM), written when the model server starts: a gateway
   * trusts it only with --insecure-trust-emulated-nsm-root.
   */
  readonly nsmRootFile: string;
  readonly isolation: EnclaveIsolation;
  /** The process group leader: the entrypoint. */
  readonly pid: number;
  /** Resolves when GET /readyz through socketPath answers 200; rejects if the enclave exits first. */
  readonly ready: Promise<void>;
  /** Resolves with the entrypoint's exit code (or signal name) whenever it exits. */
  readonly exited: Promise<number | string>;
  relayStats(): RelayStats;
  /** Stops the enclave and the parent relay; removes every socket and temporary file. */
  stop(): Promise<void>;
}

export const CPU_LIST = /^\d+(-\d+)?(,\d+(-\d+)?)*$/;

export function findOnPath(
  command: string,
  env: Readonly<Record<string, string | undefined>> = process.env,
): string | undefined {
  for (const dir of (env.PATH ?? '').split(delimiter)) {
    if (dir === '') continue;
    const candidate = join(dir, command);
    try {
      accessSync(candidate, fsConstants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** What this machine permits: a network namespace (root, unshare, ip) and CPU pinning (taskset). */
export function detectIsolation(cpus: string | undefined): EnclaveIsolation {
  const isolation: EnclaveIsolation = { network: 'none' };
  if (process.getuid?.() !== 0) isolation.reason = 'not running as root: unshare --net needs CAP_SYS_ADMIN';
  else if (!findOnPath('unshare')) isolation.reason = 'unshare (util-linux) is not installed';
  else if (!findOnPath('ip'))
    isolation.reason = 'ip (iproute2) is not installed: loopback could not be brought up inside the namespace';
  else {
    const probe = spawnSync('unshare', ['--net', '--', 'true'], { encoding: 'utf8' });
    if (probe.status === 0) isolation.network = 'namespace';
    else
      isolation.reason = `unshare --net failed: ${(probe.stderr || probe.error?.message || `exit ${probe.status}`).trim()}`;
  }
  if (cpus !== undefined) {
    if (findOnPath('taskset')) isolation.cpus = cpus;
    else isolation.cpusReason = 'taskset (util-linux) is not installed; the enclave shares every CPU';
  }
  return isolation;
}

/** The command that runs the entrypoint inside the boundaries `isolation` describes. */
export function enclaveCommand(isolation: EnclaveIsolation, entrypointArgs: readonly string[]): string[] {
  return [
    ...(isolation.cpus !== undefined ? ['taskset', '-c', isolation.cpus] : []),
    ...(isolation.network === 'namespace' ? ['unshare', '--net', '--'] : []),
    MPG_LAUNCHER,
    'enclave',
    'entrypoint',
    ...entrypointArgs,
  ];
}

export async function startEmulatedEnclave(options: EmulatedEnclaveOptions): Promise<EmulatedEnclave> {
  const log = options.log ?? silentLog;
  if (options.cpus !== undefined && !CPU_LIST.test(options.cpus))
    throw new Error(`CPU list "${options.cpus}" must look like 0-1 or 0,2`);
  const isolation = detectIsolation(options.cpus);
  log.warn({}, EMULATION_WARNING);
  if (isolation.network === 'none')
    log.warn(
      { reason: isolation.reason },
      `not isolated: ${isolation.reason}; the model server shares this machine's network`,
    );
  if (isolation.cpusReason) log.warn({ reason: isolation.cpusReason }, 'CPUs not pinned');

  // A private (0700) directory holds the vsock stand-in, so only this user reaches it.
  const channelDir = await mkdtemp(join(options.channelParent ?? tmpdir(), 'mpg-enclave-'));
  const vsockStandin = join(channelDir, 'vsock.sock');
  const nsmRootFile = options.nsmRootFile ?? join(channelDir, 'nsm-root.pem');
  let parentRelay: Relay;
  try {
    parentRelay = await createRelay({ listen: { path: options.socketPath }, target: { path: vsockStandin }, log });
  } catch (error) {
    await rm(channelDir, { recursive: true, force: true });
    throw error;
  }

  const [command, ...args] = enclaveCommand(isolation, [
    '--enclave-mode',
    'emulated',
    '--vsock-standin',
    vsockStandin,
    '--model-server-port',
    String(options.modelServerPort ?? 0),
    '--',
    '--emulated-nsm-root-file',
    nsmRootFile,
    ...(options.modelServerArgs ?? []),
  ]);
  // Its own process group: stop() can reach the model server even if the entrypoint died. Its
  // stdin is a pipe this process never writes to: when this process dies, however it dies, the
  // entrypoint reads EOF and stops the enclave (exitWithParent).
  const child: ChildProcess = spawn(command!, args, {
    env: { ...(options.env ?? process.env), ...exitWithParentEnvironment },
    stdio: ['pipe', 'pipe', 'pipe'],
    detached: true,
  });
  if (options.output) {
    child.stdout!.pipe(options.output.stdout, { end: false });
    child.stderr!.pipe(options.output.stderr, { end: false });
  } else {
    child.stdout!.resume();
    child.stderr!.resume();
  }
  const exited = new Promise<number | string>((resolve) => {
    child.once('exit', (code, signal) => resolve(code ?? signal ?? 'unknown'));
    child.once('error', (error) => {
      log.error({ err: error }, 'the emulated enclave could not be started');
      resolve('spawn failed');
    });
  });
  log.info({ pid: child.pid, socket: options.socketPath, vsockStandin, isolation }, 'emulated enclave starting');

  let gone = false;
  void exited.then((code) => {
    gone = true;
    log.info({ code }, 'emulated enclave exited');
  });
  const ready = (async () => {
    while (!gone) {
      // The enclave relay creates the stand-in once the model server listens; until then a probe
      // through the parent relay could only fail (and be logged as a relay failure).
      if (existsSync(vsockStandin) && (await readyzStatus(options.socketPath)) === 200) return;
      await new Promise((resolve) => setTimeout(resolve, READY_POLL_MS));
    }
    throw new Error(`the emulated enclave exited (${await exited}) before it was ready`);
  })();
  ready.catch(() => {}); // the caller decides whether to wait; an unobserved failure is not a crash

  const killGroup = (signal: NodeJS.Signals) => {
    try {
      process.kill(-child.pid!, signal);
    } catch {
      // the group is already gone
    }
  };

  let stopping: Promise<void> | undefined;
  return {
    mode: 'emulated',
    socketPath: options.socketPath,
    vsockStandin,
    nsmRootFile,
    isolation,
    pid: child.pid ?? -1,
    ready,
    exited,
    relayStats: () => parentRelay.stats(),
    stop() {
      stopping ??= (async () => {
        log.info({}, 'stopping the emulated enclave');
        // Stop accepting at once; connections in flight drain as the model server answers them.
        const relayClosed = parentRelay.close(ENCLAVE_STOP_GRACE_MS);
        if (!gone) child.kill('SIGTERM');
        const timer = setTimeout(() => killGroup('SIGKILL'), ENCLAVE_STOP_GRACE_MS);
        await exited;
        clearTimeout(timer);
        // Whatever the entrypoint left behind (it was killed, or it died) goes with its group.
        killGroup('SIGKILL');
        await relayClosed;
        await rm(channelDir, { recursive: true, force: true });
        log.info({}, 'emulated enclave stopped');
      })();
      return stopping;
    },
  };
}
