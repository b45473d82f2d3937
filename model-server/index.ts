// The model server: one program, run as the public container and, unchanged, inside the enclave.
export { modelServerCommand } from './command.js';
export { createModelServer } from './app.js';
export type { ModelServer, ModelServerDependencies } from './app.js';
export { modelServerOptions, parseModelServerConfig } from './config.js';
export type { ModelServerConfig } from './config.js';
export { modelServerErrors } from './errors.js';
export { transformGeometry, toNormalisedChw, preprocessImage, IMAGENET_MEAN, IMAGENET_STD, CROP_SIZE } from './preprocess.js';
export { InferenceBatcher } from './batcher.js';
