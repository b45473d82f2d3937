// `mpg client predict` as a user runs it, against the real emulated enclave (entrypoint, relays,
// model server in its own process group, the emulated NSM writing its root file) behind the
// stand-in gateway: it prints the predictions the enclave gives in plaintext and what it verified;
// it refuses an enclave whose measurements differ from the pins, and without the insecure root;
// its options are checked before anything is fetched.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { test } from 'node:test';
import { emulatedImageMeasurements, emulatedMeasurements, writeMeasurementsFile } from '../../attestation/index.js';
import { createSecureClient } from '../../client/index.js';
import { startEmulatedEnclave } from '../../enclave/index.js';
import { sampleImage } from '../../common/index.js';
import { startMpg } from '../helpers/process.js';
import { testModelPath } from '../helpers/model-server.js';
import { startTestSecureGateway } from '../helpers/secure-gateway.js';
import { Agent, request } from 'undici';

const ENCLAVE_ARGS = ['--threads', '1', '--log-level', 'warn', '--no-warmup'];

async function run(t: TestContext, args: string[]) {
  const child = startMpg(t, ['client', 'predict', ...args]);
  const code = await child.exited;
  return { code, stdout: child.stdout(), stderr: child.stderr() };
}

test(
  'mpg client predict against the emulated enclave: the plaintext predictions, what was verified, and the refusals',
  { timeout: 240_000 },
  async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'mpg-client-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const socket = join(dir, 'enclave.sock');
    const rootFile = join(dir, 'nsm-root.pem');
    const pins = join(dir, 'pcrs.json');
    await writeMeasurementsFile(pins, emulatedImageMeasurements({ modelPath: await testModelPath() }));
    const enclave = await startEmulatedEnclave({
      socketPath: socket,
      nsmRootFile: rootFile,
      modelServerArgs: [...ENCLAVE_ARGS, '--ohttp-key-id', '42'],
    });
    t.after(() => enclave.stop());
    await enclave.ready;
    const gateway = await startTestSecureGateway(t, { socketPath: socket });
    const images = [join(dir, 'one.jpg'), join(dir, 'two.png')];
    await writeFile(images[0]!, await sampleImage());
    await writeFile(images[1]!, await sampleImage({ seed: 2, format: 'png' }));

    // The enclave's own answer in plaintext, straight through its socket (what the public route would give).
    const agent = new Agent({ connect: { socketPath: socket } });
    t.after(() => agent.close());
    const plain = await request('http://enclave/predict?topk=3', {
      method: 'POST',
      headers: { 'content-type': 'image/png' },
      body: await readFile(images[1]!),
      dispatcher: agent,
    });
    const expected = ((await plain.body.json()) as { predictions: { topk: { label: string; score: number }[] }[] })
      .predictions[0]!.topk;

    const ok = await run(t, [
      '--gateway',
      gateway.url,
      '--pcrs',
      pins,
      '--insecure-trust-emulated-nsm-root',
      rootFile,
      '--topk',
      '3',
      ...images,
    ]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stderr, /INSECURE: trusting the emulated NSM root/);
    assert.match(ok.stdout, /Verified enclave \(EMULATED root: INSECURE/);
    assert.match(ok.stdout, /key id\s+42/);
    const pinned = JSON.parse(await readFile(pins, 'utf8')) as { Measurements: Record<string, string> };
    assert.ok(ok.stdout.includes(`PCR0         ${pinned.Measurements.PCR0}`));
    const second = ok.stdout.slice(ok.stdout.indexOf(images[1]!));
    for (const { label, score } of expected)
      assert.ok(second.includes(`${score.toFixed(4)}  ${label}`), `${label} in\n${second}`);

    const json = await run(t, [
      '--gateway',
      gateway.url,
      '--pcrs',
      pins,
      '--insecure-trust-emulated-nsm-root',
      rootFile,
      '--json',
      images[0]!,
    ]);
    assert.equal(json.code, 0);
    const printed = JSON.parse(json.stdout) as { status: number; verified: { keyId: number; emulated: boolean } };
    assert.deepEqual([printed.status, printed.verified.keyId, printed.verified.emulated], [200, 42, true]);

    // The SDK in this process, through the real relay: the same answer.
    const client = createSecureClient({
      gatewayUrl: gateway.url,
      pcrs: await readFile(pins, 'utf8'),
      insecureTrustEmulatedNsmRoot: await readFile(rootFile, 'utf8'),
      maxKeyAgeMs: 60_000,
    });
    const answer = await client.predict(await readFile(images[1]!), 'image/png', { topk: 3 });
    assert.deepEqual((answer.json as { predictions: { topk: unknown }[] }).predictions[0]!.topk, expected);

    const before = gateway.counts.predict;
    const otherPins = join(dir, 'other.json');
    await writeMeasurementsFile(
      otherPins,
      emulatedMeasurements({ application: [Buffer.from('another model server')] }),
    );
    const wrong = await run(t, [
      '--gateway',
      gateway.url,
      '--pcrs',
      otherPins,
      '--insecure-trust-emulated-nsm-root',
      rootFile,
      images[0]!,
    ]);
    assert.equal(wrong.code, 1);
    assert.match(wrong.stderr, /REFUSED \(attestation-failed: pcr_mismatch\)/);
    const untrusted = await run(t, ['--gateway', gateway.url, '--pcrs', pins, images[0]!]);
    assert.equal(untrusted.code, 1);
    assert.match(untrusted.stderr, /REFUSED \(attestation-failed: root\)/);
    assert.equal(gateway.counts.predict, before);
  },
);

test('mpg client predict checks its options before fetching anything', async (t) => {
  const missingPins = await run(t, ['--gateway', 'http://127.0.0.1:1', 'image.jpg']);
  assert.equal(missingPins.code, 2);
  assert.match(missingPins.stderr, /--pcrs FILE is required/);
  const noImage = await run(t, ['--gateway', 'http://127.0.0.1:1', '--pcrs', 'pcrs.json']);
  assert.equal(noImage.code, 2);
  assert.match(noImage.stderr, /at least one IMAGE/);
  const unreadable = await run(t, ['--gateway', 'http://127.0.0.1:1', '--pcrs', '/nonexistent/pcrs.json', 'image.jpg']);
  assert.equal(unreadable.code, 2);
  assert.match(unreadable.stderr, /cannot read --pcrs \/nonexistent\/pcrs.json: no such file/);
  const help = await run(t, ['--help']);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /--insecure-trust-emulated-nsm-root FILE/);
});
