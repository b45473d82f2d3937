// Runs the real `mpg` launcher as a child process, as a user or a supervisor would.
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { spawn } from 'node:child_process';
import type { TestContext } from 'node:test';

export const MPG = new URL('../../../bin/mpg', import.meta.url).pathname;

export interface RunningProcess {
  child: ChildProcessWithoutNullStreams;
  stdout(): string;
  stderr(): string;
  /** Resolves with the exit code (or the signal's name). */
  exited: Promise<number | string>;
  /** Resolves with the first match of `pattern` in stdout. */
  waitForOutput(pattern: RegExp): Promise<RegExpExecArray>;
}

export function startMpg(t: TestContext, args: string[], env: Record<string, string> = {}): RunningProcess {
  const child = spawn(MPG, args, { env: { ...process.env, ...env } });
  let out = '';
  let err = '';
  child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
  const exited = new Promise<number | string>((resolve) =>
    child.once('exit', (code, signal) => resolve(code ?? signal ?? 'unknown')),
  );
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    exited,
    waitForOutput(pattern) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const match = pattern.exec(out);
          if (match) {
            child.stdout.off('data', check);
            resolve(match);
          }
        };
        child.stdout.on('data', check);
        void exited.then((code) => reject(new Error(`mpg exited (${code}) before printing ${pattern}: ${err}`)));
        check();
      });
    },
  };
}

export async function runMpg(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(MPG, args, { env: { ...process.env, ...env } });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  return { code, stdout, stderr };
}

/** Polls until `url` answers 200; the test runner's own timeout bounds the wait. */
export async function waitUntilOk(url: string, init?: RequestInit): Promise<void> {
  for (;;) {
    const ok = await fetch(url, init).then(
      (response) => response.ok,
      () => false,
    );
    if (ok) return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
