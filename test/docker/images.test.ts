// The model-server and gateway images (docker/Dockerfile, targets model-server and gateway) as
// built on the local engine: a non-root user, tini as PID 1, a HEALTHCHECK on /readyz without curl,
// and nothing in the final stage that only building needs (compilers, dev dependencies, npm's
// cache); the gateway ships neither onnxruntime nor sharp. Their sizes go to the README.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PROJECT_IMAGES, buildProjectImage, docker, mebibytes } from '../helpers/docker.js';

interface ImageConfig {
  User: string;
  Entrypoint: string[] | null;
  Cmd: string[] | null;
  Env: string[];
  ExposedPorts: Record<string, unknown> | null;
  Healthcheck?: { Test: string[]; Interval: number; Timeout: number; StartPeriod: number; Retries: number };
}

async function imageConfig(tag: string): Promise<ImageConfig> {
  const { stdout } = await docker(['image', 'inspect', '--format', '{{json .Config}}', tag]);
  return JSON.parse(stdout) as ImageConfig;
}

/** Runs `script` with sh in a throwaway container of `tag`, as root so every path is readable. */
async function shellIn(tag: string, script: string): Promise<string> {
  const { stdout } = await docker([
    'run',
    '--rm',
    '--network',
    'none',
    '--user',
    '0',
    '--entrypoint',
    'sh',
    tag,
    '-c',
    script,
  ]);
  return stdout;
}

// What only a build needs. The base image (node:*-slim) has no compiler; this proves none crept in.
// (/tmp holds the base image's own Node compile caches: not ours, and not npm's.)
const BUILD_TOOLS = ['gcc', 'cc', 'g++', 'c++', 'make', 'python3', 'git', 'curl', 'wget'];
const DEV_DEPENDENCIES = ['typescript', 'eslint', '@types/node', 'typescript-eslint', '@eslint/js'];

function assertRuntimeConfig(config: ImageConfig, command: string, port: number): void {
  // The node user of the base image, by number: Kubernetes' runAsNonRoot can only check a uid.
  assert.equal(config.User, '1000:1000');
  assert.deepEqual(config.Entrypoint, ['/usr/bin/tini', '--', '/app/bin/mpg', command]);
  assert.ok(config.Env.includes('MPG_HOST=0.0.0.0'), config.Env.join(' '));
  assert.ok(config.Env.includes(`MPG_PORT=${port}`), config.Env.join(' '));
  assert.ok(config.Env.includes('NODE_ENV=production'), config.Env.join(' '));
  assert.deepEqual(Object.keys(config.ExposedPorts ?? {}), [`${port}/tcp`]);
  const healthcheck = config.Healthcheck;
  assert.ok(healthcheck, 'a HEALTHCHECK');
  assert.deepEqual(healthcheck.Test.slice(0, 3), ['CMD', 'node', '-e']);
  assert.match(healthcheck.Test[3] ?? '', /\/readyz/);
}

async function assertNothingToBuildWith(tag: string): Promise<void> {
  const found = await shellIn(
    tag,
    `for tool in ${BUILD_TOOLS.join(' ')}; do command -v "$tool" || true; done; ` +
      'for dir in /root/.npm /home/node/.npm /root/.cache /home/node/.cache /tmp/npm-* /tmp/.npm; do [ -e "$dir" ] && echo "$dir"; done; ' +
      `cd /app && for dep in ${DEV_DEPENDENCIES.join(' ')}; do [ -e "node_modules/$dep" ] && echo "node_modules/$dep"; done; true`,
  );
  assert.equal(found, '', `found in ${tag}: ${found}`);
}

test(
  'the model-server image: non-root, tini, HEALTHCHECK on /readyz, the model baked in, nothing to build with',
  { timeout: 900_000 },
  async (t) => {
    const tag = PROJECT_IMAGES['model-server'];
    const bytes = await buildProjectImage('model-server');
    t.diagnostic(`${tag}: ${mebibytes(bytes)}`);

    assertRuntimeConfig(await imageConfig(tag), 'model-server', 8081);
    await assertNothingToBuildWith(tag);

    // The generated ResNet18 is in the image, and the models directory is the runtime user's, so
    // the onnxruntime-optimised copy can be kept beside it.
    const listing = await shellIn(
      tag,
      'stat -c "%u:%g %n" /app/models /app/models/resnet18.onnx; stat -c "%s" /app/models/resnet18.onnx',
    );
    assert.match(listing, /^1000:1000 \/app\/models\n1000:1000 \/app\/models\/resnet18\.onnx\n\d+\n$/);
    // Only this platform's onnxruntime binaries (docker/prune-native.sh), and no load generator.
    const modules = await shellIn(
      tag,
      'cd /app/node_modules && ls onnxruntime-node/bin/napi-v*/; [ -e autocannon ] && echo autocannon; true',
    );
    assert.deepEqual(modules.trim().split('\n'), ['linux']);
  },
);

test(
  'the gateway image: non-root, tini, HEALTHCHECK on /readyz, and neither onnxruntime nor sharp',
  { timeout: 900_000 },
  async (t) => {
    const tag = PROJECT_IMAGES.gateway;
    const bytes = await buildProjectImage('gateway');
    t.diagnostic(`${tag}: ${mebibytes(bytes)}`);

    assertRuntimeConfig(await imageConfig(tag), 'gateway', 8080);
    await assertNothingToBuildWith(tag);

    const modules = await shellIn(
      tag,
      'cd /app/node_modules && for dep in onnxruntime-node onnxruntime-common sharp @img autocannon fastify @fastify/http-proxy undici prom-client; do [ -e "$dep" ] && echo "$dep"; done; [ -e /app/models ] && echo models; true',
    );
    assert.deepEqual(modules.trim().split('\n'), ['fastify', '@fastify/http-proxy', 'undici', 'prom-client']);

    // With no upstream it refuses to start and says why (exit 2); the compose test runs it for real.
    const { code, stderr } = await docker(['run', '--rm', '--network', 'none', tag], { allowFailure: true });
    assert.equal(code, 2, stderr);
    assert.match(stderr, /give at least one --public-upstream or --secure-upstream/);
    const help = await docker(['run', '--rm', '--network', 'none', tag, '--help']);
    assert.match(help.stdout, /--secure-upstream/);
  },
);
