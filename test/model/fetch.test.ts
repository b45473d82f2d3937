// Each failure mode of `mpg model fetch` against a real local HTTP server: whatever goes wrong,
// no temporary file is left and an existing model is untouched.
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { ModelFetchError, fetchModel } from '../../model/fetch.js';
import { fetchCommand } from '../../model/fetch-command.js';

const MODEL = Buffer.from(Array.from({ length: 300_000 }, (_, index) => (index * 31) % 251));
const MODEL_SHA256 = sha256(MODEL);

function sha256(bytes: Buffer | string): string {
  return createHash('sha256').update(bytes).digest('hex');
}

async function startServer(
  t: TestContext,
  handler: (request: IncomingMessage, response: ServerResponse) => void,
): Promise<string> {
  const server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

function serveModel(request: IncomingMessage, response: ServerResponse): void {
  response.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': MODEL.length });
  response.end(MODEL);
}

async function tempDir(t: TestContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'mpg-fetch-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

async function rejectsWith(promise: Promise<unknown>, reason: ModelFetchError['reason']): Promise<ModelFetchError> {
  let caught: unknown;
  await assert.rejects(promise, (error) => {
    caught = error;
    return error instanceof ModelFetchError && error.reason === reason;
  });
  return caught as ModelFetchError;
}

function memoryStream(): { stream: Writable; text: () => string } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      chunks.push(chunk.toString());
      done();
    },
  });
  return { stream, text: () => chunks.join('') };
}

void test('downloads, verifies and saves the model, leaving no temporary file', async (t) => {
  const base = await startServer(t, serveModel);
  const dir = await tempDir(t);
  const out = join(dir, 'resnet18.onnx');
  const progress: Array<[number, number | undefined]> = [];

  const result = await fetchModel({
    url: `${base}/resnet18.onnx`,
    sha256: MODEL_SHA256.toUpperCase(),
    out,
    onProgress: (received, total) => progress.push([received, total]),
  });

  assert.deepEqual(result, { path: out, bytes: MODEL.length, sha256: MODEL_SHA256, alreadyPresent: false });
  assert.equal(sha256(await readFile(out)), MODEL_SHA256);
  assert.deepEqual(await readdir(dir), ['resnet18.onnx']);
  assert.deepEqual(progress.at(-1), [MODEL.length, MODEL.length]);
});

void test('a wrong checksum saves nothing and leaves an existing model untouched', async (t) => {
  const base = await startServer(t, serveModel);
  const dir = await tempDir(t);
  const out = join(dir, 'resnet18.onnx');
  await writeFile(out, 'the old model');
  const wrong = 'ab'.repeat(32);

  const error = await rejectsWith(fetchModel({ url: `${base}/m.onnx`, sha256: wrong, out, force: true }), 'checksum');

  assert.match(error.message, new RegExp(`expected ${wrong}, got ${MODEL_SHA256}; the file was not saved`));
  assert.equal(await readFile(out, 'utf8'), 'the old model');
  assert.deepEqual(await readdir(dir), ['resnet18.onnx']);
});

void test('a wrong checksum without an existing model leaves the directory empty', async (t) => {
  const base = await startServer(t, serveModel);
  const dir = await tempDir(t);

  await rejectsWith(
    fetchModel({ url: `${base}/m.onnx`, sha256: 'cd'.repeat(32), out: join(dir, 'm.onnx') }),
    'checksum',
  );

  assert.deepEqual(await readdir(dir), []);
});

void test('a connection reset mid-body is an interrupted download and leaves nothing behind', async (t) => {
  const base = await startServer(t, (_request, response) => {
    response.writeHead(200, { 'content-length': MODEL.length });
    response.write(MODEL.subarray(0, MODEL.length / 2), () => response.socket?.destroy());
  });
  const dir = await tempDir(t);
  const out = join(dir, 'resnet18.onnx');
  await writeFile(out, 'the old model');

  await rejectsWith(fetchModel({ url: `${base}/m.onnx`, sha256: MODEL_SHA256, out, force: true }), 'interrupted');

  assert.equal(await readFile(out, 'utf8'), 'the old model');
  assert.deepEqual(await readdir(dir), ['resnet18.onnx']);
});

void test('a body shorter than Content-Length, closed cleanly, is an interrupted download', async (t) => {
  const base = await startServer(t, (_request, response) => {
    response.writeHead(200, { 'content-length': MODEL.length });
    response.write(MODEL.subarray(0, 1000), () => response.socket?.end());
  });
  const dir = await tempDir(t);

  await rejectsWith(
    fetchModel({ url: `${base}/m.onnx`, sha256: MODEL_SHA256, out: join(dir, 'm.onnx') }),
    'interrupted',
  );

  assert.deepEqual(await readdir(dir), []);
});

void test('an HTTP 404 is an error naming the status', async (t) => {
  const base = await startServer(t, (_request, response) => {
    response.writeHead(404, { 'content-type': 'text/plain' });
    response.end('no such model');
  });
  const dir = await tempDir(t);

  const error = await rejectsWith(
    fetchModel({ url: `${base}/missing.onnx?token=secret`, sha256: MODEL_SHA256, out: join(dir, 'm.onnx') }),
    'http-status',
  );

  assert.match(error.message, /HTTP 404 Not Found/);
  assert.doesNotMatch(error.message, /secret/, 'signed-URL credentials stay out of messages');
  assert.deepEqual(await readdir(dir), []);
});

