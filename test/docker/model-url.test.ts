// Baking a pretrained model into the model-server image: docker build --build-arg MODEL_URL=...
// --build-arg MODEL_SHA256=... downloads it in the build ("mpg model fetch") and keeps it only if
// its SHA-256 matches. The "pretrained" model here is the generated ResNet18 with another seed,
// served by this test over HTTP on 127.0.0.1; the build runs on the host's network to reach it.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { buildArguments, docker } from '../helpers/docker.js';
import { runMpg } from '../helpers/process.js';

const TAG = 'mpg-model-server:test-model-url';

test(
  'MODEL_URL and MODEL_SHA256 bake a downloaded model into the model-server image; a wrong checksum or a missing one fails the build',
  { timeout: 1_800_000 },
  async (t) => {
    await docker(['image', 'rm', TAG], { allowFailure: true }); // left by an interrupted run
    const dir = await mkdtemp(join(tmpdir(), 'mpg-model-url-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const modelPath = join(dir, 'pretrained.onnx');
    const generated = await runMpg(['model', 'generate', '--seed', '7', '--out', modelPath]);
    assert.equal(generated.code, 0, generated.stderr);
    const sha256 = createHash('sha256')
      .update(await readFile(modelPath))
      .digest('hex');

    const requests: string[] = [];
    const server = createServer((request, response) => {
      requests.push(request.url ?? '');
      if (request.url !== '/models/pretrained.onnx') return response.writeHead(404).end();
      response.writeHead(200, { 'content-type': 'application/octet-stream' });
      createReadStream(modelPath).pipe(response);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/models/pretrained.onnx`;
    const build = (args: Record<string, string>) =>
      docker(buildArguments('docker/Dockerfile', TAG, args, { target: 'model-server', network: 'host' }), {
        allowFailure: true,
      });

    // A wrong checksum: the build fails at the model stage, saying why, and no image is tagged.
    const wrong = 'a'.repeat(64);
    const mismatch = await build({ MODEL_URL: url, MODEL_SHA256: wrong });
    assert.notEqual(mismatch.code, 0);
    const output = mismatch.stdout + mismatch.stderr;
    assert.match(output, new RegExp(`checksum mismatch: expected ${wrong}, got ${sha256}; the file was not saved`));
    assert.match(output, /model: the pretrained model was not baked in/);
    assert.ok(requests.includes('/models/pretrained.onnx'), 'the build downloaded the model');
    assert.equal((await docker(['image', 'inspect', TAG], { allowFailure: true })).code, 1, `${TAG} must not exist`);

    // A URL without its checksum is refused before anything is downloaded.
    const before = requests.length;
    const missing = await build({ MODEL_URL: url });
    assert.notEqual(missing.code, 0);
    assert.match(missing.stdout + missing.stderr, /MODEL_URL and MODEL_SHA256 go together/);
    assert.equal(requests.length, before);
    // --force-rm: the failed steps' containers are gone too.
    const { stdout: leftovers } = await docker(['ps', '--all', '--no-trunc', '--format', '{{.Command}}']);
    assert.ok(!leftovers.includes('docker/model.sh'), leftovers);

    // The right checksum: the image carries exactly that file where the model server loads it.
    const good = await build({ MODEL_URL: url, MODEL_SHA256: sha256 });
    assert.equal(good.code, 0, good.stderr.slice(-3000) + good.stdout.slice(-3000));
    t.after(() => docker(['image', 'rm', TAG], { allowFailure: true }));
    const { stdout } = await docker([
      'run',
      '--rm',
      '--network',
      'none',
      '--entrypoint',
      'sha256sum',
      TAG,
      '/app/models/resnet18.onnx',
    ]);
    assert.equal(stdout.split(/\s+/)[0], sha256);
  },
);
