// `mpg model-server`: parse options once, listen, load the model, and stop cleanly on a signal.
//
// Start-up is arranged so that the slow parts overlap: the inference worker starts first and
// loads onnxruntime and the model on its own thread while this thread imports Fastify and sharp
// and starts listening (/healthz answers from then on; /readyz once the model is warm).
import { formatOptionsHelp, optionCommand, stopOnSignals } from '../common/index.js';
import { DEFAULT_MODEL_PATH, ensureModel } from '../model/index.js';
import { inferenceOptions, modelServerOptions, parseModelServerConfig } from './config.js';
import { startInferencePool } from './inference-host.js';
import type { ModelServerConfig } from './config.js';
import type { NsmSource } from '../attestation/index.js';
import { rename, writeFile } from 'node:fs/promises';

const usage = () =>
  [
    'Usage: mpg model-server [options]',
    '',
    'Serves an ONNX image classifier (ResNet18 by default) over HTTP: POST /predict,',
    'GET /healthz, /readyz, /v1/model, /metrics. Every option has an MPG_ environment twin.',
    '',
    'Options:',
    formatOptionsHelp(modelServerOptions),
  ].join('\n');

/**
 * An enclave's NSM: the real one through the helper on Nitro; on the emulation, an emulated NSM
 * measuring this project's files and the model, its throwaway root written where the gateway,
 * told to trust it insecurely, reads it. None outside an enclave.
 */
async function attestationSource(config: ModelServerConfig, modelPath: string): Promise<NsmSource | undefined> {
  if (config.enclave === 'none') return undefined;
  const { createEmulatedNsmSource, createNitroNsmSource, emulatedImageMeasurements } =
    await import('../attestation/index.js');
  if (config.enclave === 'nitro') return createNitroNsmSource(config.nsmHelper);
  const source = createEmulatedNsmSource(emulatedImageMeasurements({ modelPath }));
  if (config.emulatedNsmRootFile) {
    const temporary = `${config.emulatedNsmRootFile}.${process.pid}.tmp`;
    await writeFile(temporary, source.nsm.rootCertificatePem, { mode: 0o644 });
    await rename(temporary, config.emulatedNsmRootFile);
  }
  return source;
}

export const modelServerCommand = optionCommand({
  path: 'model-server',
  options: modelServerOptions,
  summary: 'Serve the image classifier over HTTP (the public container and the enclave run this)',
  usage,
  parse: parseModelServerConfig,
  async run({ config }, { stdout, stderr }) {
    const modelPath = config.model ?? DEFAULT_MODEL_PATH;
    if (!config.model) await ensureModel(modelPath, (line) => stderr.write(`mpg model-server: ${line}\n`));
    const starting = startInferencePool(inferenceOptions(config, modelPath), config.sessions);
    starting.catch(() => {}); // awaited by attach() below

    const { buildModelServer } = await import('./app.js');
    let attestation;
    try {
      attestation = await attestationSource(config, modelPath);
    } catch (error) {
      stderr.write(`mpg model-server: ${(error as Error).message}\n`);
      return 1;
    }
    // Exit non-zero so the supervisor (systemd, Docker, the enclave's init) restarts the server.
    const server = buildModelServer(config, {
      onFatalError: () => shutdown.fail(1),
      ...(attestation ? { attestation } : {}),
    });
    const log = server.app.log;
    if (attestation && 'warning' in attestation)
      log.warn({ rootFile: config.emulatedNsmRootFile }, String(attestation.warning));

    const address = config.socket
      ? await server.app.listen({ path: config.socket })
      : await server.app.listen({ host: config.host, port: config.port });
    stdout.write(
      `model-server listening on ${address}${config.enclave === 'none' ? '' : ` (enclave: ${config.enclave})`}\n`,
    );

    const shutdown = stopOnSignals(() => server.close(), log);

    try {
      await server.attach(starting);
    } catch (error) {
      log.fatal({ err: error }, 'the model could not be loaded');
      stderr.write(`mpg model-server: ${(error as Error).message}\n`);
      await server.close();
      return 1;
    }
    return shutdown.stopped;
  },
});
