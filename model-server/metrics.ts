// The model server's Prometheus metrics, on a registry the caller owns (never the global one).
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { durationBucketsUpTo } from '../common/index.js';

// 1 ms to 10 s: from one preprocessed image to a long queue wait under overload.
export const DURATION_BUCKETS_SECONDS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
// The default request timeout: receiving a request and answering it.
const DEFAULT_LONGEST_REQUEST_SECONDS = 30;

export interface ModelServerMetrics {
  registry: Registry;
  requests: Counter<'route' | 'status'>;
  requestDuration: Histogram<'route' | 'status_class'>;
  errors: Counter<'code'>;
  attestations: Counter<'result'>;
  queueWait: Histogram;
  preprocessDuration: Histogram;
  inferenceDuration: Histogram;
  batchSize: Histogram;
  queueDepth: Gauge;
  imagesInFlight: Gauge;
  images: Counter;
}

export function createModelServerMetrics(
  registry = new Registry(),
  maxBatch = 8,
  longestRequestSeconds = DEFAULT_LONGEST_REQUEST_SECONDS,
): ModelServerMetrics {
  collectDefaultMetrics({ register: registry, prefix: 'mpg_model_server_' });
  const batchBuckets = [
    ...new Set([1, 2, 4, 8, 16, 32, 64, 128, 256].filter((size) => size < maxBatch).concat(maxBatch)),
  ];
  return {
    registry,
    requests: new Counter({
      name: 'mpg_model_server_requests_total',
      help: 'Requests answered, by route and HTTP status',
      labelNames: ['route', 'status'] as const,
      registers: [registry],
    }),
    requestDuration: new Histogram({
      name: 'mpg_model_server_request_duration_seconds',
      help: 'Time from receiving a request to answering it, by route and status class (2xx, 4xx, 5xx)',
      labelNames: ['route', 'status_class'] as const,
      buckets: durationBucketsUpTo(DURATION_BUCKETS_SECONDS, longestRequestSeconds),
      registers: [registry],
    }),
    attestations: new Counter({
      name: 'mpg_model_server_attestations_total',
      help: 'GET /attestation answers: signed (a fresh document), cached, rate_limited or failed',
      labelNames: ['result'] as const,
      registers: [registry],
    }),
    errors: new Counter({
      name: 'mpg_model_server_errors_total',
      help: 'Error answers, by error code',
      labelNames: ['code'] as const,
      registers: [registry],
    }),
    queueWait: new Histogram({
      name: 'mpg_model_server_queue_wait_seconds',
      help: 'Time a preprocessed image waited for its onnxruntime run',
      buckets: DURATION_BUCKETS_SECONDS,
      registers: [registry],
    }),
    preprocessDuration: new Histogram({
      name: 'mpg_model_server_preprocess_duration_seconds',
      help: 'Decode, resize, crop and normalise of one image',
      buckets: DURATION_BUCKETS_SECONDS,
      registers: [registry],
    }),
    inferenceDuration: new Histogram({
      name: 'mpg_model_server_inference_duration_seconds',
      help: 'One onnxruntime run, of a whole batch',
      buckets: DURATION_BUCKETS_SECONDS,
      registers: [registry],
    }),
    batchSize: new Histogram({
      name: 'mpg_model_server_batch_size',
      help: 'Images per onnxruntime run',
      buckets: batchBuckets,
      registers: [registry],
    }),
    queueDepth: new Gauge({
      name: 'mpg_model_server_queue_depth',
      help: 'Preprocessed images waiting for an onnxruntime run',
      registers: [registry],
    }),
    imagesInFlight: new Gauge({
      name: 'mpg_model_server_images_in_flight',
      help: 'Images admitted and not yet answered (bounded by --max-queue)',
      registers: [registry],
    }),
    images: new Counter({
      name: 'mpg_model_server_images_total',
      help: 'Images classified',
      registers: [registry],
    }),
  };
}
