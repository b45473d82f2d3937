// `mpg loadtest stack-host`: the stack under test, in a process of its own, so the load generator's
// process holds nothing but the generator (in emulation the parent relay runs in whichever process
// starts the enclave; here that is this one, as it is `mpg stack` for users). It prints one JSON
// line per part as soon as its process exists, then one when the stack is ready, and stops the
// stack on SIGTERM, SIGINT or when its stdin closes (the harness died).
import type { CommandContext } from '../common/index.js';
import { jsonLineLog } from '../common/index.js';
import type { LaunchedStack } from '../stack/index.js';
import { childEnvironment, launchStack } from '../stack/index.js';
import type { ParsedLoadtest } from './options.js';
import type { ProcessTreeRoot } from '../common/index.js';

export type StackHostLine =
  | { event: 'spawned'; part: string; root: ProcessTreeRoot }
  | {
      event: 'ready';
      gatewayUrl: string;
      publicUrl: string;
      secureSocket: string;
      parts: Record<string, ProcessTreeRoot>;
      enclave:
        | { mode: 'emulated'; isolation: unknown }
        | { mode: 'nitro'; enclaveId: string; memoryMiB: number; cpus: number };
    }
  | { event: 'exited'; part: string; code: number | string | null };

const rootOf = (part: string, pid: number): ProcessTreeRoot => ({
  pid,
  by: part === 'enclave' ? 'group' : 'descendants',
});

export async function runStackHost(parsed: ParsedLoadtest, { stdout, stderr, env }: CommandContext): Promise<number> {
  const say = (line: StackHostLine) => stdout.write(JSON.stringify(line) + '\n');
  const { config, options, nitro } = parsed;
  const childEnv = childEnvironment(env);
  const starting = new AbortController();
  let stack: LaunchedStack | undefined;
  let finish: (code: number) => void = () => {};
  const finished = new Promise<number>((resolve) => (finish = resolve));
  let stopping = false;
  const stop = (code: number) => {
    if (stopping) return;
    stopping = true;
    starting.abort();
    void (stack?.stop() ?? Promise.resolve()).then(() => finish(code));
  };
  process.on('SIGINT', () => stop(0)).on('SIGTERM', () => stop(0));
  process.stdin
    .on('end', () => stop(0))
    .on('error', () => stop(0))
    .resume();

  say({ event: 'spawned', part: 'parent relay', root: { pid: process.pid, by: 'process' } });
  try {
    stack = await launchStack({
      host: '127.0.0.1',
      port: 0,
      publicPort: 0,
      threads: config.threads,
      publicCpus: options.serverCpus,
      gatewayCpus: options.gatewayCpus,
      enclave: nitro
        ? { mode: 'nitro', nitro: { ...nitro, env: childEnv }, attestationPcrs: options.attestationPcrs }
        : { mode: 'emulated', cpus: config.cpus.enclave ?? '0', threads: config.threads },
      env: childEnv,
      log: jsonLineLog(stderr, { component: 'loadtest-stack' }),
      signal: starting.signal,
      onSpawn: (part, pid) => say({ event: 'spawned', part, root: rootOf(part, pid) }),
    });
  } catch (error) {
    if (stopping) return finished;
    stderr.write(`mpg loadtest stack-host: ${(error as Error).message}\n`);
    return 1;
  }
  const { enclave } = stack;
  const parts: Record<string, ProcessTreeRoot> = {
    'public model server': rootOf('public model server', stack.publicServer.pid),
    gateway: rootOf('gateway', stack.gateway.pid),
    'parent relay': { pid: process.pid, by: 'process' },
  };
  if (enclave.mode === 'emulated') parts.enclave = rootOf('enclave', enclave.pid);
  say({
    event: 'ready',
    gatewayUrl: stack.gatewayUrl,
    publicUrl: stack.publicUrl,
    secureSocket: stack.secureSocket,
    parts,
    enclave:
      enclave.mode === 'emulated'
        ? { mode: 'emulated', isolation: enclave.isolation }
        : {
            mode: 'nitro',
            enclaveId: enclave.started.EnclaveID,
            memoryMiB: enclave.started.MemoryMiB,
            cpus: enclave.started.NumberOfCPUs,
          },
  });
  void stack.unexpectedExit.then(({ part, code }) => {
    say({ event: 'exited', part, code });
    stop(1);
  });
  return finished;
}
