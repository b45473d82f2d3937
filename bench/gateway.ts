// npm run bench:gateway — what the gateway costs, against going direct, in one run.
//
// Trivial upstream (a separate node:http process answering a fixed small JSON): req/s and p50/p99
// direct and through `mpg gateway`, on the public path (TCP) and the secure path (Unix socket, the
// secure route's transport), at saturation and paced at a fixed rate well below it, where the p50
// difference is the gateway's own time rather than queueing. Real model server: images/s and
// p50/p99 direct and through the gateway at saturation, batch-2 base64 JSON. CPU of the gateway,
// the upstream and the load generator, since all share the machine's cores.
// Flags: --duration S --connections N --rate N --warmup S --model-duration S --model-connections N
import { saveBenchResult } from './results.js';
import { spawn } from 'node:child_process';
import type { ChildProcessByStdio } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import autocannon from 'autocannon';
import { Pool } from 'undici';
import { cpuMeter, describeEnvironment, percentile, sampleImage } from '../common/index.js';

interface BenchOptions {
  durationSeconds: number;
  connections: number;
  /** Requests per second of the open-loop phase, well below what the gateway saturates at. */
  rate: number;
  warmupSeconds: number;
  modelDurationSeconds: number;
  modelConnections: number;
}

function parseArgs(argv: string[]): BenchOptions {
  const value = (flag: string, fallback: number) => {
    const index = argv.indexOf(flag);
    if (index === -1) return fallback;
    const parsed = Number(argv[index + 1]);
    if (!Number.isFinite(parsed) || parsed <= 0) throw new Error(`${flag} needs a positive number, got ${argv[index + 1]}`);
    return parsed;
  };
  return {
    durationSeconds: value('--duration', 10),
    connections: value('--connections', 10),
    rate: value('--rate', 500),
    warmupSeconds: value('--warmup', 2),
    modelDurationSeconds: value('--model-duration', 15),
    // 16 connections of 2 images keep the model server's two runs of 8 always refilled: a backlog,
    // so throughput measures the server, not the round trip of a closed loop that runs dry.
    modelConnections: value('--model-connections', 16),
  };
}

// The launcher users run, so its environment defaults are part of what is measured.
const CLI = new URL('../../bin/mpg', import.meta.url).pathname;
const TRIVIAL_REQUEST = JSON.stringify({ images: ['aGVsbG8='], topk: 1 });
const TRIVIAL_ANSWER = JSON.stringify({ model: 'trivial', predictions: [[{ label: 'ok', score: 1 }]] });
const P50_ADDED_TARGET_MS = 0.5;
const MODEL_THROUGHPUT_TARGET = 0.97;
const STOP_GRACE_MS = 5_000;
/** CPU others may use during a run before its figures are called suspect. */
const QUIET_MACHINE_CORES = 0.2;

// Its own process, so it never shares an event loop with autocannon. It exits when its stdin
// closes: a bench killed without cleanup leaves no upstream behind.
const TRIVIAL_UPSTREAM_SOURCE = `
import { createServer } from 'node:http';
const answer = ${JSON.stringify(TRIVIAL_ANSWER)};
const handle = (request, response) => {
  if (request.method === 'POST' && request.url === '/predict') {
    request.resume();
    request.on('end', () => {
      response.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(answer) });
      response.end(answer);
    });
  } else if (request.method === 'GET' && request.url === '/readyz') {
    response.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ready"}');
  } else {
    response.writeHead(404).end();
  }
};
const listen = (target) => new Promise((resolve) => {
  const server = createServer(handle);
  server.keepAliveTimeout = 60_000;
  server.listen(target, () => resolve(server));
});
const tcp = await listen({ host: '127.0.0.1', port: 0 });
await listen(process.argv[2]);
process.stdout.write('upstream listening on http://127.0.0.1:' + tcp.address().port + '\\n');
process.stdin.on('end', () => process.exit(0)).resume();
`;

interface Child {
  name: string;
  url: string;
  pid: number;
  stop(): Promise<void>;
}

