// `mpg stack` keeps its parts running, as systemd does on an EC2 parent: a part that dies (the
// public model server, the enclave, whose entrypoint exits when its model server or relay dies,
// or the gateway) is restarted after a backoff (restart-backoff.ts) while every other part keeps
// serving. Meanwhile the gateway answers for what is down: a coded 503 for the secure route once
// its health check has ejected the enclave, and the public route through its own member. A
// restarted enclave has a new boot key and a new emulated root; the gateway's health checks see a
// different process, take it out of rotation and attest it again before sending it anything.
import type { RestartPolicy } from './restart-backoff.js';
import { DEFAULT_RESTART_POLICY, RestartBackoff } from './restart-backoff.js';

/** What the supervisor needs of a running part. */
export interface SupervisedProcess {
  readonly exited: Promise<number | string>;
  stop(): Promise<void>;
}

export interface SupervisedPart<P extends SupervisedProcess> {
  current: P;
  /** Starts the part again; resolves once it is ready (throws if it is not). */
  restart(): Promise<P>;
  /** Told of each new process, so the stack's view of the part is current. */
  replaced(next: P): void;
}

export type SupervisionEvent =
  | {
      event: 'died';
      part: string;
      code: number | string;
      deathsInARow: number;
      restartInMs: number;
      crashLoop: boolean;
    }
  | {
      event: 'restart-failed';
      part: string;
      error: Error;
      deathsInARow: number;
      restartInMs: number;
      crashLoop: boolean;
    }
  | { event: 'restarted'; part: string; pid: number | undefined; downForMs: number };

export interface SupervisionOptions {
  policy?: Readonly<RestartPolicy>;
  /** Every death and restart is reported here (the stack logs them; a crash loop at error level). */
  report(event: SupervisionEvent): void;
  /** Time since an arbitrary origin, in ms; performance.now() unless a test passes its own. */
  now?: () => number;
}

export interface StackSupervisor {
  /** Ends supervision: no restart begins after this; one under way is waited for and its process stopped. */
  stop(): Promise<void>;
}

type Running = SupervisedProcess & { readonly pid?: number };

export function superviseStack<Parts extends Record<string, Running>>(
  parts: { [Name in keyof Parts]: SupervisedPart<Parts[Name]> },
  options: SupervisionOptions,
): StackSupervisor {
  const now = options.now ?? (() => performance.now());
  const stopped = new AbortController();
  // One promise for "supervision ended", raced against every wait: no listener per wait piles up.
  const ended = new Promise<undefined>((resolve) =>
    stopped.signal.addEventListener('abort', () => resolve(undefined), { once: true }),
  );
  const sleep = async (ms: number) => {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([new Promise((resolve) => (timer = setTimeout(resolve, ms))), ended]);
    clearTimeout(timer);
  };

  const keepRunning = async <P extends Running>(name: string, part: SupervisedPart<P>) => {
    const backoff = new RestartBackoff(options.policy ?? DEFAULT_RESTART_POLICY);
    let upSince = now();
    for (;;) {
      const code = await Promise.race([part.current.exited, ended]);
      if (stopped.signal.aborted || code === undefined) return;
      const diedAt = now();
      // Whatever the dead process left (an enclave's process group, its parent relay) goes first.
      await part.current.stop();
      let decision = backoff.died(diedAt - upSince);
      options.report({
        event: 'died',
        part: name,
        code,
        deathsInARow: decision.deathsInARow,
        restartInMs: decision.delayMs,
        crashLoop: decision.crashLoop,
      });
      for (;;) {
        await sleep(decision.delayMs);
        if (stopped.signal.aborted) return;
        try {
          const next = await part.restart();
          part.current = next;
          part.replaced(next);
          if (stopped.signal.aborted) {
            // Stopping began while it started: the stack's stop() stops the part it now knows.
            return;
          }
          upSince = now();
          options.report({ event: 'restarted', part: name, pid: next.pid, downForMs: Math.round(upSince - diedAt) });
          break;
        } catch (error) {
          if (stopped.signal.aborted) return;
          decision = backoff.died(0);
          options.report({
            event: 'restart-failed',
            part: name,
            error: error as Error,
            deathsInARow: decision.deathsInARow,
            restartInMs: decision.delayMs,
            crashLoop: decision.crashLoop,
          });
        }
      }
    }
  };

  const running = (Object.keys(parts) as (keyof Parts & string)[]).map((name) => keepRunning(name, parts[name]));
  return {
    async stop() {
      stopped.abort();
      await Promise.all(running);
    },
  };
}
