// `mpg stack` supervises its parts. Under a steady mixed load, each part is killed with SIGKILL in
// turn: the enclave's model server, the enclave's relay (the entrypoint that holds it), the public
// model server, then the gateway. Each comes back by itself, on the same address; while a model
// server is down the other route keeps answering 200, and the secure route answers only with the
// gateway's coded errors (never a refused connection). A restarted enclave has a new boot key and
// is attested again before the gateway sends it anything.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { probe } from '../../enclave/readiness.js';
import { sampleImage } from '../../common/index.js';
import { waitFor } from '../helpers/gateway.js';
import { testModelPath } from '../helpers/model-server.js';
import type { RunningProcess } from '../helpers/process.js';
import { startMpg } from '../helpers/process.js';
import { findDescendant, isAlive } from '../helpers/process-tree.js';

/** Upper bounds on waits: they only catch a hang and are not measured figures. */
const RECOVERY_TIMEOUT_MS = 90_000;
const LOAD_LOOPS = 2;

interface Answer {
  route: 'public' | 'secure';
  sentAt: number;
  status: number;
  code?: string | undefined;
}

function steadyLoad(gatewayUrl: string, image: Buffer) {
  const answers: Answer[] = [];
  let running = true;
  const loop = async (offset: number) => {
    for (let n = offset; running; n++) {
      const route = n % 2 === 0 ? 'public' : 'secure';
      const sentAt = performance.now();
      try {
        const response = await fetch(`${gatewayUrl}/predict-${route}`, {
          method: 'POST',
          headers: { 'content-type': 'image/jpeg' },
          body: image,
        });
        const body = (await response.json()) as { code?: string; statusCode?: number };
        if (response.status !== 200) assert.equal(body.statusCode, response.status, 'a coded error body');
        answers.push({ route, sentAt, status: response.status, code: body.code });
      } catch (error) {
        // Status 0: no answer at all (refused, reset): what must never happen while the gateway lives.
        answers.push({ route, sentAt, status: 0, code: (error as Error).message });
      }
    }
  };
  const loops = Array.from({ length: LOAD_LOOPS }, (_, index) => loop(index));
  return {
    answers,
    since: (at: number, route: Answer['route']) =>
      answers.filter((answer) => answer.sentAt >= at && answer.route === route),
    stop: async () => {
      running = false;
      await Promise.all(loops);
    },
  };
}

interface AttestedMember {
  attested: boolean;
  moduleId?: string;
}

async function secureMember(gatewayUrl: string): Promise<AttestedMember> {
  const ready = (await (await fetch(`${gatewayUrl}/readyz`)).json()) as { attestation: { members: AttestedMember[] } };
  return ready.attestation.members[0]!;
}

async function bootKey(secureSocket: string): Promise<string> {
  const answer = await probe(secureSocket, '/readyz');
  assert.equal(answer.status, 200);
  return (JSON.parse(answer.body) as { publicKeySha256: string }).publicKeySha256;
}

const restarts = (stack: RunningProcess, part: string) => stack.stderr().split(`the ${part} is back`).length - 1;

