// `npm start`: the whole stack as a user runs it — gateway, public model server and the emulated
// enclave, each a real process — answers on both routes and leaves nothing behind.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { sampleImage } from '../../common/index.js';
import { testModelPath } from '../helpers/model-server.js';
import { startMpg } from '../helpers/process.js';

const FAKE_NITRO_CLI = new URL('../../../test/fixtures/fake-nitro-cli', import.meta.url).pathname;

interface Prediction {
  topk: { index: number; label: string; score: number }[];
}

test('mpg stack serves both routes, secure through the emulated enclave, and stops cleanly', async (t) => {
  await testModelPath();
  const stack = startMpg(t, ['stack', '--port', '0', '--public-port', '0']);
  const [, gatewayUrl = ''] = await stack.waitForOutput(/gateway\s+(http:\/\/127\.0\.0\.1:\d+)/);
  await stack.waitForOutput(/Ctrl-C stops everything/);
  const [, runtime = ''] = /(\/\S*mpg-stack-[^/\s]+)\/sample\.jpg/.exec(stack.stdout()) ?? [];
  assert.ok(existsSync(`${runtime}/enclave.sock`), 'the secure socket exists while the stack runs');
  assert.match(stack.stdout(), /no memory encryption and no hardware root of trust/);
  assert.match(
    stack.stdout(),
    /attestation +emulated NSM, PCRs pinned in \S+measurements\.json; its throwaway root trusted INSECURELY/,
  );
  // The secure route is open only because the gateway verified the enclave's attestation.
  const ready = (await (await fetch(`${gatewayUrl}/readyz`)).json()) as {
    attestation: { trust: string; members: { attested: boolean; moduleId: string }[] };
  };
  assert.equal(ready.attestation.trust, 'insecure-emulated-nsm-root');
  assert.equal(ready.attestation.members[0]!.attested, true);
  assert.match(ready.attestation.members[0]!.moduleId, /^emulated-nsm-/);

  const image = await sampleImage({ seed: 5 });
  const answers: Record<string, Prediction[]> = {};
  for (const route of ['public', 'secure']) {
    const response = await fetch(`${gatewayUrl}/predict-${route}?topk=5`, {
      method: 'POST',
      headers: { 'content-type': 'image/jpeg' },
      body: image,
    });
    assert.equal(response.status, 200, route);
    assert.equal(response.headers.get('x-privacy-route'), route);
    answers[route] = ((await response.json()) as { predictions: Prediction[] }).predictions;
  }
  assert.deepEqual(answers.secure, answers.public, 'the enclave predicts exactly what the public server does');

  stack.child.kill('SIGTERM');
  assert.equal(await stack.exited, 0, stack.stderr());
  assert.ok(!existsSync(runtime), 'the runtime directory and its sockets are gone');
  await assert.rejects(fetch(`${gatewayUrl}/healthz`), 'the gateway is gone');
  const survivors = readdirSync('/proc').filter((pid) => {
    if (!/^\d+$/.test(pid)) return false;
    try {
      return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(runtime);
    } catch {
      return false;
    }
  });
  assert.deepEqual(survivors, [], 'no process of the stack is left');
});

test('mpg stack --enclave nitro starts the enclave with nitro-cli, and terminates it and stops everything when it never gets ready', async (t) => {
  await testModelPath();
  const dir = mkdtempSync(join(tmpdir(), 'mpg-stack-nitro-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const eif = join(dir, 'enclave.eif');
  writeFileSync(eif, Buffer.alloc(1024 * 1024));
  const state = join(dir, 'state.json');
  const log = join(dir, 'nitro-cli.log');
  const measurements = join(dir, 'measurements.json');
  writeFileSync(
    measurements,
    JSON.stringify({
      Measurements: {
        HashAlgorithm: 'Sha384 { ... }',
        PCR0: 'a'.repeat(96),
        PCR1: 'b'.repeat(96),
        PCR2: 'c'.repeat(96),
      },
    }),
  );
  const stack = startMpg(
    t,
    [
      'stack',
      '--port',
      '0',
      '--public-port',
      '0',
      '--enclave',
      'nitro',
      '--eif',
      eif,
      '--memory-mib',
      '512',
      '--attestation-pcrs',
      measurements,
      '--ready-timeout-s',
      '1',
    ],
    {
      MPG_NITRO_CLI: FAKE_NITRO_CLI,
      FAKE_NITRO_STATE: state,
      FAKE_NITRO_LOG: log,
    },
  );
  // Nothing answers a vsock connect on this machine, so the enclave never answers /readyz.
  assert.equal(await stack.exited, 1, stack.stderr());
  assert.match(stack.stderr(), /mpg stack: GET \/readyz through unix:\S+enclave\.sock did not answer 200 within 1 s/);
  const calls = readFileSync(log, 'utf8')
    .trim()
    .split('\n')
    .map((line) => (JSON.parse(line) as { argv: string[] }).argv[0]);
  assert.deepEqual(calls, ['run-enclave', 'terminate-enclave']);
  assert.deepEqual(JSON.parse(readFileSync(state, 'utf8')), [], 'the enclave was terminated');
});

test('mpg stack --enclave nitro without --eif or --attestation-pcrs is refused before anything starts', async (t) => {
  const noEif = startMpg(t, ['stack', '--port', '0', '--enclave', 'nitro']);
  assert.equal(await noEif.exited, 2);
  assert.match(noEif.stderr(), /--eif is required with the nitro enclave/);
  const noPcrs = startMpg(t, [
    'stack',
    '--port',
    '0',
    '--enclave',
    'nitro',
    '--eif',
    '/tmp/x.eif',
    '--memory-mib',
    '512',
  ]);
  assert.equal(await noPcrs.exited, 2);
  assert.match(noPcrs.stderr(), /--attestation-pcrs is required with the nitro enclave/);
});
