// The gateway trusts a secure member only once it has verified its attestation, end to end with
// the real emulated enclave (entrypoint, relays, model server with its emulated NSM):
//   - refused before the gateway has attested anything, and while the pins or the root are wrong,
//     with 503 GW_SECURE_NOT_ATTESTED saying why;
//   - served once attested;
//   - refused again, with no gateway restart, once the enclave is replaced by one that runs
//     another model (other measurements);
// and the metrics and /readyz say all of it.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { test } from 'node:test';
import { emulatedImageMeasurements, writeMeasurementsFile } from '../../attestation/index.js';
import type { EmulatedEnclave } from '../../enclave/index.js';
import { startEmulatedEnclave } from '../../enclave/index.js';
import { loadGateway, parseGatewayConfig } from '../../gateway/index.js';
import { OPEN_POLICY } from '../../gateway/index.js';
import { sampleImage } from '../../common/index.js';
import { writeResNet18 } from '../../model/index.js';
import { startGateway, waitFor } from '../helpers/gateway.js';
import { testModelPath } from '../helpers/model-server.js';

const ENCLAVE_ARGS = ['--threads', '1', '--log-level', 'warn', '--no-warmup'];
/** Only catches a hang. */
const WAIT_MS = 60_000;

interface Setup {
  dir: string;
  socket: string;
  rootFile: string;
  pinned: string;
}

