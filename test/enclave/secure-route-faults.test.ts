// The enclave fails under a steady mixed load. First its model server dies. Then, in a separate
// test, only the parent relay in front of it dies (on Nitro that is socat on the parent, which
// systemd restarts). Each time the secure route answers at once with a coded error: first 502
// GW_UPSTREAM_CONNECTION_FAILED, then 503 GW_NO_SECURE_UPSTREAM from the moment the member is
// ejected. The public route keeps answering 200, and no secure request ever reaches the public
// server. When the enclave or relay comes back at the same socket path, the gateway's health
// checks bring the secure route back by themselves, with no gateway restart.
//
// Real parts throughout: a real public model server, the real emulated enclave (entrypoint,
// enclave relay, model server in their own process group) and a real gateway. The only stand-in
// is the second test's parent relay. It is the same relay code, started here, because
// EmulatedEnclave gives no handle on its own relay.
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { test } from 'node:test';
import type { EmulatedEnclave, Relay } from '../../enclave/index.js';
import { createRelay, startEmulatedEnclave } from '../../enclave/index.js';
import type { Gateway } from '../../gateway/index.js';
import { sampleImage } from '../../common/index.js';
import { startGateway, waitFor } from '../helpers/gateway.js';
import { startModelServer, testModelPath } from '../helpers/model-server.js';

const ENCLAVE_MODEL_SERVER_ARGS = ['--threads', '1', '--log-level', 'warn'];
const LOAD_LOOPS = 4;
// The query marks each request's route, so a request the public server receives can be traced.
const PUBLIC_QUERY = 'topk=5';
const SECURE_QUERY = 'topk=3';
/** Upper bounds on waits. They only catch a hang and are not measured figures. */
const RECOVERY_TIMEOUT_MS = 30_000;
const PHASE_TIMEOUT_MS = 10_000;

interface Answer {
  route: 'public' | 'secure';
  /** When it was sent and answered (performance.now()). */
  sentAt: number;
  answeredAt: number;
  status: number;
  /** The gateway's error code, if any. */
  code?: string;
  privacyRoute: string | null;
}

interface SteadyLoad {
  answers: Answer[];
  stop(): Promise<void>;
}

/** LOAD_LOOPS closed loops, each alternating public and secure requests, until stop(). */
function steadyLoad(gatewayUrl: string, image: Buffer): SteadyLoad {
  const answers: Answer[] = [];
  let running = true;
  const loop = async (offset: number) => {
    for (let n = offset; running; n++) {
      const route = n % 2 === 0 ? 'public' : 'secure';
      const query = route === 'public' ? PUBLIC_QUERY : SECURE_QUERY;
      const sentAt = performance.now();
      try {
        const response = await fetch(`${gatewayUrl}/predict-${route}?${query}`, {
          method: 'POST',
          headers: { 'content-type': 'image/jpeg' },
          body: image,
        });
        const body = (await response.json()) as { code?: string };
        answers.push({
          route,
          sentAt,
          answeredAt: performance.now(),
          status: response.status,
          code: body.code,
          privacyRoute: response.headers.get('x-privacy-route'),
        });
      } catch (error) {
        // Status 0: the gateway itself failed, which every assertion below counts as a failure.
        answers.push({
          route,
          sentAt,
          answeredAt: performance.now(),
          status: 0,
          code: (error as Error).message,
          privacyRoute: null,
        });
      }
    }
  };
  const loops = Array.from({ length: LOAD_LOOPS }, (_, index) => loop(index));
  return {
    answers,
    stop: async () => {
      running = false;
      await Promise.all(loops);
    },
  };
}

interface PublicSide {
  url: string;
  /** Every /predict request the public model server received: its query and x-privacy-route. */
  received: { url: string; privacyRoute: string | undefined }[];
}

async function startPublicSide(t: TestContext): Promise<PublicSide> {
  const running = await startModelServer(t, ['--threads', '1']);
  const received: PublicSide['received'] = [];
  // An extra listener only watches and leaves the request to Fastify.
  running.server.app.server.on(
    'request',
    (request: { url?: string; headers: Record<string, string | string[] | undefined> }) => {
      if (request.url?.startsWith('/predict'))
        received.push({ url: request.url, privacyRoute: request.headers['x-privacy-route'] as string | undefined });
    },
  );
  return { url: running.url, received };
}

