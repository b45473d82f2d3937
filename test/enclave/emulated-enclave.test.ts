// The emulated enclave end to end: the real entrypoint, enclave relay and model server in their
// own network namespace (where this machine permits), reached only through the parent relay's
// Unix socket; and `mpg enclave` as a user runs it.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readFileSync, readlinkSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { test } from 'node:test';
import { findOnPath, startEmulatedEnclave } from '../../enclave/emulated-enclave.js';
import { sampleImage } from '../../common/index.js';
import { postBytes, startModelServer, testModelPath } from '../helpers/model-server.js';
import { runMpg, startMpg } from '../helpers/process.js';

const namespacePermitted =
  process.getuid?.() === 0 && findOnPath('unshare') !== undefined && findOnPath('ip') !== undefined;

async function tempDir(t: TestContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'mpg-enclave-test-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

function overSocket(
  socketPath: string,
  method: string,
  path: string,
  body?: Buffer,
  contentType?: string,
): Promise<{ status: number; body: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = request(
      { socketPath, method, path, headers: contentType ? { 'content-type': contentType } : {} },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as Record<string, unknown> }),
        );
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function childrenOf(pid: number): number[] {
  const path = `/proc/${pid}/task/${pid}/children`;
  return existsSync(path) ? readFileSync(path, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number) : [];
}

