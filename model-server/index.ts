// The model server: one program, run as the public container and, unchanged, inside the enclave.
// This door is light on purpose: Fastify, sharp and onnxruntime load only when a server is made.
import type { ModelServer, ModelServerDependencies } from './app.js';
import type { ModelServerConfig } from './config.js';
import type * as Preprocessing from './preprocess.js';

export { modelServerCommand } from './command.js';
export type { ModelServer, ModelServerDependencies } from './app.js';
export { modelServerOptions, parseModelServerConfig } from './config.js';
export type { ModelServerConfig } from './config.js';
export { modelServerErrors } from './errors.js';
export { InferenceBatcher, MAX_RUNS_IN_FLIGHT } from './batcher.js';
export { IMAGENET_MEAN, IMAGENET_STD, CROP_SIZE } from './tensor-layout.js';
export { nodeServerCrypto } from './node-server-crypto.js';

/** Loads the model server's modules (Fastify, sharp, onnxruntime's worker) only when asked, then builds it (buildModelServer). */
export async function loadModelServer(
  config: ModelServerConfig,
  dependencies?: ModelServerDependencies,
): Promise<ModelServer> {
  return (await import('./app.js')).buildModelServer(config, dependencies);
}

/** sharp-based preprocessing, for tests and benchmarks that compare against it. */
export async function loadPreprocessing(): Promise<typeof Preprocessing> {
  return import('./preprocess.js');
}
