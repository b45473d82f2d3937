// From encoded images to top-k predictions: admission against the bounded queue, preprocessing
// (in parallel, on libuv's thread pool through sharp), the shared batcher, then softmax and top-k.
import { modelServerErrors } from './errors.js';
import { InferenceBatcher } from './batcher.js';
import type { ModelServerMetrics } from './metrics.js';
import type { InferenceEngine } from './inference-host.js';
import type { ModelDescription } from './model-session.js';
import type { PreprocessOptions } from './preprocess.js';
import { preprocessImage } from './preprocess.js';
import type { ScoredClass } from './topk.js';
import { topKClasses } from './topk.js';

export interface Classification {
  predictions: { topk: ScoredClass[] }[];
  timings: {
    preprocessMs: number;
    queueMs: number;
    inferenceMs: number;
    batchSizes: number[];
  };
}

export interface ClassifierOptions extends PreprocessOptions {
  maxBatch: number;
  batchWindowMs: number;
  maxQueue: number;
}

const round = (ms: number) => Math.round(ms * 100) / 100;

export class ImageClassifier {
  readonly engine: InferenceEngine;
  readonly labels: readonly string[];
  readonly batcher: InferenceBatcher;
  readonly #options: ClassifierOptions;
  readonly #metrics: ModelServerMetrics;
  #inFlightImages = 0;

  constructor(engine: InferenceEngine, labels: readonly string[], options: ClassifierOptions, metrics: ModelServerMetrics) {
    this.engine = engine;
    this.labels = labels;
    this.#options = options;
    this.#metrics = metrics;
    this.batcher = new InferenceBatcher({
      maxBatch: options.maxBatch,
      batchWindowMs: options.batchWindowMs,
      classes: engine.description.classes,
      run: (input, count) => engine.run(input, count),
      observer: {
        onBatch: (size, seconds) => {
          metrics.batchSize.observe(size);
          metrics.inferenceDuration.observe(seconds);
        },
        onQueueWait: (seconds) => metrics.queueWait.observe(seconds),
        onDepth: (waiting) => metrics.queueDepth.set(waiting),
      },
    });
  }

  get description(): ModelDescription {
    return this.engine.description;
  }

  get inFlightImages(): number {
    return this.#inFlightImages;
  }

  /** True when the queue has no room left even for one image. */
  get saturated(): boolean {
    return this.#inFlightImages >= this.#options.maxQueue;
  }

  /** `indexed`: name images by their index in errors, as in a JSON batch. */
  async classify(images: readonly Uint8Array[], topk: number, { indexed = true } = {}): Promise<Classification> {
    if (this.#inFlightImages + images.length > this.#options.maxQueue) {
      throw modelServerErrors.MS_QUEUE_FULL(undefined, { headers: { 'retry-after': '1' } });
    }
    this.#inFlightImages += images.length;
    this.#metrics.imagesInFlight.set(this.#inFlightImages);
    try {
      const startedAt = performance.now();
      // allSettled, not all: the in-flight count must not drop while sibling images still decode.
      const settled = await Promise.allSettled(images.map((bytes, index) => this.#preprocess(bytes, indexed ? index : undefined)));
      const failed = settled.find((outcome) => outcome.status === 'rejected');
      if (failed) throw failed.reason;
      const tensors = settled.map((outcome) => (outcome as PromiseFulfilledResult<Float32Array>).value);
      const preprocessMs = performance.now() - startedAt;
      const results = await Promise.all(tensors.map((tensor) => this.batcher.submit(tensor)));
      this.#metrics.images.inc(images.length);
      return {
        predictions: results.map((result) => ({ topk: topKClasses(result.logits, topk, this.labels) })),
        timings: {
          preprocessMs: round(preprocessMs),
          queueMs: round(Math.max(...results.map((result) => result.queueMs))),
          inferenceMs: round(Math.max(...results.map((result) => result.inferenceMs))),
          batchSizes: results.map((result) => result.batchSize),
        },
      };
    } finally {
      this.#inFlightImages -= images.length;
      this.#metrics.imagesInFlight.set(this.#inFlightImages);
    }
  }

  async #preprocess(bytes: Uint8Array, index: number | undefined): Promise<Float32Array> {
    const startedAt = performance.now();
    const tensor = await preprocessImage(bytes, this.#options, index);
    this.#metrics.preprocessDuration.observe((performance.now() - startedAt) / 1000);
    return tensor;
  }
}
