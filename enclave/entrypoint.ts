// What runs first inside the enclave: bring up loopback (an enclave, like a fresh network
// namespace, starts with `lo` down and nothing else), start the model server on 127.0.0.1, and
// once it listens, relay the channel from the parent (the vsock port; in emulation the Unix socket
// standing in for it) to it. Signals go to the model server, which finishes the requests in
// flight; when it exits, the relay closes and the entrypoint exits with its code, so whatever
// supervises the enclave sees the failure.
import type { ChildProcess } from 'node:child_process';
import { execFile, spawn } from 'node:child_process';
import { constants, networkInterfaces } from 'node:os';
import { promisify } from 'node:util';
import { exitWithParentEnvironment } from '../common/index.js';
import type { Log } from '../common/index.js';
import type { Relay } from './relay.js';
import { createRelay } from './relay.js';

/** The `mpg` launcher beside this build (dist/enclave/ -> bin/mpg). */
export const MPG_LAUNCHER = new URL('../../bin/mpg', import.meta.url).pathname;

/**
 * Flags the entrypoint sets for the model server itself: where it listens is the enclave's
 * layout, not the caller's choice. Their MPG_ twins are removed from the model server's
 * environment for the same reason (an MPG_SOCKET meant for a public server would otherwise move
 * the enclave's server off loopback).
 */
export const ENTRYPOINT_OWNED_MODEL_SERVER_FLAGS = ['--host', '--port', '--socket', '--enclave'] as const;
const OWNED_ENVIRONMENT = ['MPG_HOST', 'MPG_PORT', 'MPG_SOCKET', 'MPG_ENCLAVE'];

export interface EntrypointOptions {
  /** The Unix socket standing in for the enclave's vsock port. */
  vsockStandin: string;
  /** The model server's loopback port; 0 picks a free one. */
  modelServerPort: number;
  /** Further model-server flags (threads, batching, model...). */
  modelServerArgs: readonly string[];
  /** Where this entrypoint runs: a real Nitro enclave, or the local emulation of one. */
  enclaveMode: 'emulated' | 'nitro';
  env: Readonly<Record<string, string | undefined>>;
  stdout: NodeJS.WritableStream;
  log: Log;
}

export interface RunningEntrypoint {
  modelServer: ChildProcess;
  /** Resolves once the model server listens and the relay accepts. */
  started: Promise<Relay>;
  /** Resolves with the model server's exit code (128 + signal number when killed) once the relay is closed. */
  exited: Promise<number>;
  /** Asks the model server to stop; `exited` follows. */
  stop(): void;
}

const LISTENING = /model-server listening on http:\/\/127\.0\.0\.1:(\d+)/;

/** Brings `lo` up when it is down, as it is in a fresh network namespace or a new enclave. */
export async function ensureLoopbackUp(log: Log): Promise<void> {
  const loopbackUp = () => (networkInterfaces().lo ?? []).some((address) => address.address === '127.0.0.1');
  if (loopbackUp()) return;
  try {
    await promisify(execFile)('ip', ['link', 'set', 'lo', 'up']);
  } catch (error) {
    throw new Error(
      `loopback is down and "ip link set lo up" failed (${(error as Error).message.trim()}); the model server cannot listen on 127.0.0.1`,
      {
        cause: error,
      },
    );
  }
  if (!loopbackUp()) throw new Error('"ip link set lo up" ran but 127.0.0.1 is still not configured on lo');
  log.info({}, 'brought up the loopback interface');
}

export function startEntrypoint(options: EntrypointOptions): RunningEntrypoint {
  const { log } = options;
  const env = Object.fromEntries(Object.entries(options.env).filter(([key]) => !OWNED_ENVIRONMENT.includes(key)));
  const args = [
    'model-server',
    '--host',
    '127.0.0.1',
    '--port',
    String(options.modelServerPort),
    '--enclave',
    options.enclaveMode,
    ...options.modelServerArgs,
  ];
  // The model server stops by itself if the entrypoint dies (its relay killed, say): it watches
  // the stdin pipe the entrypoint holds (exitWithParent), so no model server outlives its channel.
  const modelServer = spawn(MPG_LAUNCHER, args, {
    env: { ...env, ...exitWithParentEnvironment },
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  log.info({ pid: modelServer.pid, args }, 'model server started');

  const childExit = new Promise<number>((resolve) => {
    modelServer.once('exit', (code, signal) => resolve(code ?? 128 + (signal ? constants.signals[signal] : 0)));
    modelServer.once('error', (error) => {
      log.error({ err: error }, 'the model server could not be started');
      resolve(1);
    });
  });

  const started = new Promise<Relay>((resolve, reject) => {
    let seen = '';
    const watch = (chunk: Buffer) => {
      seen += chunk.toString();
      const match = LISTENING.exec(seen);
      if (!match) return;
      modelServer.stdout.off('data', watch);
      const port = Number(match[1]);
      createRelay({ listen: { path: options.vsockStandin }, target: { host: '127.0.0.1', port }, log }).then(
        resolve,
        reject,
      );
    };
    modelServer.stdout.on('data', watch);
    modelServer.stdout.pipe(options.stdout, { end: false });
    void childExit.then((code) => reject(new Error(`the model server exited (${code}) before it listened`)));
  });
  started.catch(() => {}); // reported through `exited`; a caller awaiting `started` still sees it

  const exited = childExit.then(async (code) => {
    const relay = await started.catch(() => undefined);
    // The model server is gone: nothing is left to finish, so open connections close now.
    await relay?.close(0);
    log.info({ code }, 'model server exited; entrypoint stopping');
    return code;
  });

  return {
    modelServer,
    started,
    exited,
    stop() {
      if (modelServer.exitCode === null && modelServer.signalCode === null) modelServer.kill('SIGTERM');
    },
  };
}