void test('redirects are followed, up to a limit', async (t) => {
  const base = await startServer(t, (request, response) => {
    const hops = /^\/hop\/(\d+)$/.exec(request.url ?? '');
    if (hops) {
      const left = Number(hops[1]);
      response.writeHead(302, { location: left === 0 ? '/model.onnx' : `/hop/${left - 1}` });
      response.end();
      return;
    }
    serveModel(request, response);
  });
  const dir = await tempDir(t);
  const out = join(dir, 'm.onnx');

  const result = await fetchModel({ url: `${base}/hop/4`, sha256: MODEL_SHA256, out });
  assert.equal(result.bytes, MODEL.length);
  assert.equal(sha256(await readFile(out)), MODEL_SHA256);

  const error = await rejectsWith(
    fetchModel({ url: `${base}/hop/5`, sha256: MODEL_SHA256, out: join(dir, 'other.onnx') }),
    'http-status',
  );
  assert.match(error.message, /redirected more than 5 times/);
  assert.deepEqual(await readdir(dir), ['m.onnx']);
});

void test('a server that stops sending times out and leaves nothing behind', async (t) => {
  const base = await startServer(t, (_request, response) => {
    response.writeHead(200, { 'content-length': MODEL.length });
    response.flushHeaders();
  });
  const dir = await tempDir(t);

  const error = await rejectsWith(
    fetchModel({ url: `${base}/m.onnx`, sha256: MODEL_SHA256, out: join(dir, 'm.onnx'), timeoutMs: 100 }),
    'timeout',
  );

  assert.match(error.message, /sent nothing for 100 ms/);
  assert.deepEqual(await readdir(dir), []);
});

void test('bad arguments are refused before any request', async (t) => {
  let requests = 0;
  const base = await startServer(t, (request, response) => {
    requests++;
    serveModel(request, response);
  });
  const dir = await tempDir(t);
  const out = join(dir, 'm.onnx');

  for (const sha of ['', 'abc', 'g'.repeat(64), MODEL_SHA256 + '0']) {
    await rejectsWith(fetchModel({ url: `${base}/m.onnx`, sha256: sha, out }), 'bad-argument');
  }
  await rejectsWith(fetchModel({ url: 'ftp://example.com/m.onnx', sha256: MODEL_SHA256, out }), 'bad-argument');
  await rejectsWith(fetchModel({ url: 'not a url', sha256: MODEL_SHA256, out }), 'bad-argument');
  assert.equal(requests, 0);
  assert.deepEqual(await readdir(dir), []);
});

void test('an existing file with the expected checksum is kept without downloading', async (t) => {
  let requests = 0;
  const base = await startServer(t, (request, response) => {
    requests++;
    serveModel(request, response);
  });
  const dir = await tempDir(t);
  const out = join(dir, 'm.onnx');
  await writeFile(out, MODEL);

  const result = await fetchModel({ url: `${base}/m.onnx`, sha256: MODEL_SHA256, out });

  assert.deepEqual(result, { path: out, bytes: MODEL.length, sha256: MODEL_SHA256, alreadyPresent: true });
  assert.equal(requests, 0);
});

void test('an existing different file is refused without force and replaced with it', async (t) => {
  const base = await startServer(t, serveModel);
  const dir = await tempDir(t);
  const out = join(dir, 'm.onnx');
  await writeFile(out, 'the old model');

  const error = await rejectsWith(fetchModel({ url: `${base}/m.onnx`, sha256: MODEL_SHA256, out }), 'exists');
  assert.match(error.message, /--force/);
  assert.equal(await readFile(out, 'utf8'), 'the old model');

  await fetchModel({ url: `${base}/m.onnx`, sha256: MODEL_SHA256, out, force: true });
  assert.equal(sha256(await readFile(out)), MODEL_SHA256);
  assert.deepEqual(await readdir(dir), ['m.onnx']);
});

void test('mpg model fetch saves the model and reports it', async (t) => {
  const base = await startServer(t, serveModel);
  const dir = await tempDir(t);
  const out = join(dir, 'm.onnx');
  const stdout = memoryStream();
  const stderr = memoryStream();

  const code = await fetchCommand.run({
    argv: ['--url', `${base}/m.onnx`, '--sha256', MODEL_SHA256, '--out', out],
    env: {},
    stdout: stdout.stream,
    stderr: stderr.stream,
  });

  assert.equal(code, 0, stderr.text());
  assert.match(stdout.text(), new RegExp(`saved .*m\\.onnx .*sha256 ${MODEL_SHA256}`));
  assert.equal(sha256(await readFile(out)), MODEL_SHA256);
});

void test('mpg model fetch refuses unknown and missing options with exit code 2', async () => {
  for (const argv of [
    ['--bogus'],
    ['--sha256', MODEL_SHA256],
    ['--url', 'http://127.0.0.1/m.onnx', '--sha256', 'xyz'],
  ]) {
    const stdout = memoryStream();
    const stderr = memoryStream();
    const code = await fetchCommand.run({ argv, env: {}, stdout: stdout.stream, stderr: stderr.stream });
    assert.equal(code, 2, argv.join(' '));
    assert.match(stderr.text(), /^mpg model fetch: (unknown option --bogus|--url is required|--sha256 must be 64)/);
    assert.equal(stdout.text(), '');
  }
});

void test('mpg model fetch --help prints usage', async () => {
  const stdout = memoryStream();
  const stderr = memoryStream();
  const code = await fetchCommand.run({ argv: ['--help'], env: {}, stdout: stdout.stream, stderr: stderr.stream });
  assert.equal(code, 0);
  assert.match(stdout.text(), /^Usage: mpg model fetch --url URL --sha256 HEX/);
  assert.match(stdout.text(), /--timeout-ms N/);
});
