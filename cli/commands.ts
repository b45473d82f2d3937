// Every `mpg` command: each component contributes its commands through its index, loaded only when
// its command runs (or when docs/configuration.md is generated from their option declarations).
import { commandGroup, lazyCommand } from '../common/index.js';

export const mpgCommand = commandGroup('', 'mixed-privacy-gateway: one model, a public and an enclave route.', [
  lazyCommand(
    'model-server',
    'Serve the image classifier over HTTP (the public container and the enclave run this)',
    async () => (await import('../model-server/index.js')).modelServerCommand,
  ),
  lazyCommand(
    'gateway',
    'Route public and secure inference traffic (the parent instance runs this)',
    async () => (await import('../gateway/index.js')).gatewayCommand,
  ),
  lazyCommand('enclave', 'Run the enclave: its relays, its entrypoint and its local emulation', async () =>
    (await import('../enclave/index.js')).loadEnclaveCommand(),
  ),
  lazyCommand(
    'stack',
    'Run the whole stack on this machine: gateway, public model server, emulated enclave',
    async () => (await import('../stack/index.js')).stackCommand,
  ),
  lazyCommand(
    'attestation',
    'Verify enclave attestation documents against the pinned AWS root and measurements',
    async () => (await import('../attestation/index.js')).loadAttestationCommand(),
  ),
  lazyCommand('client', 'Classify images end to end encrypted to a verified enclave (the client SDK)', async () =>
    (await import('../client/index.js')).loadClientCommand(),
  ),
  lazyCommand(
    'model',
    'Create or fetch the ONNX model the model server loads',
    async () => (await import('../model/index.js')).modelCommand,
  ),
  lazyCommand(
    'loadtest',
    'Measure what privacy costs: startup, channel, latency, mixed traffic, memory; reports',
    async () => (await import('../loadtest/index.js')).loadLoadtestCommand(),
  ),
]);
