// The model server as users run it: the `mpg` launcher in its own process, configured by flags
// and MPG_ variables, stopped by signals.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { sampleImage } from '../../common/index.js';
import { postJson, testModelPath } from '../helpers/model-server.js';
import { runMpg, startMpg, waitUntilOk } from '../helpers/process.js';

test('mpg --help lists the commands and mpg model-server --help every option with its MPG_ twin', async () => {
  const top = await runMpg(['--help']);
  assert.equal(top.code, 0);
  assert.match(top.stdout, /model-server/);
  assert.match(top.stdout, /model /);
  const help = await runMpg(['model-server', '--help']);
  assert.equal(help.code, 0);
  for (const [flag = '', env = ''] of [
    ['--host HOST', 'MPG_HOST'],
    ['--port N', 'MPG_PORT'],
    ['--socket PATH', 'MPG_SOCKET'],
    ['--model PATH', 'MPG_MODEL'],
    ['--threads N', 'MPG_THREADS'],
    ['--max-batch N', 'MPG_MAX_BATCH'],
    ['--batch-window-ms N', 'MPG_BATCH_WINDOW_MS'],
    ['--max-queue N', 'MPG_MAX_QUEUE'],
  ]) {
    assert.ok(help.stdout.includes(flag), flag);
    assert.ok(help.stdout.includes(`env: ${env}`), env);
  }
});

test('bad options exit 2 with a message that names the option and its unit', async () => {
  const unknown = await runMpg(['model-server', '--bogus', '1']);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /unknown option --bogus/);
  const range = await runMpg(['model-server', '--max-batch', '0']);
  assert.equal(range.code, 2);
  assert.match(range.stderr, /--max-batch must be an integer from 1 to 256 \(images\), got "0"/);
  const fromEnv = await runMpg(['model-server'], { MPG_BATCH_WINDOW_MS: 'soon' });
  assert.equal(fromEnv.code, 2);
  assert.match(fromEnv.stderr, /MPG_BATCH_WINDOW_MS must be an integer from 0 to 1000 \(ms\), got "soon"/);
  const conflict = await runMpg(['model-server', '--max-queue', '4', '--max-images', '8']);
  assert.equal(conflict.code, 2);
  assert.match(conflict.stderr, /--max-images \(8 images\) must not exceed --max-queue \(4 images\)/);
});

test('port 0 prints the chosen address; MPG_ variables configure; SIGTERM finishes in-flight requests and exits 0', async (t) => {
  await testModelPath();
  const server = startMpg(t, ['model-server', '--port', '0', '--threads', '1', '--log-level', 'warn'], {
    MPG_MAX_BATCH: '3',
    MPG_MAX_QUEUE: '40',
  });
  const [, url = ''] = await server.waitForOutput(/listening on (http:\/\/127\.0\.0\.1:\d+)/);
  await waitUntilOk(`${url}/readyz`);
  const model = (await (await fetch(`${url}/v1/model`)).json()) as { batching: unknown };
  assert.deepEqual(model.batching, { maxBatch: 3, batchWindowMs: 2, maxQueue: 40 });

  const image = (await sampleImage()).toString('base64');
  const slow = postJson(`${url}/predict`, { images: Array(12).fill(image) });
  // Wait until the server holds the request, then ask it to stop.
  for (;;) {
    const metrics = await (await fetch(`${url}/metrics`)).text();
    if (/mpg_model_server_images_in_flight [1-9]/.test(metrics)) break;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  server.child.kill('SIGTERM');
  const answer = await slow;
  assert.equal(answer.status, 200, 'the request in flight is finished');
  assert.equal((answer.body.predictions as unknown[]).length, 12);
  assert.equal(await server.exited, 0, server.stderr());
  await assert.rejects(fetch(`${url}/healthz`), 'nothing listens after exit');
});

test('--socket serves on a Unix socket', async (t) => {
  await testModelPath();
  const directory = await mkdtemp(join(tmpdir(), 'mpg-socket-'));
  t.after(() => rm(directory, { recursive: true, force: true }));
  const socketPath = join(directory, 'model.sock');
  const server = startMpg(t, ['model-server', '--socket', socketPath, '--threads', '1', '--log-level', 'warn']);
  await server.waitForOutput(/listening on .*model\.sock/);
  const get = (path: string) =>
    new Promise<{ status: number; body: string }>((resolve, reject) => {
      request({ socketPath, path }, (response) => {
        let body = '';
        response.on('data', (chunk: Buffer) => (body += chunk.toString()));
        response.on('end', () => resolve({ status: response.statusCode ?? 0, body }));
      })
        .on('error', reject)
        .end();
    });
  for (;;) {
    if ((await get('/readyz')).status === 200) break;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  const model = JSON.parse((await get('/v1/model')).body) as { name: string };
  assert.equal(model.name, 'resnet18');
  server.child.kill('SIGINT');
  assert.equal(await server.exited, 0);
});
