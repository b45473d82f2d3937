// npm run bench:gateway — what the gateway costs, against going direct, in one run.
//
// Trivial upstream (a separate node:http process answering a fixed small JSON): req/s and p50/p99
// direct and through `mpg gateway`, on the public path (TCP) and the secure path (Unix socket, the
// secure route's transport), at saturation and paced at a fixed rate well below it, where the p50
// difference is the gateway's own time rather than queueing. Real model server: images/s and
// p50/p99 direct and through the gateway at saturation, batch-2 base64 JSON. CPU of the gateway,
// the upstream and the load generator, since all share the machine's cores.
// Flags: npm run bench:gateway -- --help
import { spawn } from 'node:child_process';
import type { ChildProcessByStdio } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import type { CoresUsed, OptionsOf } from '../common/index.js';
import {
  QUIET_MACHINE_CORES,
  decimal,
  describeEnvironment,
  integer,
  partsCpuMeter,
  percentile,
  stopChild,
  waitForLine,
} from '../common/index.js';
import type { AnswerCheck, ClosedLoopFigures, HttpTarget, RouteFigures } from '../loadtest/index.js';
import { closedLoop, checkTarget, exactAnswer, pacedStream, studyAnswer, studyRequestBody } from '../loadtest/index.js';
import { runBench, saveBenchResult } from './run.js';

const benchOptions = {
  duration: decimal({
    description: 'Trivial upstream: time per target at saturation, and paced',
    unit: 's',
    default: 10,
    min: 0.5,
    max: 3600,
  }),
  connections: integer({
    description: 'Trivial upstream: connections at saturation (the paced phase opens as many)',
    default: 10,
    min: 1,
    max: 10_000,
  }),
  rate: decimal({
    description: "Trivial upstream: the paced phase's offered rate, well below what the gateway saturates at",
    unit: 'requests/s',
    default: 500,
    min: 1,
    max: 100_000,
  }),
  warmup: decimal({ description: 'Warm-up before each measured phase', unit: 's', default: 2, min: 0.1, max: 600 }),
  modelDuration: decimal({
    description: 'Model server: time per target, in two halves',
    unit: 's',
    default: 15,
    min: 1,
    max: 3600,
  }),
  // 16 connections of 2 images keep the model server's two runs of 8 always refilled: a backlog,
  // so throughput measures the server, not the round trip of a closed loop that runs dry.
  modelConnections: integer({
    description: 'Model server: connections at saturation',
    default: 16,
    min: 1,
    max: 10_000,
  }),
};

type BenchOptions = OptionsOf<typeof benchOptions>;

// The launcher users run, so its environment defaults are part of what is measured.
const CLI = new URL('../../bin/mpg', import.meta.url).pathname;
const TRIVIAL_REQUEST = JSON.stringify({ images: ['aGVsbG8='], topk: 1 });
const TRIVIAL_ANSWER = JSON.stringify({ model: 'trivial', predictions: [[{ label: 'ok', score: 1 }]] });
const P50_ADDED_TARGET_MS = 0.5;
const MODEL_THROUGHPUT_TARGET = 0.97;
const STOP_GRACE_MS = 5_000;
const TIMEOUT_SECONDS = 10;

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
  const started = new Promise<never>((_resolve, reject) => child.once('error', reject));
  const [, url] = await Promise.race([waitForLine(child, /listening on (http:\/\/\S+)/, name), started]);
  await waitReady(name, url!);
  return { name, url: url!, pid: child.pid!, stop: () => stopChild(child, STOP_GRACE_MS) };
}

