// The main thread's side of the inference worker: starts it, forwards runs, and turns a worker
// that dies into failed runs and a failure callback instead of a hung server.
import { Worker } from 'node:worker_threads';
import type { WorkerReply, WorkerRequest } from './inference-protocol.js';
import { ModelContractError } from './inference-protocol.js';
import type { ModelDescription, ModelSessionOptions } from './model-session.js';

export interface RunResult {
  logits: Float32Array;
  /** The input buffer, handed back for the next run. */
  input: Float32Array;
}

export interface InferenceEngine {
  readonly description: ModelDescription;
  /** Runs it computes side by side: its sessions (one per worker). */
  readonly sessions: number;
  /** Transfers `input` (a buffer of its own) to the worker; [count, classes] logits come back. */
  run(input: Float32Array, count: number): Promise<RunResult>;
  /** Called once if the worker dies after it started; at once if it already has. */
  onFailure(listener: (error: Error) => void): void;
  close(): Promise<void>;
}

export class InferenceWorkerError extends Error {
  override name = 'InferenceWorkerError';
}

const WORKER_URL = new URL('./inference-worker.js', import.meta.url);

export function startInferenceWorker(options: ModelSessionOptions): Promise<InferenceEngine> {
  const worker = new Worker(WORKER_URL, { workerData: options, name: 'inference' });
  const pending = new Map<number, { resolve(result: RunResult): void; reject(error: Error): void }>();
  let nextId = 0;
  let closing = false;
  let failure: Error | undefined;
  let failureListener: ((error: Error) => void) | undefined;
  const onFailure = (error: Error) => failureListener?.(error);

  const failAll = (error: Error) => {
    failure ??= error;
    for (const waiter of pending.values()) waiter.reject(error);
    pending.clear();
  };

  return new Promise<InferenceEngine>((resolveStart, rejectStart) => {
    let started = false;
    worker.on('message', (reply: WorkerReply) => {
      switch (reply.type) {
        case 'ready':
          started = true;
          resolveStart(engine(reply.description));
          return;
        case 'load-failed':
          rejectStart(
            reply.name === 'ModelContractError' ? new ModelContractError(reply.message) : new Error(reply.message),
          );
          return;
        case 'result':
          pending.get(reply.id)?.resolve({ logits: reply.logits, input: reply.input });
          pending.delete(reply.id);
          return;
        case 'failed':
          pending.get(reply.id)?.reject(new InferenceWorkerError(reply.message));
          pending.delete(reply.id);
          return;
      }
    });
    worker.on('error', (error) => {
      failAll(error);
      if (!started) rejectStart(error);
      else onFailure(error);
    });
    worker.on('exit', (code) => {
      const error = new InferenceWorkerError(`the inference worker exited (code ${code})`);
      failAll(error);
      if (!started) rejectStart(error);
      else if (!closing) onFailure(error);
    });
  });

  function engine(description: ModelDescription): InferenceEngine {
    return {
      description,
      sessions: 1,
      run(input, count) {
        if (failure) return Promise.reject(failure);
        const id = nextId++;
        return new Promise<RunResult>((resolve, reject) => {
          pending.set(id, { resolve, reject });
          worker.postMessage({ type: 'run', id, input, count } satisfies WorkerRequest, [input.buffer as ArrayBuffer]);
        });
      },
      onFailure(listener) {
        failureListener = listener;
        if (failure && !closing) listener(failure);
      },
      async close() {
        if (closing) return;
        closing = true;
        const exited = new Promise((resolve) => worker.once('exit', resolve));
        worker.postMessage({ type: 'close' } satisfies WorkerRequest);
        // A worker that does not release its session promptly is stopped.
        const timer = setTimeout(() => void worker.terminate(), 2000);
        await exited;
        clearTimeout(timer);
      },
    };
  }
}

/**
 * Several inference workers, each with a session of its own, behind one engine: a run goes to
 * the worker with the fewest runs in hand. Single-threaded sessions side by side avoid the
 * barrier at which a multi-threaded session's threads meet after every operator (any wake-up on
 * the same cores stalls them all). Every worker loads the model: memory grows with the pool.
 */
export async function startInferencePool(options: ModelSessionOptions, sessions: number): Promise<InferenceEngine> {
  if (sessions === 1) return startInferenceWorker(options);
  const starting = Array.from({ length: sessions }, () => startInferenceWorker(options));
  const settled = await Promise.allSettled(starting);
  const failed = settled.find((outcome) => outcome.status === 'rejected');
  const engines = settled.flatMap((outcome) => (outcome.status === 'fulfilled' ? [outcome.value] : []));
  if (failed) {
    await Promise.all(engines.map((engine) => engine.close()));
    throw failed.reason;
  }
  const inHand = engines.map(() => 0);
  let failureListener: ((error: Error) => void) | undefined;
  let failure: Error | undefined;
  let closing = false;
  engines.forEach((engine) =>
    engine.onFailure((error) => {
      // One dead worker fails the pool: the supervisor restarts the server whole.
      if (failure || closing) return;
      failure = error;
      failureListener?.(error);
    }),
  );
  return {
    description: engines[0]!.description,
    sessions,
    async run(input, count) {
      let chosen = 0;
      for (let index = 1; index < engines.length; index++) if (inHand[index]! < inHand[chosen]!) chosen = index;
      inHand[chosen]!++;
      try {
        return await engines[chosen]!.run(input, count);
      } finally {
        inHand[chosen]!--;
      }
    },
    onFailure(listener) {
      failureListener = listener;
      if (failure && !closing) listener(failure);
    },
    async close() {
      closing = true;
      await Promise.all(engines.map((engine) => engine.close()));
    },
  };
}