const children = new Set<ChildProcessByStdio<Writable | null, Readable, null>>();

async function startChild(name: string, command: string, args: string[]): Promise<Child> {
  const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'inherit'] });
  children.add(child);
  child.once('exit', () => children.delete(child));
  const url = await new Promise<string>((resolve, reject) => {
    let output = '';
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      const match = /listening on (http:\/\/\S+)/.exec(output);
      if (match) {
        child.stdout.off('data', onData);
        child.stdout.resume(); // keep draining, so a chatty child never blocks on a full pipe
        resolve(match[1]!);
      }
    };
    child.stdout.on('data', onData);
    child.once('error', reject);
    child.once('exit', (code, signal) => reject(new Error(`${name} exited (${signal ?? code}) before listening`)));
  });
  await waitReady(name, url);
  return {
    name,
    url,
    pid: child.pid!,
    stop: () => stopChild(child),
  };
}

function stopChild(child: ChildProcessByStdio<Writable | null, Readable, null>): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise<void>((resolve) => {
    const force = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
    child.once('exit', () => {
      clearTimeout(force);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

async function waitReady(name: string, url: string) {
  const deadline = performance.now() + 120_000;
  while (performance.now() < deadline) {
    const ready = await fetch(`${url}/readyz`).then((response) => response.status === 200, () => false);
    if (ready) return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error(`${name} at ${url} was not ready within 120 s`);
}

interface Target {
  label: string;
  url: string;
  socketPath?: string;
  /** The gateway's x-privacy-route the answer must carry; undefined when going direct. */
  route?: 'public' | 'secure';
}

/** One request before measuring: the target answers 2xx, and through the gateway on the right route. */
function checkTarget(target: Target, body: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const url = new URL(target.url);
    const outgoing = httpRequest(
      {
        ...(target.socketPath ? { socketPath: target.socketPath } : { host: url.hostname, port: url.port }),
        path: url.pathname,
        method: 'POST',
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
      },
      (response) => {
        response.resume();
        response.once('end', () => {
          const status = response.statusCode ?? 0;
          const route = response.headers['x-privacy-route'];
          if (status < 200 || status >= 300) reject(new Error(`${target.label}: status ${status}`));
          else if (target.route && route !== target.route) reject(new Error(`${target.label}: x-privacy-route ${String(route)}, expected ${target.route}`));
          else resolve();
        });
      },
    );
    outgoing.once('error', reject);
    outgoing.end(body);
  });
}

interface LoadOptions {
  body: string;
  seconds: number;
  connections: number;
  expectBody?: string;
  /** Processes whose CPU is measured over the run. */
  pids: Record<string, number>;
}

interface Measured {
  ok: number;
  seconds: number;
  requestsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  mismatches: number;
  /** Cores used over the run: CPU seconds / wall seconds, per process, and the load generator. */
  cores: Record<string, number>;
  /** 2xx response times (ms), kept only when asked for. */
  latencies?: number[];
}

/** At saturation: autocannon's closed loop, every connection sending again as soon as answered. */
async function load(target: Target, options: LoadOptions, keepLatencies = false): Promise<Measured> {
  const meter = cpuMeter(options.pids);
  const latencies: number[] = [];
  const result = await new Promise<autocannon.Result>((resolve, reject) => {
    const instance = autocannon(
      {
        url: target.url,
        socketPath: target.socketPath,
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: options.body,
        connections: options.connections,
        duration: options.seconds,
        // A fast wrong answer must never count as throughput.
        expectBody: options.expectBody,
      },
      (error: unknown, done) => (error ? reject(error instanceof Error ? error : new Error('autocannon failed', { cause: error })) : resolve(done)),
    );
    // autocannon's own histogram keeps whole milliseconds (lowest discernible value 1), too coarse
    // for a 0.5 ms target: percentiles come from each answer's hrtime-measured time instead.
    instance.on('response', (_client, statusCode, _bytes, responseTime) => {
      if (statusCode >= 200 && statusCode < 300) latencies.push(responseTime);
    });
  });
  latencies.sort((a, b) => a - b);
  const cores = meter(result.duration);
  const ok = result['2xx'];
  return {
    ok,
    seconds: result.duration,
    requestsPerSecond: ok / result.duration,
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
    maxMs: latencies.at(-1) ?? 0,
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
    mismatches: result.mismatches,
    cores,
    ...(keepLatencies ? { latencies } : {}),
  };
}

/**
 * At a fixed rate, well below saturation: each request is sent when due whether or not earlier
 * ones were answered (an open loop), so nothing queues behind a slow answer and the difference
 * between two targets' p50 is what one request costs, not queueing. autocannon's own rate option
 * cannot do this: it sends each second's quota as fast as it can and then waits for the next second.
 */
async function paced(target: Target, options: LoadOptions & { rate: number; warmupSeconds: number }): Promise<Measured> {
  const url = new URL(target.url);
  const pool = new Pool(url.origin, {
    connections: options.connections,
    headersTimeout: 10_000,
    bodyTimeout: 10_000,
    ...(target.socketPath ? { socketPath: target.socketPath } : {}),
  });
  const latencies: number[] = [];
  const counts = { ok: 0, non2xx: 0, errors: 0, timeouts: 0, mismatches: 0 };
  const send = async (measured: boolean) => {
    const sent = performance.now();
    try {
      const response = await pool.request({ path: url.pathname, method: 'POST', headers: { 'content-type': 'application/json' }, body: options.body });
      const text = await response.body.text();
      const elapsed = performance.now() - sent;
      if (!measured) return;
      if (response.statusCode < 200 || response.statusCode >= 300) counts.non2xx++;
      else if (options.expectBody !== undefined && text !== options.expectBody) counts.mismatches++;
      else {
        counts.ok++;
        latencies.push(elapsed);
      }
    } catch (error) {
      if (!measured) return;
      if (/TIMEOUT/.test((error as { code?: string }).code ?? '')) counts.timeouts++;
      else counts.errors++;
    }
  };
  const warmupRequests = Math.round(options.rate * options.warmupSeconds);
  const total = warmupRequests + Math.round(options.rate * options.seconds);
  const requests: Promise<void>[] = [];
  const started = performance.now();
  let meter: ((seconds: number) => Record<string, number>) | undefined;
  let measuredFrom = started;
  while (requests.length < total) {
    const due = Math.min(total, Math.floor(((performance.now() - started) / 1000) * options.rate) + 1);
    while (requests.length < due) {
      if (requests.length === warmupRequests) {
        meter = cpuMeter(options.pids);
        measuredFrom = performance.now();
      }
      requests.push(send(requests.length >= warmupRequests));
    }
    // Node's timers wake after 1 ms at the soonest; whatever fell due meanwhile goes out together.
    await new Promise((resolve) => setTimeout(resolve, 1000 / options.rate));
  }
  await Promise.all(requests);
  const seconds = (performance.now() - measuredFrom) / 1000;
  const cores = meter!(seconds);
  await pool.close();
  latencies.sort((a, b) => a - b);
  return {
    ...counts,
    seconds,
    requestsPerSecond: counts.ok / seconds,
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
    maxMs: latencies.at(-1) ?? 0,
    cores,
  };
}

/** Joins runs of one target: throughput over all of them, percentiles over all their 2xx answers. */
function combine(runs: Measured[]): Measured {
  const latencies = runs.flatMap((run) => run.latencies ?? []).sort((a, b) => a - b);
  const sum = (pick: (run: Measured) => number) => runs.reduce((total, run) => total + pick(run), 0);
  const seconds = sum((run) => run.seconds);
  const ok = sum((run) => run.ok);
  const cores = Object.fromEntries(Object.keys(runs[0]!.cores).map((name) => [name, sum((run) => run.cores[name]! * run.seconds) / seconds]));
  return {
    ok,
    seconds,
    requestsPerSecond: ok / seconds,
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
    maxMs: latencies.at(-1) ?? 0,
    non2xx: sum((run) => run.non2xx),
    errors: sum((run) => run.errors),
    timeouts: sum((run) => run.timeouts),
    mismatches: sum((run) => run.mismatches),
    cores,
  };
}

const format = (value: number, digits = 1) => value.toFixed(digits);
const signed = (value: number, digits = 1) => (value >= 0 ? '+' : '') + value.toFixed(digits);
const failures = (run: Measured) => run.non2xx + run.errors + run.timeouts + run.mismatches;
const coresText = (cores: Record<string, number>) =>
  Object.entries(cores).map(([name, value]) => `${name} ${format(value, 2)}`).join(', ');

function describe(label: string, run: Measured, unit: 'req/s' | 'images/s' = 'req/s') {
  const rate = unit === 'images/s' ? 2 * run.requestsPerSecond : run.requestsPerSecond;
  console.log(
    `${label}: ${format(rate)} ${unit}, p50 ${format(run.p50Ms, 3)} ms, p99 ${format(run.p99Ms, 3)} ms, ` +
      `2xx ${run.ok}, non-2xx ${run.non2xx}, errors ${run.errors}, timeouts ${run.timeouts}, mismatches ${run.mismatches}; ` +
      `CPU cores: ${coresText(run.cores)}`,
  );
}

let temporaryDirectory: string | undefined;

function killChildrenNow() {
  for (const child of children) child.kill('SIGKILL');
  if (temporaryDirectory) rmSync(temporaryDirectory, { recursive: true, force: true });
  temporaryDirectory = undefined;
}

async function trivialUpstreamPhase(options: BenchOptions) {
  temporaryDirectory = mkdtempSync(join(tmpdir(), 'mpg-bench-gateway-'));
  const script = join(temporaryDirectory, 'trivial-upstream.mjs');
  const socketPath = join(temporaryDirectory, 'upstream.sock');
  writeFileSync(script, TRIVIAL_UPSTREAM_SOURCE);
  const upstream = await startChild('trivial upstream', process.execPath, [script, socketPath]);
  const gateway = await startChild('gateway', CLI, [
    'gateway', '--port', '0', '--log-level', 'warn',
    '--public-upstream', upstream.url, '--secure-upstream', `unix:${socketPath}`,
    // A trivial upstream cannot attest; attestation costs a request nothing (it runs beside the
    // health checks), and bench:attestation measures it.
    '--insecure-skip-attestation',
  ]);
  const paths = [
    {
      name: 'public (TCP)',
      direct: { label: 'direct, TCP', url: `${upstream.url}/predict` } as Target,
      via: { label: 'gateway /predict-public -> TCP', url: `${gateway.url}/predict-public`, route: 'public' } as Target,
    },
    {
      name: 'secure (Unix socket)',
      direct: { label: 'direct, Unix socket', url: 'http://localhost/predict', socketPath } as Target,
      via: { label: 'gateway /predict-secure -> Unix socket', url: `${gateway.url}/predict-secure`, route: 'secure' } as Target,
    },
  ];
  const results = [];
  try {
    for (const path of paths) {
      const measured: Record<string, Record<string, Measured>> = {};
      for (const target of [path.direct, path.via]) {
        await checkTarget(target, TRIVIAL_REQUEST);
        const pids: Record<string, number> = target.route ? { upstream: upstream.pid, gateway: gateway.pid } : { upstream: upstream.pid };
        const common = { body: TRIVIAL_REQUEST, connections: options.connections, expectBody: TRIVIAL_ANSWER, pids };
        await load(target, { ...common, seconds: options.warmupSeconds });
        const saturated = await load(target, { ...common, seconds: options.durationSeconds });
        describe(`trivial, ${target.label}, saturation, ${options.connections} connections`, saturated);
        const fixedRate = await paced(target, { ...common, seconds: options.durationSeconds, rate: options.rate, warmupSeconds: 1 });
        describe(`trivial, ${target.label}, paced ${options.rate} req/s`, fixedRate);
        measured[target.route ? 'via' : 'direct'] = { saturated, fixedRate };
      }
      results.push({ path: path.name, direct: measured.direct!, viaGateway: measured.via! });
    }
  } finally {
    await Promise.all([gateway.stop(), upstream.stop()]);
    killChildrenNow();
  }
  return results;
}

async function modelServerPhase(options: BenchOptions) {
  const image = (await sampleImage()).toString('base64');
  const body = JSON.stringify({ images: [image, image], topk: 5 });
  const modelServer = await startChild('model server', CLI, ['model-server', '--port', '0', '--log-level', 'warn']);
  const gateway = await startChild('gateway', CLI, ['gateway', '--port', '0', '--log-level', 'warn', '--public-upstream', modelServer.url]);
  const direct: Target = { label: 'direct', url: `${modelServer.url}/predict` };
  const via: Target = { label: 'gateway /predict-public', url: `${gateway.url}/predict-public`, route: 'public' };
  try {
    const pids = { 'model server': modelServer.pid, gateway: gateway.pid };
    const common = { body, connections: options.modelConnections, pids };
    for (const target of [direct, via]) {
      await checkTarget(target, body);
      // Warm the connections, the gateway's pool and onnxruntime's shapes before measuring.
      await load(target, { ...common, seconds: Math.max(3, options.warmupSeconds) });
    }
    // Two halves each, direct, gateway, gateway, direct: a drift in the machine's load (others'
    // tests, CPU clocks) falls on both sides alike.
    const half = options.modelDurationSeconds / 2;
    const runs: Record<'direct' | 'via', Measured[]> = { direct: [], via: [] };
    for (const [key, target] of [['direct', direct], ['via', via], ['via', via], ['direct', direct]] as const) {
      runs[key].push(await load(target, { ...common, seconds: half }, true));
    }
    const halves = (measured: Measured[]) => measured.map((run) => ({ ...run, latencies: undefined }));
    const result = { direct: combine(runs.direct), viaGateway: combine(runs.via), halves: { direct: halves(runs.direct), viaGateway: halves(runs.via) } };
    describe(`model server, direct, ${options.modelConnections} connections`, result.direct, 'images/s');
    describe(`model server, gateway /predict-public, ${options.modelConnections} connections`, result.viaGateway, 'images/s');
    return result;
  } finally {
    await Promise.all([gateway.stop(), modelServer.stop()]);
  }
}

async function main() {
  const options = parseArgs(process.argv.slice(2));
  const environment = describeEnvironment();
  const loadAverage = loadavg().map((value) => Math.round(value * 100) / 100);
  console.log(`bench:gateway on ${environment.cpuModel} (${environment.cores} cores), Node ${environment.node}, load average ${loadAverage.join(' ')}`);
  console.log(
    `trivial upstream: ${options.connections} connections, ${options.warmupSeconds} s warm-up, ${options.durationSeconds} s at saturation ` +
      `and ${options.durationSeconds} s paced at ${options.rate} req/s per target; model server: ${options.modelConnections} connections, ` +
      `${options.modelDurationSeconds} s per target (two halves, direct/gateway/gateway/direct), batch-2 base64 JSON`,
  );

  const trivial = await trivialUpstreamPhase(options);
  const model = await modelServerPhase(options);

  const verdict = (met: boolean) => (met ? 'met' : 'MISSED');
  console.log('\n| figure | ours (through the gateway) | baseline (direct, same run) | ratio / delta | target |');
  console.log('|---|---|---|---|---|');
  for (const { path, direct, viaGateway } of trivial) {
    const saturated = { via: viaGateway.saturated!, direct: direct.saturated! };
    const fixed = { via: viaGateway.fixedRate!, direct: direct.fixedRate! };
    const addedSaturated = saturated.via.p50Ms - saturated.direct.p50Ms;
    const addedFixed = fixed.via.p50Ms - fixed.direct.p50Ms;
    console.log(`| trivial ${path}: throughput, ${options.connections} connections | ${format(saturated.via.requestsPerSecond)} req/s | ${format(saturated.direct.requestsPerSecond)} req/s | ${format((100 * saturated.via.requestsPerSecond) / saturated.direct.requestsPerSecond)}% | |`);
    console.log(`| trivial ${path}: p50 / p99 at saturation | ${format(saturated.via.p50Ms, 3)} / ${format(saturated.via.p99Ms, 3)} ms | ${format(saturated.direct.p50Ms, 3)} / ${format(saturated.direct.p99Ms, 3)} ms | p50 ${signed(addedSaturated, 3)} ms | p50 <= +${P50_ADDED_TARGET_MS} ms: ${verdict(addedSaturated <= P50_ADDED_TARGET_MS)} |`);
    console.log(`| trivial ${path}: p50 / p99 paced at ${options.rate} req/s | ${format(fixed.via.p50Ms, 3)} / ${format(fixed.via.p99Ms, 3)} ms | ${format(fixed.direct.p50Ms, 3)} / ${format(fixed.direct.p99Ms, 3)} ms | p50 ${signed(addedFixed, 3)} ms | p50 <= +${P50_ADDED_TARGET_MS} ms: ${verdict(addedFixed <= P50_ADDED_TARGET_MS)} |`);
  }
  const kept = model.viaGateway.requestsPerSecond / model.direct.requestsPerSecond;
  console.log(`| model server: throughput, ${options.modelConnections} connections | ${format(2 * model.viaGateway.requestsPerSecond)} images/s | ${format(2 * model.direct.requestsPerSecond)} images/s | ${format(100 * kept)}% | >= ${100 * MODEL_THROUGHPUT_TARGET}%: ${verdict(kept >= MODEL_THROUGHPUT_TARGET)} |`);
  console.log(`| model server: p50 / p99 | ${format(model.viaGateway.p50Ms)} / ${format(model.viaGateway.p99Ms)} ms | ${format(model.direct.p50Ms)} / ${format(model.direct.p99Ms)} ms | p50 ${signed(model.viaGateway.p50Ms - model.direct.p50Ms)} ms | |`);
  for (const { path, direct, viaGateway } of trivial) {
    console.log(`| CPU, trivial ${path} at saturation (cores) | ${coresText(viaGateway.saturated!.cores)} | ${coresText(direct.saturated!.cores)} | | |`);
  }
  console.log(`| CPU, model server at saturation (cores) | ${coresText(model.viaGateway.cores)} | ${coresText(model.direct.cores)} | | |`);
  const measuredRuns = [...trivial.flatMap((path) => [path.direct.saturated!, path.direct.fixedRate!, path.viaGateway.saturated!, path.viaGateway.fixedRate!]), model.direct, model.viaGateway];
  const failed = measuredRuns.reduce((total, run) => total + failures(run), 0);
  console.log(`| answers not 2xx (non-2xx + errors + timeouts + mismatches), all measured runs | ${failed} | | | 0: ${verdict(failed === 0)} |`);
  const others = Math.max(...measuredRuns.map((run) => run.cores.others ?? 0));
  console.log(`| CPU used by other processes, most in any measured run | ${format(others, 2)} cores | | | ~0 (a quiet machine) |`);
  if (others > QUIET_MACHINE_CORES) {
    console.log(`\nwarning: other processes used up to ${format(others, 2)} of ${environment.cores} cores while measuring; these figures are suspect, run again on a quiet machine`);
  }

  const file = await saveBenchResult('gateway', {
    environment: { ...environment, loadAverage },
    options,
    targets: { p50AddedMs: P50_ADDED_TARGET_MS, modelThroughputKept: MODEL_THROUGHPUT_TARGET },
    trivial,
    model: { ...model, throughputKept: kept },
  });
  console.log(`\nresults: ${file}`);
  if (failed > 0) {
    console.error(`bench:gateway: ${failed} answers were not 2xx; the figures above are not valid`);
    process.exitCode = 1;
  }
}

process.once('exit', killChildrenNow);
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    killChildrenNow();
    process.exit(signal === 'SIGINT' ? 130 : 143);
  });
}

try {
  await main();
} catch (error) {
  console.error(`bench:gateway: ${error instanceof Error ? error.message : String(error)}`);
  killChildrenNow();
  process.exitCode = 1;
}
