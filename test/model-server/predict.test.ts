import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { test } from 'node:test';
import * as ort from 'onnxruntime-node';
import { sampleImage } from '../../common/index.js';
import { loadPreprocessing } from '../../model-server/index.js';
import { postBytes, postJson, startModelServer, testModelPath } from '../helpers/model-server.js';

interface Prediction {
  topk: { index: number; label: string; score: number }[];
}

test('a JSON batch of two gets two top-5 predictions with ImageNet labels and timings', async (t) => {
  const { url } = await startModelServer(t);
  const image = (await sampleImage()).toString('base64');
  const other = (await sampleImage({ seed: 7 })).toString('base64');
  const { status, body } = await postJson(`${url}/predict`, { images: [image, other], topk: 5 });
  assert.equal(status, 200);
  assert.equal(body.model, 'resnet18');
  const predictions = body.predictions as Prediction[];
  assert.equal(predictions.length, 2);
  for (const { topk } of predictions) {
    assert.equal(topk.length, 5);
    const scores = topk.map((entry) => entry.score);
    assert.deepEqual(
      [...scores].sort((a, b) => b - a),
      scores,
      'best first',
    );
    assert.ok(scores.every((score) => score > 0 && score < 1));
    assert.ok(topk.every((entry) => Number.isInteger(entry.index) && entry.index >= 0 && entry.index < 1000));
    assert.ok(
      topk.every(
        (entry) => typeof entry.label === 'string' && entry.label.length > 0 && !entry.label.startsWith('class '),
      ),
    );
  }
  const timings = body.timings as Record<string, unknown>;
  for (const key of ['preprocessMs', 'queueMs', 'inferenceMs', 'totalMs'])
    assert.equal(typeof timings[key], 'number', key);
});

test('predictions equal onnxruntime run directly on the same preprocessed tensor', async (t) => {
  const { url } = await startModelServer(t);
  const bytes = await sampleImage({ seed: 3 });
  const { preprocessImage } = await loadPreprocessing();
  const tensor = await preprocessImage(bytes, { maxPixels: 40_000_000, kernel: 'linear' });
  const session = await ort.InferenceSession.create(await testModelPath(), { intraOpNumThreads: 2 });
  t.after(() => session.release());
  const output = await session.run({ [session.inputNames[0]!]: new ort.Tensor('float32', tensor, [1, 3, 224, 224]) });
  const logits = output[session.outputNames[0]!]!.data as Float32Array;
  const best = [...logits.keys()].sort((a, b) => logits[b]! - logits[a]!).slice(0, 3);

  const { body } = await postJson(`${url}/predict`, { images: [bytes.toString('base64')], topk: 3 });
  const topk = (body.predictions as Prediction[])[0]!.topk;
  assert.deepEqual(
    topk.map((entry) => entry.index),
    best,
  );
  const max = Math.max(...logits);
  const sum = logits.reduce((total, value) => total + Math.exp(value - max), 0);
  for (const entry of topk) assert.ok(Math.abs(entry.score - Math.exp(logits[entry.index]! - max) / sum) < 1e-5);
});

test('raw JPEG, PNG and WebP bodies are accepted, and a raw body predicts as its base64 twin', async (t) => {
  const { url } = await startModelServer(t);
  for (const format of ['jpeg', 'png', 'webp'] as const) {
    const bytes = await sampleImage({ format, seed: 11 });
    const raw = await postBytes(`${url}/predict?topk=2`, bytes, `image/${format}`);
    assert.equal(raw.status, 200, format);
    const rawTopk = (raw.body.predictions as Prediction[])[0]!.topk;
    assert.equal(rawTopk.length, 2);
    const json = await postJson(`${url}/predict`, { images: [bytes.toString('base64')], topk: 2 });
    assert.deepEqual((json.body.predictions as Prediction[])[0]!.topk, rawTopk, format);
  }
});