async function setup(t: TestContext): Promise<Setup> {
  const dir = await mkdtemp(join(tmpdir(), 'mpg-attest-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const pinned = join(dir, 'measurements.json');
  await writeMeasurementsFile(pinned, emulatedImageMeasurements({ modelPath: await testModelPath() }));
  return { dir, socket: join(dir, 'enclave.sock'), rootFile: join(dir, 'nsm-root.pem'), pinned };
}

async function enclave(
  t: TestContext,
  { socket, rootFile }: Setup,
  modelArgs: string[] = [],
): Promise<EmulatedEnclave> {
  const started = await startEmulatedEnclave({
    socketPath: socket,
    nsmRootFile: rootFile,
    modelServerArgs: [...ENCLAVE_ARGS, ...modelArgs],
  });
  t.after(() => started.stop());
  await started.ready;
  return started;
}

async function secure(url: string): Promise<{ status: number; code?: string; message?: string }> {
  const response = await fetch(`${url}/predict-secure?topk=1`, {
    method: 'POST',
    headers: { 'content-type': 'image/jpeg' },
    body: await sampleImage(),
  });
  const body = (await response.json()) as { code?: string; message?: string };
  return { status: response.status, ...(body.code ? { code: body.code, message: body.message } : {}) };
}

async function metric(url: string, line: RegExp): Promise<number | undefined> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const match = text.split('\n').find((candidate) => line.test(candidate));
  return match === undefined ? undefined : Number(match.split(' ').at(-1));
}

test(
  'a secure member is refused before it is attested, served once attested, and refused again when replaced by an enclave with other measurements',
  { timeout: 180_000 },
  async (t) => {
    const paths = await setup(t);
    const first = await enclave(t, paths);

    // Before any attestation: the gateway has not checked the member yet.
    const { config } = parseGatewayConfig(
      [
        '--port',
        '0',
        '--log-level',
        'silent',
        '--health-interval-ms',
        '100',
        '--attestation-retry-ms',
        '200',
        '--secure-upstream',
        `unix:${paths.socket}`,
        '--attestation-pcrs',
        paths.pinned,
        '--insecure-trust-emulated-nsm-root',
        paths.rootFile,
      ],
      {},
    );
    const gateway = await loadGateway(config, OPEN_POLICY);
    t.after(() => gateway.close());
    const url = await gateway.app.listen({ host: '127.0.0.1', port: 0 });
    const before = await secure(url);
    assert.equal(before.status, 503);
    assert.equal(before.code, 'GW_SECURE_NOT_ATTESTED');
    assert.match(before.message!, /\(not attested yet\)/);

    // Attested: served.
    await gateway.start();
    await waitFor(async () => (await secure(url)).status === 200, 'the attested enclave to serve', WAIT_MS);
    const ready = (await (await fetch(`${url}/readyz`)).json()) as {
      attestation: { trust: string; warning: string; members: { attested: boolean; moduleId: string }[] };
    };
    assert.equal(ready.attestation.trust, 'insecure-emulated-nsm-root');
    assert.match(ready.attestation.warning, /INSECURE: the emulated NSM's throwaway root is trusted/);
    assert.equal(ready.attestation.members[0]!.attested, true);
    assert.equal(await metric(url, /^mpg_gateway_attestation_verified\{member="unix:/), 1);
    assert.equal(await metric(url, /^mpg_gateway_attestation_trust\{mode="insecure_emulated_nsm_root"\}/), 1);
    assert.ok((await metric(url, /^mpg_gateway_attestation_verifications_total\{result="ok"\}/))! >= 1);
    const age = (await metric(url, /^mpg_gateway_attestation_age_seconds\{member="unix:/))!;
    assert.ok(age >= 0, `the attestation's age is reported: ${age}`);

    // Replaced: the same socket, a new throwaway root at the same path, but another model.
    await first.stop();
    const otherModel = join(paths.dir, 'other.onnx');
    await writeResNet18(otherModel, { seed: 7 });
    await enclave(t, paths, ['--model', otherModel]);
    await waitFor(
      async () => (await secure(url)).code === 'GW_SECURE_NOT_ATTESTED',
      'the replaced enclave to be refused',
      WAIT_MS,
    );
    const refused = await secure(url);
    assert.equal(refused.status, 503);
    assert.match(
      refused.message!,
      /No secure upstream holds a verified attestation \(pcr_mismatch: PCR0 is [0-9a-f]{96}; expected [0-9a-f]{96}\); the request was not sent anywhere else/,
    );
    assert.ok((await metric(url, /^mpg_gateway_attestation_failures_total\{reason="pcr_mismatch"\}/))! >= 1);
    assert.equal(await metric(url, /^mpg_gateway_attestation_verified\{member="unix:/), 0);
    const after = (await (await fetch(`${url}/readyz`)).json()) as {
      code: string;
      attestation: { members: { attested: boolean; problem: string }[] };
    };
    assert.equal(after.code, 'GW_NOT_READY');
    assert.match(after.attestation.members[0]!.problem, /^pcr_mismatch: /);
  },
);

test(
  'without the emulated root the enclave is refused for its root; with other pins, for its PCRs',
  { timeout: 120_000 },
  async (t) => {
    const paths = await setup(t);
    await enclave(t, paths);

    const untrusted = await startGateway(t, [
      '--secure-upstream',
      `unix:${paths.socket}`,
      '--attestation-pcrs',
      paths.pinned,
    ]);
    await waitFor(
      async () => (await secure(untrusted.url)).code === 'GW_SECURE_NOT_ATTESTED',
      'the untrusted root to be refused',
      WAIT_MS,
    );
    assert.match((await secure(untrusted.url)).message!, /\(root: /);
    const readyz = (await (await fetch(`${untrusted.url}/readyz`)).json()) as {
      attestation: { trust: string; warning?: string };
    };
    assert.equal(readyz.attestation.trust, 'aws-root');
    assert.equal(readyz.attestation.warning, undefined);

    const otherPins = join(paths.dir, 'other-measurements.json');
    await writeMeasurementsFile(otherPins, emulatedImageMeasurements({ modelPath: paths.pinned }));
    const mismatched = await startGateway(t, [
      '--secure-upstream',
      `unix:${paths.socket}`,
      '--attestation-pcrs',
      otherPins,
      '--insecure-trust-emulated-nsm-root',
      paths.rootFile,
    ]);
    await waitFor(
      async () => (await secure(mismatched.url)).code === 'GW_SECURE_NOT_ATTESTED',
      'other pins to be refused',
      WAIT_MS,
    );
    assert.match((await secure(mismatched.url)).message!, /\(pcr_mismatch: /);
  },
);

test('the gateway refuses to start with secure upstreams and no pins, and with an unreadable measurements file', async () => {
  assert.throws(
    () => parseGatewayConfig(['--secure-upstream', 'unix:/tmp/x.sock'], {}),
    /secure upstreams are trusted only once attested: give --attestation-pcrs FILE/,
  );
  assert.throws(
    () =>
      parseGatewayConfig(
        ['--secure-upstream', 'unix:/tmp/x.sock', '--insecure-skip-attestation', '--attestation-pcrs', '/tmp/m.json'],
        {},
      ),
    /--insecure-skip-attestation cannot be combined with --attestation-pcrs/,
  );
  const { config } = parseGatewayConfig(
    ['--secure-upstream', 'unix:/tmp/x.sock', '--attestation-pcrs', '/nonexistent/measurements.json'],
    {},
  );
  await assert.rejects(
    loadGateway(config, OPEN_POLICY),
    /--attestation-pcrs: cannot read measurements file \/nonexistent\/measurements\.json: no such file/,
  );
});
