// The enclave on a Nitro parent, as one object with the emulated enclave's shape:
//
//   gateway ──► parent relay (socat, this process supervises it) ══vsock══► enclave: socat ──► entrypoint relay ──► model server
//               on socketPath, 0600                                        (docker/enclave-entrypoint.sh)
//
// start: check the EIF and the memory (4x its size) before asking nitro-cli for anything, refuse a
// debug-mode enclave unless explicitly allowed (its memory is readable from the parent and its
// attestation carries all-zero PCRs), run-enclave, start the parent relay (or use one a systemd
// unit runs), then wait until the model server answers /readyz through the relay and says it is
// in a Nitro enclave. stop: the relay first (no new secure connection), then terminate-enclave.
import { stat } from 'node:fs/promises';
import type { Log } from '../common/index.js';
import { silentLog } from '../common/index.js';
import type { NitroCli, RunResult } from './nitro-cli.js';
import { reportedEnclaveMode, waitUntilReady } from './readiness.js';
import type { VsockRelay } from './vsock-relay.js';
import { startVsockRelay } from './vsock-relay.js';

/** Enclave memory must be at least this many times the EIF's size: the EIF is unpacked into it (kernel, initramfs) and the model server needs room to run. */
export const EIF_MEMORY_FACTOR = 4;
/** The vsock port the enclave's socat listens on (docker/Dockerfile sets MPG_VSOCK_PORT in the enclave target). */
export const DEFAULT_VSOCK_PORT = 5005;
/** CIDs 0-2 are the hypervisor, the local loopback and the parent; 3 is reserved. */
export const MIN_ENCLAVE_CID = 4;
export const MAX_ENCLAVE_CID = 2 ** 32 - 2;
const MIB = 1024 * 1024;
const MONITOR_INTERVAL_MS = 5_000;

/** A mistake of the caller's (exit 2) rather than of nitro-cli or the machine (exit 1). */
export class EnclaveConfigurationError extends Error {
  override name = 'EnclaveConfigurationError';
}

export const DEBUG_MODE_REFUSAL =
  'a debug-mode enclave must not serve secure traffic: its console is readable from the parent and its attestation carries all-zero PCRs; pass --allow-debug-mode to run one anyway (development only)';

/** The memory an enclave needs for an EIF of `eifBytes`, in whole MiB. */
export function minimumEnclaveMemoryMiB(eifBytes: number): number {
  return Math.ceil((EIF_MEMORY_FACTOR * eifBytes) / MIB);
}

/** Why `memoryMiB` is too little for an EIF of `eifBytes`, or undefined when it is enough. */
export function enclaveMemoryProblem(eifBytes: number, memoryMiB: number, eif: string): string | undefined {
  const minimum = minimumEnclaveMemoryMiB(eifBytes);
  if (memoryMiB >= minimum) return undefined;
  const eifMiB = (eifBytes / MIB).toFixed(1);
  return `--memory-mib ${memoryMiB} is too little for ${eif} (${eifBytes} bytes, ${eifMiB} MiB): enclave memory must be at least ${EIF_MEMORY_FACTOR} times the EIF's size, so give --memory-mib ${minimum} or more`;
}

/** The EIF's size; an EnclaveConfigurationError when there is no such file. */
export async function eifSize(eif: string): Promise<number> {
  try {
    const info = await stat(eif);
    if (!info.isFile()) throw Object.assign(new Error('not a file'), { code: 'EISDIR' });
    return info.size;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const why =
      code === 'ENOENT'
        ? 'there is no such file; build it with "mpg enclave build"'
        : code === 'EISDIR'
          ? 'it is not a file'
          : (code ?? (error as Error).message);
    throw new EnclaveConfigurationError(`--eif ${eif}: ${why}`, { cause: error });
  }
}

export interface NitroEnclaveOptions {
  eif: string;
  memoryMiB: number;
  cpuCount: number;
  enclaveCid: number;
  vsockPort: number;
  debugMode: boolean;
  allowDebugMode: boolean;
  /** The gateway's secure upstream: the parent relay's Unix socket. */
  socketPath: string;
  /** "start": this process runs and supervises socat; "external": a systemd unit runs it. */
  parentRelay: 'start' | 'external';
  nitroCli: NitroCli;
  socat?: string;
  readyTimeoutMs: number;
  env?: Readonly<Record<string, string | undefined>>;
  log?: Log;
}

