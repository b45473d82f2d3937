// `mpg stack` killed with SIGKILL leaves nothing running: the gateway, the public model server and
// the enclave (its entrypoint and model server) each stop by themselves, the ports are free again,
// and the next start removes the dead stack's runtime directory (and only directories a stack
// marked as its own). A busy port is found before anything starts, and the message says how to
// choose another.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { test } from 'node:test';
import { OWNER_FILE } from '../../stack/runtime-dir.js';
import { waitFor } from '../helpers/gateway.js';
import { testModelPath } from '../helpers/model-server.js';
import { startMpg } from '../helpers/process.js';
import { descendants, isAlive } from '../helpers/process-tree.js';

/** An upper bound on the children's orderly stop (the gateway's grace period is 10 s): only catches a hang. */
const ORPHAN_TIMEOUT_MS = 40_000;

function privateTmp(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'mpg-lifecycle-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function holdPort(t: TestContext): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen({ host: '127.0.0.1', port: 0 }, resolve));
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return (server.address() as AddressInfo).port;
}

test("SIGKILL of mpg stack orphans nothing: every child stops by itself, and the next start removes the dead stack's runtime directory", async (t) => {
  await testModelPath();
  const tmp = privateTmp(t);
  const first = startMpg(t, ['stack', '--port', '0', '--public-port', '0'], { TMPDIR: tmp });
  const [, gatewayUrl = ''] = await first.waitForOutput(/gateway\s+(http:\/\/127\.0\.0\.1:\d+)/);
  const [, publicUrl = ''] = await first.waitForOutput(/public server\s+(http:\/\/127\.0\.0\.1:\d+)/);
  await first.waitForOutput(/Ctrl-C stops everything/);
  const [runtimeDir] = readdirSync(tmp).filter((name) => name.startsWith('mpg-stack-'));
  assert.ok(runtimeDir, 'the stack made its runtime directory in TMPDIR');
  const children = descendants(first.child.pid!);
  const commands = children.map((child) => child.argv.slice(2, 4).join(' '));
  for (const part of ['gateway', 'model-server', 'enclave entrypoint'])
    assert.ok(
      commands.some((command) => command.startsWith(part)),
      `${part} runs (${commands.join(', ')})`,
    );
  assert.equal(children.filter((child) => child.argv.includes('model-server')).length, 2, 'both model servers run');

  first.child.kill('SIGKILL');
  await first.exited;
  await waitFor(
    () => children.every((child) => !isAlive(child.pid)),
    'every child of the killed stack to stop',
    ORPHAN_TIMEOUT_MS,
  );
  await assert.rejects(fetch(`${gatewayUrl}/healthz`), "nothing listens on the gateway's port");
  await assert.rejects(fetch(`${publicUrl}/healthz`), "nothing listens on the public model server's port");
  assert.ok(
    existsSync(join(tmp, runtimeDir, 'enclave.sock')),
    'SIGKILL left the socket behind (nothing could remove it)',
  );

  // Beside it: a directory with the stack's name but no mark, and one whose owner still runs (this
  // process, with its real start time). Neither is the next stack's to remove.
  const unmarked = join(tmp, 'mpg-stack-unmarked');
  mkdirSync(unmarked);
  const alive = join(tmp, 'mpg-stack-alive');
  mkdirSync(alive);
  const ownStart = readFileSync('/proc/self/stat', 'utf8').split(') ')[1]!.split(' ')[19];
  writeFileSync(join(alive, OWNER_FILE), JSON.stringify({ pid: process.pid, startTime: ownStart }));

  // The same gateway port again: free, since the old gateway is gone.
  const port = new URL(gatewayUrl).port;
  const second = startMpg(t, ['stack', '--port', port, '--public-port', '0'], { TMPDIR: tmp });
  await second.waitForOutput(new RegExp(`gateway\\s+http://127\\.0\\.0\\.1:${port}`));
  assert.ok(!existsSync(join(tmp, runtimeDir)), "the dead stack's runtime directory and its socket are gone");
  assert.ok(
    existsSync(unmarked) && existsSync(alive),
    'directories the stack did not mark, or whose owner lives, are left alone',
  );
  assert.match(
    second.stderr(),
    new RegExp(`stack +\\| .*removed the runtime directory of a stack that died without stopping.*${runtimeDir}`),
  );

  second.child.kill('SIGTERM');
  assert.equal(await second.exited, 0, second.stderr());
  assert.deepEqual(
    readdirSync(tmp)
      .filter((name) => name.startsWith('mpg-'))
      .sort(),
    ['mpg-stack-alive', 'mpg-stack-unmarked'],
    'a stack stopped in order leaves nothing of its own',
  );
});

test('a busy gateway or public port stops mpg stack before anything starts, naming the flag and the variable that change it', async (t) => {
  const busy = await holdPort(t);
  const tmp = privateTmp(t); // another test's killed stack in the shared TMPDIR must not change this output
  const gateway = startMpg(t, ['stack', '--port', String(busy), '--public-port', '0'], { TMPDIR: tmp });
  assert.equal(await gateway.exited, 2);
  assert.equal(
    gateway.stderr(),
    `mpg stack: the gateway's port 127.0.0.1:${busy} is already in use: choose another with --port N or MPG_PORT=N (0 picks a free port), or stop what holds it\n`,
  );
  assert.equal(gateway.stdout(), '', 'nothing started');

  const publicSide = startMpg(t, ['stack', '--port', '0'], { MPG_PUBLIC_PORT: String(busy), TMPDIR: tmp });
  assert.equal(await publicSide.exited, 2);
  assert.match(
    publicSide.stderr(),
    new RegExp(
      `^mpg stack: the public model server's port 127\\.0\\.0\\.1:${busy} is already in use: choose another with --public-port N or MPG_PUBLIC_PORT=N`,
    ),
  );
  assert.doesNotMatch(publicSide.stderr(), /EADDRINUSE|\n\s+at /, 'no raw error or stack trace');

  const same = startMpg(t, ['stack', '--port', '18093', '--public-port', '18093'], { TMPDIR: tmp });
  assert.equal(await same.exited, 2);
  assert.match(
    same.stderr(),
    /the public model server and the gateway are both set to port 18093: change --public-port \(or MPG_PUBLIC_PORT\)/,
  );
});
