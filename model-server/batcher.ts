// Dynamic batching: images from concurrent requests share one onnxruntime run.
//
// One run at a time owns all of onnxruntime's threads. While it runs, new images wait; when it
// ends, the next run takes up to maxBatch of them at once. An idle batcher that receives fewer
// than maxBatch images waits batchWindowMs for more before it runs a partial batch.
import { IMAGE_ELEMENTS } from './preprocess.js';

/** Runs `count` images from `input` and hands back the logits and the input buffer. */
export interface BatchRun {
  (input: Float32Array, count: number): Promise<{ logits: Float32Array; input: Float32Array }>;
}

export interface BatchResult {
  logits: Float32Array;
  /** Time from submit() to the start of its run. */
  queueMs: number;
  inferenceMs: number;
  batchSize: number;
}

export interface BatcherObserver {
  onBatch?(size: number, inferenceSeconds: number): void;
  onQueueWait?(seconds: number): void;
  onDepth?(waiting: number): void;
}

interface Waiting {
  image: Float32Array;
  submittedAt: number;
  resolve(result: BatchResult): void;
  reject(error: unknown): void;
}

export class InferenceBatcher {
  readonly maxBatch: number;
  readonly batchWindowMs: number;
  readonly #run: BatchRun;
  readonly #observer: BatcherObserver;
  readonly #classes: number;
  // One input buffer, lent to each run and handed back: only one run is ever in progress.
  #input: Float32Array | undefined;
  #waiting: Waiting[] = [];
  #running = false;
  #timer: NodeJS.Timeout | undefined;

  constructor(options: { maxBatch: number; batchWindowMs: number; classes: number; run: BatchRun; observer?: BatcherObserver }) {
    this.maxBatch = options.maxBatch;
    this.batchWindowMs = options.batchWindowMs;
    this.#run = options.run;
    this.#classes = options.classes;
    this.#observer = options.observer ?? {};
  }

  /** Images waiting for a run (not the one in progress). */
  get depth(): number {
    return this.#waiting.length;
  }

  submit(image: Float32Array): Promise<BatchResult> {
    return new Promise<BatchResult>((resolve, reject) => {
      this.#waiting.push({ image, submittedAt: performance.now(), resolve, reject });
      this.#observer.onDepth?.(this.#waiting.length);
      this.#schedule();
    });
  }

  #schedule(): void {
    if (this.#running) return;
    if (this.#waiting.length >= this.maxBatch || this.batchWindowMs === 0) {
      this.#startRun();
      return;
    }
    this.#timer ??= setTimeout(() => this.#startRun(), this.batchWindowMs);
  }

  #startRun(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#running || this.#waiting.length === 0) return;
    const batch = this.#waiting.splice(0, this.maxBatch);
    this.#observer.onDepth?.(this.#waiting.length);
    this.#running = true;
    void this.#execute(batch).finally(() => {
      this.#running = false;
      // Images that arrived during the run have waited long enough: run them now.
      if (this.#waiting.length > 0) this.#startRun();
    });
  }

  async #execute(batch: Waiting[]): Promise<void> {
    const startedAt = performance.now();
    const input = this.#input ?? new Float32Array(this.maxBatch * IMAGE_ELEMENTS);
    this.#input = undefined;
    batch.forEach((item, slot) => {
      input.set(item.image, slot * IMAGE_ELEMENTS);
      this.#observer.onQueueWait?.((startedAt - item.submittedAt) / 1000);
    });
    try {
      const { logits, input: returned } = await this.#run(input, batch.length);
      this.#input = returned;
      const inferenceMs = performance.now() - startedAt;
      this.#observer.onBatch?.(batch.length, inferenceMs / 1000);
      batch.forEach((item, slot) =>
        item.resolve({
          logits: logits.slice(slot * this.#classes, (slot + 1) * this.#classes),
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
