// A bounded queue: past --max-queue images in flight, requests are refused at once with 503 and
// Retry-After instead of waiting in a backlog that grows without limit.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { sampleImage } from '../../common/index.js';
import { postJson, startModelServer } from '../helpers/model-server.js';

test('past --max-queue images in flight, requests get 503 MS_QUEUE_FULL with Retry-After', async (t) => {
  const { url } = await startModelServer(t, [
    '--max-queue',
    '4',
    '--max-images',
    '4',
    '--max-batch',
    '2',
    '--threads',
    '1',
  ]);
  const image = (await sampleImage()).toString('base64');

  const answers = await Promise.all(Array.from({ length: 24 }, () => postJson(`${url}/predict`, { images: [image] })));
  const served = answers.filter((answer) => answer.status === 200);
  const refused = answers.filter((answer) => answer.status === 503);
  assert.equal(served.length + refused.length, answers.length, 'every answer is 200 or 503');
  assert.ok(served.length >= 4, 'the queue is used to its bound');
  assert.ok(refused.length > 0, 'a burst of 24 against a queue of 4 is partly refused');
  for (const answer of refused) {
    assert.equal(answer.body.code, 'MS_QUEUE_FULL');
    assert.equal(answer.headers.get('retry-after'), '1');
  }

  const metrics = await (await fetch(`${url}/metrics`)).text();
  assert.match(metrics, /mpg_model_server_images_in_flight 0\n/);
  assert.match(metrics, /mpg_model_server_errors_total\{code="MS_QUEUE_FULL"\} \d+/);
  const after = await postJson(`${url}/predict`, { images: [image] });
  assert.equal(after.status, 200, 'the server keeps serving once the burst is over');
});
