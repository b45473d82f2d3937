// A sealed (OHTTP) request to the emulated enclave as it really runs: entrypoint, enclave relay and
// model server processes, reached only through the parent relay's Unix socket. The key comes from
// GET /ohttp-keys over that socket; the sealed batch gives the plaintext predictions.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { startEmulatedEnclave } from '../../enclave/emulated-enclave.js';
import { sampleImage } from '../../common/index.js';
import {
  decodeBinaryResponse,
  decodeKeyConfigList,
  encapsulateRequest,
  encodeBinaryRequest,
} from '../../ohttp/index.js';
import { testModelPath } from '../helpers/model-server.js';

function overSocket(
  socketPath: string,
  method: string,
  path: string,
  body?: Uint8Array,
  contentType?: string,
): Promise<{ status: number; type: string | undefined; bytes: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = request(
      { socketPath, method, path, headers: contentType ? { 'content-type': contentType } : {} },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, type: res.headers['content-type'], bytes: Buffer.concat(chunks) }),
        );
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

test("a sealed batch through the emulated enclave's socket gets the predictions a plaintext one gets", async (t) => {
  await testModelPath();
  const dir = await mkdtemp(join(tmpdir(), 'mpg-sealed-enclave-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const socketPath = join(dir, 'enclave.sock');
  const enclave = await startEmulatedEnclave({
    socketPath,
    modelServerArgs: ['--threads', '1', '--log-level', 'warn', '--ohttp-key-id', '77'],
  });
  t.after(() => enclave.stop());
  await enclave.ready;

  const keys = await overSocket(socketPath, 'GET', '/ohttp-keys');
  assert.equal(keys.status, 200);
  assert.equal(keys.type, 'application/ohttp-keys');
  const [config] = decodeKeyConfigList(keys.bytes);
  assert.equal(config!.keyId, 77);

  const image = (await sampleImage()).toString('base64');
  const body = Buffer.from(JSON.stringify({ images: [image, image], topk: 5 }));
  const plain = await overSocket(socketPath, 'POST', '/predict', body, 'application/json');
  assert.equal(plain.status, 200);

  const sealed = await encapsulateRequest(
    config!,
    encodeBinaryRequest({
      method: 'POST',
      scheme: 'https',
      authority: 'enclave',
      path: '/predict',
      headers: [['content-type', 'application/json']],
      body,
    }),
  );
  const answer = await overSocket(socketPath, 'POST', '/predict', sealed.message, 'message/ohttp-req');
  assert.equal(answer.status, 200);
  assert.equal(answer.type, 'message/ohttp-res');
  const inner = decodeBinaryResponse(await sealed.openResponse(answer.bytes));
  assert.equal(inner.status, 200);
  const predictions = (body: Uint8Array) =>
    (JSON.parse(Buffer.from(body).toString('utf8')) as { predictions: unknown }).predictions;
  assert.deepEqual(predictions(inner.body), predictions(plain.bytes));
});
