// The parent relay on a Nitro parent: a Unix socket (the gateway's secure upstream) bridged to the
// enclave's vsock port. Node's net module cannot open AF_VSOCK, so socat does the bridging:
//
//   socat UNIX-LISTEN:<socket>,fork,mode=600,unlink-early VSOCK-CONNECT:<cid>:<port>
//
// With fork, every accepted Unix connection gets its own vsock connection for its whole life, so
// the gateway's keep-alive connections hold end to end and no request pays a vsock set-up.
// This module supervises socat: it waits for the socket to appear, restarts socat when it dies
// (with a growing pause), and on close stops it and everything it forked, and removes the socket.
import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import type { Log } from '../common/index.js';
import { silentLog } from '../common/index.js';

export const DEFAULT_SOCAT = 'socat';
const SOCKET_WAIT_MS = 5_000;
const RESTART_PAUSE_MS = [250, 500, 1_000, 2_000, 5_000] as const;
/** socat ran this long: its next death starts the pauses from the shortest again. */
const HEALTHY_RUN_MS = 30_000;

export type VsockRelayTarget = { vsock: { cid: number; port: number } } | { unix: string };

export interface VsockRelayOptions {
  /** The Unix socket to listen on (created 0600). */
  socketPath: string;
  /** The enclave's vsock address. `unix` connects to a Unix socket instead (tests; other bridges). */
  target: VsockRelayTarget;
  /** The socat executable; found on PATH by default. */
  socat?: string;
  env?: Readonly<Record<string, string | undefined>>;
  log?: Log;
}

export interface VsockRelay {
  readonly socketPath: string;
  /** How many times socat was restarted after dying. */
  restarts(): number;
  /** The running socat's pid, if one runs. */
  pid(): number | undefined;
  /** Stops socat and every connection it forked; removes the socket. */
  close(): Promise<void>;
}

// socat splits addresses on ':' and ',' and treats '!!' specially: a path holding one of those
// would silently become another address.
const SOCAT_SAFE_PATH = /^[A-Za-z0-9_./@+-]+$/;

export function socatArguments(socketPath: string, target: VsockRelayTarget): string[] {
  if (!SOCAT_SAFE_PATH.test(socketPath))
    throw new Error(
      `the relay socket path ${JSON.stringify(socketPath)} may only hold letters, digits and _ . / @ + - (socat reads ':' and ',' as syntax)`,
    );
  let connect: string;
  if ('vsock' in target) {
    const { cid, port } = target.vsock;
    if (!Number.isInteger(cid) || cid < 0 || !Number.isInteger(port) || port < 1 || port > 0xffffffff)
      throw new Error(`bad vsock address ${cid}:${port}`);
    connect = `VSOCK-CONNECT:${cid}:${port}`;
  } else {
    if (!SOCAT_SAFE_PATH.test(target.unix))
      throw new Error(
        `the target socket path ${JSON.stringify(target.unix)} may only hold letters, digits and _ . / @ + -`,
      );
    connect = `UNIX-CONNECT:${target.unix}`;
  }
  // -d: warnings as well as errors on stderr.
  return ['-d', `UNIX-LISTEN:${socketPath},fork,mode=600,unlink-early`, connect];
}

export function describeVsockTarget(target: VsockRelayTarget): string {
  return 'vsock' in target ? `vsock:${target.vsock.cid}:${target.vsock.port}` : `unix:${target.unix}`;
}

/** Starts socat and resolves once its socket exists; rejects if socat cannot start or the socket never appears. */
export async function startVsockRelay(options: VsockRelayOptions): Promise<VsockRelay> {
  const log = options.log ?? silentLog;
  const args = socatArguments(options.socketPath, options.target);
  const binary = options.socat ?? DEFAULT_SOCAT;
  const target = describeVsockTarget(options.target);
  let child: ChildProcess | undefined;
  let closing = false;
  let restarts = 0;
  let restartTimer: NodeJS.Timeout | undefined;
  let failures = 0;
  let spawnError: Error | undefined;

  const killGroup = (process_: ChildProcess | undefined, signal: NodeJS.Signals) => {
    if (process_?.pid === undefined) return;
    try {
      // socat's forked children (one per connection) are in its process group.
      process.kill(-process_.pid, signal);
    } catch {
      // already gone
    }
  };

  const launch = (): ChildProcess => {
    const started = Date.now();
    const socat = spawn(binary, args, {
      env: { ...(options.env ?? process.env) },
      stdio: ['ignore', 'ignore', 'pipe'],
      detached: true,
    });
    let stderrTail = '';
    socat.stderr.setEncoding('utf8');
    socat.stderr.on('data', (chunk: string) => {
      stderrTail = (stderrTail + chunk).slice(-2000);
      for (const line of chunk.split('\n')) if (line.trim() !== '') log.warn({ socat: line.trim() }, 'socat');
    });
    socat.once('error', (error) => {
      spawnError = error;
      log.error(
        { err: error, socat: binary },
        'socat could not be started: install socat (>= 1.7.4 for VSOCK), or name it with --socat',
      );
    });
    socat.once('exit', (code, signal) => {
      if (closing) return;
      // What socat forked dies with it: the gateway sees those connections close and re-dials.
      killGroup(socat, 'SIGTERM');
      if (Date.now() - started > HEALTHY_RUN_MS) failures = 0;
      const pause = RESTART_PAUSE_MS[Math.min(failures, RESTART_PAUSE_MS.length - 1)]!;
      failures += 1;
      log.error(
        { code, signal, target, restartInMs: pause, stderr: stderrTail.trim() || undefined },
        'the parent relay (socat) died; restarting it',
      );
      restartTimer = setTimeout(() => {
        restartTimer = undefined;
        if (closing) return;
        restarts += 1;
        child = launch();
      }, pause);
    });
    return socat;
  };

  child = launch();
  const deadline = Date.now() + SOCKET_WAIT_MS;
  const first = child;
  while (!existsSync(options.socketPath)) {
    if (spawnError || first.exitCode !== null || first.signalCode !== null || Date.now() > deadline) {
      closing = true;
      if (restartTimer) clearTimeout(restartTimer);
      killGroup(first, 'SIGKILL');
      const why = spawnError
        ? `${spawnError.message}; install socat (>= 1.7.4 for VSOCK) or name it with --socat`
        : first.exitCode !== null || first.signalCode !== null
          ? `socat exited (${first.exitCode ?? first.signalCode})`
          : `the socket did not appear within ${SOCKET_WAIT_MS / 1000} s`;
      throw new Error(`the parent relay (${binary} ${args.join(' ')}) did not start: ${why}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  log.info({ socket: options.socketPath, target, pid: child.pid }, 'parent relay listening');

  let closed: Promise<void> | undefined;
  return {
    socketPath: options.socketPath,
    restarts: () => restarts,
    pid: () => (child && child.exitCode === null && child.signalCode === null ? child.pid : undefined),
    close() {
      closed ??= (async () => {
        closing = true;
        if (restartTimer) clearTimeout(restartTimer);
        const current = child;
        if (current && current.exitCode === null && current.signalCode === null) {
          const exited = new Promise((resolve) => current.once('exit', resolve));
          killGroup(current, 'SIGTERM');
          const timer = setTimeout(() => killGroup(current, 'SIGKILL'), 2_000);
          await exited;
          clearTimeout(timer);
        }
        killGroup(current, 'SIGKILL');
        await rm(options.socketPath, { force: true });
        log.info({ socket: options.socketPath }, 'parent relay stopped');
      })();
      return closed;
    },
  };
}
