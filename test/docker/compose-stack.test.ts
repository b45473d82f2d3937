// The public stack of docker/compose.yaml (the gateway and the public model server, as images) with
// the secure route pointed at an emulated enclave on this host, as on an EC2 parent where the
// parent relay's socket sits in /run/mpg: real predictions through the gateway container to both
// routes, the same answers from both, HEALTHCHECK turning healthy, docker stats memory, the
// secure route failing closed once the enclave is gone, a clean stop on SIGTERM, and nothing left.
//
// The enclave's socket is 0600 (the relay's own rule), and the gateway container runs as a
// non-root uid. On EC2 the relay unit gives the socket to the mpg user (socat's user=mpg) and the
// gateway runs as mpg's uid; here the socket and its directory are given to uid 1000, the
// container's default user, the same way.
//
// The gateway attests the enclave before it routes to it: the emulated enclave's PCRs ("mpg enclave
// build --mode emulated") and its NSM's throwaway root sit in the directory mounted at /etc/mpg,
// and test/fixtures/compose.emulated-enclave.yaml tells the gateway to trust that root, which only
// a test may do.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { chmod, chown, copyFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { readyzStatus } from '../../enclave/readiness.js';
import { sampleImage } from '../../common/index.js';
import { PROJECT_IMAGES, buildProjectImage, compose, docker, mebibytes } from '../helpers/docker.js';
import { runMpg, startMpg } from '../helpers/process.js';

const CONTAINER_UID = 1000; // the node user of the images
const EMULATED_ENCLAVE_OVERLAY = 'test/fixtures/compose.emulated-enclave.yaml';
const POLL_MS = 500;
const POLL_ATTEMPTS = 240; // how many times to ask before giving up on a state (health, readiness)
// Resident memory the project claims (README): the model server at 225-272 MiB under load, the
// gateway a few tens of MiB. Twice that is a regression worth failing on.
const MAX_MODEL_SERVER_MIB = 512;
const MAX_GATEWAY_MIB = 256;

interface Prediction {
  topk: { index: number; label: string; score: number }[];
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function until<T>(what: string, probe: () => Promise<T>, done: (value: T) => boolean): Promise<T> {
  let value = await probe();
  for (let attempt = 0; !done(value); attempt++) {
    if (attempt >= POLL_ATTEMPTS)
      assert.fail(`${what}: still ${JSON.stringify(value)} after ${POLL_ATTEMPTS} attempts`);
    await sleep(POLL_MS);
    value = await probe();
  }
  return value;
}

async function health(container: string): Promise<string> {
  const { stdout } = await docker(['inspect', '--format', '{{.State.Health.Status}}', container]);
  return stdout.trim();
}

/** docker stats' memory figure ("251.1MiB / 23.5GiB"), in MiB. */
function parseMemoryMiB(usage: string): number {
  const match = /^([\d.]+)\s*([KMG]?i?B)\b/.exec(usage.trim());
  assert.ok(match, usage);
  const factor: Record<string, number> = {
    B: 1 / 1024 / 1024,
    KiB: 1 / 1024,
    kB: 1 / 1024,
    MiB: 1,
    MB: 1,
    GiB: 1024,
    GB: 1024,
  };
  return Number(match[1]) * (factor[match[2]!] ?? NaN);
}

async function predict(
  base: string,
  route: 'public' | 'secure',
  image: Buffer,
): Promise<{ status: number; routeHeader: string | null; body: { predictions?: Prediction[]; code?: string } }> {
  const response = await fetch(`${base}/predict-${route}?topk=5`, {
    method: 'POST',
    headers: { 'content-type': 'image/jpeg' },
    body: image,
  });
  return {
    status: response.status,
    routeHeader: response.headers.get('x-privacy-route'),
    body: (await response.json()) as { predictions?: Prediction[]; code?: string },
  };
}

/**
 * The two routes run the same model file on the same onnxruntime, possibly with different thread
 * counts: the classes and their order must be identical, the scores equal to float precision.
 */
function assertSamePredictions(secure: Prediction[], pub: Prediction[]): void {
  assert.equal(secure.length, pub.length);
  secure.forEach((prediction, i) => {
    const other = pub[i]!;
    assert.deepEqual(
      prediction.topk.map(({ index, label }) => ({ index, label })),
      other.topk.map(({ index, label }) => ({ index, label })),
    );
    prediction.topk.forEach(({ score }, k) =>
      assert.ok(Math.abs(score - other.topk[k]!.score) < 1e-6, `score ${k}: ${score} against ${other.topk[k]!.score}`),
    );
  });
}

test(
  'docker/compose.yaml: the gateway container serves both routes, the secure one through an emulated enclave on the host',
  { timeout: 1_800_000 },
  async (t) => {
    for (const target of ['model-server', 'gateway'] as const) {
      t.diagnostic(`${PROJECT_IMAGES[target]}: ${mebibytes(await buildProjectImage(target))}`);
    }

    // ---- the enclave, emulated on the host, behind the parent relay's socket ----
    const socketDir = await mkdtemp(join(tmpdir(), 'mpg-compose-'));
    t.after(() => rm(socketDir, { recursive: true, force: true }));
    const socketPath = join(socketDir, 'enclave.sock');
    const enclave = startMpg(t, ['enclave', 'run', '--enclave-socket', socketPath, '--', '--threads', '1']);
    await enclave.waitForOutput(/listening on unix:/);
    await until(
      'the emulated enclave /readyz',
      () => readyzStatus(socketPath),
      (status) => status === 200,
    );
    // What the relay unit does on EC2 (socat user=mpg; /run/mpg 0750 mpg:mpg), for the container's uid.
    let gatewayUid = process.getuid?.() ?? CONTAINER_UID;
    if (gatewayUid === 0) {
      gatewayUid = CONTAINER_UID;
      await chown(socketDir, gatewayUid, gatewayUid);
      await chown(socketPath, gatewayUid, gatewayUid);
    }
    await chmod(socketDir, 0o750);

    // What the gateway attests the enclave against, where compose mounts it (/etc/mpg).
    const configDir = await mkdtemp(join(tmpdir(), 'mpg-compose-config-'));
    t.after(() => rm(configDir, { recursive: true, force: true }));
    await chmod(configDir, 0o755);
    const built = await runMpg([
      'enclave',
      'build',
      '--mode',
      'emulated',
      '--measurements',
      join(configDir, 'measurements.json'),
    ]);
    assert.equal(built.code, 0, built.stderr);
    // The emulated NSM's root sits beside the vsock stand-in, which the enclave's log names.
    const standin = /"vsockStandin":"([^"]+)"/.exec(enclave.stderr())?.[1];
    assert.ok(standin, enclave.stderr());
    await copyFile(join(dirname(standin), 'nsm-root.pem'), join(configDir, 'nsm-root.pem'));
    for (const file of ['measurements.json', 'nsm-root.pem']) await chmod(join(configDir, file), 0o644);

