// npm run bench:attestation — what one attestation verification costs, chain included.
//
// Prints, for an emulated-NSM document (root, intermediate, leaf) and a genuine AWS document (root,
// three intermediates, leaf), the median ms per full verification and verifications/s, cold
// (every certificate signature verified) and with the gateway verifier's link cache warm; the split
// into CBOR+COSE+payload parse, chain (certificates parsed and their signatures verified) and the
// COSE signature; and beside them, from the same run, one raw P-384 ECDSA verification by
// node:crypto (OpenSSL), the floor every signature check in the chain pays.
// Flags: npm run bench:attestation -- --help
import { generateKeyPairSync, sign, verify } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { measureRequestPath } from './attestation-request-path.js';
import type { TrustedRoot, VerifyOptions } from '../attestation/index.js';
import {
  VerifiedLinkCache,
  checkChainLinks,
  checkEs384,
  checkValidity,
  createEmulatedNsm,
  decodeCbor,
  emulatedMeasurements,
  findRoot,
  parseAttestationPayload,
  parseChain,
  parseCoseSign1,
  resolveTrustedRoots,
  sigStructure,
  verifyAttestation,
} from '../attestation/index.js';
import { describeEnvironment, integer, percentile } from '../common/index.js';
import { runBench, saveBenchResult } from './run.js';

const benchOptions = {
  iterations: integer({
    description: 'Runs per figure (the median is reported), after a warm-up',
    default: 400,
    min: 1,
    max: 1_000_000,
  }),
  requests: integer({
    description: 'Per-request cost: sequential requests per gateway and round',
    default: 2_000,
    min: 10,
    max: 1_000_000,
  }),
  rounds: integer({
    description: "Per-request cost: rounds, the gateways' order rotated each",
    default: 6,
    min: 1,
    max: 1000,
  }),
};

const TARGET_MS = 2;
let iterations = benchOptions.iterations.default;

/** Median (and p90) ms of `fn` over `iterations` runs after a warm-up. */
function measure(fn: () => unknown): { medianMs: number; p90Ms: number } {
  for (let warm = 0; warm < Math.min(50, iterations); warm++) fn();
  const samples: number[] = [];
  for (let run = 0; run < iterations; run++) {
    const started = performance.now();
    fn();
    samples.push(performance.now() - started);
  }
  samples.sort((a, b) => a - b);
  return { medianMs: percentile(samples, 50), p90Ms: percentile(samples, 90) };
}

function mustPass(document: Uint8Array, options: VerifyOptions): void {
  const result = verifyAttestation(document, options);
  if (!result.ok) throw new Error(`bench document does not verify: ${JSON.stringify(result.checks.at(-1))}`);
}

function split(document: Uint8Array, roots: readonly TrustedRoot[], at: Date) {
  const parse = () => {
    const cose = parseCoseSign1(decodeCbor(document, { maxBytes: 16 * 1024 }));
    checkEs384(cose.protectedHeader);
    return { cose, payload: parseAttestationPayload(decodeCbor(cose.payload, { maxBytes: 16 * 1024 })) };
  };
  const { cose, payload } = parse();
  const chainOf = () => {
    const chain = parseChain(payload, findRoot(payload, roots));
    checkChainLinks(chain);
    checkValidity(chain, at);
    return chain;
  };
  const leafKey = chainOf().at(-1)!.x509.publicKey;
  const signature = () =>
    verify(
      'sha384',
      sigStructure(cose.protectedHeader, cose.payload),
      { key: leafKey, dsaEncoding: 'ieee-p1363' },
      cose.signature,
    );
  return { parse: measure(parse), chain: measure(chainOf), signature: measure(signature) };
}

function benchDocument(
  name: string,
  document: Uint8Array,
  options: VerifyOptions & { trustedRoots: readonly TrustedRoot[]; at: Date },
) {
  mustPass(document, options);
  const cold = measure(() => verifyAttestation(document, options));
  const linkCache = new VerifiedLinkCache();
  // A new document from an enclave seen before: its chain is known (the cache holds links only,
  // so the document's own signature is verified every time).
  const warm = measure(() => verifyAttestation(document, { ...options, linkCache }));
  const parts = split(document, options.trustedRoots, options.at);
  // Signatures checked: one per certificate below the pinned root, plus the document's own.
  const certificates =
    1 + parseAttestationPayload(decodeCbor(parseCoseSign1(decodeCbor(document)).payload)).cabundle.length;
  return { name, bytes: document.length, certificates, cold, warm, ...parts };
}