test('concurrent requests share onnxruntime runs when batching is on, and never when it is off', async (t) => {
  const image = (await sampleImage()).toString('base64');
  const batchSizesFor = async (flags: string[]) => {
    const { url } = await startModelServer(t, flags);
    const answers = await Promise.all(Array.from({ length: 8 }, () => postJson(`${url}/predict`, { images: [image] })));
    assert.ok(answers.every((answer) => answer.status === 200));
    return answers.flatMap((answer) => (answer.body.timings as { batchSizes: number[] }).batchSizes);
  };
  const batched = await batchSizesFor(['--max-batch', '8', '--batch-window-ms', '20']);
  assert.ok(Math.max(...batched) > 1, `some run took several images: ${batched.join(',')}`);
  const unbatched = await batchSizesFor(['--max-batch', '1']);
  assert.deepEqual(unbatched, Array(8).fill(1));
});

test('/healthz, /readyz and /v1/model describe the loaded model', async (t) => {
  const { url } = await startModelServer(t, ['--max-batch', '4', '--batch-window-ms', '3']);
  assert.equal((await fetch(`${url}/healthz`)).status, 200);
  const ready = await fetch(`${url}/readyz`);
  assert.equal(ready.status, 200);
  const model = (await (await fetch(`${url}/v1/model`)).json()) as Record<string, unknown>;
  const file = await readFile(await testModelPath());
  assert.equal(model.name, 'resnet18');
  assert.equal(model.sha256, createHash('sha256').update(file).digest('hex'));
  assert.deepEqual(model.input, { name: 'input', shape: ['batch', 3, 224, 224], type: 'float32' });
  assert.deepEqual(model.output, { name: 'logits', classes: 1000 });
  assert.equal(model.threads, 2);
  assert.deepEqual(model.batching, { maxBatch: 4, batchWindowMs: 3, maxQueue: 64 });
  assert.equal(model.enclave, 'none');
});

test('before the model is loaded /readyz and /predict answer 503 MS_NOT_READY while /healthz is alive', async (t) => {
  const { url } = await startModelServer(t, [], { load: false });
  assert.equal((await fetch(`${url}/healthz`)).status, 200);
  const ready = await fetch(`${url}/readyz`);
  assert.equal(ready.status, 503);
  assert.equal(((await ready.json()) as { code: string }).code, 'MS_NOT_READY');
  const predict = await postJson(`${url}/predict`, { images: ['AAAA'] });
  assert.equal(predict.status, 503);
  assert.equal(predict.body.code, 'MS_NOT_READY');
  assert.equal(predict.headers.get('retry-after'), '1');
});

test('/metrics exposes requests, durations, batch sizes, queue depth and process metrics', async (t) => {
  const { url } = await startModelServer(t);
  const image = (await sampleImage()).toString('base64');
  await postJson(`${url}/predict`, { images: [image, image] });
  await postJson(`${url}/predict`, { images: [] });
  const text = await (await fetch(`${url}/metrics`)).text();
  for (const line of [
    'mpg_model_server_requests_total{route="/predict",status="200"} 1',
    'mpg_model_server_requests_total{route="/predict",status="400"} 1',
    'mpg_model_server_errors_total{code="MS_NO_IMAGES"} 1',
    'mpg_model_server_images_total 2',
    'mpg_model_server_preprocess_duration_seconds_count 2',
    'mpg_model_server_queue_wait_seconds_count 2',
    'mpg_model_server_queue_depth 0',
    'mpg_model_server_images_in_flight 0',
  ]) {
    assert.ok(text.includes(line), `metrics include ${line}`);
  }
  // The latency histogram is split by status class (the exact status is on requests_total) and
  // its buckets reach the request timeout.
  assert.match(
    text,
    /mpg_model_server_request_duration_seconds_bucket\{le="0.001",route="\/predict",status_class="2xx"\}/,
  );
  assert.match(text, /mpg_model_server_request_duration_seconds_count\{route="\/predict",status_class="4xx"\} 1\n/);
  assert.match(
    text,
    /mpg_model_server_request_duration_seconds_bucket\{le="30",route="\/predict",status_class="2xx"\} 1\n/,
  );
  assert.doesNotMatch(text, /mpg_model_server_request_duration_seconds_bucket\{[^}]*status="/);
  assert.match(text, /mpg_model_server_inference_duration_seconds_count [12]\n/);
  assert.match(text, /mpg_model_server_batch_size_bucket\{le="2"\} [12]\n/);
  assert.match(text, /mpg_model_server_process_resident_memory_bytes \d+/);
});
