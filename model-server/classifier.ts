// From encoded images to top-k predictions: admission against the bounded queue, every image's
// header read (dimensions known before any pixel is decoded), decoding within the decoded-bytes
// budget (on libuv's thread pool through sharp), the shared batcher, then softmax and top-k.
import { modelServerErrors } from './errors.js';
import { InferenceBatcher } from './batcher.js';
import type { ModelServerMetrics } from './metrics.js';
import type { InferenceEngine } from './inference-host.js';
import type { ModelDescription } from './model-session.js';
import type { PreprocessOptions } from './preprocess.js';
import type { ImageHeader } from './preprocess.js';
import { decodeImage, readImageHeader, toNormalisedChw } from './preprocess.js';
import { DecodeBudget } from './decode-budget.js';
import { IMAGE_ELEMENTS } from './tensor-layout.js';
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
  /** Decoded bytes (pixels × channels) that decodes in progress may hold at once. */
  maxDecodeBytes: number;
  /** Decodes in progress at once. */
  decodeSlots: number;
}

const round = (ms: number) => Math.round(ms * 100) / 100;

export class ImageClassifier {
  readonly engine: InferenceEngine;
  readonly labels: readonly string[];
  /** Queues decoded 224x224 RGB pixels; they become normalised tensors in the run's input. */
  readonly batcher: InferenceBatcher<Uint8Array>;
  readonly decodeBudget: DecodeBudget;
  readonly #options: ClassifierOptions;
  readonly #metrics: ModelServerMetrics;
  #inFlightImages = 0;

  constructor(
    engine: InferenceEngine,
    labels: readonly string[],
    options: ClassifierOptions,
    metrics: ModelServerMetrics,
  ) {
    this.engine = engine;
    this.labels = labels;
    this.#options = options;
    this.#metrics = metrics;
    this.decodeBudget = new DecodeBudget({ bytes: options.maxDecodeBytes, slots: options.decodeSlots });
    this.batcher = new InferenceBatcher<Uint8Array>({
      pack: (input, slot, pixels) => toNormalisedChw(pixels, input, slot * IMAGE_ELEMENTS),
      maxBatch: options.maxBatch,
      batchWindowMs: options.batchWindowMs,
      classes: engine.description.classes,
      run: (input, count) => engine.run(input, count),
      maxRunsInFlight: engine.sessions + 1,
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
      // Every header first: a request with one bad or oversized image is refused before any decode.
      const headers = await settleAll(
        images.map((bytes, index) => readImageHeader(bytes, this.#options, indexed ? index : undefined)),
      );
      const tensors = await settleAll(
        images.map((bytes, index) => this.#preprocess(bytes, headers[index]!, indexed ? index : undefined)),
      );
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

  async #preprocess(bytes: Uint8Array, header: ImageHeader, index: number | undefined): Promise<Uint8Array> {
    return this.decodeBudget.run(header.decodedBytes, async () => {
      const startedAt = performance.now();
      const decoded = await decodeImage(bytes, header, this.#options, index);
      this.#metrics.preprocessDuration.observe((performance.now() - startedAt) / 1000);
      return decoded;
    });
  }
}

/** Promise.all that waits for every promise: the in-flight count must not drop while siblings still decode. */
async function settleAll<T>(promises: Promise<T>[]): Promise<T[]> {
  const settled = await Promise.allSettled(promises);
  const failed = settled.find((outcome) => outcome.status === 'rejected');
  if (failed) throw failed.reason;
  return settled.map((outcome) => (outcome as PromiseFulfilledResult<T>).value);
}
