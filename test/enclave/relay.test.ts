// The byte relay over real sockets: what goes in comes out, half-closes pass through, and one
// accepted connection is one target connection for its whole life (keep-alive preserved).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { Agent, createServer as createHttpServer, request } from 'node:http';
import type { AddressInfo, Server, Socket } from 'node:net';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { test } from 'node:test';
import type { Relay, RelayTarget } from '../../enclave/index.js';
import { createRelay } from '../../enclave/index.js';

async function tempDir(t: TestContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'mpg-relay-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

async function listening<S extends Server>(
  t: TestContext,
  server: S,
  where: { path: string } | { host: string; port: number },
): Promise<S> {
  server.listen(where);
  await once(server, 'listening');
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return server;
}

/** A TCP server that answers every connection with "<bytes received>" after the client's FIN. */
async function countingEchoTarget(t: TestContext): Promise<{ target: RelayTarget; connections: () => number }> {
  let connections = 0;
  const server = createServer({ allowHalfOpen: true }, (socket) => {
    connections++;
    let received = 0;
    socket.on('data', (chunk: Buffer) => {
      received += chunk.length;
      socket.write(chunk); // echo while the client is still writing
    });
    // After the client's half-close the server can still answer: that is what half-close is for.
    socket.on('end', () => socket.end(`\nreceived ${received}`));
  });
  await listening(t, server, { host: '127.0.0.1', port: 0 });
  return {
    target: { host: '127.0.0.1', port: (server.address() as AddressInfo).port },
    connections: () => connections,
  };
}

async function startRelay(t: TestContext, target: RelayTarget, path?: string): Promise<Relay> {
  const relay = await createRelay({ listen: { path: path ?? join(await tempDir(t), 'relay.sock') }, target });
  t.after(() => relay.close(0));
  return relay;
}

/** Connects, sends `payload`, half-closes, and collects everything until the relay closes. */
async function exchange(path: string, payload: Buffer): Promise<Buffer> {
  const socket = connect({ path, allowHalfOpen: true });
  const chunks: Buffer[] = [];
  socket.on('data', (chunk: Buffer) => chunks.push(chunk));
  socket.end(payload);
  await once(socket, 'close');
  return Buffer.concat(chunks);
}

test('bytes pass both ways, and a half-close reaches the target while its answer still comes back', async (t) => {
  const { target } = await countingEchoTarget(t);
  const relay = await startRelay(t, target);
  const payload = Buffer.alloc(3 * 1024 * 1024, 'abcdefgh'); // larger than any socket buffer: backpressure is exercised
  const answer = await exchange(relay.address, payload);
  const trailer = Buffer.from(`\nreceived ${payload.length}`);
  assert.equal(answer.length, payload.length + trailer.length);
  assert.ok(answer.subarray(0, payload.length).equals(payload));
  assert.ok(answer.subarray(payload.length).equals(trailer));
  const stats = relay.stats();
  assert.equal(stats.accepted, 1);
  assert.equal(stats.bytesToTarget, payload.length);
  assert.equal(stats.bytesFromTarget, payload.length + trailer.length);
});

test('many concurrent connections each get their own bytes back', async (t) => {
  const { target, connections } = await countingEchoTarget(t);
  const relay = await startRelay(t, target);
  const payloads = Array.from({ length: 50 }, (_, index) => Buffer.alloc(10_000 + index * 997, String(index % 10)));
  const answers = await Promise.all(payloads.map((payload) => exchange(relay.address, payload)));
  answers.forEach((answer, index) => {
    const payload = payloads[index]!;
    assert.ok(answer.subarray(0, payload.length).equals(payload), `connection ${index}`);
    assert.equal(answer.subarray(payload.length).toString(), `\nreceived ${payload.length}`);
  });
  assert.equal(connections(), 50);
  assert.equal(relay.stats().accepted, 50);
});

test('keep-alive is preserved: 20 sequential HTTP requests over one pooled connection open one target connection', async (t) => {
  const dir = await tempDir(t);
  let connections = 0;
  const server = createHttpServer((req, res) => res.end(`hello ${req.url}`));
  server.on('connection', () => connections++);
  await listening(t, server, { path: join(dir, 'target.sock') });
  const relay = await startRelay(t, { path: join(dir, 'target.sock') });
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  t.after(() => agent.destroy());

  for (let index = 0; index < 20; index++) {
    const body = await new Promise<string>((resolve, reject) => {
      request({ socketPath: relay.address, path: `/${index}`, agent }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        res.on('end', () => resolve(text));
      })
        .on('error', reject)
        .end();
    });
    assert.equal(body, `hello /${index}`);
  }
  assert.equal(connections, 1);
  assert.equal(relay.stats().accepted, 1);
  assert.equal(relay.stats().active, 1);
});

test('a target that is down closes the accepted connection promptly and is counted', async (t) => {
  const dir = await tempDir(t);
  const relay = await startRelay(t, { path: join(dir, 'nobody-listens.sock') });
  const started = Date.now();
  const socket: Socket = connect({ path: relay.address });
  socket.on('error', () => {}); // a reset is as good as a close here
  const closed = new Promise((resolve) => socket.once('close', resolve));
  socket.write('GET / HTTP/1.1\r\nhost: x\r\n\r\n');
  await closed;
  assert.ok(Date.now() - started < 1000, 'closed within a second');
  assert.equal(relay.stats().targetFailures, 1);
  assert.equal(relay.stats().active, 0);
});

test('the socket is created with mode 0600 and close() removes it', async (t) => {
  const { target } = await countingEchoTarget(t);
  const path = join(await tempDir(t), 'relay.sock');
  const relay = await createRelay({ listen: { path }, target });
  assert.equal((await stat(path)).mode & 0o777, 0o600);
  await relay.close(0);
  await assert.rejects(stat(path), { code: 'ENOENT' });
});

test('a stale socket file is replaced; a live socket or an ordinary file is refused', async (t) => {
  const { target } = await countingEchoTarget(t);
  const dir = await tempDir(t);

  // A process that binds the socket and is killed leaves the file behind, as a crashed relay does.
  const stalePath = join(dir, 'stale.sock');
  spawnSync(process.execPath, [
    '-e',
    `require('net').createServer().listen(${JSON.stringify(stalePath)}, () => process.kill(process.pid, 'SIGKILL'))`,
  ]);
  assert.ok((await stat(stalePath)).isSocket(), 'the crashed process left its socket file');
  const relay = await startRelay(t, target, stalePath);
  assert.equal((await exchange(relay.address, Buffer.from('x'))).toString(), 'x\nreceived 1');

  await assert.rejects(createRelay({ listen: { path: stalePath }, target }), /is in use by another process/);

  const filePath = join(dir, 'not-a-socket');
  await writeFile(filePath, 'keep me');
  await assert.rejects(createRelay({ listen: { path: filePath }, target }), /is not a socket; refusing to replace it/);
});