    // ---- the stack: one command ----
    const project = `mpg-test-${randomBytes(4).toString('hex')}`;
    const env = {
      MPG_IMAGE_PREFIX: 'mpg',
      MPG_IMAGE_TAG: 'test',
      MPG_ENCLAVE_SOCKET_DIR: socketDir,
      MPG_CONFIG_DIR: configDir,
      MPG_UID: String(gatewayUid),
      MPG_GID: String(gatewayUid),
      MPG_GATEWAY_ADDRESS: '127.0.0.1',
      MPG_GATEWAY_PORT: '0', // free ports: other tests share this engine
      MPG_MODEL_SERVER_PORT: '0',
    };
    const files = [EMULATED_ENCLAVE_OVERLAY];
    t.after(() =>
      compose(project, ['down', '--volumes', '--remove-orphans', '--timeout', '5'], env, { allowFailure: true, files }),
    );
    await compose(project, ['up', '-d', '--no-build'], env, { files });

    const containerOf = async (service: string) =>
      (await compose(project, ['ps', '-q', service], env, { files })).stdout.trim();
    const modelServer = await containerOf('model-server');
    const gateway = await containerOf('gateway');
    assert.ok(modelServer && gateway, 'both containers exist');
    const publishedPort = async (container: string, port: number) => {
      const { stdout } = await docker(['port', container, `${port}/tcp`]);
      return stdout.trim().split('\n')[0]!;
    };
    const base = `http://${await publishedPort(gateway, 8080)}`;
    const modelServerBase = `http://${await publishedPort(modelServer, 8081)}`;

    // HEALTHCHECK: both containers turn healthy (the gateway once both routes have a healthy member).
    for (const [name, container] of [
      ['model-server', modelServer],
      ['gateway', gateway],
    ] as const) {
      const status = await until(
        `${name} health`,
        () => health(container),
        (value) => value !== 'starting',
      );
      assert.equal(status, 'healthy', `${name}: ${(await docker(['logs', container])).stderr.slice(-3000)}`);
    }
    const ready = (await (await fetch(`${base}/readyz`)).json()) as {
      routes: Record<string, { healthy: number }>;
      attestation?: { members: { attested: boolean }[] };
    };
    assert.deepEqual(ready.routes, { public: { members: 1, healthy: 1 }, secure: { members: 1, healthy: 1 } });
    // The gateway container attested the enclave on the host before routing to it.
    assert.deepEqual(
      ready.attestation?.members.map(({ attested }) => attested),
      [true],
      JSON.stringify(ready),
    );