export interface NitroEnclave {
  readonly mode: 'nitro';
  readonly socketPath: string;
  /** What nitro-cli run-enclave printed. */
  readonly started: RunResult;
  /** Resolves once the model server answers /readyz through the relay and reports "nitro"; rejects otherwise. */
  readonly ready: Promise<void>;
  /** Resolves with a reason when the enclave is no longer running (found by describe-enclaves). */
  readonly exited: Promise<string>;
  relayRestarts(): number;
  /** Stops the parent relay, then terminates the enclave. */
  stop(): Promise<void>;
}

export async function startNitroEnclave(options: NitroEnclaveOptions): Promise<NitroEnclave> {
  const log = options.log ?? silentLog;
  const bytes = await eifSize(options.eif);
  const problem = enclaveMemoryProblem(bytes, options.memoryMiB, options.eif);
  if (problem) throw new EnclaveConfigurationError(problem);
  if (options.debugMode && !options.allowDebugMode) throw new EnclaveConfigurationError(DEBUG_MODE_REFUSAL);
  if (options.debugMode) log.warn({}, `debug mode allowed: ${DEBUG_MODE_REFUSAL.split(';')[0]}`);

  const started = await options.nitroCli.runEnclave({
    eifPath: options.eif,
    cpuCount: options.cpuCount,
    memoryMiB: options.memoryMiB,
    enclaveCid: options.enclaveCid,
    debugMode: options.debugMode,
  });
  log.info(
    { enclaveId: started.EnclaveID, cid: started.EnclaveCID, cpus: started.NumberOfCPUs, memoryMiB: started.MemoryMiB },
    'nitro enclave started',
  );

  const terminate = async () => {
    try {
      await options.nitroCli.terminateEnclave({ enclaveId: started.EnclaveID });
      log.info({ enclaveId: started.EnclaveID }, 'nitro enclave terminated');
    } catch (error) {
      log.error(
        { err: error, enclaveId: started.EnclaveID },
        'the enclave could not be terminated: check "mpg enclave status --mode nitro"',
      );
    }
  };

  let relay: VsockRelay | undefined;
  if (options.parentRelay === 'start') {
    try {
      relay = await startVsockRelay({
        socketPath: options.socketPath,
        target: { vsock: { cid: started.EnclaveCID, port: options.vsockPort } },
        ...(options.socat === undefined ? {} : { socat: options.socat }),
        ...(options.env === undefined ? {} : { env: options.env }),
        log,
      });
    } catch (error) {
      await terminate();
      throw error;
    }
  }

  // The enclave is gone when describe-enclaves no longer lists it as RUNNING.
  let goneReason: string | undefined;
  let markGone: (reason: string) => void = () => {};
  const exited = new Promise<string>((resolve) => (markGone = resolve));
  let stopping = false;
  const monitor = setInterval(() => {
    void options.nitroCli.describeEnclaves().then(
      (enclaves) => {
        if (stopping || goneReason !== undefined) return;
        const mine = enclaves.find((item) => item.EnclaveID === started.EnclaveID);
        if (mine?.State === 'RUNNING') return;
        goneReason = mine ? `the enclave is ${mine.State}` : 'the enclave is no longer listed by describe-enclaves';
        log.error({ enclaveId: started.EnclaveID }, goneReason);
        markGone(goneReason);
      },
      (error: unknown) => log.warn({ err: error }, 'describe-enclaves failed; will ask again'),
    );
  }, MONITOR_INTERVAL_MS);
  monitor.unref();

  const stopController = new AbortController();
  const ready = (async () => {
    await waitUntilReady(options.socketPath, {
      timeoutMs: options.readyTimeoutMs,
      gone: () => goneReason,
      signal: stopController.signal,
    });
    const reported = await reportedEnclaveMode(options.socketPath);
    if (reported !== 'nitro') {
      throw new Error(
        `the model server behind unix:${options.socketPath} reports enclave "${reported ?? 'unknown'}", not "nitro": that socket is not this enclave's relay`,
      );
    }
    log.info({ socket: options.socketPath, enclaveId: started.EnclaveID }, 'nitro enclave ready');
  })();
  ready.catch(() => {}); // the caller decides whether to wait

  let stopped: Promise<void> | undefined;
  return {
    mode: 'nitro',
    socketPath: options.socketPath,
    started,
    ready,
    exited,
    relayRestarts: () => relay?.restarts() ?? 0,
    stop() {
      stopped ??= (async () => {
        stopping = true;
        stopController.abort();
        clearInterval(monitor);
        await relay?.close();
        await terminate();
      })();
      return stopped;
    },
  };
}
