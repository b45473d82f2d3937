// docker/Dockerfile and docker/compose.yaml read as text, in npm test (npm run test:docker builds and
// runs them): what the classic builder of Docker 20.10 cannot do stays out, each runtime stage has
// its user, init and health check, and the Compose file points the secure route at the relay.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';

const read = (path: string) => readFileSync(new URL(`../../../${path}`, import.meta.url), 'utf8');
const dockerfile = read('docker/Dockerfile');
const compose = read('docker/compose.yaml');

/** The Dockerfile's stages by name: the instructions from `FROM ... AS name` to the next FROM. */
function stages(text: string): Map<string, string> {
  const result = new Map<string, string>();
  const instructions = text.split('\n').filter((line) => !line.startsWith('#'));
  let name = '';
  for (const line of instructions) {
    const from = /^FROM \S+ AS (\S+)$/.exec(line);
    if (from) name = from[1]!;
    if (name) result.set(name, `${result.get(name) ?? ''}${line}\n`);
  }
  return result;
}

test('docker/Dockerfile: Node 24 LTS by default, and nothing the classic builder of Docker 20.10 lacks', () => {
  assert.match(dockerfile, /^ARG BASE_IMAGE=node:24-bookworm-slim$/m);
  assert.doesNotMatch(dockerfile, /^# ?syntax=/m, 'a syntax line pulls an image');
  assert.doesNotMatch(dockerfile, /COPY --link|<</, 'COPY --link and heredocs need BuildKit');
  assert.doesNotMatch(dockerfile, /RUN --mount/, 'RUN --mount needs BuildKit');
  assert.deepEqual(
    [...stages(dockerfile).keys()],
    [
      'build',
      'gateway-modules',
      'runtime',
      'gateway',
      'model',
      'model-server-modules',
      'model-server',
      'nsm-helper',
      'enclave',
    ],
  );
});

test('docker/Dockerfile: the model-server and gateway stages run as a non-root user under tini, with a HEALTHCHECK on /readyz without curl', () => {
  const byName = stages(dockerfile);
  assert.match(byName.get('runtime')!, /apt-get install -y --no-install-recommends tini/);
  for (const [name, command] of [
    ['model-server', 'model-server'],
    ['gateway', 'gateway'],
  ] as const) {
    const stage = byName.get(name)!;
    assert.match(stage, /^FROM runtime AS /m, name);
    assert.match(stage, /^USER 1000:1000$/m, name);
    assert.ok(stage.includes(`ENTRYPOINT ["/usr/bin/tini", "--", "/app/bin/mpg", "${command}"]`), name);
    assert.match(stage, /^HEALTHCHECK .*\n\s+CMD \["node", "-e", ".*\/readyz/m, name);
    assert.doesNotMatch(stage, /curl|wget/, name);
    // Built things come from earlier stages: no npm, no compiler in the final stage.
    assert.doesNotMatch(stage, /^RUN /m, name);
  }
  assert.doesNotMatch(byName.get('gateway')!, /--from=model\b|onnx/, 'the gateway has no model');
  assert.match(byName.get('model')!, /^ARG MODEL_URL=''$/m);
  assert.match(byName.get('model')!, /^ARG MODEL_SHA256=''$/m);
  // The enclave and the model server get the same model.
  assert.match(byName.get('enclave')!, /COPY --from=model \/src\/models\/resnet18\.onnx/);
  assert.match(byName.get('model-server')!, /COPY --from=model .*\/src\/models\//);
});

test('docker/compose.yaml: both services from docker/Dockerfile, the secure route on the relay socket bind-mounted from MPG_ENCLAVE_SOCKET_DIR', () => {
  assert.doesNotMatch(
    compose,
    /^version:/m,
    'the Compose specification needs no version; v1 1.27+ and v2 both read it',
  );
  for (const target of ['model-server', 'gateway']) {
    assert.match(compose, new RegExp(`dockerfile: docker/Dockerfile\\n\\s+target: ${target}\\n`), target);
  }
  assert.match(compose, /MPG_SECURE_UPSTREAM: unix:\/run\/mpg\/enclave\.sock/);
  assert.match(compose, /MPG_PUBLIC_UPSTREAM: http:\/\/model-server:8081/);
  assert.match(compose, /- \$\{MPG_ENCLAVE_SOCKET_DIR:-\/run\/mpg\}:\/run\/mpg:ro/);
  assert.match(compose, /user: "\$\{MPG_UID:-1000\}:\$\{MPG_GID:-1000\}"/);
  // Secure members are attested against the measurements the enclave's build wrote.
  assert.match(compose, /MPG_ATTESTATION_PCRS: \/etc\/mpg\/measurements\.json/);
  assert.match(compose, /- \$\{MPG_CONFIG_DIR:-\/etc\/mpg\}:\/etc\/mpg:ro/);
  assert.doesNotMatch(compose, /INSECURE/, 'the insecure trust of an emulated root belongs to the test overlay only');
  // The model server is reachable from the host on loopback only (for Prometheus).
  assert.match(compose, /- "127\.0\.0\.1:\$\{MPG_MODEL_SERVER_PORT:-8081\}:8081"/);
});
