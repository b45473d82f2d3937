// The Nitro commands against a fake nitro-cli (test/fixtures/fake-nitro-cli) that records its
// arguments and prints the real tool's JSON shapes: argument building, output parsing, the
// measurements file, the memory check before start, and the error paths.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, readdir, rm, symlink, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import type { TestContext } from 'node:test';
import { test } from 'node:test';
import { NitroCliError, createNitroCli, loadEnclaveCommand, parseNitroError } from '../../enclave/index.js';
import { emulatedImageMeasurements, readMeasurementsFile } from '../../attestation/index.js';
import { testModelPath } from '../helpers/model-server.js';

const FAKE_NITRO_CLI = new URL('../../../test/fixtures/fake-nitro-cli', import.meta.url).pathname;
const MIB = 1024 * 1024;

interface Sandbox {
  dir: string;
  log: string;
  env: Record<string, string>;
  /** Every nitro-cli call's argv, in order. */
  calls(): Promise<string[][]>;
}

async function sandbox(t: TestContext, extra: Record<string, string> = {}): Promise<Sandbox> {
  const dir = await mkdtemp(join(tmpdir(), 'mpg-nitro-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const log = join(dir, 'nitro-cli.log');
  return {
    dir,
    log,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', MPG_NITRO_CLI: FAKE_NITRO_CLI, FAKE_NITRO_LOG: log, ...extra },
    async calls() {
      if (!existsSync(log)) return [];
      return (await readFile(log, 'utf8'))
        .split('\n')
        .filter((line) => line !== '')
        .map((line) => (JSON.parse(line) as { argv: string[] }).argv);
    },
  };
}

async function mpgEnclave(
  argv: string[],
  env: Record<string, string>,
): Promise<{ code: number; stdout: string; stderr: string }> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
  stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
  const code = await (await loadEnclaveCommand()).run({ argv, env, stdout, stderr });
  return { code, stdout: out, stderr: err };
}

/** A sparse file standing in for an EIF of `bytes`. */
async function fakeEif(dir: string, bytes: number): Promise<string> {
  const path = join(dir, 'enclave.eif');
  await writeFile(path, '');
  await truncate(path, bytes);
  return path;
}

const PCR = /^[0-9a-f]{96}$/;

test('build runs build-enclave with the image and output file and writes the measurements atomically', async (t) => {
  const box = await sandbox(t);
  const eif = join(box.dir, 'enclave.eif');
  const measurements = join(box.dir, 'measurements.json');
  const result = await mpgEnclave(
    ['build', '--docker-uri', 'mpg-enclave:latest', '--eif', eif, '--measurements', measurements],
    box.env,
  );
  assert.equal(result.code, 0, result.stderr);
  assert.deepEqual(await box.calls(), [['build-enclave', '--docker-uri', 'mpg-enclave:latest', '--output-file', eif]]);

  const written = JSON.parse(await readFile(measurements, 'utf8')) as { Measurements: Record<string, string> };
  assert.deepEqual(Object.keys(written.Measurements).sort(), ['HashAlgorithm', 'PCR0', 'PCR1', 'PCR2']);
  for (const pcr of ['PCR0', 'PCR1', 'PCR2']) assert.match(written.Measurements[pcr]!, PCR);
  assert.deepEqual(JSON.parse(result.stdout), written, 'stdout carries the same measurements');
  assert.deepEqual(
    (await readdir(box.dir)).sort(),
    ['enclave.eif', 'measurements.json', 'nitro-cli.log'],
    'no temporary file is left',
  );
});

test('build refuses a measurements path whose directory does not exist, before calling nitro-cli', async (t) => {
  const box = await sandbox(t);
  const result = await mpgEnclave(
    [
      'build',
      '--docker-uri',
      'img',
      '--eif',
      join(box.dir, 'e.eif'),
      '--measurements',
      join(box.dir, 'missing', 'm.json'),
    ],
    box.env,
  );
  assert.equal(result.code, 2);
  assert.match(result.stderr, /--measurements .*missing.*does not exist/);
  assert.deepEqual(await box.calls(), []);
});

test('a failed build (E50) says what nitro-cli said, its exit code and what to check, and writes no measurements', async (t) => {
  const box = await sandbox(t, { FAKE_NITRO_FAIL: 'E50' });
  const measurements = join(box.dir, 'measurements.json');
  const result = await mpgEnclave(
    ['build', '--docker-uri', 'img', '--eif', join(box.dir, 'e.eif'), '--measurements', measurements],
    box.env,
  );
  assert.equal(result.code, 1);
  assert.match(result.stderr, /build-enclave failed \(exit code 50, E50\): Docker image pull error/);
  assert.match(result.stderr, /Check: the Docker image could not be found or pulled/);
  assert.match(result.stderr, /may be missing or incomplete/);
  assert.equal(existsSync(measurements), false);
});

/** `mpg enclave run --mode nitro` with the socket in the sandbox, a short wait for /readyz, and `extra` flags. */
function runNitro(box: Sandbox, extra: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return mpgEnclave(
    ['run', '--mode', 'nitro', '--enclave-socket', join(box.dir, 'enclave.sock'), '--ready-timeout-s', '1', ...extra],
    box.env,
  );
}

test("run --mode nitro builds run-enclave's arguments, waits for /readyz through the parent relay, and terminates an enclave that never gets ready", async (t) => {
  const box = await sandbox(t, { FAKE_NITRO_STATE: '' });
  box.env.FAKE_NITRO_STATE = join(box.dir, 'state.json');
  const eif = await fakeEif(box.dir, 20 * MIB);
  const result = await runNitro(box, ['--eif', eif, '--cpu-count', '4', '--memory-mib', '2048', '--enclave-cid', '16']);
  // Nothing answers a vsock connect on this machine: the model server never answers /readyz.
  assert.equal(result.code, 1, result.stderr);
  const enclaveId = 'i-0123456789abcdef0-enc5f91550edb03f0bb';
  assert.deepEqual(await box.calls(), [
    ['run-enclave', '--eif-path', eif, '--cpu-count', '4', '--memory', '2048', '--enclave-cid', '16'],
    ['terminate-enclave', '--enclave-id', enclaveId],
  ]);
  assert.match(
    result.stderr,
    new RegExp(
      `enclave ${enclaveId} \\(mode: nitro\\) started, CID 16; parent relay \\(socat\\) on unix:\\S+enclave\\.sock -> vsock:16:5005`,
    ),
  );
  assert.match(
    result.stderr,
    /the enclave did not get ready: GET \/readyz through unix:\S+ did not answer 200 within 1 s.*Terminating it/,
  );
  assert.match(result.stderr, /"msg":"nitro enclave terminated"/);
  assert.equal(result.stdout, '', 'the ready JSON is printed only once the enclave is ready');
  assert.equal(existsSync(join(box.dir, 'enclave.sock')), false, 'the parent relay took its socket with it');
  assert.deepEqual(JSON.parse(await readFile(box.env.FAKE_NITRO_STATE, 'utf8')), [], 'no enclave is left running');
});

test('run --mode nitro --debug-mode is refused for secure traffic without --allow-debug-mode, and runs with it', async (t) => {
  const box = await sandbox(t);
  const eif = await fakeEif(box.dir, MIB);
  const refused = await runNitro(box, ['--eif', eif, '--memory-mib', '512', '--enclave-cid', '20', '--debug-mode']);
  assert.equal(refused.code, 2);
  assert.match(
    refused.stderr,
    /a debug-mode enclave must not serve secure traffic: its console is readable from the parent and its attestation carries all-zero PCRs; pass --allow-debug-mode/,
  );
  assert.deepEqual(await box.calls(), [], 'nitro-cli is never called');

  const allowed = await runNitro(box, [
    '--eif',
    eif,
    '--memory-mib',
    '512',
    '--enclave-cid',
    '20',
    '--debug-mode',
    '--allow-debug-mode',
  ]);
  assert.equal(allowed.code, 1, 'started, then never ready here');
  assert.deepEqual((await box.calls())[0], [
    'run-enclave',
    '--eif-path',
    eif,
    '--cpu-count',
    '2',
    '--memory',
    '512',
    '--enclave-cid',
    '20',
    '--debug-mode',
  ]);
  assert.match(allowed.stderr, /debug mode allowed: a debug-mode enclave must not serve secure traffic/);
  assert.match(allowed.stderr, /Its console: nitro-cli console --enclave-id i-/);
});

test('run --mode nitro refuses less than 4x the EIF size without calling nitro-cli, and accepts exactly 4x', async (t) => {
  const box = await sandbox(t);
  const eif = await fakeEif(box.dir, 20 * MIB);
  const refused = await runNitro(box, ['--eif', eif, '--memory-mib', '79']);
  assert.equal(refused.code, 2);
  assert.equal(
    refused.stderr,
    `mpg enclave run: --memory-mib 79 is too little for ${eif} (20971520 bytes, 20.0 MiB): enclave memory must be at least 4 times the EIF's size, so give --memory-mib 80 or more\n`,
  );
  assert.equal(refused.stdout, '');
  assert.deepEqual(await box.calls(), [], 'nitro-cli is never called');

  const accepted = await runNitro(box, ['--eif', eif, '--memory-mib', '80']);
  assert.equal((await box.calls())[0]![0], 'run-enclave', accepted.stderr);
});

test('run --mode nitro with no EIF at the path exits 2 and points at mpg enclave build', async (t) => {
  const box = await sandbox(t);
  const result = await runNitro(box, ['--eif', join(box.dir, 'none.eif'), '--memory-mib', '512']);
  assert.equal(result.code, 2);
  assert.match(result.stderr, /no such file; build it with "mpg enclave build"/);
  assert.deepEqual(await box.calls(), []);
});

test('run --mode nitro requires --eif and --memory-mib, a CID the parent can reach (>= 4), and no model server flags', async (t) => {
  const box = await sandbox(t);
  const eif = await fakeEif(box.dir, MIB);
  assert.match((await runNitro(box, ['--memory-mib', '512'])).stderr, /--eif is required with the nitro enclave/);
  assert.match((await runNitro(box, ['--eif', eif])).stderr, /--memory-mib is required/);
  const low = await runNitro(box, ['--eif', eif, '--memory-mib', '512', '--enclave-cid', '3']);
  assert.equal(low.code, 2);
  assert.match(low.stderr, /--enclave-cid must be an integer from 4 to/);
  const passthrough = await runNitro(box, ['--eif', eif, '--memory-mib', '512', '--', '--threads', '2']);
  assert.equal(passthrough.code, 2);
  assert.match(
    passthrough.stderr,
    /model server options cannot be passed to a Nitro enclave: they are part of its image/,
  );
  assert.deepEqual(await box.calls(), []);
});

test('run --mode nitro: a socat that cannot start terminates the enclave it just started', async (t) => {
  const box = await sandbox(t);
  const eif = await fakeEif(box.dir, MIB);
  const result = await runNitro(box, ['--eif', eif, '--memory-mib', '512', '--socat', join(box.dir, 'no-socat')]);
  assert.equal(result.code, 1);
  assert.match(
    result.stderr,
    /the parent relay \(.*no-socat -d UNIX-LISTEN:\S+,fork,mode=600,unlink-early VSOCK-CONNECT:16:5005\) did not start: .*ENOENT.*install socat/,
  );
  assert.deepEqual(
    (await box.calls()).map((argv) => argv[0]),
    ['run-enclave', 'terminate-enclave'],
  );
});

test("E26 from run-enclave: the command exits 1 with nitro-cli's message, exit code and what to check", async (t) => {
  const box = await sandbox(t, { FAKE_NITRO_FAIL: 'E26' });
  const eif = await fakeEif(box.dir, MIB);
  const result = await runNitro(box, ['--eif', eif, '--memory-mib', '512']);
  assert.equal(result.code, 1);
  assert.match(
    result.stderr,
    /^mpg enclave run: .*run-enclave failed \(exit code 26, E26\): Insufficient memory requested\. User provided `memory` is 512 MB/,
  );
  assert.match(result.stderr, /Check: the enclave memory requested is too small for this EIF: raise --memory-mib/);
  assert.match(result.stderr, /"mpg enclave status --mode nitro" shows whether anything is left/);
  assert.doesNotMatch(result.stderr, /support ticket|For more details/, 'the help link and log path are dropped');
});

test("the wrapper keeps nitro-cli's code, exit code and stderr on the error (E27 names allocator.yaml)", async (t) => {
  const box = await sandbox(t, { FAKE_NITRO_FAIL: 'E27' });
  const eif = await fakeEif(box.dir, MIB);
  const nitro = createNitroCli({ binary: FAKE_NITRO_CLI, env: box.env });
  const error = await nitro
    .runEnclave({ eifPath: eif, cpuCount: 2, memoryMiB: 512, enclaveCid: 16, debugMode: false })
    .then(
      () => assert.fail('run-enclave should fail'),
      (caught: unknown) => caught,
    );
  assert.ok(error instanceof NitroCliError);
  assert.equal(error.code, 'ENC_NITRO_CLI_FAILED');
  assert.equal(error.exitCode, 27);
  assert.equal(error.nitroCode, 'E27');
  assert.equal(error.subcommand, 'run-enclave');
  assert.match(error.stderr, /Start allocating memory/);
  assert.match(error.message, /raise memory_mib in \/etc\/nitro_enclaves\/allocator\.yaml/);
});

test('output that is not JSON is an error saying an enclave may be running', async (t) => {
  const box = await sandbox(t, { FAKE_NITRO_OUTPUT: 'garbage' });
  const eif = await fakeEif(box.dir, MIB);
  const result = await runNitro(box, ['--eif', eif, '--memory-mib', '512']);
  assert.equal(result.code, 1);
  assert.match(
    result.stderr,
    /run-enclave exited 0 but printed no JSON \(got: "Segmentation fault\? no: this is not JSON"\)/,
  );
  assert.match(result.stderr, /An enclave may be running: check "mpg enclave status --mode nitro"/);

  const nitro = createNitroCli({ binary: FAKE_NITRO_CLI, env: box.env });
  await assert.rejects(
    nitro.describeEnclaves(),
    (error: unknown) => error instanceof NitroCliError && error.code === 'ENC_NITRO_CLI_OUTPUT' && error.exitCode === 0,
  );
});

test('status --mode nitro prints no enclaves when none runs', async (t) => {
  const box = await sandbox(t);
  const result = await mpgEnclave(['status', '--mode', 'nitro'], box.env);
  assert.equal(result.code, 0, result.stderr);
  assert.deepEqual(JSON.parse(result.stdout), { mode: 'nitro', enclaves: [] });
  assert.deepEqual(await box.calls(), [['describe-enclaves']]);
});

test('status --mode nitro reports two enclaves: state, CID, memory, CPUs and flags', async (t) => {
  const box = await sandbox(t, { FAKE_NITRO_ENCLAVES: '2' });
  const result = await mpgEnclave(['status', '--mode', 'nitro'], box.env);
  assert.equal(result.code, 0, result.stderr);
  const status = (JSON.parse(result.stdout) as { mode: string; enclaves: Array<Record<string, unknown>> }).enclaves;
  assert.equal(status.length, 2);
  assert.deepEqual(status[0], {
    enclaveId: 'i-0123456789abcdef0-enc5f91550edb03f0bb',
    enclaveName: 'enclave-0',
    state: 'RUNNING',
    cid: 16,
    memoryMiB: 4096,
    cpus: 2,
    cpuIds: [1, 2],
    flags: 'NONE',
    debugMode: false,
  });
  assert.equal(status[1]!.flags, 'DEBUG_MODE');
  assert.equal(status[1]!.debugMode, true);
  assert.equal(status[1]!.cid, 17);
});

test('stop terminates one enclave by ID or all of them, and needs exactly one of the two', async (t) => {
  const box = await sandbox(t, { FAKE_NITRO_ENCLAVES: '2' });
  const one = await mpgEnclave(['stop', '--enclave-id', 'i-0123456789abcdef0-enc1'], box.env);
  assert.equal(one.code, 0, one.stderr);
  assert.deepEqual(JSON.parse(one.stdout), [
    { EnclaveName: 'enclave-0', EnclaveID: 'i-0123456789abcdef0-enc1', Terminated: true },
  ]);
  const all = await mpgEnclave(['stop', '--all'], box.env);
  assert.equal(all.code, 0, all.stderr);
  assert.equal((JSON.parse(all.stdout) as unknown[]).length, 2);
  assert.deepEqual(await box.calls(), [
    ['terminate-enclave', '--enclave-id', 'i-0123456789abcdef0-enc1'],
    ['terminate-enclave', '--all'],
  ]);

  for (const argv of [['stop'], ['stop', '--all', '--enclave-id', 'x']]) {
    const refused = await mpgEnclave(argv, box.env);
    assert.equal(refused.code, 2);
    assert.match(refused.stderr, /give exactly one of --enclave-id ID and --all/);
  }
  assert.equal((await box.calls()).length, 2);
});

test('nitro-cli is found on PATH when MPG_NITRO_CLI is not set', async (t) => {
  const box = await sandbox(t);
  const bin = join(box.dir, 'bin');
  await mkdir(bin);
  await symlink(FAKE_NITRO_CLI, join(bin, 'nitro-cli'));
  const env = { ...box.env };
  delete env.MPG_NITRO_CLI;
  const result = await mpgEnclave(['status', '--mode', 'nitro'], { ...env, PATH: `${bin}:${box.env.PATH}` });
  assert.equal(result.code, 0, result.stderr);
  assert.deepEqual(await box.calls(), [['describe-enclaves']]);
});

test('a missing nitro-cli says to install it or name it with --nitro-cli / MPG_NITRO_CLI', async (t) => {
  const box = await sandbox(t);
  const result = await mpgEnclave(['status', '--mode', 'nitro'], {
    ...box.env,
    MPG_NITRO_CLI: join(box.dir, 'no-such-nitro-cli'),
  });
  assert.equal(result.code, 1);
  assert.match(
    result.stderr,
    /no-such-nitro-cli was not found: install the AWS Nitro Enclaves CLI .* --nitro-cli PATH or MPG_NITRO_CLI/,
  );

  const onPath = createNitroCli({ binary: 'nitro-cli-that-does-not-exist', env: { PATH: box.dir } });
  await assert.rejects(
    onPath.describeEnclaves(),
    (error: unknown) =>
      error instanceof NitroCliError && error.code === 'ENC_NITRO_CLI_MISSING' && /on PATH/.test(error.message),
  );
});

test('parseNitroError reads the code and the paragraph after it, and falls back to the last lines', () => {
  const stderr = [
    'Start allocating memory...',
    '[ E22 ] Insufficient CPUs available in the pool. User provided `cpu-count` is 8, which is more than the configured CPU pool size.',
    "You can increase the CPU pool size by editing the `cpu_count` value from '/etc/nitro_enclaves/allocator.yaml'.",
    '',
    'For more details, please visit https://docs.aws.amazon.com/enclaves/latest/user/cli-errors.html#E22',
  ].join('\n');
  assert.deepEqual(parseNitroError(stderr), {
    nitroCode: 'E22',
    message:
      "Insufficient CPUs available in the pool. User provided `cpu-count` is 8, which is more than the configured CPU pool size. You can increase the CPU pool size by editing the `cpu_count` value from '/etc/nitro_enclaves/allocator.yaml'.",
  });
  assert.deepEqual(parseNitroError('something\nwent wrong\n'), { message: 'something / went wrong' });
});

test("build --mode emulated writes the emulated enclave's measurements of this project's code and the model, without nitro-cli", async (t) => {
  const box = await sandbox(t);
  const file = join(box.dir, 'measurements.json');
  const result = await mpgEnclave(['build', '--mode', 'emulated', '--measurements', file], box.env);
  assert.equal(result.code, 0, result.stderr);
  const expected = emulatedImageMeasurements({ modelPath: await testModelPath() });
  assert.deepEqual(await readMeasurementsFile(file), expected);
  assert.deepEqual(JSON.parse(result.stdout), JSON.parse(await readFile(file, 'utf8')));
  assert.match(result.stderr, /EMULATED measurements/);
  assert.deepEqual(await box.calls(), []);
  const refused = await mpgEnclave(
    ['build', '--mode', 'emulated', '--measurements', file, '--eif', join(box.dir, 'x.eif')],
    box.env,
  );
  assert.equal(refused.code, 2);
  assert.match(refused.stderr, /--docker-uri and --eif are for --mode nitro/);
});