async function waitReady(name: string, url: string) {
  const deadline = performance.now() + 120_000;
  while (performance.now() < deadline) {
    const ready = await fetch(`${url}/readyz`).then(
      (response) => response.status === 200,
      () => false,
    );
    if (ready) return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error(`${name} at ${url} was not ready within 120 s`);
}

interface Target extends HttpTarget {
  label: string;
}

interface LoadOptions {
  body: string;
  seconds: number;
  connections: number;
  /** How an answer is judged: a fast wrong answer must never count as throughput. */
  check: AnswerCheck;
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
  cores: CoresUsed;
  /** 2xx response times (ms), kept only when asked for. */
  latencies?: number[];
}

const processes = (pids: Record<string, number>) =>
  Object.fromEntries(Object.entries(pids).map(([name, pid]) => [name, { pid, by: 'process' as const }]));

function measured(
  figures: ClosedLoopFigures | RouteFigures,
  seconds: number,
  cores: CoresUsed,
  latencies?: number[],
): Measured {
  return {
    ok: figures.ok,
    seconds,
    requestsPerSecond: figures.ok / seconds,
    p50Ms: figures.latencyMs.p50 ?? 0,
    p99Ms: figures.latencyMs.p99 ?? 0,
    maxMs: figures.latencyMs.max ?? 0,
    non2xx: figures.non2xx,
    errors: figures.errors,
    timeouts: figures.timeouts,
    mismatches: figures.mismatches,
    cores,
    ...(latencies ? { latencies } : {}),
  };
}

/** At saturation: the load library's closed loop, every connection sending again as soon as answered. */
async function load(target: Target, options: LoadOptions, keepLatencies = false): Promise<Measured> {
  const meter = partsCpuMeter(processes(options.pids));
  const figures = await closedLoop(target, {
    body: options.body,
    connections: options.connections,
    seconds: options.seconds,
    timeoutSeconds: TIMEOUT_SECONDS,
    check: options.check,
    keepLatencies,
  });
  return measured(figures, figures.seconds, meter(), figures.latencies);
}

/**
 * At a fixed rate, well below saturation: the load library's open loop, so nothing queues behind a
 * slow answer and the difference between two targets' p50 is what one request costs, not queueing.
 * Timed from each request's send: the generator's timers are late by more than the cost measured.
 */
async function paced(
  target: Target,
  options: LoadOptions & { rate: number; warmupSeconds: number },
): Promise<Measured> {
  let meter: (() => CoresUsed) | undefined;
  const figures = await pacedStream({
    targets: { target: { ...target, check: options.check } },
    pick: () => 'target',
    body: options.body,
    rate: options.rate,
    seconds: options.seconds,
    warmupSeconds: options.warmupSeconds,
    connections: options.connections,
    timeoutSeconds: TIMEOUT_SECONDS,
    timedFrom: 'send',
    onMeasuring: () => (meter = partsCpuMeter(processes(options.pids))),
  });
  return measured(figures.routes.target, figures.seconds, meter!());
}

/** Joins runs of one target: throughput over all of them, percentiles over all their 2xx answers. */
function combine(runs: Measured[]): Measured {
  const latencies = runs.flatMap((run) => run.latencies ?? []).sort((a, b) => a - b);
  const sum = (pick: (run: Measured) => number) => runs.reduce((total, run) => total + pick(run), 0);
  const seconds = sum((run) => run.seconds);
  const ok = sum((run) => run.ok);
  const cores = Object.fromEntries(
    Object.keys(runs[0]!.cores).map((name) => [name, sum((run) => run.cores[name]! * run.seconds) / seconds]),
  );
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
  Object.entries(cores)
    .map(([name, value]) => `${name} ${format(value, 2)}`)
    .join(', ');

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
    'gateway',
    '--port',
    '0',
    '--log-level',
    'warn',
    '--public-upstream',
    upstream.url,
    '--secure-upstream',
    `unix:${socketPath}`,
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
      via: {
        label: 'gateway /predict-secure -> Unix socket',
        url: `${gateway.url}/predict-secure`,
        route: 'secure',
      } as Target,
    },
  ];
  const results = [];
  try {
    for (const path of paths) {
      const measured: Record<string, Record<string, Measured>> = {};
      for (const target of [path.direct, path.via]) {
        const check = exactAnswer(TRIVIAL_ANSWER, target.route);
        await checkTarget(target, TRIVIAL_REQUEST, TIMEOUT_SECONDS, check);
        const pids: Record<string, number> = target.route
          ? { upstream: upstream.pid, gateway: gateway.pid }
          : { upstream: upstream.pid };
        const common = { body: TRIVIAL_REQUEST, connections: options.connections, check, pids };
        await load(target, { ...common, seconds: options.warmup });
        const saturated = await load(target, { ...common, seconds: options.duration });
        describe(`trivial, ${target.label}, saturation, ${options.connections} connections`, saturated);
        const fixedRate = await paced(target, {
          ...common,
          seconds: options.duration,
          rate: options.rate,
          warmupSeconds: 1,
        });
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
  const body = await studyRequestBody();
  const modelServer = await startChild('model server', CLI, ['model-server', '--port', '0', '--log-level', 'warn']);
  const gateway = await startChild('gateway', CLI, [
    'gateway',
    '--port',
    '0',
    '--log-level',
    'warn',
    '--public-upstream',
    modelServer.url,
  ]);
  const direct: Target = { label: 'direct', url: `${modelServer.url}/predict` };
  const via: Target = { label: 'gateway /predict-public', url: `${gateway.url}/predict-public`, route: 'public' };
  try {
    const pids = { 'model server': modelServer.pid, gateway: gateway.pid };
    const common = { body, connections: options.modelConnections, pids };
    const check = (target: Target) => studyAnswer(target.route);
    for (const target of [direct, via]) {
      await checkTarget(target, body, TIMEOUT_SECONDS);
      // Warm the connections, the gateway's pool and onnxruntime's shapes before measuring.
      await load(target, { ...common, check: check(target), seconds: Math.max(3, options.warmup) });
    }
    // Two halves each, direct, gateway, gateway, direct: a drift in the machine's load (others'
    // tests, CPU clocks) falls on both sides alike.
    const half = options.modelDuration / 2;
    const runs: Record<'direct' | 'via', Measured[]> = { direct: [], via: [] };
    for (const [key, target] of [
      ['direct', direct],
      ['via', via],
      ['via', via],
      ['direct', direct],
    ] as const) {
      runs[key].push(await load(target, { ...common, check: check(target), seconds: half }, true));
    }
    const halves = (measured: Measured[]) => measured.map((run) => ({ ...run, latencies: undefined }));
    const result = {
      direct: combine(runs.direct),
      viaGateway: combine(runs.via),
      halves: { direct: halves(runs.direct), viaGateway: halves(runs.via) },
    };
    describe(`model server, direct, ${options.modelConnections} connections`, result.direct, 'images/s');
    describe(
      `model server, gateway /predict-public, ${options.modelConnections} connections`,
      result.viaGateway,
      'images/s',
    );
    return result;
  } finally {
    await Promise.all([gateway.stop(), modelServer.stop()]);
  }
}

async function main(options: BenchOptions) {
  const environment = describeEnvironment();
  const loadAverage = loadavg().map((value) => Math.round(value * 100) / 100);
  console.log(
    `bench:gateway on ${environment.cpuModel} (${environment.cores} cores), Node ${environment.node}, load average ${loadAverage.join(' ')}`,
  );
  console.log(
    `trivial upstream: ${options.connections} connections, ${options.warmup} s warm-up, ${options.duration} s at saturation ` +
      `and ${options.duration} s paced at ${options.rate} req/s per target; model server: ${options.modelConnections} connections, ` +
      `${options.modelDuration} s per target (two halves, direct/gateway/gateway/direct), batch-2 base64 JSON`,
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
    console.log(
      `| trivial ${path}: throughput, ${options.connections} connections | ${format(saturated.via.requestsPerSecond)} req/s | ${format(saturated.direct.requestsPerSecond)} req/s | ${format((100 * saturated.via.requestsPerSecond) / saturated.direct.requestsPerSecond)}% | |`,
    );
    console.log(
      `| trivial ${path}: p50 / p99 at saturation | ${format(saturated.via.p50Ms, 3)} / ${format(saturated.via.p99Ms, 3)} ms | ${format(saturated.direct.p50Ms, 3)} / ${format(saturated.direct.p99Ms, 3)} ms | p50 ${signed(addedSaturated, 3)} ms | p50 <= +${P50_ADDED_TARGET_MS} ms: ${verdict(addedSaturated <= P50_ADDED_TARGET_MS)} |`,
    );
    console.log(
      `| trivial ${path}: p50 / p99 paced at ${options.rate} req/s | ${format(fixed.via.p50Ms, 3)} / ${format(fixed.via.p99Ms, 3)} ms | ${format(fixed.direct.p50Ms, 3)} / ${format(fixed.direct.p99Ms, 3)} ms | p50 ${signed(addedFixed, 3)} ms | p50 <= +${P50_ADDED_TARGET_MS} ms: ${verdict(addedFixed <= P50_ADDED_TARGET_MS)} |`,
    );
  }
  const kept = model.viaGateway.requestsPerSecond / model.direct.requestsPerSecond;
  console.log(
    `| model server: throughput, ${options.modelConnections} connections | ${format(2 * model.viaGateway.requestsPerSecond)} images/s | ${format(2 * model.direct.requestsPerSecond)} images/s | ${format(100 * kept)}% | >= ${100 * MODEL_THROUGHPUT_TARGET}%: ${verdict(kept >= MODEL_THROUGHPUT_TARGET)} |`,
  );
  console.log(
    `| model server: p50 / p99 | ${format(model.viaGateway.p50Ms)} / ${format(model.viaGateway.p99Ms)} ms | ${format(model.direct.p50Ms)} / ${format(model.direct.p99Ms)} ms | p50 ${signed(model.viaGateway.p50Ms - model.direct.p50Ms)} ms | |`,
  );
  for (const { path, direct, viaGateway } of trivial) {
    console.log(
      `| CPU, trivial ${path} at saturation (cores) | ${coresText(viaGateway.saturated!.cores)} | ${coresText(direct.saturated!.cores)} | | |`,
    );
  }
  console.log(
    `| CPU, model server at saturation (cores) | ${coresText(model.viaGateway.cores)} | ${coresText(model.direct.cores)} | | |`,
  );
  const measuredRuns = [
    ...trivial.flatMap((path) => [
      path.direct.saturated!,
      path.direct.fixedRate!,
      path.viaGateway.saturated!,
      path.viaGateway.fixedRate!,
    ]),
    model.direct,
    model.viaGateway,
  ];
  const failed = measuredRuns.reduce((total, run) => total + failures(run), 0);
  console.log(
    `| answers not 2xx (non-2xx + errors + timeouts + mismatches), all measured runs | ${failed} | | | 0: ${verdict(failed === 0)} |`,
  );
  const others = Math.max(...measuredRuns.map((run) => run.cores.others ?? 0));
  console.log(
    `| CPU used by other processes, most in any measured run | ${format(others, 2)} cores | | | ~0 (a quiet machine) |`,
  );
  if (others > QUIET_MACHINE_CORES) {
    console.log(
      `\nwarning: other processes used up to ${format(others, 2)} of ${environment.cores} cores while measuring; these figures are suspect, run again on a quiet machine`,
    );
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

await runBench({
  name: 'gateway',
  summary: [
    'What the gateway costs, against going direct, in one run: a trivial upstream at saturation and paced, then the model server.',
  ],
  options: benchOptions,
  main: (options) => main(options).finally(killChildrenNow),
});
