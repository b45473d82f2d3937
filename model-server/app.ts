// Builds the model server: a Fastify app that answers /healthz at once and /readyz once the
// model is loaded and warmed. Only the command listens and handles signals.
import Fastify, { LogController } from 'fastify';
import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import { readFile } from 'node:fs/promises';
import sharp from 'sharp';
import type { Registry } from 'prom-client';
import { statusClass } from '../common/index.js';
import { imagenetLabels } from '../model/index.js';
import { ImageClassifier } from './classifier.js';
import type { ModelServerConfig } from './config.js';
import { installErrorHandling } from './error-handler.js';
import { createModelServerMetrics } from './metrics.js';
import type { ModelServerMetrics } from './metrics.js';
import type { InferenceEngine } from './inference-host.js';
import { startInferencePool } from './inference-host.js';
import { classifierOptions, inferenceOptions } from './config.js';
import type { ServerState } from './routes.js';
import { IMAGE_CONTENT_TYPES, registerRoutes } from './routes.js';
import { modelServerErrors } from './errors.js';
import type { NsmSource } from '../attestation/index.js';
import { answerChallenge } from '../attestation/index.js';
import { registerAttestationRoute } from './attestation-route.js';
import { createEnclaveIdentity } from './enclave-identity.js';
import type { SealedRequestDoor } from './sealed-requests.js';
import { registerSealedRequests } from './sealed-requests.js';

export interface ModelServer {
  app: FastifyInstance;
  metrics: ModelServerMetrics;
  /** Loads, checks and warms the model; /readyz answers 200 after it resolves. */
  load(modelPath: string): Promise<ImageClassifier>;
  /** The same with an inference worker started earlier (see the command: it overlaps start-up). */
  attach(starting: Promise<InferenceEngine>): Promise<ImageClassifier>;
  /** Stops accepting, finishes requests in flight, releases the model. */
  close(): Promise<void>;
}

export interface ModelServerDependencies {
  registry?: Registry;
  /** A pino logger, or Fastify logger options. */
  logger?: FastifyBaseLogger | boolean | Record<string, unknown>;
  /** Called when the server can no longer serve (the inference worker died). */
  onFatalError?: (error: Error) => void;
  /** Where GET /attestation gets documents: the enclave's NSM (real or emulated). No route without it. */
  attestation?: NsmSource;
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

/** The user's labels must match the model; ImageNet's apply to 1000 classes; otherwise "class N". */
function resolveLabels(given: readonly string[] | undefined, classes: number): readonly string[] {
  if (given) {
    if (given.length !== classes)
      throw new Error(`the labels list has ${given.length} names but the model has ${classes} classes`);
    return given;
  }
  if (imagenetLabels.length === classes) return imagenetLabels;
  return Array.from({ length: classes }, (_, index) => `class ${index}`);
}

export function buildModelServer(config: ModelServerConfig, dependencies: ModelServerDependencies = {}): ModelServer {
  configureSharp();
  // The enclave's identity for this boot: one X25519 key, the OHTTP key and the attested key at once.
  const identity = dependencies.attestation ? createEnclaveIdentity(config.ohttpKeyId) : undefined;
  const metrics = createModelServerMetrics(dependencies.registry, config.maxBatch, config.requestTimeoutMs / 1000);
  const logger = dependencies.logger ?? {
    level: config.logLevel,
    base: { component: 'model-server', enclave: config.enclave },
  };
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
  let sealed: SealedRequestDoor | undefined;
  // The inner half of a sealed request logs nothing: its route, status and errors are the client's secret.
  const silent = app.log.child({}, { level: 'silent' });
  app.setChildLoggerFactory((logger, bindings, options, rawRequest) =>
    sealed?.isInner(rawRequest.headers) ? silent : logger.child(bindings, options),
  );

  // Fastify parses text/plain by default; the model server takes JSON and images only.
  app.removeContentTypeParser('text/plain');
  app.addContentTypeParser(IMAGE_CONTENT_TYPES, { parseAs: 'buffer' }, (_request, body, done) => done(null, body));
  installErrorHandling(app, metrics, (request) => sealed?.isInner(request.headers) ?? false);

  app.addHook('onRequest', async (_request, reply) => {
    if (state.closing) {
      reply.header('connection', 'close');
      throw modelServerErrors.MS_SHUTTING_DOWN(undefined, { headers: { 'retry-after': '1' } });
    }
  });
  // While stopping, every answer closes its connection, or an idle keep-alive socket would hold
  // the process open for Fastify's 72 s keep-alive timeout.
  app.addHook('onSend', async (_request, reply) => {
    if (state.closing) reply.header('connection', 'close');
  });
  app.addHook('onResponse', async (request, reply) => {
    if (sealed?.isInner(request.headers)) return;
    const route = request.routeOptions.url ?? 'unmatched';
    const labels = { route, status: String(reply.statusCode) };
    metrics.requests.inc(labels);
    metrics.requestDuration.observe({ route, status_class: statusClass(reply.statusCode) }, reply.elapsedTime / 1000);
    // Method, route and status only: never the body, the query or the client's headers.
    request.log.debug({ route, statusCode: reply.statusCode, ms: Math.round(reply.elapsedTime) }, 'request done');
  });
  if (identity) sealed = registerSealedRequests(app, identity.ohttp);
  registerRoutes(
    app,
    config,
    metrics,
    state,
    identity && {
      source: dependencies.attestation!.kind,
      publicKey: identity.publicKey,
      publicKeySha256: identity.publicKeySha256,
      answer: (challenge) => answerChallenge(identity.privateKey, challenge),
      ohttpKeyId: identity.ohttp.config.keyId,
      ohttpKeyConfig: Buffer.from(identity.ohttp.encodedConfig),
    },
    sealed,
  );
  if (dependencies.attestation && identity) registerAttestationRoute(app, dependencies.attestation, identity, metrics);

  const server: ModelServer = {
    app,
    metrics,
    load(modelPath: string) {
      return this.attach(startInferencePool(inferenceOptions(config, modelPath), config.sessions));
    },
    async attach(starting: Promise<InferenceEngine>) {
      const givenLabels = config.labels ? readLabels(config.labels) : undefined;
      givenLabels?.catch(() => {}); // awaited after the worker starts; this keeps it from being unhandled
      const engine = await starting;
      engine.onFailure((error) => {
        // Runs in flight have failed already; without a worker nothing more can be served.
        app.log.fatal({ err: error }, 'the inference worker stopped');
        state.classifier = undefined;
        dependencies.onFatalError?.(error);
      });
      const model = engine.description;
      for (const warning of model.warnings) app.log.warn(warning);
      let labels: readonly string[];
      try {
        labels = resolveLabels(await givenLabels, model.classes);
      } catch (error) {
        await engine.close();
        throw error;
      }
      state.classifier = new ImageClassifier(engine, labels, classifierOptions(config), metrics);
      app.log.info(
        {
          model: model.name,
          sha256: model.sha256,
          classes: model.classes,
          threads: model.threads,
          optimizedCache: model.optimizedCache,
        },
        'model ready',
      );
      return state.classifier;
    },
    async close() {
      state.closing = true;
      await app.close();
      await state.classifier?.engine.close();
      state.classifier = undefined;
    },
  };
  return server;
}
