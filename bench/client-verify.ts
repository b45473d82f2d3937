// node dist/bench/client-verify.js — what the client SDK's verification of one attestation costs.
//
// Prints the median ms of one full WebCrypto verification (verifyAttestationWeb: every certificate
// signature and the COSE signature through crypto.subtle, as in a browser), for a genuine AWS
// document (root, three intermediates, leaf) and an emulated-NSM one (root, intermediate, leaf),
// beside the baseline from the same run: the gateway's node:crypto verifier (verifyAttestation,
// no link cache) on the same documents. A client pays this once per key (maxKeyAgeMs), not per
// request. Flags: --iterations N (default 200)
import { readFileSync } from 'node:fs';
import type { VerifyOptions } from '../attestation/index.js';
import {
  createEmulatedNsm,
  emulatedMeasurements,
  loadWebTrustedRoots,
  resolveTrustedRoots,
  verifyAttestation,
  verifyAttestationWeb,
} from '../attestation/index.js';
import { describeEnvironment, percentile } from '../common/index.js';
import { saveBenchResult } from './results.js';

const iterations = Number(process.argv[process.argv.indexOf('--iterations') + 1] ?? 0) || 200;

async function measure(fn: () => unknown): Promise<number> {
  for (let warm = 0; warm < Math.min(20, iterations); warm++) await fn();
  const samples: number[] = [];
  for (let run = 0; run < iterations; run++) {
    const started = performance.now();
    await fn();
    samples.push(performance.now() - started);
  }
  samples.sort((a, b) => a - b);
  return percentile(samples, 50);
}

const genuine = Buffer.from(
  readFileSync(new URL('../../test/fixtures/attestation/aws-genuine-2026-02-06.b64', import.meta.url), 'utf8').trim(),
  'base64',
);
const nsm = createEmulatedNsm({ measurements: emulatedMeasurements() });
const nonce = new Uint8Array(32).fill(7);
const emulated = nsm.attest({ nonce, publicKey: new Uint8Array(32).fill(1) });

const cases: { name: string; document: Uint8Array; options: VerifyOptions; roots: string[] | undefined }[] = [
  {
    name: 'genuine AWS (5 certificates)',
    document: genuine,
    options: { at: new Date('2026-02-06T08:30:00Z') },
    roots: undefined,
  },
  {
    name: 'emulated NSM (3 certificates)',
    document: emulated,
    options: { nonce, expectedPcrs: nsm.measurements, maxAgeMs: 60_000, requirePublicKey: true },
    roots: [nsm.rootCertificatePem],
  },
];

const rows = [];
for (const { name, document, options, roots } of cases) {
  const nodeRoots = resolveTrustedRoots(roots);
  const webRoots = roots ? await loadWebTrustedRoots(roots) : undefined;
  const nodeResult = verifyAttestation(document, { ...options, trustedRoots: nodeRoots });
  const webResult = await verifyAttestationWeb(document, { ...options, trustedRoots: webRoots });
  if (!nodeResult.ok || !webResult.ok) throw new Error(`${name}: the bench document does not verify`);
  const nodeMs = await measure(() => verifyAttestation(document, { ...options, trustedRoots: nodeRoots }));
  const webMs = await measure(() => verifyAttestationWeb(document, { ...options, trustedRoots: webRoots }));
  rows.push({
    document: name,
    webCryptoMs: Number(webMs.toFixed(3)),
    nodeCryptoMs: Number(nodeMs.toFixed(3)),
    ratio: Number((webMs / nodeMs).toFixed(2)),
  });
}

console.log(`client attestation verification, median of ${iterations} (cold: every signature verified)`);
console.log('document                          WebCrypto (SDK)   node:crypto (gateway, baseline)   ratio');
for (const row of rows)
  console.log(
    `${row.document.padEnd(34)}${`${row.webCryptoMs} ms`.padEnd(18)}${`${row.nodeCryptoMs} ms`.padEnd(34)}${row.ratio}x`,
  );
console.log(
  `saved ${await saveBenchResult('client-verify', { environment: describeEnvironment(), iterations, rows })}`,
);