    // ---- real predictions, both routes, the same image ----
    for (const seed of [1, 2, 3]) {
      const image = await sampleImage({ seed });
      const pub = await predict(base, 'public', image);
      const secure = await predict(base, 'secure', image);
      assert.equal(pub.status, 200, JSON.stringify(pub.body));
      assert.equal(secure.status, 200, JSON.stringify(secure.body));
      assert.equal(pub.routeHeader, 'public');
      assert.equal(secure.routeHeader, 'secure');
      assert.equal(pub.body.predictions?.[0]?.topk.length, 5);
      assertSamePredictions(secure.body.predictions!, pub.body.predictions);
    }
    // The seed study's contract, a JSON batch, through the secure route.
    const images = await Promise.all([4, 5].map(async (seed) => (await sampleImage({ seed })).toString('base64')));
    const batch = await fetch(`${base}/predict-secure`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ images, topk: 3 }),
    });
    assert.equal(batch.status, 200);
    assert.equal(((await batch.json()) as { predictions: Prediction[] }).predictions.length, 2);

    // What Prometheus scrapes (deploy/prometheus/scrape.yml): the gateway, and the model server on 127.0.0.1.
    const gatewayMetrics = await (await fetch(`${base}/metrics`)).text();
    assert.match(gatewayMetrics, /^mpg_gateway_requests_total\{route="secure",status="200"\} 4$/m);
    assert.match(gatewayMetrics, /^mpg_gateway_requests_total\{route="public",status="200"\} 3$/m);
    assert.match(await (await fetch(`${modelServerBase}/metrics`)).text(), /^mpg_model_server_images_total/m);

    // ---- docker stats: memory of each container ----
    const { stdout: stats } = await docker([
      'stats',
      '--no-stream',
      '--format',
      '{{.ID}}\t{{.MemUsage}}',
      modelServer,
      gateway,
    ]);
    const memory = new Map(
      stats
        .trim()
        .split('\n')
        .map((line) => {
          const [id, usage] = line.split('\t');
          return [id!, parseMemoryMiB(usage!)] as const;
        }),
    );
    const memoryOf = (container: string) => [...memory].find(([id]) => container.startsWith(id))?.[1];
    const modelServerMiB = memoryOf(modelServer);
    const gatewayMiB = memoryOf(gateway);
    t.diagnostic(
      `docker stats memory: model-server ${modelServerMiB?.toFixed(1)} MiB, gateway ${gatewayMiB?.toFixed(1)} MiB`,
    );
    assert.ok(modelServerMiB !== undefined && modelServerMiB > 0 && modelServerMiB < MAX_MODEL_SERVER_MIB, stats);
    assert.ok(gatewayMiB !== undefined && gatewayMiB > 0 && gatewayMiB < MAX_GATEWAY_MIB, stats);

    // ---- no enclave: the secure route fails closed, the public route goes on ----
    enclave.child.kill('SIGTERM');
    assert.equal(await enclave.exited, 0, enclave.stderr().slice(-3000));
    const closed = await until(
      'the secure route without an enclave',
      () => predict(base, 'secure', Buffer.from('not sent anywhere')),
      // Until the next health check ejects the member, a request may find the socket gone (502).
      (answer) => answer.body.code !== 'GW_UPSTREAM_CONNECTION_FAILED',
    );
    assert.equal(closed.status, 503);
    assert.equal(closed.body.code, 'GW_NO_SECURE_UPSTREAM', JSON.stringify(closed.body));
    assert.equal((await predict(base, 'public', await sampleImage({ seed: 1 }))).status, 200);
    const notReady = await fetch(`${base}/readyz`);
    assert.equal(notReady.status, 503);
    assert.equal(((await notReady.json()) as { code: string }).code, 'GW_NOT_READY');

    // ---- SIGTERM through tini: both drain and exit 0 ----
    await compose(project, ['stop', '--timeout', '20'], env, { files });
    for (const container of [modelServer, gateway]) {
      const { stdout } = await docker(['inspect', '--format', '{{.State.ExitCode}}', container]);
      assert.equal(stdout.trim(), '0', (await docker(['logs', container])).stderr.slice(-2000));
    }

    // ---- nothing left: no container, network or volume of the project ----
    await compose(project, ['down', '--volumes', '--remove-orphans'], env, { files });
    const label = `label=com.docker.compose.project=${project}`;
    for (const kind of [
      ['ps', '-a'],
      ['network', 'ls'],
      ['volume', 'ls'],
    ]) {
      const { stdout } = await docker([...kind, '--quiet', '--filter', label]);
      assert.equal(stdout.trim(), '', `${kind.join(' ')} after down`);
    }
  },
);
