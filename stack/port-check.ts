// Before `mpg stack` starts anything: is every port it will listen on free? A busy port found
// after the model servers have loaded would end in a raw EADDRINUSE stack trace; found first, it
// is one sentence naming the flag and the variable that move it.
import { createServer } from 'node:net';
import { envName, flagName } from '../common/index.js';

export interface PlannedPort {
  /** The option that sets it, as declared in stackOptions (e.g. 'port'). */
  option: string;
  /** Whose port it is, in the user's words. */
  owner: string;
  host: string;
  port: number;
}

export class PortBusyError extends Error {
  override name = 'PortBusyError';
}

/** Resolves when a listener could bind host:port (it is closed at once), else with the error's code. */
function tryListen(host: string, port: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const probe = createServer();
    probe.once('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
    probe.listen({ host, port, exclusive: true }, () => probe.close(() => resolve(undefined)));
  });
}

/** Throws PortBusyError naming the first planned port that cannot be bound. Port 0 is always free. */
export async function checkPortsFree(ports: readonly PlannedPort[]): Promise<void> {
  const fixed = ports.filter((planned) => planned.port !== 0);
  for (const [index, planned] of fixed.entries()) {
    const clash = fixed.slice(0, index).find((other) => other.port === planned.port);
    if (clash) {
      throw new PortBusyError(
        `${planned.owner} and ${clash.owner} are both set to port ${planned.port}: change ${flagName(planned.option)} (or ${envName(planned.option)})`,
      );
    }
    const code = await tryListen(planned.host, planned.port);
    if (code === undefined) continue;
    const why =
      code === 'EADDRINUSE'
        ? 'is already in use'
        : code === 'EACCES'
          ? 'needs privileges this user lacks'
          : `cannot be listened on (${code})`;
    throw new PortBusyError(
      `${planned.owner}'s port ${planned.host}:${planned.port} ${why}: choose another with ${flagName(planned.option)} N or ${envName(planned.option)}=N (0 picks a free port), or stop what holds it`,
    );
  }
}
