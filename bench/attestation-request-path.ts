// What attestation costs a secure request once its member is attested (the cached path): the
// same gateway, the same stand-in enclave, with the attestation gate on and with it skipped
// (--insecure-skip-attestation), alternated A B B A so drift and order hit both alike. The stand-in enclave is a
// trivial server (its /predict answers at once, so the gateway's own cost is what is measured)
// that serves /readyz with its boot key and /attestation from an emulated NSM, exactly as the
// model server does. Each run: a closed loop of sequential requests on one keep-alive connection.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Pool } from 'undici';
import { percentile } from '../loadtest/index.js';

const CLI = new URL('../../bin/mpg', import.meta.url).pathname;
const ATTESTATION_MODULE = new URL('../attestation/index.js', import.meta.url).pathname;

const STAND_IN_ENCLAVE = `
import { createServer } from 'node:http';
import { createHash, generateKeyPairSync } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { createEmulatedNsmSource, emulatedMeasurements, writeMeasurementsFile } from ${JSON.stringify(ATTESTATION_MODULE)};
const [socketPath, rootFile, measurementsFile] = process.argv.slice(2);
const measurements = emulatedMeasurements({ application: [Buffer.from('bench stand-in')] });
await writeMeasurementsFile(measurementsFile, measurements);
const source = createEmulatedNsmSource(measurements);
writeFileSync(rootFile, source.nsm.rootCertificatePem);
const publicKey = generateKeyPairSync('x25519').publicKey.export({ type: 'spki', format: 'der' }).subarray(-32);
const publicKeySha256 = createHash('sha256').update(publicKey).digest('hex');
const answer = JSON.stringify({ model: 'stand-in', predictions: [{ topk: [] }] });
createServer((req, res) => {
  const url = new URL(req.url, 'http://enclave');
  if (url.pathname === '/readyz') return res.end(JSON.stringify({ status: 'ready', publicKeySha256 }));
  if (url.pathname === '/attestation') {
    return source.attest({ publicKey, nonce: Buffer.from(url.searchParams.get('nonce') ?? '', 'hex') }).then((document) => {
      res.setHeader('content-type', 'application/cbor');
      res.end(Buffer.from(document));
    });
  }
  req.resume();
  req.on('end', () => res.end(answer));
}).listen(socketPath, () => console.log('listening on unix:' + socketPath));
`;

export interface RequestPathResult {
  requests: number;
  rounds: number;
  attested: { p50Ms: number; p99Ms: number; requestsPerSecond: number };
  skipped: { p50Ms: number; p99Ms: number; requestsPerSecond: number };
  /** attested p50 minus skipped p50. */
  p50DifferenceMs: number;
}

function started(child: ChildProcess, pattern: RegExp, name: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let output = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      const match = pattern.exec(output);
      if (match) resolve(match[1] ?? '');
    });
    child.once('exit', (code) => reject(new Error(`${name} exited (${code}) before it listened`)));
  });
}

async function gateway(args: string[]): Promise<{ url: string; child: ChildProcess }> {
  const child = spawn(CLI, ['gateway', '--port', '0', '--log-level', 'error', ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  const url = await started(child, /gateway listening on (http:\/\/\S+)/, 'gateway');
  // Until the member is attested (or, skipped, healthy), the secure route answers 503.
  for (;;) {
    const response = await fetch(`${url}/predict-secure`, { method: 'POST', body: '{}', headers: { 'content-type': 'application/json' } });
    await response.arrayBuffer();
    if (response.status === 200) return { url, child };
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function closedLoop(url: string, requests: number): Promise<number[]> {
  const pool = new Pool(url, { connections: 1 });
  const latencies: number[] = [];
  try {
    for (let index = 0; index < requests; index += 1) {
      const start = performance.now();
      const response = await pool.request({ method: 'POST', path: '/predict-secure', body: '{}', headers: { 'content-type': 'application/json' } });
      await response.body.arrayBuffer();
      if (response.statusCode !== 200) throw new Error(`the secure route answered ${response.statusCode}`);
      latencies.push(performance.now() - start);
    }
  } finally {
    await pool.close();
  }
  return latencies;
}

function summary(latencies: number[], seconds: number) {
  const sorted = [...latencies].sort((a, b) => a - b);
  return { p50Ms: percentile(sorted, 50), p99Ms: percentile(sorted, 99), requestsPerSecond: latencies.length / seconds };
}

export async function measureRequestPath(requests = 2_000, rounds = 4): Promise<RequestPathResult> {
  const dir = mkdtempSync(join(tmpdir(), 'mpg-bench-attestation-'));
  const script = join(dir, 'stand-in-enclave.mjs');
  const socketPath = join(dir, 'enclave.sock');
  const rootFile = join(dir, 'root.pem');
  const measurementsFile = join(dir, 'measurements.json');
  writeFileSync(script, STAND_IN_ENCLAVE);
  const enclave = spawn(process.execPath, [script, socketPath, rootFile, measurementsFile], { stdio: ['ignore', 'pipe', 'inherit'] });
  const children: ChildProcess[] = [enclave];
  try {
    await started(enclave, /listening on (unix:\S+)/, 'stand-in enclave');
    const attested = await gateway(['--secure-upstream', `unix:${socketPath}`, '--attestation-pcrs', measurementsFile, '--insecure-trust-emulated-nsm-root', rootFile]);
    const skipped = await gateway(['--secure-upstream', `unix:${socketPath}`, '--insecure-skip-attestation']);
    children.push(attested.child, skipped.child);
    await closedLoop(attested.url, 300); // warm-up, both
    await closedLoop(skipped.url, 300);
    const on: number[] = [];
    const off: number[] = [];
    let onSeconds = 0;
    let offSeconds = 0;
    // A B B A ...: whichever runs second in a round is not always the same one.
    for (let round = 0; round < rounds; round += 1) {
      for (const which of round % 2 === 0 ? ['on', 'off'] : ['off', 'on']) {
        const start = performance.now();
        const latencies = await closedLoop(which === 'on' ? attested.url : skipped.url, requests);
        const seconds = (performance.now() - start) / 1000;
        if (which === 'on') {
          on.push(...latencies);
          onSeconds += seconds;
        } else {
          off.push(...latencies);
          offSeconds += seconds;
        }
      }
    }
    const attestedSummary = summary(on, onSeconds);
    const skippedSummary = summary(off, offSeconds);
    return { requests, rounds, attested: attestedSummary, skipped: skippedSummary, p50DifferenceMs: attestedSummary.p50Ms - skippedSummary.p50Ms };
  } finally {
    for (const child of children) child.kill('SIGTERM');
    await Promise.all(children.map((child) => (child.exitCode !== null ? Promise.resolve() : new Promise((resolve) => child.once('exit', resolve)))));
    rmSync(dir, { recursive: true, force: true });
  }
}
