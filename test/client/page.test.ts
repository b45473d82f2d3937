// The client page in a real browser (Debian's chromium, driven by puppeteer-core; no browser is
// downloaded): picking an image verifies the enclave, encrypts, sends and shows the same
// predictions as plaintext inference, with what was verified; a bad enclave is refused on the
// page; the bundled SDK's verifier gives the Node verifier's answer on every document of
// test/attestation/bad-documents.ts inside the browser; and a page that is not a secure context
// says that it cannot verify anything.
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { test } from 'node:test';
import type { Browser, Page } from 'puppeteer-core';
import puppeteer from 'puppeteer-core';
import { formatMeasurements, verifyAttestation } from '../../attestation/index.js';
import type * as BrowserSdk from '../../client/browser.js';
import { sampleImage } from '../../common/index.js';
import type { DocumentCase } from '../attestation/bad-documents.js';
import { documentCases, nodeOptions } from '../attestation/bad-documents.js';
import { startEnclaveModelServer, testEnclaveNsm } from '../helpers/enclave-model-server.js';
import { postBytes } from '../helpers/model-server.js';
import { startTestSecureGateway } from '../helpers/secure-gateway.js';

const CHROMIUM = '/usr/bin/chromium';
/** A host name the browser resolves to 127.0.0.1 but does not treat as a secure context. */
const INSECURE_HOST = 'insecure.test';
/** Where the screenshot goes (results/ is not committed; docs/images/client-page.png is copied from it). */
const SCREENSHOT = new URL('../../../results/client-page.png', import.meta.url);
// Page-side expressions are strings: this project compiles without the DOM's types.
const PINS_LOADED = "document.getElementById('pcrs').value.includes('PCR0')";

async function launch(t: TestContext): Promise<Browser> {
  const browser = await puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    // Chromium's sandbox refuses to start as root (CI containers); the pages are our own.
    args: [
      ...(process.getuid?.() === 0 ? ['--no-sandbox'] : []),
      `--host-resolver-rules=MAP ${INSECURE_HOST} 127.0.0.1`,
    ],
  });
  t.after(() => browser.close());
  return browser;
}

