// The enclave: what turns the model server into an enclave (entrypoint, the relays on both sides
// of the vsock channel) and the local emulation of all of it. This door is light: the command
// group loads its subcommands only when one runs.
import type { Command } from '../common/index.js';

export { createRelay, describeTarget, RELAY_CLOSE_GRACE_MS, RELAY_SOCKET_MODE } from './relay.js';
export type { Relay, RelayOptions, RelayStats, RelayTarget } from './relay.js';
export { detectIsolation, EMULATION_WARNING, startEmulatedEnclave } from './emulated-enclave.js';
export type { EmulatedEnclave, EmulatedEnclaveOptions, EnclaveIsolation } from './emulated-enclave.js';
export { MPG_LAUNCHER } from './entrypoint.js';
export { DEBUG_MODE_REFUSAL, EnclaveConfigurationError, startNitroEnclave } from './nitro-enclave.js';
export type { NitroEnclave, NitroEnclaveOptions } from './nitro-enclave.js';
export { attestationPcrsOption, nitroEnclaveOptions, nitroEnclaveSettings } from './nitro-options.js';
export { startVsockRelay } from './vsock-relay.js';
export type { VsockRelay, VsockRelayOptions } from './vsock-relay.js';
export { createNitroCli, DEFAULT_NITRO_CLI, NitroCliError, parseNitroError } from './nitro-cli.js';
export type {
  BuildResult,
  DescribeResult,
  EnclaveFlags,
  Measurements,
  NitroCli,
  NitroCliErrorCode,
  RunResult,
  TerminateResult,
} from './nitro-cli.js';

export async function loadEnclaveCommand(): Promise<Command> {
  return (await import('./command.js')).enclaveCommand;
}