/** Runs `node -e script` inside the network namespace of `pid`; resolves with its stdout. */
async function inNetworkNamespaceOf(pid: number, script: string): Promise<string> {
  const child = spawn('nsenter', [`--net=/proc/${pid}/ns/net`, '--', process.execPath, '-e', script], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
  await once(child, 'exit');
  return out.trim();
}

test('the emulated enclave serves the same predictions as a directly started model server, only through its socket', async (t) => {
  await testModelPath();
  const dir = await tempDir(t);
  const socketPath = join(dir, 'enclave.sock');
  const enclave = await startEmulatedEnclave({
    socketPath,
    modelServerArgs: ['--threads', '1', '--log-level', 'warn'],
  });
  t.after(() => enclave.stop());
  await enclave.ready;

  assert.equal(enclave.mode, 'emulated');
  if (namespacePermitted) {
    assert.equal(enclave.isolation.network, 'namespace');
  } else {
    assert.equal(enclave.isolation.network, 'none');
    assert.match(enclave.isolation.reason ?? '', /root|unshare|ip/);
  }

  const image = await sampleImage();
  const secure = await overSocket(socketPath, 'POST', '/predict?topk=5', image, 'image/jpeg');
  assert.equal(secure.status, 200);
  const model = await overSocket(socketPath, 'GET', '/v1/model');
  assert.equal(model.body.enclave, 'emulated');

  const direct = await startModelServer(t, ['--threads', '1']);
  const expected = await postBytes(`${direct.url}/predict?topk=5`, image, 'image/jpeg');
  assert.equal(expected.status, 200);
  assert.deepEqual(secure.body.predictions, expected.body.predictions);

  // The entrypoint (and the relay in it) and the model server: every process of the enclave.
  const pids = [enclave.pid, ...childrenOf(enclave.pid)];
  assert.equal(pids.length, 2, 'the entrypoint and its model server');
  await enclave.stop();
  assert.equal(existsSync(socketPath), false, 'the parent socket is removed');
  assert.equal(existsSync(enclave.vsockStandin), false, 'the vsock stand-in is removed');
  for (const pid of pids) assert.equal(alive(pid), false, `process ${pid} is gone`);
  assert.equal(enclave.relayStats().active, 0);
});

test('inside the namespace the enclave has only loopback: it cannot reach a listener on the host', async (t) => {
  const dir = await tempDir(t);
  const enclave = await startEmulatedEnclave({
    socketPath: join(dir, 'enclave.sock'),
    modelServerArgs: ['--threads', '1', '--log-level', 'warn'],
  });
  t.after(() => enclave.stop());
  await enclave.ready;
  if (enclave.isolation.network === 'none') {
    // Without a namespace the emulation must say so rather than pretend.
    assert.ok(enclave.isolation.reason);
    return;
  }

  const host = createServer((socket) => socket.end('reached'));
  host.listen({ host: '127.0.0.1', port: 0 });
  await once(host, 'listening');
  t.after(() => new Promise<void>((resolve) => host.close(() => resolve())));
  const port = (host.address() as AddressInfo).port;

  const modelServerPid = childrenOf(enclave.pid)[0]!;
  for (const pid of [enclave.pid, modelServerPid]) {
    assert.notEqual(
      readlinkSync(`/proc/${pid}/ns/net`),
      readlinkSync('/proc/self/ns/net'),
      `process ${pid} has a network namespace of its own`,
    );
  }
  const interfaces = await inNetworkNamespaceOf(
    modelServerPid,
    "console.log(Object.keys(require('os').networkInterfaces()).join(','))",
  );
  assert.equal(interfaces, 'lo');
  const attempt = await inNetworkNamespaceOf(
    modelServerPid,
    `require('net').connect(${port}, '127.0.0.1').on('connect', () => { console.log('connected'); process.exit(0); }).on('error', (e) => console.log(e.code))`,
  );
  assert.match(attempt, /^(ECONNREFUSED|ENETUNREACH)$/);
});

test('mpg enclave run: prints the socket and the isolation, serves, and on SIGTERM leaves no process or socket behind', async (t) => {
  await testModelPath();
  const dir = await tempDir(t);
  const socketPath = join(dir, 'enclave.sock');
  const run = startMpg(t, [
    'enclave',
    'run',
    '--enclave-socket',
    socketPath,
    '--',
    '--threads',
    '1',
    '--log-level',
    'warn',
  ]);
  await run.waitForOutput(/enclave \(mode: emulated\) listening on unix:/);
  const [, network = ''] = await run.waitForOutput(/isolation: network (\S+)/);
  assert.equal(network, namespacePermitted ? 'namespace' : 'none');
  await run.waitForOutput(/warning: emulated enclave: no memory encryption and no hardware root of trust/);
  for (;;) {
    const ready = await overSocket(socketPath, 'GET', '/readyz').then(
      (answer) => answer.status,
      () => 0,
    );
    if (ready === 200) break;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  const entrypoints = childrenOf(run.child.pid!);
  const processes = [...entrypoints, ...entrypoints.flatMap(childrenOf)];

  run.child.kill('SIGTERM');
  assert.equal(await run.exited, 0);
  assert.equal(existsSync(socketPath), false);
  for (const pid of processes) assert.equal(alive(pid), false, `process ${pid} is gone`);
  assert.match(run.stderr(), /"mode":"emulated"/);
});

test('mpg enclave: option mistakes exit 2 and name the option', async () => {
  const noTarget = await runMpg(['enclave', 'relay', '--listen-socket', '/tmp/x.sock']);
  assert.equal(noTarget.code, 2);
  assert.match(noTarget.stderr, /give a target: --target-socket PATH, or --target-host HOST with --target-port N/);
  const both = await runMpg([
    'enclave',
    'relay',
    '--listen-socket',
    '/tmp/x.sock',
    '--target-socket',
    '/tmp/y.sock',
    '--target-host',
    'h',
    '--target-port',
    '1',
  ]);
  assert.equal(both.code, 2);
  assert.match(both.stderr, /exclusive/);
  const noSocket = await runMpg(['enclave', 'run']);
  assert.equal(noSocket.code, 2);
  assert.match(noSocket.stderr, /--enclave-socket is required/);
  const cpus = await runMpg(['enclave', 'run', '--enclave-socket', '/tmp/x.sock', '--enclave-cpus', 'all']);
  assert.equal(cpus.code, 2);
  assert.match(cpus.stderr, /--enclave-cpus must be a CPU list such as 2-3 or 1,3, got "all"/);
  const owned = await runMpg(['enclave', 'run', '--enclave-socket', '/tmp/x.sock', '--', '--port', '9000']);
  assert.equal(owned.code, 2);
  assert.match(owned.stderr, /sets the model server's --port itself/);
  const mode = await runMpg(['enclave', 'run', '--enclave-socket', '/tmp/x.sock', '--mode', 'sgx']);
  assert.equal(mode.code, 2);
  assert.match(mode.stderr, /--mode must be one of emulated, nitro, got "sgx"/);
});
