// What attestation costs a secure request once its member is attested (the cached path): the
// same gateway, the same stand-in enclave, with the attestation gate on and with it skipped
// (--insecure-skip-attestation), and a second skipped gateway to show how far two gateways doing
// the same work differ here (the noise floor); the order rotates every round. The stand-in enclave is a
// trivial server (its /predict answers at once, so the gateway's own cost is what is measured)
// that serves /readyz with its boot key and /attestation from an emulated NSM, exactly as the
// model server does. Each run: the load library's closed loop, sequential requests on one keep-alive connection.
// Needs taskset (util-linux) to pin the processes.
import { spawn, spawnSync } from 'node:child_process';
import { availableParallelism } from 'node:os';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { percentile, stopChild, waitForLine } from '../common/index.js';
import { closedLoop, exactAnswer } from '../loadtest/index.js';

const CLI = new URL('../../bin/mpg', import.meta.url).pathname;
const STOP_GRACE_MS = 5_000;
const ATTESTATION_MODULE = new URL('../attestation/index.js', import.meta.url).pathname;

const STAND_IN_ENCLAVE = `
import { createServer } from 'node:http';
import { createHash, generateKeyPairSync } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { answerChallenge, createEmulatedNsmSource, emulatedMeasurements, rawX25519PublicKey, writeMeasurementsFile } from ${JSON.stringify(ATTESTATION_MODULE)};
const [socketPath, rootFile, measurementsFile] = process.argv.slice(2);
const measurements = emulatedMeasurements({ application: [Buffer.from('bench stand-in')] });
await writeMeasurementsFile(measurementsFile, measurements);
const source = createEmulatedNsmSource(measurements);
writeFileSync(rootFile, source.nsm.rootCertificatePem);
const keys = generateKeyPairSync('x25519');
const publicKey = rawX25519PublicKey(keys.publicKey);
const publicKeySha256 = createHash('sha256').update(publicKey).digest('hex');
const answer = JSON.stringify({ model: 'stand-in', predictions: [{ topk: [] }] });
createServer((req, res) => {
  const url = new URL(req.url, 'http://enclave');
  if (url.pathname === '/readyz') {
    const challenge = url.searchParams.get('proof');
    const proof = challenge ? { proof: answerChallenge(keys.privateKey, Buffer.from(challenge, 'hex')).toString('hex') } : {};
    return res.end(JSON.stringify({ status: 'ready', publicKeySha256, ...proof }));
  }
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

export interface PathFigures {
  p50Ms: number;
  p99Ms: number;
  requestsPerSecond: number;
}

export interface RequestPathResult {
  requests: number;
  rounds: number;
  attested: PathFigures;
  skipped: PathFigures;
  /** A second, identical skipped gateway: how far two gateways that do the same work differ here. */
  skippedAgain: PathFigures;
  /** The median over rounds of (attested p50 minus skipped p50) in the same round. */
  p50DifferenceMs: number;
  /** The largest |skippedAgain p50 minus skipped p50| in any round: how far two gateways doing the same work differ here. */
  p50NoiseMs: number;
}

async function started(child: ChildProcess, pattern: RegExp, name: string): Promise<string> {
  return (await waitForLine(child, pattern, name))[1] ?? '';
}

// Both gateways on the same CPU, the generator and the stand-in enclave on another: scheduling
// noise between the two gateways is what would otherwise be measured.
const GATEWAY_CPU = String(Math.max(availableParallelism() - 1, 0));
const OTHER_CPU = '0';

async function gateway(args: string[]): Promise<{ url: string; child: ChildProcess }> {
  const child = spawn('taskset', ['-c', GATEWAY_CPU, CLI, 'gateway', '--port', '0', '--log-level', 'error', ...args], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const url = await started(child, /gateway listening on (http:\/\/\S+)/, 'gateway');
  // Until the member is attested (or, skipped, healthy), the secure route answers 503.
  for (;;) {
    const response = await fetch(`${url}/predict-secure`, {
      method: 'POST',
      body: '{}',
      headers: { 'content-type': 'application/json' },
    });
    await response.arrayBuffer();
    if (response.status === 200) return { url, child };
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** `requests` sequential requests on one keep-alive connection (the load library's closed loop); each good answer's time. */
async function sequential(url: string, requests: number): Promise<number[]> {
  const figures = await closedLoop(
    { url: `${url}/predict-secure`, route: 'secure' },
    {
      body: '{}',
      connections: 1,
      seconds: 0,
      requests,
      timeoutSeconds: 10,
      check: exactAnswer(undefined, 'secure'),
      keepLatencies: true,
    },
  );
  const failed = figures.non2xx + figures.mismatches + figures.errors;
  if (failed > 0)
    throw new Error(
      `the secure route failed ${failed} of ${requests} requests (non-2xx ${figures.non2xx}, errors ${figures.errors})`,
    );
  return figures.latencies ?? [];
}

function summary(latencies: number[], seconds: number) {
  const sorted = [...latencies].sort((a, b) => a - b);
  return {
    p50Ms: percentile(sorted, 50),
    p99Ms: percentile(sorted, 99),
    requestsPerSecond: latencies.length / seconds,
  };
}

export async function measureRequestPath(requests = 2_000, rounds = 6): Promise<RequestPathResult> {
  const dir = mkdtempSync(join(tmpdir(), 'mpg-bench-attestation-'));
  const script = join(dir, 'stand-in-enclave.mjs');
  const socketPath = join(dir, 'enclave.sock');
  const rootFile = join(dir, 'root.pem');
  const measurementsFile = join(dir, 'measurements.json');
  writeFileSync(script, STAND_IN_ENCLAVE);
  const enclave = spawn(
    'taskset',
    ['-c', OTHER_CPU, process.execPath, script, socketPath, rootFile, measurementsFile],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  spawnSync('taskset', ['-pc', OTHER_CPU, String(process.pid)], { stdio: 'ignore' });
  const children: ChildProcess[] = [enclave];
  try {
    await started(enclave, /listening on (unix:\S+)/, 'stand-in enclave');
    const gateways = {
      attested: await gateway([
        '--secure-upstream',
        `unix:${socketPath}`,
        '--attestation-pcrs',
        measurementsFile,
        '--insecure-trust-emulated-nsm-root',
        rootFile,
      ]),
      skipped: await gateway(['--secure-upstream', `unix:${socketPath}`, '--insecure-skip-attestation']),
      skippedAgain: await gateway(['--secure-upstream', `unix:${socketPath}`, '--insecure-skip-attestation']),
    };
    const names = Object.keys(gateways) as (keyof typeof gateways)[];
    children.push(...names.map((name) => gateways[name].child));
    for (const name of names) await sequential(gateways[name].url, 300); // warm-up
    const latencies = { attested: [] as number[], skipped: [] as number[], skippedAgain: [] as number[] };
    const seconds = { attested: 0, skipped: 0, skippedAgain: 0 };
    const differences: number[] = [];
    const noise: number[] = [];
    const p50 = (values: number[]) =>
      percentile(
        [...values].sort((x, y) => x - y),
        50,
      );
    // The order rotates every round, so that no gateway always runs first or last.
    for (let round = 0; round < rounds; round += 1) {
      const thisRound: Record<string, number> = {};
      for (let index = 0; index < names.length; index += 1) {
        const name = names[(index + round) % names.length]!;
        const start = performance.now();
        const measured = await sequential(gateways[name].url, requests);
        seconds[name] += (performance.now() - start) / 1000;
        latencies[name].push(...measured);
        thisRound[name] = p50(measured);
      }
      differences.push(thisRound.attested! - thisRound.skipped!);
      noise.push(Math.abs(thisRound.skippedAgain! - thisRound.skipped!));
    }
    const figures = (name: keyof typeof gateways) => summary(latencies[name], seconds[name]);
    return {
      requests,
      rounds,
      attested: figures('attested'),
      skipped: figures('skipped'),
      skippedAgain: figures('skippedAgain'),
      p50DifferenceMs: p50(differences),
      p50NoiseMs: Math.max(...noise),
    };
  } finally {
    await Promise.all(children.map((child) => stopChild(child, STOP_GRACE_MS)));
    rmSync(dir, { recursive: true, force: true });
  }
}