async function tempDir(t: TestContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'mpg-secure-faults-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

async function startEnclave(t: TestContext, socketPath: string): Promise<EmulatedEnclave> {
  const enclave = await startEmulatedEnclave({ socketPath, modelServerArgs: ENCLAVE_MODEL_SERVER_ARGS });
  t.after(() => enclave.stop());
  await enclave.ready;
  return enclave;
}

/** The pids of every live (not zombie) process in process group `pgid`. */
function groupMembers(pgid: number): number[] {
  return readdirSync('/proc')
    .filter((name) => /^\d+$/.test(name))
    .filter((pid) => {
      try {
        const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
        const [state, , pgrp] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
        return state !== 'Z' && Number(pgrp) === pgid;
      } catch {
        return false;
      }
    })
    .map(Number);
}

/** The enclave's model server: the member of its group started as `mpg model-server`. */
function modelServerPid(enclave: EmulatedEnclave): number {
  const pids = groupMembers(enclave.pid).filter((pid) => {
    try {
      return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').includes('model-server');
    } catch {
      return false;
    }
  });
  assert.equal(pids.length, 1, `exactly one model server in the enclave's process group, found ${pids.join(', ')}`);
  return pids[0]!;
}

function secureOk(load: SteadyLoad, after: number): boolean {
  return load.answers.some((answer) => answer.route === 'secure' && answer.sentAt >= after && answer.status === 200);
}

/** Load runs until `ejected`. The wait afterwards gives several secure requests after ejection. */
async function waitForEjection(gateway: Gateway, load: SteadyLoad): Promise<number> {
  await waitFor(() => gateway.groups.secure.healthyCount === 0, 'the secure member to be ejected', PHASE_TIMEOUT_MS);
  const ejectedAt = performance.now();
  await waitFor(
    () => load.answers.filter((answer) => answer.route === 'secure' && answer.sentAt >= ejectedAt).length >= 10,
    'secure answers after the ejection',
    PHASE_TIMEOUT_MS,
  );
  return ejectedAt;
}

/** The assertions both failure modes share. */
function checkAnswers(
  load: SteadyLoad,
  publicSide: PublicSide,
  { failedAt, ejectedAt, restartedAt }: { failedAt: number; ejectedAt: number; restartedAt: number },
) {
  const publicAnswers = load.answers.filter((answer) => answer.route === 'public');
  const secureAnswers = load.answers.filter((answer) => answer.route === 'secure');
  assert.ok(publicAnswers.length > 0 && secureAnswers.length > 0);

  const publicFailures = publicAnswers.filter((answer) => answer.status !== 200 || answer.privacyRoute !== 'public');
  assert.deepEqual(publicFailures, [], 'every public request succeeded on the public route throughout');

  const misrouted = secureAnswers.filter((answer) => answer.privacyRoute !== 'secure');
  assert.deepEqual(misrouted, [], 'every secure answer came from the secure route');

  const duringOutage = secureAnswers.filter((answer) => answer.sentAt >= failedAt && answer.sentAt < restartedAt);
  assert.ok(duringOutage.length >= 10, `enough secure requests during the outage (${duringOutage.length})`);
  const unexpected = duringOutage.filter(
    (answer) =>
      !(answer.status === 502 && answer.code === 'GW_UPSTREAM_CONNECTION_FAILED') &&
      !(answer.status === 503 && answer.code === 'GW_NO_SECURE_UPSTREAM'),
  );
  assert.deepEqual(
    unexpected,
    [],
    'while the enclave is down a secure request gets 502 connection failed or 503 no secure upstream, nothing else',
  );

  // Sent once the member was ejected, so they were refused before being sent anywhere. No timeout
  // was waited on: a timeout would have answered 504.
  const afterEjection = duringOutage.filter((answer) => answer.sentAt >= ejectedAt);
  assert.ok(afterEjection.length >= 10, `enough secure requests after the ejection (${afterEjection.length})`);
  assert.deepEqual(
    afterEjection.filter((answer) => answer.status !== 503 || answer.code !== 'GW_NO_SECURE_UPSTREAM'),
    [],
    'once ejected, every secure request is refused with 503 GW_NO_SECURE_UPSTREAM',
  );

  assert.ok(secureOk(load, restartedAt), 'the secure route answers 200 again after the restart');

  // The public server saw exactly the public requests: none of the secure ones, not even during the outage.
  assert.equal(
    publicSide.received.length,
    publicAnswers.length,
    'the public server received one request per public request sent',
  );
  assert.deepEqual(
    publicSide.received.filter(
      (request) =>
        request.privacyRoute !== 'public' || !request.url.includes(PUBLIC_QUERY) || request.url.includes(SECURE_QUERY),
    ),
    [],
    'no secure request reached the public server',
  );
}

test("the enclave's model server is killed under load: secure 502 then 503 at once, public untouched, recovers when a new enclave starts", async (t) => {
  await testModelPath();
  const dir = await tempDir(t);
  const socketPath = join(dir, 'enclave.sock');
  const [publicSide, firstEnclave, image] = await Promise.all([
    startPublicSide(t),
    startEnclave(t, socketPath),
    sampleImage({ width: 64, height: 64 }),
  ]);
  const { gateway, url } = await startGateway(t, [
    '--secure-upstream',
    `unix:${socketPath}`,
    '--public-upstream',
    publicSide.url,
  ]);

  const load = steadyLoad(url, image);
  t.after(() => load.stop());
  await waitFor(() => secureOk(load, 0), 'a first secure answer', PHASE_TIMEOUT_MS);

  // The model server alone is killed. The entrypoint then exits with it, as on Nitro, and takes
  // the enclave's relay with it. The parent relay (in this process) stays up, accepts
  // connections and finds nothing behind them.
  const victim = modelServerPid(firstEnclave);
  process.kill(victim, 'SIGKILL');
  assert.equal(await firstEnclave.exited, 128 + 9, "the entrypoint exits with the killed model server's status");
  await waitFor(
    () => groupMembers(firstEnclave.pid).length === 0,
    "the enclave's process group to be gone",
    PHASE_TIMEOUT_MS,
  );
  const failedAt = performance.now();
  const ejectedAt = await waitForEjection(gateway, load);

  // The enclave comes back at the same socket path. The old one's parent relay must go first,
  // as on Nitro when the enclave is restarted behind the parent relay.
  await firstEnclave.stop();
  const restartedAt = performance.now();
  const secondEnclave = await startEnclave(t, socketPath);
  await waitFor(() => secureOk(load, restartedAt), 'the secure route to recover by itself', RECOVERY_TIMEOUT_MS);
  await load.stop();

  checkAnswers(load, publicSide, { failedAt, ejectedAt, restartedAt });
  await secondEnclave.stop();
  assert.deepEqual(groupMembers(secondEnclave.pid), [], 'no enclave process is left');
  assert.ok(!existsSync(socketPath), 'the secure socket is removed');
});

test('the parent relay dies under load: secure 502 then 503 at once, public untouched, recovers when the relay is restarted', async (t) => {
  await testModelPath();
  const dir = await tempDir(t);
  const socketPath = join(dir, 'secure.sock');
  const [publicSide, enclave, image] = await Promise.all([
    startPublicSide(t),
    startEnclave(t, join(dir, 'unused-enclave.sock')),
    sampleImage({ width: 64, height: 64 }),
  ]);
  // The parent relay the gateway reaches. On Nitro it would be a process of its own (socat, or
  // `mpg enclave relay`) in front of the vsock port, here in front of its stand-in.
  const startParentRelay = async (): Promise<Relay> => {
    const relay = await createRelay({ listen: { path: socketPath }, target: { path: enclave.vsockStandin } });
    t.after(() => relay.close(0));
    return relay;
  };
  const firstRelay = await startParentRelay();
  const { gateway, url } = await startGateway(t, [
    '--secure-upstream',
    `unix:${socketPath}`,
    '--public-upstream',
    publicSide.url,
  ]);

  const load = steadyLoad(url, image);
  t.after(() => load.stop());
  await waitFor(() => secureOk(load, 0), 'a first secure answer', PHASE_TIMEOUT_MS);

  // The relay goes away abruptly: it stops accepting, its socket is removed and every open
  // connection is cut, in flight or not.
  await firstRelay.close(0);
  const failedAt = performance.now();
  const ejectedAt = await waitForEjection(gateway, load);

  const restartedAt = performance.now();
  await startParentRelay();
  await waitFor(() => secureOk(load, restartedAt), 'the secure route to recover by itself', RECOVERY_TIMEOUT_MS);
  await load.stop();

  checkAnswers(load, publicSide, { failedAt, ejectedAt, restartedAt });
  assert.ok(groupMembers(enclave.pid).length > 0, 'the enclave itself was never touched');
});
