// The parent relay on Nitro is socat, supervised. Nothing answers a vsock connect on this machine,
// so these tests run the same socat listener against a Unix socket target (UNIX-CONNECT in place of
// VSOCK-CONNECT): one upstream connection per accepted connection, keep-alive end to end, a 0600
// socket, restart when socat dies, and nothing left after close.
import assert from 'node:assert/strict';
import { existsSync, statSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import type { Server } from 'node:http';
import { Agent, createServer, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { test } from 'node:test';
import { socatArguments, startVsockRelay } from '../../enclave/vsock-relay.js';

async function upstream(t: TestContext, dir: string): Promise<{ path: string; connections: () => number }> {
  const path = join(dir, 'upstream.sock');
  let connections = 0;
  const server: Server = createServer((req, res) => {
    req.resume();
    req.on('end', () => res.end(JSON.stringify({ path: req.url })));
  });
  server.on('connection', () => (connections += 1));
  await new Promise<void>((resolve) => server.listen(path, resolve));
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  t.after(() => server.closeAllConnections());
  return { path, connections: () => connections };
}

function get(socketPath: string, agent: Agent, path = '/'): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, path, agent }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

async function sandbox(t: TestContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'mpg-vsock-relay-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

test('socat arguments: a 0600 forking Unix listener to VSOCK-CONNECT, and paths socat would misread are refused', () => {
  assert.deepEqual(socatArguments('/run/mpg/enclave.sock', { vsock: { cid: 16, port: 5005 } }), [
    '-d',
    'UNIX-LISTEN:/run/mpg/enclave.sock,fork,mode=600,unlink-early',
    'VSOCK-CONNECT:16:5005',
  ]);
  assert.throws(
    () => socatArguments('/tmp/a,b.sock', { vsock: { cid: 16, port: 5005 } }),
    /may only hold letters, digits/,
  );
  assert.throws(() => socatArguments('/tmp/a:b.sock', { vsock: { cid: 16, port: 5005 } }), /socat reads ':' and ','/);
  assert.throws(() => socatArguments('/tmp/a.sock', { vsock: { cid: 16, port: 0 } }), /bad vsock address/);
});

test('the socat relay keeps one upstream connection per client connection, and its socket is 0600', async (t) => {
  const dir = await sandbox(t);
  const target = await upstream(t, dir);
  const socketPath = join(dir, 'enclave.sock');
  const relay = await startVsockRelay({ socketPath, target: { unix: target.path } });
  t.after(() => relay.close());
  assert.equal(statSync(socketPath).mode & 0o777, 0o600);

  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  t.after(() => agent.destroy());
  for (let index = 0; index < 5; index += 1) {
    const answer = await get(socketPath, agent, `/request-${index}`);
    assert.deepEqual(answer, { status: 200, body: JSON.stringify({ path: `/request-${index}` }) });
  }
  assert.equal(target.connections(), 1, 'five keep-alive requests, one connection through the relay');

  const second = new Agent({ keepAlive: true, maxSockets: 1 });
  t.after(() => second.destroy());
  await get(socketPath, second);
  assert.equal(target.connections(), 2, 'a second client connection gets its own upstream connection');
});

// The timeout only guards against a hang; nothing here measures time.
test(
  'a socat that dies is restarted, and the relay serves again; close leaves no socket and no process',
  { timeout: 60_000 },
  async (t) => {
    const dir = await sandbox(t);
    const target = await upstream(t, dir);
    const socketPath = join(dir, 'enclave.sock');
    const relay = await startVsockRelay({ socketPath, target: { unix: target.path } });
    t.after(() => relay.close());
    const first = relay.pid();
    assert.ok(first !== undefined);

    process.kill(first, 'SIGKILL');
    while (relay.restarts() === 0 || relay.pid() === undefined || !existsSync(socketPath))
      await new Promise((resolve) => setTimeout(resolve, 50));
    assert.notEqual(relay.pid(), first);
    // The new socat may still be binding: retry until it answers.
    let answer: { status: number } | undefined;
    while (!answer) answer = await get(socketPath, new Agent()).catch(() => undefined);
    assert.equal(answer.status, 200);

    const last = relay.pid()!;
    await relay.close();
    assert.equal(existsSync(socketPath), false);
    assert.throws(() => process.kill(last, 0), /ESRCH/, 'socat is gone');
  },
);

test('a missing socat is a clear error', async (t) => {
  const dir = await sandbox(t);
  await assert.rejects(
    startVsockRelay({
      socketPath: join(dir, 'enclave.sock'),
      target: { vsock: { cid: 16, port: 5005 } },
      socat: join(dir, 'no-socat'),
    }),
    /did not start: .*ENOENT.*install socat/,
  );
});
