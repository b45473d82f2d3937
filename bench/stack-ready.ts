// Waiting for a spawned `mpg stack` to be ready, for the benchmarks that drive the whole stack
// (bench:enclave, bench:faults): it is ready once it has printed the gateway's URL and its
// "Ctrl-C stops everything" line.
import type { ChildProcessByStdio } from 'node:child_process';
import type { Readable } from 'node:stream';

export interface ReadyStack {
  gatewayUrl: string;
  /** What the stack printed up to then (its URLs, paths and the commands to try). */
  stdout: string;
}

/** Resolves with the gateway's URL; rejects if the stack exits first or takes longer than `timeoutMs`. */
export function untilStackReady(
  child: ChildProcessByStdio<null, Readable, Readable>,
  stderrSoFar: () => string,
  timeoutMs: number,
): Promise<ReadyStack> {
  let stdout = '';
  return new Promise<ReadyStack>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`mpg stack was not ready within ${timeoutMs / 1000} s: ${stderrSoFar()}`)),
      timeoutMs,
    );
    const onData = (chunk: Buffer) => {
      stdout += chunk.toString();
      const match = /gateway\s+(http:\/\/\S+)/.exec(stdout);
      if (match && /Ctrl-C stops everything/.test(stdout)) {
        clearTimeout(timer);
        child.stdout.off('data', onData);
        child.off('exit', onExit);
        child.stdout.resume();
        resolve({ gatewayUrl: match[1]!, stdout });
      }
    };
    const onExit = (code: number | null, signal: NodeJS.Signals | null) => {
      clearTimeout(timer);
      reject(new Error(`mpg stack exited (${signal ?? code}) before it was ready: ${stderrSoFar()}`));
    };
    child.stdout.on('data', onData);
    child.once('exit', onExit);
  });
}
