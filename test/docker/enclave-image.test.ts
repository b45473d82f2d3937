// The enclave image (docker/Dockerfile, target enclave) built on the local engine and run with no network
// at all, as an enclave runs: the entrypoint brings the model server up on loopback, the relay on
// the vsock stand-in socket, and socat on the vsock port; the model server answers through the
// stand-in and says it is in a Nitro enclave. Nothing is fetched at start.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { sampleImage } from '../../common/index.js';
import { PROJECT_IMAGES, buildProjectImage, docker, mebibytes } from '../helpers/docker.js';

const TAG = PROJECT_IMAGES.enclave;

// A client inside the container: the stand-in socket is the only way in.
const CLIENT = `
const http = require('node:http');
const [method, path] = process.argv.slice(1);
const body = [];
process.stdin.on('data', (chunk) => body.push(chunk)).on('end', () => {
  const req = http.request({ socketPath: '/run/mpg/vsock.sock', method, path, headers: method === 'POST' ? { 'content-type': 'image/jpeg' } : {} }, (res) => {
    let text = '';
    res.on('data', (chunk) => (text += chunk)).on('end', () => console.log(JSON.stringify({ status: res.statusCode, body: JSON.parse(text) })));
  });
  req.on('error', (error) => { console.log(JSON.stringify({ status: 0, error: error.message })); });
  req.end(Buffer.concat(body));
});`;

async function inside(
  container: string,
  method: string,
  path: string,
  input: Buffer | string = '',
): Promise<{ status: number; body?: Record<string, unknown> }> {
  const { stdout } = await docker(['exec', '-i', container, 'node', '-e', CLIENT, method, path], { input });
  return JSON.parse(stdout) as { status: number; body?: Record<string, unknown> };
}

test(
  'the enclave image builds, and serves through the vsock stand-in with no network',
  { timeout: 900_000 },
  async (t) => {
    const bytes = await buildProjectImage('enclave');
    t.diagnostic(`${TAG}: ${mebibytes(bytes)}`);

    const { stdout: id } = await docker(['run', '-d', '--network', 'none', TAG, '--threads', '1']);
    const container = id.trim();
    t.after(() => docker(['rm', '-f', container], { allowFailure: true }));

    // Only loopback: an enclave has no network.
    const { stdout: interfaces } = await docker(['exec', container, 'ls', '/sys/class/net']);
    assert.deepEqual(interfaces.trim().split(/\s+/), ['lo']);

    let ready = await inside(container, 'GET', '/readyz');
    for (let attempt = 0; ready.status !== 200 && attempt < 600; attempt += 1) {
      await new Promise((resolve) => setTimeout(resolve, 250));
      ready = await inside(container, 'GET', '/readyz');
    }
    assert.equal(ready.status, 200, (await docker(['logs', container])).stderr);

    const model = await inside(container, 'GET', '/v1/model');
    assert.equal(model.body?.enclave, 'nitro');
    assert.equal(model.body?.name, 'resnet18');

    const prediction = await inside(container, 'POST', '/predict?topk=3', await sampleImage({ seed: 2 }));
    assert.equal(prediction.status, 200);
    const [first] = (prediction.body?.predictions as { topk: unknown[] }[]) ?? [];
    assert.equal(first?.topk.length, 3);

    // The NSM helper is in the image; with no /dev/nsm in a container, /attestation says so (503),
    // and the model server keeps serving.
    const noNsm = await docker(['exec', '-i', container, '/usr/local/bin/nsm-request'], {
      input: Buffer.from([0xa0]),
      allowFailure: true,
    });
    assert.equal(noNsm.code, 1);
    assert.match(noNsm.stderr, /cannot open \/dev\/nsm/);
    const attestation = await inside(container, 'GET', '/attestation?nonce=00');
    assert.equal(attestation.status, 503);
    assert.equal(attestation.body?.code, 'MS_ATTESTATION_UNAVAILABLE');

    // The entrypoint bridged its vsock port with socat, as on Nitro.
    const { stderr: logs } = await docker(['logs', container]);
    assert.match(logs, /enclave-entrypoint: vsock port 5005 -> unix:\/run\/mpg\/vsock\.sock/);
    assert.match(logs, /"mode":"nitro"/);

    // SIGTERM (docker stop) drains and exits cleanly.
    await docker(['stop', '-t', '20', container]);
    const { stdout: exitCode } = await docker(['inspect', '--format', '{{.State.ExitCode}}', container]);
    assert.equal(exitCode.trim(), '0', (await docker(['logs', container])).stderr.slice(-2000));
  },
);
