// The gateway serves the client page (GET /) and the SDK bundled for browsers, from its own
// origin, with a policy that lets the page run only its own scripts and talk only to the gateway;
// /client/config.json offers the pins the gateway itself holds (and the emulated root, only when
// the gateway was told to trust it insecurely). The page itself is driven in a real browser in
// test/client/page.test.ts.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { createEmulatedNsm, emulatedMeasurements, writeMeasurementsFile } from '../../attestation/index.js';
import { startGateway } from '../helpers/gateway.js';

test('GET / serves the page and the bundled SDK with a strict content security policy; nothing else under /client', async (t) => {
  const { url } = await startGateway(t, ['--public-upstream', 'http://127.0.0.1:1']);
  const page = await fetch(`${url}/`);
  assert.equal(page.status, 200);
  assert.match(page.headers.get('content-type')!, /^text\/html/);
  assert.match(page.headers.get('content-security-policy')!, /script-src 'self';.*connect-src 'self'/);
  assert.equal(page.headers.get('x-content-type-options'), 'nosniff');
  assert.match(await page.text(), /<script type="module" src="\/client\/page\.js"><\/script>/);

  const bundle = await fetch(`${url}/client/mpg-client.js`);
  assert.equal(bundle.status, 200);
  assert.match(bundle.headers.get('content-type')!, /^text\/javascript/);
  const code = await bundle.text();
  assert.match(code, /createSecureClient/);
  assert.match(code, /verifyAttestationWeb/);
  // One self-contained module: nothing imported from Node or from another origin.
  assert.doesNotMatch(code, /from\s*["'](node:|https?:)/);
  assert.doesNotMatch(code, /require\(["']node:/);

  for (const path of ['/client/page.js', '/client/page.css'])
    assert.equal((await fetch(`${url}${path}`)).status, 200, path);
  for (const path of ['/client/../package.json', '/client/secure-client.js', '/client/', '/index.html']) {
    const response = await fetch(`${url}${path}`);
    assert.equal(response.status, 404, path);
    assert.equal(((await response.json()) as { code: string }).code, 'GW_NOT_FOUND');
  }

  const config = (await (await fetch(`${url}/client/config.json`)).json()) as Record<string, unknown>;
  assert.deepEqual(config, { trust: 'none', pcrs: null, emulatedRootPem: null });
});

test("/client/config.json offers the gateway's pins, and the emulated root only when it is trusted insecurely", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'mpg-page-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const measurements = emulatedMeasurements({ application: [Buffer.from('page test')] });
  const pins = join(dir, 'pcrs.json');
  await writeMeasurementsFile(pins, measurements);
  const rootFile = join(dir, 'root.pem');
  const nsm = createEmulatedNsm();
  await writeFile(rootFile, nsm.rootCertificatePem);

  const insecure = await startGateway(t, [
    '--secure-upstream',
    `unix:${join(dir, 'none.sock')}`,
    '--attestation-pcrs',
    pins,
    '--insecure-trust-emulated-nsm-root',
    rootFile,
  ]);
  const offered = (await (await fetch(`${insecure.url}/client/config.json`)).json()) as {
    trust: string;
    pcrs: { Measurements: Record<string, string> };
    emulatedRootPem: string;
  };
  assert.equal(offered.trust, 'insecure-emulated-nsm-root');
  assert.equal(offered.pcrs.Measurements.PCR2, measurements.pcrs[2]);
  assert.equal(offered.emulatedRootPem, nsm.rootCertificatePem);

  const pinned = await startGateway(t, [
    '--secure-upstream',
    `unix:${join(dir, 'none2.sock')}`,
    '--attestation-pcrs',
    pins,
  ]);
  const aws = (await (await fetch(`${pinned.url}/client/config.json`)).json()) as {
    trust: string;
    emulatedRootPem: unknown;
  };
  assert.equal(aws.trust, 'aws-root');
  assert.equal(aws.emulatedRootPem, null);
});
