// The options that start a Nitro enclave, declared once: "mpg enclave run --mode nitro" and
// "mpg stack --enclave nitro" take the same flags (and MPG_ twins).
import type { CommandContext } from '../common/index.js';
import { OptionError, choice, integer, text, toggle } from '../common/index.js';
import { createNitroCli } from './nitro-cli.js';
import { nitroCliOption } from './nitro-commands.js';
import type { NitroEnclaveOptions } from './nitro-enclave.js';
import { DEFAULT_VSOCK_PORT, EIF_MEMORY_FACTOR, MAX_ENCLAVE_CID, MIN_ENCLAVE_CID } from './nitro-enclave.js';
import { DEFAULT_SOCAT } from './vsock-relay.js';

export const nitroEnclaveOptions = {
  eif: text({ description: 'nitro: the enclave image file to run (from "mpg enclave build")', placeholder: 'PATH' }),
  memoryMib: integer({
    description: `nitro: enclave memory, at least ${EIF_MEMORY_FACTOR}x the EIF's size, from the pool in /etc/nitro_enclaves/allocator.yaml`,
    unit: 'MiB',
    min: 64,
  }),
  cpuCount: integer({
    description: 'nitro: vCPUs for the enclave, from the pool in allocator.yaml',
    default: 2,
    min: 1,
    max: 1024,
  }),
  enclaveCid: integer({
    description: "nitro: the enclave's vsock context ID, which the parent relay connects to",
    default: 16,
    min: MIN_ENCLAVE_CID,
    max: MAX_ENCLAVE_CID,
  }),
  vsockPort: integer({
    description: "nitro: the enclave's vsock port (MPG_VSOCK_PORT in the enclave image)",
    default: DEFAULT_VSOCK_PORT,
    min: 1,
    max: 2 ** 32 - 1,
  }),
  debugMode: toggle({
    description:
      'nitro: start in debug mode (console readable from the parent, all-zero PCRs); refused without --allow-debug-mode',
  }),
  allowDebugMode: toggle({
    description: 'nitro: let a debug-mode enclave serve the secure route. Development only: it is not confidential',
  }),
  parentRelay: choice({
    description: 'nitro: "start": run and supervise the parent relay (socat) here; "external": a systemd unit runs it',
    choices: ['start', 'external'] as const,
    default: 'start',
  }),
  readyTimeoutS: integer({
    description: 'nitro: how long to wait for /readyz through the relay before terminating the enclave',
    unit: 's',
    default: 300,
    min: 1,
    max: 3600,
  }),
  socat: text({
    description: 'nitro: the socat executable for the parent relay (>= 1.7.4, for VSOCK)',
    default: DEFAULT_SOCAT,
    placeholder: 'PATH',
  }),
  ...nitroCliOption,
};

/** What the gateway in front of a Nitro enclave pins: for the commands that start both (mpg stack, mpg loadtest). */
export const attestationPcrsOption = {
  attestationPcrs: text({
    description:
      'nitro: the EIF\'s measurements ("mpg enclave build --measurements"); the gateway attests the enclave against them',
    placeholder: 'FILE',
  }),
};

type NitroParsed = {
  eif?: string | undefined;
  memoryMib?: number | undefined;
  cpuCount: number;
  enclaveCid: number;
  vsockPort: number;
  debugMode: boolean;
  allowDebugMode: boolean;
  parentRelay: 'start' | 'external';
  readyTimeoutS: number;
  socat: string;
  nitroCli: string;
};

/** Checks what a Nitro start needs and turns the parsed flags into startNitroEnclave's options. */
export function nitroEnclaveSettings(
  options: NitroParsed,
  socketPath: string,
  env: CommandContext['env'],
): Omit<NitroEnclaveOptions, 'log'> {
  if (!options.eif)
    throw new OptionError('--eif is required with the nitro enclave (build one with "mpg enclave build")');
  if (options.memoryMib === undefined)
    throw new OptionError(
      `--memory-mib is required with the nitro enclave (at least ${EIF_MEMORY_FACTOR}x the EIF's size)`,
    );
  return {
    eif: options.eif,
    memoryMiB: options.memoryMib,
    cpuCount: options.cpuCount,
    enclaveCid: options.enclaveCid,
    vsockPort: options.vsockPort,
    debugMode: options.debugMode,
    allowDebugMode: options.allowDebugMode,
    socketPath,
    parentRelay: options.parentRelay,
    nitroCli: createNitroCli({ binary: options.nitroCli, env }),
    socat: options.socat,
    readyTimeoutMs: options.readyTimeoutS * 1000,
    env,
  };
}