async function servedPage(t: TestContext) {
  const nsm = await testEnclaveNsm();
  const enclave = await startEnclaveModelServer(t, nsm, 7);
  const gateway = await startTestSecureGateway(
    t,
    { url: enclave.url },
    { pcrs: JSON.parse(formatMeasurements(nsm.measurements)), emulatedRootPem: nsm.rootPem },
  );
  const dir = await mkdtemp(join(tmpdir(), 'mpg-page-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const imagePath = join(dir, 'sample.jpg');
  const image = await sampleImage();
  await writeFile(imagePath, image);
  return { nsm, enclave, gateway, image, imagePath };
}

async function classify(page: Page, imagePath: string): Promise<{ status: string; className: string }> {
  await page.waitForFunction(PINS_LOADED);
  await page.click('#trust-emulated');
  const input = await page.$('#image');
  await (input as unknown as { uploadFile(path: string): Promise<void> }).uploadFile(imagePath);
  await page.click('#send');
  await page.waitForSelector('#status.ok, #status.refused', { timeout: 60_000 });
  return (await page.evaluate(
    "({ status: document.getElementById('status').textContent, className: document.getElementById('status').className })",
  )) as { status: string; className: string };
}

test(
  'in the browser: pick an image, and the page verifies, encrypts and shows the plaintext predictions and what it verified',
  { timeout: 180_000 },
  async (t) => {
    const { nsm, enclave, gateway, image, imagePath } = await servedPage(t);
    const browser = await launch(t);
    const page = await browser.newPage();
    await page.setViewport({ width: 1000, height: 1200 });
    await page.goto(`${gateway.url}/`);

    const outcome = await classify(page, imagePath);
    assert.equal(outcome.className, 'ok', outcome.status);
    const rows = (await page.evaluate(
      "[...document.querySelectorAll('#predictions tbody tr')].map((tr) => [...tr.cells].map((cell) => cell.textContent))",
    )) as string[][];
    const plain = (await postBytes(`${enclave.url}/predict?topk=5`, image, 'image/jpeg')).body.predictions as {
      topk: { label: string; score: number }[];
    }[];
    assert.deepEqual(
      rows,
      plain[0]!.topk.map(({ label, score }) => [score.toFixed(4), label]),
    );

    const verified = (await page.evaluate(
      "Object.fromEntries([...document.querySelectorAll('#verified dt')].map((term) => [term.textContent, term.nextElementSibling.textContent]))",
    )) as Record<string, string>;
    assert.equal(verified.PCR0, nsm.measurements.pcrs[0]);
    assert.equal(verified.PCR2, nsm.measurements.pcrs[2]);
    assert.equal(verified['Key id'], '7');
    assert.match(verified.Root!, /EMULATED/);
    assert.match(verified['Attested at']!, /^\d{4}-\d\d-\d\dT/);
    // The image crossed the stand-in gateway only as ciphertext.
    const window = image.subarray(3000, 3024);
    assert.ok(
      gateway.crossed.length > 0 && gateway.crossed.every((bytes) => Buffer.from(bytes).indexOf(window) === -1),
    );
    assert.deepEqual(gateway.counts, { keys: 1, attestation: 1, predict: 1 });

    await mkdir(new URL('.', SCREENSHOT), { recursive: true });
    await page.screenshot({ path: SCREENSHOT.pathname, fullPage: true });
  },
);

test(
  'in the browser: wrong pins are refused on the page, with the reason, and nothing is sent',
  { timeout: 180_000 },
  async (t) => {
    const { gateway, imagePath } = await servedPage(t);
    const browser = await launch(t);
    const page = await browser.newPage();
    await page.goto(`${gateway.url}/`);
    await page.waitForFunction(PINS_LOADED);
    await page.evaluate(
      `document.getElementById('pcrs').value = document.getElementById('pcrs').value.replace(/"PCR2": "[0-9a-f]+"/, '"PCR2": "${'ab'.repeat(48)}"')`,
    );
    const outcome = await classify(page, imagePath);
    assert.equal(outcome.className, 'refused');
    assert.match(outcome.status, /Refused: attestation-failed \(pcr_mismatch\)/);
    assert.equal(gateway.counts.predict, 0);
  },
);

/** The page alone, with no enclave behind it. */
const pageOnly = (t: TestContext) =>
  startTestSecureGateway(t, { url: 'http://127.0.0.1:1' }, { pcrs: null, emulatedRootPem: null });

test(
  "in the browser: the bundled verifier gives the Node verifier's answer on the genuine AWS document and every bad one",
  { timeout: 180_000 },
  async (t) => {
    const gateway = await pageOnly(t);
    const browser = await launch(t);
    const page = await browser.newPage();
    await page.goto(`${gateway.url}/`);
    const cases = documentCases();
    const inBrowser = await page.evaluate(
      async (bundle: string, all: DocumentCase[]) => {
        const sdk = (await import(bundle)) as typeof BrowserSdk;
        const bytes = (text: string) => Uint8Array.from(atob(text), (character) => character.charCodeAt(0));
        const hex = (text: string) => Uint8Array.from(text.match(/../g) ?? [], (pair) => parseInt(pair, 16));
        const answers: { name: string; reason: string | null; checks: string[] }[] = [];
        for (const { name, documentBase64, options } of all) {
          const result = await sdk.verifyAttestationWeb(bytes(documentBase64), {
            trustedRoots: options.roots,
            at: new Date(options.at),
            expectedPcrs: options.pcrs,
            nonce: options.nonceHex === undefined ? undefined : hex(options.nonceHex),
            maxAgeMs: options.maxAgeMs,
            allowDebugMode: options.allowDebugMode,
            requirePublicKey: options.requirePublicKey,
            maxBytes: options.maxBytes,
          });
          answers.push({
            name,
            reason: result.reason ?? null,
            checks: result.checks.map((check) => `${check.name}:${check.status}`),
          });
        }
        return answers;
      },
      '/client/mpg-client.js',
      cases,
    );

    assert.equal(inBrowser.length, cases.length);
    for (const [index, documentCase] of cases.entries()) {
      const node = verifyAttestation(
        Buffer.from(documentCase.documentBase64, 'base64'),
        nodeOptions(documentCase.options),
      );
      const browserAnswer = inBrowser[index]!;
      assert.equal(browserAnswer.reason, documentCase.reason ?? null, `${documentCase.name} in the browser`);
      assert.equal(node.reason ?? null, browserAnswer.reason, documentCase.name);
      assert.deepEqual(
        browserAnswer.checks,
        node.checks.map((check) => `${check.name}:${check.status}`),
        documentCase.name,
      );
    }
    // The refusals the client SDK must make are all among them.
    const reasons = new Set(cases.map((documentCase) => documentCase.reason));
    for (const reason of ['signature', 'root', 'validity', 'debug_mode', 'nonce', 'pcr_mismatch', 'chain'])
      assert.ok(reasons.has(reason), reason);
  },
);

test(
  'in the browser: a page that is not a secure context says it cannot verify or encrypt, and offers nothing to send',
  { timeout: 120_000 },
  async (t) => {
    const gateway = await pageOnly(t);
    const browser = await launch(t);
    const page = await browser.newPage();
    const port = new URL(gateway.url).port;
    await page.goto(`http://${INSECURE_HOST}:${port}/`);
    await page.waitForSelector('#context:not([hidden])');
    const context = (await page.evaluate(
      "({ secure: window.isSecureContext, subtle: typeof globalThis.crypto?.subtle, banner: document.getElementById('context').textContent, disabled: document.getElementById('send').disabled })",
    )) as { secure: boolean; subtle: string; banner: string | null; disabled: boolean };
    assert.equal(context.secure, false);
    assert.equal(context.subtle, 'undefined');
    assert.match(context.banner!, /not a secure context .*crypto\.subtle.*HTTPS/);
    assert.equal(context.disabled, true);
    assert.equal(gateway.counts.keys, 0);
  },
);
