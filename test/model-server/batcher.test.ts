// The batching logic itself, with a stand-in run function that records what it was given: the
// subject here is which images share a run, not onnxruntime (the server tests use the real one).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { InferenceBatcher } from '../../model-server/index.js';

const IMAGE = 3 * 224 * 224;
const CLASSES = 2;

function image(marker: number): Float32Array {
  return new Float32Array(IMAGE).fill(marker);
}

/** A run whose logits for each slot are [marker, slot], finishing when `release` is called. */
function recordingRun() {
  const runs: number[][] = [];
  const pending: (() => void)[] = [];
  const run = (input: Float32Array, count: number) => {
    const markers = Array.from({ length: count }, (_, slot) => input[slot * IMAGE]!);
    runs.push(markers);
    return new Promise<{ logits: Float32Array; input: Float32Array }>((resolve) => {
      pending.push(() =>
        resolve({ logits: new Float32Array(markers.flatMap((marker, slot) => [marker, slot])), input }),
      );
    });
  };
  const releaseNext = async () => {
    pending.shift()?.();
    await new Promise((resolve) => setImmediate(resolve));
  };
  return { run, runs, releaseNext };
}

test('images submitted together inside the window share one run', async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  const { run, runs, releaseNext } = recordingRun();
  const batcher = new InferenceBatcher({ maxBatch: 8, batchWindowMs: 5, classes: CLASSES, run });
  const results = [1, 2, 3].map((marker) => batcher.submit(image(marker)));
  assert.equal(runs.length, 0, 'a partial batch waits for the window');
  t.mock.timers.tick(5);
  assert.deepEqual(runs, [[1, 2, 3]]);
  await releaseNext();
  const answers = await Promise.all(results);
  assert.deepEqual(
    answers.map((answer) => [...answer.logits]),
    [
      [1, 0],
      [2, 1],
      [3, 2],
    ],
  );
  assert.deepEqual(
    answers.map((answer) => answer.batchSize),
    [3, 3, 3],
  );
});

test('a full batch runs at once without waiting for the window', async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  const { run, runs, releaseNext } = recordingRun();
  const batcher = new InferenceBatcher({ maxBatch: 2, batchWindowMs: 1000, classes: CLASSES, run });
  const results = [1, 2, 3].map((marker) => batcher.submit(image(marker)));
  assert.deepEqual(runs, [[1, 2]]);
  await releaseNext();
  // The third image arrived during the first run, so it goes next without a window.
  assert.deepEqual(runs, [[1, 2], [3]]);
  await releaseNext();
  assert.equal((await Promise.all(results)).length, 3);
});

test('during a run a full batch is queued behind it, a partial one waits for the run to end', async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  const { run, runs, releaseNext } = recordingRun();
  const batcher = new InferenceBatcher({ maxBatch: 3, batchWindowMs: 0, classes: CLASSES, run });
  const all = [batcher.submit(image(1))];
  assert.deepEqual(runs, [[1]]);
  for (const marker of [2, 3, 4, 5]) all.push(batcher.submit(image(marker)));
  assert.deepEqual(runs, [[1], [2, 3, 4]], 'the full batch is handed over while the first run is in flight');
  assert.equal(batcher.depth, 1);
  await releaseNext();
  assert.deepEqual(runs, [[1], [2, 3, 4]], 'the partial batch still waits: a run is in flight');
  await releaseNext();
  assert.deepEqual(runs, [[1], [2, 3, 4], [5]]);
  await releaseNext();
  assert.deepEqual(
    (await Promise.all(all)).map((answer) => answer.logits[0]),
    [1, 2, 3, 4, 5],
  );
});

test('no more than two runs are ever in flight', async () => {
  const { run, runs, releaseNext } = recordingRun();
  const batcher = new InferenceBatcher({ maxBatch: 1, batchWindowMs: 0, classes: CLASSES, run });
  const all = [1, 2, 3, 4].map((marker) => batcher.submit(image(marker)));
  assert.deepEqual(runs, [[1], [2]]);
  assert.equal(batcher.depth, 2);
  await releaseNext();
  assert.deepEqual(runs, [[1], [2], [3]]);
  for (let index = 0; index < 3; index++) await releaseNext();
  assert.equal((await Promise.all(all)).length, 4);
});

test('maxBatch 1 turns batching off: every image has a run of its own', async () => {
  const { run, runs, releaseNext } = recordingRun();
  const batcher = new InferenceBatcher({ maxBatch: 1, batchWindowMs: 0, classes: CLASSES, run });
  const all = [1, 2, 3].map((marker) => batcher.submit(image(marker)));
  for (let index = 0; index < 3; index++) await releaseNext();
  await Promise.all(all);
  assert.deepEqual(runs, [[1], [2], [3]]);
});

test('a failed run rejects its images and the batcher keeps serving', async () => {
  let calls = 0;
  const batcher = new InferenceBatcher({
    maxBatch: 4,
    batchWindowMs: 0,
    classes: CLASSES,
    run: (input, count) => {
      calls++;
      if (calls === 1) return Promise.reject(new Error('boom'));
      return Promise.resolve({ logits: new Float32Array(count * CLASSES), input });
    },
  });
  await assert.rejects(batcher.submit(image(1)), /boom/);
  const answer = await batcher.submit(image(2));
  assert.equal(answer.batchSize, 1);
});
