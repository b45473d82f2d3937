// A real model server in enclave mode, in this process: the emulated NSM as its attestation
// source, its OHTTP key made at boot with the key id given. Several of them can share one NSM
// (one root, one set of measurements), as one Nitro enclave image restarted on AWS keeps AWS's
// root and its PCRs while its key changes: that is what the SDK's retry-on-restart is about.
import type { TestContext } from 'node:test';
import type { EmulatedNsmSource, PcrMeasurements } from '../../attestation/index.js';
import { createEmulatedNsmSource, emulatedImageMeasurements } from '../../attestation/index.js';
import type { ModelServer } from '../../model-server/index.js';
import { loadModelServer } from '../../model-server/index.js';
import { modelServerConfig, testModelPath } from './model-server.js';

export interface EnclaveNsm {
  source: EmulatedNsmSource;
  measurements: PcrMeasurements;
  rootPem: string;
}

/** The emulated NSM measuring this project's image and the test model, as `mpg model-server --enclave emulated` does. */
export async function testEnclaveNsm(): Promise<EnclaveNsm> {
  const measurements = emulatedImageMeasurements({ modelPath: await testModelPath() });
  const source = createEmulatedNsmSource(measurements);
  return { source, measurements, rootPem: source.nsm.rootCertificatePem };
}

export interface RunningEnclaveModelServer {
  server: ModelServer;
  url: string;
}

export async function startEnclaveModelServer(
  t: TestContext,
  nsm: EnclaveNsm,
  keyId: number,
): Promise<RunningEnclaveModelServer> {
  const config = modelServerConfig(['--enclave', 'emulated', '--ohttp-key-id', String(keyId), '--no-warmup']);
  const server = await loadModelServer(config, { attestation: nsm.source });
  t.after(() => server.close());
  const url = await server.app.listen({ host: '127.0.0.1', port: 0 });
  await server.load(await testModelPath());
  return { server, url };
}