test('mpg stack restarts whichever part is killed, the other route keeps serving, and a restarted enclave is attested again', async (t) => {
  await testModelPath();
  const stack = startMpg(t, ['stack', '--port', '0', '--public-port', '0']);
  const [, gatewayUrl = ''] = await stack.waitForOutput(/gateway\s+(http:\/\/127\.0\.0\.1:\d+)/);
  const [, secureSocket = ''] = await stack.waitForOutput(/enclave\s+unix:(\S+)/);
  await stack.waitForOutput(/Ctrl-C stops everything/);
  const stackPid = stack.child.pid!;
  const image = await sampleImage({ width: 64, height: 64 });
  const load = steadyLoad(gatewayUrl, image);
  t.after(() => load.stop());
  await waitFor(
    () => load.since(0, 'secure').some((answer) => answer.status === 200),
    'a first secure answer',
    RECOVERY_TIMEOUT_MS,
  );

  const enclaveModelServer = () =>
    findDescendant(
      stackPid,
      "the enclave's model server",
      (argv) => argv.includes('model-server') && argv.includes('--enclave'),
    );
  const enclaveRelay = () =>
    findDescendant(stackPid, "the enclave's entrypoint and relay", (argv) => argv.includes('entrypoint'));
  const publicServer = () =>
    findDescendant(
      stackPid,
      'the public model server',
      (argv) => argv.includes('model-server') && !argv.includes('--enclave'),
    );
  const gateway = () => findDescendant(stackPid, 'the gateway', (argv) => argv.includes('gateway'));

  // The enclave dies twice: its model server, then its relay. Each time only the secure route is hit.
  for (const [victim, what] of [
    [enclaveModelServer, "the enclave's model server"],
    [enclaveRelay, "the enclave's relay"],
  ] as const) {
    const before = {
      member: await secureMember(gatewayUrl),
      key: await bootKey(secureSocket),
      restarts: restarts(stack, 'enclave'),
    };
    assert.equal(before.member.attested, true);
    const pid = victim().pid;
    const killedAt = performance.now();
    process.kill(pid, 'SIGKILL');
    await waitFor(
      () => restarts(stack, 'enclave') > before.restarts,
      `the enclave to be back after killing ${what}`,
      RECOVERY_TIMEOUT_MS,
    );
    const backAt = performance.now();
    await waitFor(
      () => load.since(backAt, 'secure').some((answer) => answer.status === 200),
      `secure answers again after killing ${what}`,
      RECOVERY_TIMEOUT_MS,
    );

    const secure = load.since(killedAt, 'secure').filter((answer) => answer.sentAt < backAt);
    const refused = secure.filter((answer) => answer.status === 503 && answer.code === 'GW_NO_SECURE_UPSTREAM');
    assert.ok(refused.length > 0, `secure requests were refused with the coded 503 while ${what} was down`);
    assert.deepEqual(
      secure.filter(
        (answer) =>
          answer.status !== 200 &&
          !refused.includes(answer) &&
          // The restarted enclave answers before the gateway has attested it: also the gateway's coded 503.
          !(answer.status === 503 && answer.code === 'GW_SECURE_NOT_ATTESTED') &&
          !(answer.status === 502 && answer.code === 'GW_UPSTREAM_CONNECTION_FAILED'),
      ),
      [],
      'while the enclave is down a secure request is answered by the gateway with its coded 503 (or 502 for one caught in flight), never anything else',
    );
    const firstRefusal = refused[0]!.sentAt;
    assert.deepEqual(
      secure.filter((answer) => answer.sentAt > firstRefusal && answer.status === 502),
      [],
      'once the gateway knows, every secure request gets the 503',
    );
    assert.deepEqual(
      load.since(killedAt, 'public').filter((answer) => answer.status !== 200),
      [],
      `every public request got 200 while ${what} was down`,
    );
    assert.ok(!isAlive(pid));
    const after = { member: await secureMember(gatewayUrl), key: await bootKey(secureSocket) };
    assert.equal(after.member.attested, true, 'the new enclave is attested');
    assert.notEqual(after.member.moduleId, before.member.moduleId, 'by a new attestation, from the new enclave');
    assert.notEqual(after.key, before.key, 'the new enclave has a new boot key');
  }
  assert.match(
    stack.stderr(),
    /gateway \| .*(not the one attested|ejected|unhealthy|failed)/i,
    "the gateway's own lines about the outage are shown",
  );

  // The public model server dies: the secure route is untouched.
  const publicRestarts = restarts(stack, 'public model server');
  const publicPid = publicServer().pid;
  const publicKilledAt = performance.now();
  process.kill(publicPid, 'SIGKILL');
  await waitFor(
    () => restarts(stack, 'public model server') > publicRestarts,
    'the public model server to be back',
    RECOVERY_TIMEOUT_MS,
  );
  const publicBackAt = performance.now();
  await waitFor(
    () => load.since(publicBackAt, 'public').some((answer) => answer.status === 200),
    'public answers again',
    RECOVERY_TIMEOUT_MS,
  );
  assert.deepEqual(
    load.since(publicKilledAt, 'secure').filter((answer) => answer.status !== 200),
    [],
    'every secure request got 200 while the public model server was down',
  );
  assert.deepEqual(
    load
      .since(publicKilledAt, 'public')
      .filter(
        (answer) =>
          answer.status !== 200 &&
          !['GW_UPSTREAM_CONNECTION_FAILED', 'GW_NO_HEALTHY_UPSTREAM'].includes(answer.code ?? ''),
      ),
    [],
    'public requests during its outage got coded gateway errors',
  );
  assert.ok(!isAlive(publicPid));
  await load.stop();

  // The gateway dies: it comes back on the same address, and both routes answer through it.
  const gatewayPid = gateway().pid;
  process.kill(gatewayPid, 'SIGKILL');
  await waitFor(() => restarts(stack, 'gateway') === 1, 'the gateway to be back', RECOVERY_TIMEOUT_MS);
  await waitFor(
    async () => (await secureMember(gatewayUrl).catch(() => ({ attested: false }))).attested,
    'the new gateway to attest the enclave',
    RECOVERY_TIMEOUT_MS,
  );
  for (const route of ['public', 'secure']) {
    const response = await fetch(`${gatewayUrl}/predict-${route}`, {
      method: 'POST',
      headers: { 'content-type': 'image/jpeg' },
      body: image,
    });
    assert.equal(response.status, 200, route);
  }
  assert.match(stack.stderr(), /stack +\| .* WARN +the gateway died \(SIGKILL\); restarting in \d+ ms/);

  stack.child.kill('SIGTERM');
  assert.equal(await stack.exited, 0, stack.stderr());
});
