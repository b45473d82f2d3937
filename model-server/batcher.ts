// Dynamic batching: images from concurrent requests share one onnxruntime run.
//
// An idle batcher that receives fewer than maxBatch images waits batchWindowMs for more before it
// runs a partial batch. While a run is in progress, images wait; a full batch is handed to the
// worker at once so that it starts the moment the current run ends (at most MAX_RUNS_IN_FLIGHT
// runs are in flight: onnxruntime never idles waiting for the main thread, and no image is
// committed to a run far ahead of time). When a run ends, what waits goes next without a window.
// With a pool of sessions, each may hold a run and have the next one waiting: runs in flight are
// then the pool's size plus one.
import { IMAGE_ELEMENTS } from './tensor-layout.js';

export const MAX_RUNS_IN_FLIGHT = 2;

/** Runs `count` images from `input` and hands back the logits and the input buffer. */
export interface BatchRun {
  (input: Float32Array, count: number): Promise<{ logits: Float32Array; input: Float32Array }>;
}

export interface BatchResult {
  logits: Float32Array;
  /** Time from submit() until its run was handed to the worker. */
  queueMs: number;
  /** Time from handing the run over to its logits coming back. */
  inferenceMs: number;
  batchSize: number;
}

export interface BatcherObserver {
  onBatch?(size: number, inferenceSeconds: number): void;
  onQueueWait?(seconds: number): void;
  onDepth?(waiting: number): void;
}

/** Writes one submitted image into slot `slot` of a run's input. */
export type ImagePacker<Image> = (input: Float32Array, slot: number, image: Image) => void;

function copyTensor(input: Float32Array, slot: number, image: unknown): void {
  if (!(image instanceof Float32Array))
    throw new TypeError('without a packer, the batcher takes [3,224,224] float32 tensors');
  input.set(image, slot * IMAGE_ELEMENTS);
}

interface Waiting<Image> {
  image: Image;
  submittedAt: number;
  resolve(result: BatchResult): void;
  reject(error: unknown): void;
}

export class InferenceBatcher<Image = Float32Array> {
  readonly maxBatch: number;
  readonly batchWindowMs: number;
  readonly #run: BatchRun;
  readonly #observer: BatcherObserver;
  readonly #classes: number;
  readonly #pack: ImagePacker<Image>;
  readonly #maxRunsInFlight: number;
  // Input buffers are lent to each run and handed back, so at most maxRunsInFlight exist.
  readonly #spareInputs: Float32Array[] = [];
  #waiting: Waiting<Image>[] = [];
  #runsInFlight = 0;
  #timer: NodeJS.Timeout | undefined;

  /**
   * `pack` writes an image into a run's input; by default images are [3,224,224] float32 tensors,
   * copied. Packing at run time lets a caller queue small decoded pixels instead of tensors.
   */
  constructor(options: {
    maxBatch: number;
    batchWindowMs: number;
    classes: number;
    run: BatchRun;
    observer?: BatcherObserver;
    pack?: ImagePacker<Image>;
    /** Runs handed to the engine at once; MAX_RUNS_IN_FLIGHT for one session. */
    maxRunsInFlight?: number;
  }) {
    this.maxBatch = options.maxBatch;
    this.batchWindowMs = options.batchWindowMs;
    this.#run = options.run;
    this.#classes = options.classes;
    this.#observer = options.observer ?? {};
    this.#pack = options.pack ?? copyTensor;
    this.#maxRunsInFlight = options.maxRunsInFlight ?? MAX_RUNS_IN_FLIGHT;
  }

  /** Images waiting for a run (not those in a run). */
  get depth(): number {
    return this.#waiting.length;
  }

  submit(image: Image): Promise<BatchResult> {
    return new Promise<BatchResult>((resolve, reject) => {
      this.#waiting.push({ image, submittedAt: performance.now(), resolve, reject });
      this.#observer.onDepth?.(this.#waiting.length);
      this.#schedule();
    });
  }

  #schedule(): void {
    if (this.#waiting.length === 0 || this.#runsInFlight >= this.#maxRunsInFlight) return;
    if (this.#waiting.length >= this.maxBatch) {
      this.#startRun();
      return;
    }
    // A partial batch waits for a run to end, unless a session of the pool is idle.
    if (this.#runsInFlight >= this.#maxRunsInFlight - 1) return;
    if (this.batchWindowMs === 0) this.#startRun();
    else this.#timer ??= setTimeout(() => this.#startRun(), this.batchWindowMs);
  }

  #startRun(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#waiting.length === 0 || this.#runsInFlight >= this.#maxRunsInFlight) return;
    const batch = this.#waiting.splice(0, this.maxBatch);
    this.#observer.onDepth?.(this.#waiting.length);
    this.#runsInFlight++;
    void this.#execute(batch).finally(() => {
      this.#runsInFlight--;
      // Images that arrived during the run have waited long enough: no window for them.
      if (this.#waiting.length > 0 && this.#runsInFlight < this.#maxRunsInFlight - 1) this.#startRun();
      else this.#schedule();
    });
    this.#schedule();
  }

  async #execute(batch: Waiting<Image>[]): Promise<void> {
    const startedAt = performance.now();
    const input = this.#spareInputs.pop() ?? new Float32Array(this.maxBatch * IMAGE_ELEMENTS);
    batch.forEach((item, slot) => {
      this.#pack(input, slot, item.image);
      this.#observer.onQueueWait?.((startedAt - item.submittedAt) / 1000);
    });
    try {
      const { logits, input: returned } = await this.#run(input, batch.length);
      this.#spareInputs.push(returned);
      const inferenceMs = performance.now() - startedAt;
      this.#observer.onBatch?.(batch.length, inferenceMs / 1000);
      batch.forEach((item, slot) =>
        item.resolve({
          logits: logits.subarray(slot * this.#classes, (slot + 1) * this.#classes),
          queueMs: startedAt - item.submittedAt,
          inferenceMs,
          batchSize: batch.length,
        }),
      );
    } catch (error) {
      for (const item of batch) item.reject(error);
    }
  }
}
