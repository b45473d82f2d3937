// A hostile process on the parent takes over the secure route's socket (issue 12, failure 4): with
// the attested emulated enclave serving, the parent relay's socket file is moved aside and a plain
// model server listens on its path. Kept-alive connections still reach the enclave, so before
// the fix the health checks kept vouching for it while every new connection (the pool growing
// under a burst) carried full secure requests to the impostor, which answered them.
// Now every connection the gateway opens to a secure member must prove the attested boot key
// first: the impostor receives nothing but one possession challenge per connection (no request,
// no health check, no attestation), /readyz stops saying attested, and secure requests get the
// coded 503. The public route is untouched throughout.
import assert from 'node:assert/strict';
import { mkdtemp, rename, rm } from 'node:fs/promises';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { emulatedImageMeasurements, writeMeasurementsFile } from '../../attestation/index.js';
import { startEmulatedEnclave } from '../../enclave/index.js';
import { sampleImage } from '../../common/index.js';
import { startGateway, waitFor } from '../helpers/gateway.js';
import { startModelServer, testModelPath } from '../helpers/model-server.js';

/** More than the secure pool holds open under the steady requests before it, so new connections are opened. */
const BURST = 12;
const PHASE_TIMEOUT_MS = 20_000;

interface Answer {
  status: number;
  code?: string;
}

async function secureAttested(url: string): Promise<{ attested: boolean; problem?: string }> {
  const body = (await (await fetch(`${url}/readyz`)).json()) as {
    attestation?: { members: { attested: boolean; problem?: string }[] };
  };
  return body.attestation!.members[0]!;
}

test("a process that takes over the enclave's socket receives only possession challenges, and the secure route fails closed with a coded 503", async (t) => {
  const modelPath = await testModelPath();
  const dir = await mkdtemp(join(tmpdir(), 'mpg-takeover-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const socketPath = join(dir, 'secure.sock');
  const pins = join(dir, 'pcrs.json');
  await writeMeasurementsFile(pins, emulatedImageMeasurements({ modelPath }));
  const [publicServer, image] = await Promise.all([
    startModelServer(t, ['--threads', '1']),
    sampleImage({ width: 64, height: 64 }),
  ]);
  const enclave = await startEmulatedEnclave({
    socketPath,
    modelServerArgs: ['--threads', '1', '--log-level', 'warn'],
  });
  t.after(() => enclave.stop());
  await enclave.ready;
  const { url } = await startGateway(t, [
    '--secure-upstream',
    `unix:${socketPath}`,
    '--public-upstream',
    publicServer.url,
    '--attestation-pcrs',
    pins,
    '--insecure-trust-emulated-nsm-root',
    enclave.nsmRootFile,
  ]);
  await waitFor(async () => (await secureAttested(url)).attested, 'the enclave to be attested', PHASE_TIMEOUT_MS);

  const send = async (route: 'public' | 'secure'): Promise<Answer> => {
    const response = await fetch(`${url}/predict-${route}`, {
      method: 'POST',
      headers: { 'content-type': 'image/jpeg' },
      body: image,
    });
    const body = (await response.json()) as { code?: string };
    return { status: response.status, ...(body.code ? { code: body.code } : {}) };
  };
  for (let round = 0; round < 3; round++)
    assert.equal((await send('secure')).status, 200, 'the attested enclave serves the secure route');

  // The takeover. The enclave's parent relay keeps listening on the moved file, so connections
  // made before it still reach the enclave; new ones reach the impostor.
  await rename(socketPath, join(dir, 'moved-aside.sock'));
  const impostor = await startModelServer(t, ['--socket', socketPath, '--threads', '1']);
  const received: { method: string; url: string; connection: number }[] = [];
  const connections = new WeakMap<Socket, number>();
  let connectionCount = 0;
  impostor.server.app.server.on('request', (request: { method?: string; url?: string; socket: Socket }) => {
    if (!connections.has(request.socket)) connections.set(request.socket, ++connectionCount);
    received.push({
      method: request.method ?? '',
      url: request.url ?? '',
      connection: connections.get(request.socket)!,
    });
  });

  // Bursts wider than the open connections, until the gateway has noticed; then one more.
  const secureAnswers: Answer[] = [];
  const publicAnswers: Answer[] = [];
  const deadline = Date.now() + PHASE_TIMEOUT_MS;
  let noticed = false;
  let after: Answer[] = [];
  while (Date.now() < deadline) {
    const burst = await Promise.all([
      ...Array.from({ length: BURST }, () => send('secure')),
      send('public'),
      send('public'),
    ]);
    secureAnswers.push(...burst.slice(0, BURST));
    publicAnswers.push(...burst.slice(BURST));
    if (noticed) {
      after = burst.slice(0, BURST);
      break;
    }
    noticed = !(await secureAttested(url)).attested;
  }
  assert.ok(received.length > 0, 'the gateway did try the new listener (the takeover took effect)');
  const notChallenges = received.filter(
    (request) => request.method !== 'GET' || !/^\/readyz\?proof=[0-9a-f]{96}$/.test(request.url),
  );
  assert.deepEqual(
    notChallenges,
    [],
    'no secure request, no health check and no attestation reached the impostor: only possession challenges',
  );
  const perConnection = new Map<number, number>();
  for (const request of received)
    perConnection.set(request.connection, (perConnection.get(request.connection) ?? 0) + 1);
  assert.deepEqual(
    [...perConnection.values()].filter((count) => count > 1),
    [],
    'each connection to it was closed after its one failed challenge',
  );

  assert.ok(noticed, 'the gateway noticed the takeover');

  const state = await secureAttested(url);
  assert.equal(state.attested, false, '/readyz no longer says attested');
  assert.match(state.problem ?? '', /^unproven: /);

  // Secure requests were served by the enclave (on connections proven before) or refused, coded.
  const unexpected = secureAnswers.filter(
    (answer) => answer.status !== 200 && !(answer.status === 503 && answer.code === 'GW_SECURE_NOT_ATTESTED'),
  );
  assert.deepEqual(unexpected, [], 'every secure answer is 200 from the enclave or 503 GW_SECURE_NOT_ATTESTED');
  assert.deepEqual(
    after.filter((answer) => answer.status !== 503),
    [],
    'once noticed, every secure request is refused with the coded 503',
  );
  assert.deepEqual(
    publicAnswers.filter((answer) => answer.status !== 200),
    [],
    'the public route kept serving',
  );
});
