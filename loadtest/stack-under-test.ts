// The stack the latency, mixed and memory scenarios drive: `mpg loadtest stack-host` in its own
// process group (a Ctrl-C at the terminal reaches the harness, which stops it in order), pinned
// with the gateway's CPUs when asked. Its parts are known by their process trees.
import type { ChildProcessByStdio } from 'node:child_process';
import { spawn } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';
import { MPG_LAUNCHER } from '../enclave/index.js';
import { forwardWarnings } from './log-lines.js';
import type { ProcessTreeRoot } from '../common/index.js';
import type { StackHostLine } from './stack-host.js';

const STOP_GRACE_MS = 30_000;

export interface StackUnderTest {
  readonly gatewayUrl: string;
  readonly publicUrl: string;
  /** The parent relay's Unix socket: the secure model server, directly. */
  readonly secureSocket: string;
  /** Each part's process tree: 'public model server', 'enclave' (emulated only), 'gateway', 'parent relay'. */
  readonly parts: Readonly<Record<string, ProcessTreeRoot>>;
  readonly enclave: Extract<StackHostLine, { event: 'ready' }>['enclave'];
  /** Rejects as soon as a part of the stack exits on its own. */
  readonly failed: Promise<never>;
  stop(): Promise<void>;
}

export interface StartOptions {
  hostArguments: string[];
  gatewayCpus: string | null;
  env: Readonly<Record<string, string | undefined>>;
  stderr: NodeJS.WritableStream;
  /** Each part's process tree as soon as its first process exists. */
  onSpawn?: (part: string, root: ProcessTreeRoot) => void;
  signal?: AbortSignal;
}

export async function startStackUnderTest(options: StartOptions): Promise<StackUnderTest> {
  const args = ['loadtest', 'stack-host', ...options.hostArguments];
  const [command, ...rest] =
    options.gatewayCpus === null
      ? [MPG_LAUNCHER, ...args]
      : ['taskset', '-c', options.gatewayCpus, MPG_LAUNCHER, ...args];
  const child: ChildProcessByStdio<Writable, Readable, Readable> = spawn(command, rest, {
    env: { ...options.env },
    stdio: ['pipe', 'pipe', 'pipe'],
    detached: true,
  });
  forwardWarnings(child.stderr, options.stderr);
  const exited = new Promise<number | string>((resolve) =>
    child.once('exit', (code, signal) => resolve(code ?? signal ?? 'unknown')),
  );
  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      if (child.exitCode === null && child.signalCode === null) {
        const force = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
        child.kill('SIGTERM');
        await exited;
        clearTimeout(force);
      }
    })());

  let failWith: (error: Error) => void = () => {};
  const failed = new Promise<never>((_resolve, reject) => (failWith = reject));
  failed.catch(() => {});
  const ready = new Promise<Extract<StackHostLine, { event: 'ready' }>>((resolve, reject) => {
    let buffered = '';
    child.stdout.on('data', (chunk: Buffer) => {
      buffered += chunk.toString();
      let newline: number;
      while ((newline = buffered.indexOf('\n')) !== -1) {
        const text = buffered.slice(0, newline);
        buffered = buffered.slice(newline + 1);
        let line: StackHostLine;
        try {
          line = JSON.parse(text) as StackHostLine;
        } catch {
          continue;
        }
        if (line.event === 'spawned') options.onSpawn?.(line.part, line.root);
        else if (line.event === 'ready') resolve(line);
        else if (line.event === 'exited' && !stopping)
          failWith(new Error(`the stack's ${line.part} exited on its own (${line.code})`));
      }
    });
    void exited.then((code) => {
      const error = new Error(
        `the stack under test exited (${code})${stopping ? '' : ' before the scenario finished'}`,
      );
      reject(error);
      if (!stopping) failWith(error);
    });
  });
  const onAbort = () => void stop();
  options.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    const line = await ready;
    return {
      gatewayUrl: line.gatewayUrl,
      publicUrl: line.publicUrl,
      secureSocket: line.secureSocket,
      parts: line.parts,
      enclave: line.enclave,
      failed,
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  } finally {
    options.signal?.removeEventListener('abort', onAbort);
  }
}
