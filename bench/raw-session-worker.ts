// One raw onnxruntime session on a worker thread of its own, for bench:model's raw baseline:
// onnxruntime-node computes on the thread that calls run(), so sessions side by side need a
// thread each. Loads, says so, waits for "go" (so every session of a configuration starts
// together), runs back to back for the given time, and reports the images it finished.
import { parentPort, workerData } from 'node:worker_threads';
import * as ort from 'onnxruntime-node';

export interface RawSessionJob {
  modelPath: string;
  threads: number;
  batch: number;
  seconds: number;
  /** One preprocessed [3,224,224] image, repeated to fill the batch. */
  image: Float32Array;
}

export type RawSessionReport = { type: 'loaded' } | { type: 'done'; images: number; seconds: number };

const port = parentPort!;
const job = workerData as RawSessionJob;
const session = await ort.InferenceSession.create(job.modelPath, {
  intraOpNumThreads: job.threads,
  interOpNumThreads: 1,
  executionMode: 'sequential',
});
const input = new Float32Array(job.batch * job.image.length);
for (let slot = 0; slot < job.batch; slot++) input.set(job.image, slot * job.image.length);
const feeds = { [session.inputNames[0]!]: new ort.Tensor('float32', input, [job.batch, 3, 224, 224]) };
for (let warm = 0; warm < 2; warm++) await session.run(feeds);
port.postMessage({ type: 'loaded' } satisfies RawSessionReport);
async function runUntilTimeIsUp(): Promise<void> {
  let images = 0;
  const started = performance.now();
  while (performance.now() - started < job.seconds * 1000) {
    await session.run(feeds);
    images += job.batch;
  }
  const seconds = (performance.now() - started) / 1000;
  await session.release();
  port.postMessage({ type: 'done', images, seconds } satisfies RawSessionReport);
  port.close();
}
port.once('message', () => void runUntilTimeIsUp());
