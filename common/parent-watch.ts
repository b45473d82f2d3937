// A child that must not outlive the process that started it. The parent spawns it with a pipe on
// its stdin and MPG_EXIT_WITH_PARENT=stdin; it never writes to that pipe. The kernel closes the
// write end when the parent dies, however it dies (SIGKILL included), so the child reads EOF and
// stops itself as if it had received SIGTERM: requests in flight finish, then it exits. A pipe is
// portable (no PR_SET_PDEATHSIG, no polling of the parent's pid) and survives exec (taskset,
// unshare and the mpg launcher all exec), so the watched process is the server itself.

/** The variable a parent sets (to "stdin") when it holds the write end of the child's stdin. */
export const EXIT_WITH_PARENT_VARIABLE = 'MPG_EXIT_WITH_PARENT';
/** The child's environment entry that asks for the watch. */
export const exitWithParentEnvironment = { [EXIT_WITH_PARENT_VARIABLE]: 'stdin' } as const;
/** After SIGTERM, how long the child may take to stop before it exits anyway (its own grace is shorter). */
export const ORPHAN_EXIT_DEADLINE_MS = 30_000;

export interface ParentWatchProcess {
  stdin: NodeJS.ReadableStream;
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  /** Asks this process to stop the way a signal would (process.kill(process.pid, 'SIGTERM')). */
  terminate(): void;
  /** The last resort once the deadline has passed. */
  exit(code: number): void;
}

/**
 * Watches stdin for EOF when `env` asks for it; returns whether it does. Called once, by the `mpg`
 * entry point, so every command honours it without knowing about it.
 */
export function exitWithParent(
  env: Readonly<Record<string, string | undefined>>,
  own: ParentWatchProcess,
  deadlineMs = ORPHAN_EXIT_DEADLINE_MS,
): boolean {
  if (env[EXIT_WITH_PARENT_VARIABLE] !== 'stdin') return false;
  let gone = false;
  const parentGone = () => {
    if (gone) return;
    gone = true;
    // Nobody reads our output any more: a write to the broken pipe must not crash the orderly
    // stop below (EPIPE would be thrown as an unhandled 'error').
    own.stdout.on('error', () => {});
    own.stderr.on('error', () => {});
    setTimeout(() => own.exit(1), deadlineMs).unref();
    own.terminate();
  };
  own.stdin.on('end', parentGone);
  own.stdin.on('close', parentGone);
  own.stdin.on('error', parentGone);
  // Whatever arrives is discarded; reading keeps the stream flowing so EOF is seen. The stream is
  // unreferenced so a command that has finished is not kept alive by the watch.
  own.stdin.resume();
  (own.stdin as { unref?: () => void }).unref?.();
  return true;
}
