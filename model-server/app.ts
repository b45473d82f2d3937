// Builds the model server: a Fastify app that answers /healthz at once and /readyz once the
// model is loaded and warmed. Only the command listens and handles signals.
import Fastify, { LogController } from 'fastify';
import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import { readFile } from 'node:fs/promises';
import sharp from 'sharp';
import type { Registry } from 'prom-client';
import { imagenetLabels } from '../model/index.js';
import { ImageClassifier } from './classifier.js';
import type { ModelServerConfig } from './config.js';
import { installErrorHandling } from './error-handler.js';
import { createModelServerMetrics } from './metrics.js';
import type { ModelServerMetrics } from './metrics.js';
import { loadModelSession } from './model-session.js';
import { defaultCacheDirectory } from './optimized-model.js';
import { IMAGE_ELEMENTS } from './preprocess.js';
import type { ServerState } from './routes.js';
import { IMAGE_CONTENT_TYPES, registerRoutes } from './routes.js';
import { modelServerErrors } from './errors.js';

export interface ModelServer {
  app: FastifyInstance;
  metrics: ModelServerMetrics;
  /** Loads, checks and warms the model; /readyz answers 200 after it resolves. */
  load(modelPath: string): Promise<ImageClassifier>;
  /** Stops accepting, finishes requests in flight, releases the model. */
  close(): Promise<void>;
}

export interface ModelServerDependencies {
  registry?: Registry;
  /** A pino logger, or Fastify logger options. */
  logger?: FastifyBaseLogger | boolean | Record<string, unknown>;
}

// libvips would otherwise start one thread per core for each image on top of libuv's pool, and
// cache decoded images that a server which never sees the same bytes twice cannot reuse.
function configureSharp(): void {
  sharp.concurrency(1);
  sharp.cache(false);
}

async function readLabels(path: string): Promise<string[]> {
  const parsed: unknown = JSON.parse(await readFile(path, 'utf8'));
  if (!Array.isArray(parsed) || !parsed.every((label) => typeof label === 'string')) {
    throw new Error(`${path}: labels must be a JSON array of strings`);
  }
  return parsed;
}

export function createModelServer(config: ModelServerConfig, dependencies: ModelServerDependencies = {}): ModelServer {
  configureSharp();
  const metrics = createModelServerMetrics(dependencies.registry, config.maxBatch);
  const logger = dependencies.logger ?? { level: config.logLevel, base: { component: 'model-server', enclave: config.enclave } };
  const loggerOptions = typeof logger === 'object' && 'child' in logger ? { loggerInstance: logger } : { logger };
  const app = Fastify({
    ...loggerOptions,
    bodyLimit: config.bodyLimit,
    requestTimeout: config.requestTimeoutMs,
    // One line per request is written by our onResponse hook, with no query or headers in it.
    logController: new LogController({ disableRequestLogging: true }),
    return503OnClosing: false,
  } as Parameters<typeof Fastify>[0]) as unknown as FastifyInstance;
  const state: ServerState = { classifier: undefined, closing: false };

  // Fastify parses text/plain by default; the model server takes JSON and images only.
  app.removeContentTypeParser('text/plain');
  app.addContentTypeParser(IMAGE_CONTENT_TYPES, { parseAs: 'buffer' }, (_request, body, done) => done(null, body));
  installErrorHandling(app, metrics);

  app.addHook('onRequest', async (_request, reply) => {
    if (state.closing) {
      reply.header('connection', 'close');
      throw modelServerErrors.MS_SHUTTING_DOWN(undefined, { headers: { 'retry-after': '1' } });
    }
  });
  app.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url ?? 'unmatched';
    const labels = { route, status: String(reply.statusCode) };
    metrics.requests.inc(labels);
    metrics.requestDuration.observe(labels, reply.elapsedTime / 1000);
    // Method, route and status only: never the body, the query or the client's headers.
    request.log.debug({ route, statusCode: reply.statusCode, ms: Math.round(reply.elapsedTime) }, 'request done');
  });
  registerRoutes(app, config, metrics, state);

  return {
    app,
    metrics,
    async load(modelPath: string) {
      const labels = config.labels ? await readLabels(config.labels) : undefined;
      const session = await loadModelSession({
        path: modelPath,
        name: config.modelName,
        threads: config.threads,
        labels,
        defaultLabels: imagenetLabels,
        cacheDirectory: config.modelCache === 'off' ? undefined : (config.modelCache ?? defaultCacheDirectory(modelPath)),
        log: (fields, line) => app.log.warn(fields, line),
      });
      if (config.warmup) {
        // The first run allocates onnxruntime's arena and picks kernels; pay for it before ready.
        await session.run(new Float32Array(IMAGE_ELEMENTS), 1);
      }
      state.classifier = new ImageClassifier(
        session,
        {
          maxBatch: config.maxBatch,
          batchWindowMs: config.batchWindowMs,
          maxQueue: config.maxQueue,
          maxPixels: config.maxPixels,
          kernel: config.resizeKernel,
        },
        metrics,
      );
      app.log.info(
        { model: session.name, sha256: session.sha256, classes: session.classes, threads: config.threads, optimizedCache: session.optimizedCache },
        'model ready',
      );
      return state.classifier;
    },
    async close() {
      state.closing = true;
      await app.close();
      await state.classifier?.session.release();
      state.classifier = undefined;
    },
  };
}
