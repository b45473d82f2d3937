// The optimised-model cache: written on the first start, used on the next, rebuilt when broken,
// and never a reason to serve different answers.
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { sampleImage } from '../../common/index.js';
import { postJson, startModelServer } from '../helpers/model-server.js';

interface ModelInfo {
  sha256: string;
  runtime: { optimizedModelCache: string };
}

test('a miss writes the optimised graph and its checksum, a hit uses them, a broken entry is rebuilt', async (t) => {
  const cache = await mkdtemp(join(tmpdir(), 'mpg-cache-'));
  t.after(() => rm(cache, { recursive: true, force: true }));
  const body = { images: [(await sampleImage()).toString('base64')], topk: 3 };

  const runOnce = async () => {
    const { url, server } = await startModelServer(t, ['--model-cache', cache]);
    const info = (await (await fetch(`${url}/v1/model`)).json()) as ModelInfo;
    const answer = await postJson(`${url}/predict`, body);
    await server.close();
    return { info, predictions: answer.body.predictions };
  };

  const first = await runOnce();
  assert.equal(first.info.runtime.optimizedModelCache, 'miss');
  const files = (await readdir(cache)).sort();
  assert.equal(files.length, 2, files.join(', '));
  assert.match(files[0]!, /^resnet18-[0-9a-f]{24}\.onnx$/);
  assert.equal(files[1], `${files[0]}.json`);

  const second = await runOnce();
  assert.equal(second.info.runtime.optimizedModelCache, 'hit');
  assert.equal(second.info.sha256, first.info.sha256, "the recorded checksum is the source file's");
  assert.deepEqual(second.predictions, first.predictions);

  await writeFile(join(cache, files[0]!), 'not a model');
  const third = await runOnce();
  assert.equal(
    third.info.runtime.optimizedModelCache,
    'off',
    'the broken entry is dropped and the original optimised again',
  );
  assert.equal(third.info.sha256, first.info.sha256);
  assert.deepEqual(third.predictions, first.predictions);
});

test('--model-cache off loads the original with onnxruntime optimising it', async (t) => {
  const { url } = await startModelServer(t, ['--model-cache', 'off']);
  const info = (await (await fetch(`${url}/v1/model`)).json()) as ModelInfo;
  assert.equal(info.runtime.optimizedModelCache, 'off');
  assert.match(info.sha256, /^[0-9a-f]{64}$/);
});
