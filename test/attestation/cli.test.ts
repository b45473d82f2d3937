// `mpg attestation verify` for real: the compiled CLI on document files, its output and exit codes.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { test } from 'node:test';
import { formatMeasurements } from '../../attestation/index.js';
import { MEASUREMENTS, NONCE, NOW, testNsm } from './fixtures.js';

const CLI = new URL('../../cli/index.js', import.meta.url).pathname;
const GENUINE = new URL('../../../test/fixtures/attestation/aws-genuine-2026-02-06.b64', import.meta.url).pathname;

function mpg(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [CLI, ...args], { env: { PATH: process.env.PATH ?? '/usr/bin:/bin' } });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise((resolve) => child.once('close', (code) => resolve({ code, stdout, stderr })));
}

async function files(t: TestContext) {
  const dir = await mkdtemp(join(tmpdir(), 'mpg-attest-cli-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const nsm = testNsm();
  const document = nsm.attest({ nonce: NONCE });
  const paths = {
    raw: join(dir, 'doc.cbor'),
    base64: join(dir, 'doc.b64'),
    root: join(dir, 'root.pem'),
    pcrs: join(dir, 'measurements.json'),
    badPcrs: join(dir, 'bad.json'),
    empty: join(dir, 'empty'),
  };
  await writeFile(paths.raw, document);
  await writeFile(paths.base64, Buffer.from(document).toString('base64') + '\n');
  await writeFile(paths.root, nsm.rootCertificatePem);
  await writeFile(paths.pcrs, formatMeasurements(MEASUREMENTS));
  await writeFile(paths.badPcrs, '{"Measurements": {}}');
  await writeFile(paths.empty, '');
  return { ...paths, nsm };
}

const at = ['--at', NOW.toISOString()];

test('a raw CBOR file with every policy given: exit 0, the decoded document and every check passed', async (t) => {
  const f = await files(t);
  const { code, stdout } = await mpg([
    'attestation',
    'verify',
    f.raw,
    '--root',
    f.root,
    '--pcrs',
    f.pcrs,
    '--nonce',
    NONCE.toString('hex'),
    '--max-age-ms',
    '60000',
    ...at,
  ]);
  assert.equal(code, 0, stdout);
  assert.match(stdout, /raw CBOR/);
  assert.match(stdout, new RegExp(`module_id +${f.nsm.moduleId}`));
  assert.match(stdout, new RegExp(`timestamp +${NOW.toISOString()}`));
  assert.match(stdout, new RegExp(`^ +0 +${MEASUREMENTS.pcrs[0]}$`, 'm'));
  assert.match(stdout, /certificate +O=mixed-privacy-gateway EMULATED NSM/);
  assert.match(stdout, /\[0\] O=.*CN=emulated-nsm-root/);
  assert.match(stdout, /passed +pcrs/);
  assert.match(stdout, /passed +nonce/);
  assert.match(stdout, /passed +freshness/);
  assert.match(stdout, /skipped +public_key +no --require-public-key given/);
  assert.match(stdout, /Result: VERIFIED \(every check that ran passed\)\n/);
  assert.doesNotMatch(stdout, /NOT PINNED/);
});

test('a base64 file with no policy given: exit 0 and each skipped check says why', async (t) => {
  const f = await files(t);
  const { code, stdout } = await mpg(['attestation', 'verify', f.base64, '--root', f.root, ...at]);
  assert.equal(code, 0, stdout);
  assert.match(stdout, /base64/);
  assert.match(stdout, /skipped +pcrs +no --pcrs given/);
  assert.match(stdout, /skipped +nonce +no --nonce given/);
  assert.match(stdout, /skipped +freshness +no --max-age-ms given/);
  assert.match(stdout, /Result: VERIFIED \(every check that ran passed\)\. NOT PINNED: no PCRs were compared/);
});

test('a failed check: exit 1 with the reason; --json says the same', async (t) => {
  const f = await files(t);
  const wrongNonce = await mpg(['attestation', 'verify', f.raw, '--root', f.root, '--nonce', 'abcd', ...at]);
  assert.equal(wrongNonce.code, 1);
  assert.match(wrongNonce.stdout, /failed +nonce .*\[reason: nonce\]/);
  assert.match(wrongNonce.stdout, /Result: NOT VERIFIED \(nonce\)/);
  const defaultRoot = await mpg(['attestation', 'verify', f.raw, '--json', ...at]);
  assert.equal(defaultRoot.code, 1);
  const json = JSON.parse(defaultRoot.stdout) as {
    ok: boolean;
    reason: string;
    checks: { name: string }[];
    document: { moduleId: string };
  };
  assert.equal(json.ok, false);
  assert.equal(json.reason, 'root');
  assert.equal(json.document.moduleId, f.nsm.moduleId);
  assert.deepEqual(
    json.checks.map((check) => check.name),
    ['size', 'cose', 'algorithm', 'payload', 'root'],
  );
});

test('bad options or unreadable files: exit 2', async (t) => {
  const f = await files(t);
  const cases: [string[], RegExp][] = [
    [['attestation', 'verify'], /give the attestation document FILE/],
    [['attestation', 'verify', join(f.raw, 'nope')], /cannot read/],
    [['attestation', 'verify', f.empty], /is empty/],
    [['attestation', 'verify', f.raw, '--at', 'yesterday'], /--at must be an ISO 8601 time/],
    [['attestation', 'verify', f.raw, '--nonce', 'xyz'], /--nonce must be an even number of hex digits/],
    [['attestation', 'verify', f.raw, '--pcrs', f.badPcrs], /bad\.json: "Measurements\.HashAlgorithm"/],
    [['attestation', 'verify', f.raw, '--root', f.pcrs], /trusted root/],
    [['attestation', 'verify', f.raw, '--bogus'], /unknown option --bogus/],
  ];
  for (const [args, message] of cases) {
    const { code, stderr } = await mpg(args);
    assert.equal(code, 2, args.join(' '));
    assert.match(stderr, message, args.join(' '));
  }
});

test('the genuine AWS document verifies against the pinned AWS root at its recorded time', async () => {
  const { code, stdout } = await mpg(['attestation', 'verify', GENUINE, '--at', '2026-02-06T09:00:00Z']);
  assert.equal(code, 0, stdout);
  assert.match(stdout, /CN=aws\.nitro-enclaves \(SHA-256 64:1A:03:21/);
});
