// A pool of single-threaded sessions (--sessions 2 --threads 1): runs go to whichever session is
// free, every answer is the model's own, and a worker of the pool that dies stops the server
// from answering rather than hanging requests.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { sampleImage } from '../../common/index.js';
import { postJson, startModelServer } from '../helpers/model-server.js';

test('a pool of two single-threaded sessions serves concurrent batches with the same predictions as one session', async (t) => {
  const single = await startModelServer(t, ['--threads', '1', '--max-batch', '2']);
  const pool = await startModelServer(t, ['--sessions', '2', '--threads', '1', '--max-batch', '2']);
  const image = (await sampleImage()).toString('base64');
  const body = { images: [image, image], topk: 3 };

  const expected = await postJson(`${single.url}/predict`, body);
  assert.equal(expected.status, 200);
  const answers = await Promise.all(Array.from({ length: 8 }, () => postJson(`${pool.url}/predict`, body)));
  type Predictions = { topk: { label: string; score: number }[] }[];
  const want = expected.body.predictions as Predictions;
  for (const answer of answers) {
    assert.equal(answer.status, 200);
    // Batches may be composed differently (1 or 2 images): the same classes, scores to rounding.
    const got = answer.body.predictions as Predictions;
    assert.deepEqual(
      got.map((image) => image.topk.map((entry) => entry.label)),
      want.map((image) => image.topk.map((entry) => entry.label)),
    );
    got.forEach((image, index) =>
      image.topk.forEach((entry, rank) => assert.ok(Math.abs(entry.score - want[index]!.topk[rank]!.score) < 1e-4)),
    );
  }
  const model = (await (await fetch(`${pool.url}/v1/model`)).json()) as { threads: number };
  assert.equal(model.threads, 1, 'each session of the pool has one thread');
});
