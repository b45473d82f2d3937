// The model server's options: declared once, parsed once at start into a frozen object.
import { availableParallelism } from 'node:os';
import type { OptionsOf } from '../common/index.js';
import { OptionError, choice, integer, parseCommandLine, text, toggle } from '../common/index.js';
import { DEFAULT_NSM_HELPER } from '../attestation/index.js';
import type { ModelSessionOptions } from './model-session.js';
import type { ClassifierOptions } from './classifier.js';
import { dirname, join } from 'node:path';

export const DEFAULT_PORT = 8081;
export const DEFAULT_MAX_BATCH = 8; // images per onnxruntime run; see README "Dynamic batching"
export const DEFAULT_BATCH_WINDOW_MS = 2;
export const DEFAULT_MAX_QUEUE = 64; // images admitted but not yet answered
export const DEFAULT_MAX_IMAGES_PER_REQUEST = 32;
export const DEFAULT_BODY_LIMIT_BYTES = 16 * 1024 * 1024; // 16 MiB
export const DEFAULT_MAX_PIXELS = 40_000_000; // 40 Mpx, e.g. 8000x5000
// Decoded bytes (pixels × channels) that decodes in progress may hold: one 40 Mpx RGB image, or a
// few hundred phone-camera thumbnails; a larger image decodes alone. See docs/performance.md.
export const DEFAULT_MAX_DECODE_BYTES = 128 * 1024 * 1024; // 128 MiB
export const DEFAULT_DECODE_SLOTS = 2; // decodes at once, whatever their size
export const DEFAULT_SESSIONS = 1; // see docs/performance.md: the pool's gain did not pay for its memory
export const DEFAULT_TOPK = 5;
export const MAX_TOPK = 100;
export const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;

export const modelServerOptions = {
  host: text({
    description: 'Address to listen on (0.0.0.0 in a container)',
    default: '127.0.0.1',
    placeholder: 'HOST',
  }),
  port: integer({
    description: 'TCP port; 0 picks a free port and prints it',
    default: DEFAULT_PORT,
    min: 0,
    max: 65535,
  }),
  socket: text({ description: 'Listen on this Unix socket path instead of TCP', placeholder: 'PATH' }),
  model: text({
    description:
      'ONNX image classifier, input [N,3,224,224] float32; default: models/resnet18.onnx, generated if missing',
    placeholder: 'PATH',
  }),
  modelName: text({
    description: 'Name reported in answers and /v1/model; default: the file name without .onnx',
    placeholder: 'NAME',
  }),
  modelCache: text({
    description:
      'Directory for onnxruntime-optimised copies of the model, keyed by file, onnxruntime version and CPU; "off" disables it; default: .optimized/ beside the model',
    placeholder: 'DIR|off',
  }),
  labels: text({
    description: 'JSON array of class names; default: the ImageNet classes when the model has 1000 outputs',
    placeholder: 'PATH',
  }),
  threads: integer({
    description: 'onnxruntime intra-op threads per session; default: the cores divided among the sessions',
    min: 1,
    max: 256,
    unit: 'threads',
  }),
  sessions: integer({
    description:
      'onnxruntime sessions, each in an inference worker of its own, runs going to whichever is free; each loads the model',
    default: DEFAULT_SESSIONS,
    min: 1,
    max: 64,
    unit: 'sessions',
  }),
  maxBatch: integer({
    description: 'Most images one onnxruntime run takes; 1 turns dynamic batching off',
    default: DEFAULT_MAX_BATCH,
    min: 1,
    max: 256,
    unit: 'images',
  }),
  batchWindowMs: integer({
    description: 'How long a partial batch waits for more images',
    default: DEFAULT_BATCH_WINDOW_MS,
    min: 0,
    max: 1000,
    unit: 'ms',
  }),
  maxQueue: integer({
    description: 'Images admitted but not yet answered; beyond it requests get 503 with Retry-After',
    default: DEFAULT_MAX_QUEUE,
    min: 1,
    max: 100_000,
    unit: 'images',
  }),
  maxImages: integer({
    description: 'Most images in one request',
    default: DEFAULT_MAX_IMAGES_PER_REQUEST,
    min: 1,
    max: 1024,
    unit: 'images',
  }),
  maxPixels: integer({
    description: 'Largest decoded image (width x height) accepted',
    default: DEFAULT_MAX_PIXELS,
    min: 1,
    unit: 'pixels',
  }),
  maxDecodeBytes: integer({
    description:
      'Decoded bytes (width x height x channels) that images being decoded may hold at once; further images wait their turn, one larger than this decodes alone',
    default: DEFAULT_MAX_DECODE_BYTES,
    min: 1024 * 1024,
    unit: 'bytes',
  }),
  decodeSlots: integer({
    description: "Images decoded at once (on libuv's thread pool), whatever their size",
    default: DEFAULT_DECODE_SLOTS,
    min: 1,
    max: 64,
    unit: 'images',
  }),
  bodyLimit: integer({
    description: 'Largest request body',
    default: DEFAULT_BODY_LIMIT_BYTES,
    min: 1024,
    unit: 'bytes',
  }),
  requestTimeoutMs: integer({
    description: 'Whole-request deadline, receiving the body included',
    default: DEFAULT_REQUEST_TIMEOUT_MS,
    min: 100,
    unit: 'ms',
  }),
  resizeKernel: choice({
    description: 'Resize kernel for the shorter-side-to-256 step',
    choices: ['linear', 'cubic', 'lanczos3', 'nearest'] as const,
    default: 'linear',
  }),
  logLevel: choice({
    description: 'Log level',
    choices: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const,
    default: 'info',
  }),
  enclave: choice({
    description: 'Where this server runs; reported by /v1/model and in logs',
    choices: ['none', 'emulated', 'nitro'] as const,
    default: 'none',
  }),
  nsmHelper: text({
    description: 'nitro: the helper that asks /dev/nsm for attestation documents (built into the enclave image)',
    default: DEFAULT_NSM_HELPER,
    placeholder: 'PATH',
  }),
  ohttpKeyId: integer({
    description:
      'enclave: the key id of the OHTTP key made at boot (clients address sealed requests by it); default: random',
    min: 0,
    max: 255,
  }),
  emulatedNsmRootFile: text({
    description:
      "emulated: write the emulated NSM's throwaway root certificate (PEM) here, for a gateway told to trust it insecurely",
    placeholder: 'PATH',
  }),
  spinWait: toggle({
    description:
      "Let onnxruntime's threads spin while they wait for work: a little lower latency on an idle machine, CPU taken from image decoding under load",
    default: false,
  }),
  warmup: toggle({ description: 'Run one inference before /readyz says ready; --no-warmup skips it', default: true }),
};

