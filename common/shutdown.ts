// What every long-running `mpg` command does on SIGTERM or SIGINT: stop accepting, let the work in
// flight finish, and give up after a grace period. Resolves to the exit code.

export interface ShutdownLog {
  info(fields: Record<string, unknown>, message: string): void;
  error(fields: Record<string, unknown>, message: string): void;
}

export const SHUTDOWN_GRACE_MS = 10_000;

export interface Shutdown {
  /** Resolves with the exit code once stopped by a signal or by fail(). */
  stopped: Promise<number>;
  /** Stops as if signalled, but exits non-zero so a supervisor restarts the process. */
  fail: (code?: number) => void;
}

export function stopOnSignals(close: () => Promise<void>, log: ShutdownLog, graceMs = SHUTDOWN_GRACE_MS): Shutdown {
  let stopping = false;
  let finish: (code: number) => void = () => {};
  const stopped = new Promise<number>((resolve) => (finish = resolve));
  const stop = (reason: string, code: number) => {
    // A second Ctrl-C must not kill the process mid-stop and orphan what it started: the grace
    // period already bounds how long stopping takes.
    if (stopping) {
      log.info({ reason }, 'already stopping');
      return;
    }
    stopping = true;
    log.info({ reason }, 'stopping: finishing requests in flight');
    const force = setTimeout(() => {
      log.error({ graceMs }, 'requests still in flight after the grace period; exiting');
      finish(1);
    }, graceMs);
    force.unref();
    close().then(
      () => {
        clearTimeout(force);
        finish(code);
      },
      (error: unknown) => {
        log.error({ err: error }, 'error while stopping');
        finish(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM', 0));
  process.on('SIGINT', () => stop('SIGINT', 0));
  return { stopped, fail: (code = 1) => stop('fatal error', code) };
}