async function main(options: { iterations: number; requests: number; rounds: number }) {
  iterations = options.iterations;
  const environment = describeEnvironment();
  console.log(
    `bench:attestation on ${environment.cpuModel} (${environment.cores} cores), Node ${environment.node}, ${iterations} runs per figure (median)`,
  );

  // The floor: one P-384 ECDSA-SHA384 verification of a 5 KiB message.
  const key = generateKeyPairSync('ec', { namedCurve: 'secp384r1' });
  const message = Buffer.alloc(5 * 1024, 1);
  const signature = sign('sha384', message, { key: key.privateKey, dsaEncoding: 'ieee-p1363' });
  const rawVerify = measure(() =>
    verify('sha384', message, { key: key.publicKey, dsaEncoding: 'ieee-p1363' }, signature),
  );
  console.log(`raw P-384 ECDSA verify (node:crypto/OpenSSL): ${rawVerify.medianMs.toFixed(3)} ms`);

  const at = new Date('2026-03-01T12:00:00Z');
  const measurements = emulatedMeasurements({ application: [Buffer.from('bench')] });
  const nsm = createEmulatedNsm({ measurements, now: () => at });
  const nonce = Buffer.alloc(32, 7);
  const emulated = benchDocument('emulated NSM', nsm.attest({ nonce, publicKey: Buffer.alloc(97, 4) }), {
    trustedRoots: resolveTrustedRoots([nsm.rootCertificate]),
    at,
    expectedPcrs: measurements,
    nonce,
    maxAgeMs: 60_000,
    requirePublicKey: true,
  });
  const genuineBytes = Buffer.from(
    readFileSync(new URL('../../test/fixtures/attestation/aws-genuine-2026-02-06.b64', import.meta.url), 'utf8').trim(),
    'base64',
  );
  const genuine = benchDocument('genuine AWS', genuineBytes, {
    trustedRoots: resolveTrustedRoots(undefined),
    at: new Date('2026-02-06T08:30:00Z'),
    maxAgeMs: 600_000,
  });

  const ms = (value: number) => `${value.toFixed(3)} ms`;
  console.log(
    '\n| document | full verification, cold (median / p90) | known chain, new document | parse (CBOR+COSE+payload) | chain | COSE signature | raw P-384 verify (same run) | target < 2 ms |',
  );
  console.log('|---|---|---|---|---|---|---|---|');
  for (const run of [emulated, genuine]) {
    const met = (value: number) => (value < TARGET_MS ? 'met' : 'missed');
    console.log(
      `| ${run.name} (${run.bytes} bytes, ${run.certificates} signatures) | ${ms(run.cold.medianMs)} / ${ms(run.cold.p90Ms)} | ${ms(run.warm.medianMs)} | ` +
        `${ms(run.parse.medianMs)} | ${ms(run.chain.medianMs)} | ${ms(run.signature.medianMs)} | ${ms(rawVerify.medianMs)} x ${run.certificates} signatures = ${ms(rawVerify.medianMs * run.certificates)} | ` +
        `cold: ${met(run.cold.medianMs)}; known chain: ${met(run.warm.medianMs)} |`,
    );
  }

  console.log(
    '\nPer secure request, once attested (the cached path): the same stand-in enclave behind a gateway with the gate on, one with --insecure-skip-attestation and a second such one, all pinned to one CPU; sequential requests on one connection, order rotated',
  );
  const path = await measureRequestPath(options.requests, options.rounds);
  const row = (name: string, figures: { p50Ms: number; p99Ms: number; requestsPerSecond: number }) =>
    `| ${name} | ${figures.p50Ms.toFixed(3)} ms | ${figures.p99Ms.toFixed(3)} ms | ${figures.requestsPerSecond.toFixed(0)} |`;
  console.log('\n| secure route | p50 | p99 | req/s |');
  console.log('|---|---|---|---|');
  console.log(row('attestation gate on (attested member)', path.attested));
  console.log(row('attestation skipped (baseline)', path.skipped));
  console.log(row('attestation skipped, a second gateway (noise floor)', path.skippedAgain));
  const us = (ms: number) => `${ms >= 0 ? '+' : ''}${(ms * 1000).toFixed(0)} us`;
  // A cost is measurable when the gate makes requests slower by more than two identical gateways differ.
  const measurable = path.p50DifferenceMs > path.p50NoiseMs;
  console.log(
    `\ncost per request on the cached path: ${us(path.p50DifferenceMs)} at p50 (median over rounds), against up to ${us(path.p50NoiseMs)} between two identical gateways in a round ` +
      `(${path.rounds} rounds x ${path.requests} requests each): ${measurable ? 'slower by more than the noise floor: a measurable cost' : 'within the noise floor: none measurable'} (target: none measurable)`,
  );

  console.log(
    `\nresults: ${await saveBenchResult('attestation', { environment, iterations, targetMs: TARGET_MS, rawP384VerifyMs: rawVerify.medianMs, runs: [emulated, genuine], requestPath: path })}`,
  );
}

await runBench({
  name: 'attestation',
  summary: [
    'What one attestation verification costs, chain included, cold and with a known chain; and what attestation costs a secure request once attested.',
  ],
  options: benchOptions,
  main,
});