export type ModelServerConfig = OptionsOf<typeof modelServerOptions>;

export interface ParsedModelServerCommandLine {
  config: ModelServerConfig;
  help: boolean;
}

/** Parses flags and environment once; throws OptionError naming the option at fault. */
export function parseModelServerConfig(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
): ParsedModelServerCommandLine {
  const { options, help } = parseCommandLine(modelServerOptions, argv, env);
  // A request with more images than the queue holds could never be admitted.
  if (options.maxImages > options.maxQueue) {
    throw new OptionError(
      `--max-images (${options.maxImages} images) must not exceed --max-queue (${options.maxQueue} images)`,
    );
  }
  // Only an enclave makes an OHTTP key; a key id elsewhere would be a setting that does nothing.
  if (options.ohttpKeyId !== undefined && options.enclave === 'none') {
    throw new OptionError("--ohttp-key-id applies to an enclave's model server (--enclave emulated or nitro)");
  }
  if (options.socket && argv.some((arg) => arg === '--port' || arg.startsWith('--port='))) {
    throw new OptionError('--socket and --port are exclusive: listen on a Unix socket or on TCP, not both');
  }
  return { config: options, help };
}

export function defaultCacheDirectory(modelPath: string): string {
  return join(dirname(modelPath), '.optimized');
}

/** --threads when given; otherwise the cores shared out among the sessions, at least one each. */
export function threadsPerSession(config: ModelServerConfig): number {
  return config.threads ?? Math.max(1, Math.floor(availableParallelism() / config.sessions));
}

/** What the classifier needs to know, from the parsed configuration. */
export function classifierOptions(config: ModelServerConfig): ClassifierOptions {
  return {
    maxBatch: config.maxBatch,
    batchWindowMs: config.batchWindowMs,
    maxQueue: config.maxQueue,
    maxPixels: config.maxPixels,
    kernel: config.resizeKernel,
    maxDecodeBytes: config.maxDecodeBytes,
    decodeSlots: config.decodeSlots,
  };
}

/** What the inference worker needs to know, from the parsed configuration. */
export function inferenceOptions(config: ModelServerConfig, modelPath: string): ModelSessionOptions {
  return {
    path: modelPath,
    name: config.modelName,
    threads: threadsPerSession(config),
    cacheDirectory: config.modelCache === 'off' ? undefined : (config.modelCache ?? defaultCacheDirectory(modelPath)),
    warmup: config.warmup,
    spinWait: config.spinWait,
  };
}
