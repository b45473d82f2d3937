// The HTTP surface: POST /predict, GET /healthz, /readyz, /v1/model and /metrics.
import type { FastifyInstance } from 'fastify';
import type { ImageClassifier } from './classifier.js';
import type { ModelServerConfig } from './config.js';
import { DEFAULT_TOPK, MAX_TOPK } from './config.js';
import { modelServerErrors } from './errors.js';
import type { ModelServerMetrics } from './metrics.js';
import { readPredictRequest } from './predict-request.js';
import type { SealedRequestDoor } from './sealed-requests.js';
import { CHALLENGE_BYTES } from '../attestation/index.js';
import { CROP_SIZE, IMAGENET_MEAN, IMAGENET_STD, RESIZE_SHORTER_SIDE } from './tensor-layout.js';

export interface ServerState {
  classifier: ImageClassifier | undefined;
  closing: boolean;
}

export const IMAGE_CONTENT_TYPES = ['image/jpeg', 'image/png', 'image/webp'];

/** What an enclave's model server says about its attestation: where documents come from, and its boot key. */
export interface AttestationInfo {
  source: 'nitro' | 'emulated';
  publicKey: Buffer;
  publicKeySha256: string;
  /** Answers a possession challenge with the boot key's private half. */
  answer(challenge: Buffer): Buffer;
  /** The boot key's OHTTP key id, and its encoded key config (RFC 9458 §3.1). */
  ohttpKeyId: number;
  ohttpKeyConfig: Buffer;
}

const CHALLENGE_HEX = new RegExp(`^[0-9a-fA-F]{${CHALLENGE_BYTES * 2}}$`);

export function registerRoutes(
  app: FastifyInstance,
  config: ModelServerConfig,
  metrics: ModelServerMetrics,
  state: ServerState,
  attestation?: AttestationInfo,
  sealed?: SealedRequestDoor,
): void {
  // The gateway compares this with the public key of the document it verified: another value means
  // another process (the enclave restarted) that must be attested again.
  const identity = attestation
    ? { publicKeySha256: attestation.publicKeySha256, ohttpKeyId: attestation.ohttpKeyId }
    : {};
  app.post('/predict', async (request, reply) => {
    const classifier = state.classifier;
    // Before a sealed request is opened, so that the gateway sees it and tries another member.
    if (!classifier) throw modelServerErrors.MS_NOT_READY(undefined, { headers: { 'retry-after': '1' } });
    // A sealed request is opened and its inner POST /predict comes back through this route.
    if (sealed?.carries(request)) return sealed.serve(request, reply);
    const limits = {
      maxImages: config.maxImages,
      maxTopk: Math.min(MAX_TOPK, classifier.description.classes),
      defaultTopk: DEFAULT_TOPK,
    };
    const { images, topk, indexed } = readPredictRequest(
      request.body,
      request.query as Record<string, unknown>,
      limits,
    );
    const result = await classifier.classify(images, topk, { indexed });
    return reply.send({
      model: classifier.description.name,
      predictions: result.predictions,
      timings: { ...result.timings, totalMs: Math.round(reply.elapsedTime * 100) / 100 },
    });
  });

  app.get('/healthz', (_request, reply) => reply.send({ status: 'ok', enclave: config.enclave }));

  app.get('/readyz', async (request, reply) => {
    // ?proof=<challenge>: prove this process holds the boot key's private half (the gateway asks on every health check).
    const challenge = (request.query as Record<string, unknown>).proof;
    if (challenge !== undefined && (!attestation || typeof challenge !== 'string' || !CHALLENGE_HEX.test(challenge))) {
      throw modelServerErrors.MS_INVALID_CHALLENGE(
        attestation ? undefined : 'This server is not an enclave: it has no boot key to prove',
      );
    }
    const proof =
      challenge === undefined ? {} : { proof: attestation!.answer(Buffer.from(challenge, 'hex')).toString('hex') };
    if (state.classifier && !state.closing)
      return {
        status: 'ready',
        model: state.classifier.description.name,
        enclave: config.enclave,
        ...identity,
        ...proof,
      };
    const error = state.closing ? modelServerErrors.MS_SHUTTING_DOWN() : modelServerErrors.MS_NOT_READY();
    return reply.code(503).header('retry-after', '1').send(error.toJSON());
  });

  app.get('/v1/model', async (_request, reply) => {
    const classifier = state.classifier;
    if (!classifier) throw modelServerErrors.MS_NOT_READY(undefined, { headers: { 'retry-after': '1' } });
    const model = classifier.description;
    return reply.send({
      name: model.name,
      sha256: model.sha256,
      fileBytes: model.fileBytes,
      input: { name: model.inputName, shape: model.inputShape, type: 'float32' },
      output: { name: model.outputName, classes: model.classes },
      threads: model.threads,
      batching: { maxBatch: config.maxBatch, batchWindowMs: config.batchWindowMs, maxQueue: config.maxQueue },
      limits: { maxImages: config.maxImages, maxPixels: config.maxPixels, bodyLimitBytes: config.bodyLimit },
      preprocessing: {
        resizeShorterSide: RESIZE_SHORTER_SIDE,
        centerCrop: CROP_SIZE,
        kernel: config.resizeKernel,
        mean: IMAGENET_MEAN,
        std: IMAGENET_STD,
        layout: 'NCHW',
      },
      enclave: config.enclave,
      ...(attestation
        ? {
            attestation: {
              source: attestation.source,
              publicKey: attestation.publicKey.toString('base64'),
              publicKeySha256: attestation.publicKeySha256,
              ohttpKeyId: attestation.ohttpKeyId,
              ohttpKeyConfig: attestation.ohttpKeyConfig.toString('base64'),
            },
          }
        : {}),
      runtime: {
        node: process.versions.node,
        onnxruntime: model.onnxruntime,
        optimizedModelCache: model.optimizedCache,
      },
    });
  });

  app.get('/metrics', async (_request, reply) => {
    return reply.type(metrics.registry.contentType).send(await metrics.registry.metrics());
  });
}
