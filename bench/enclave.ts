// npm run bench:enclave — what the emulated enclave costs the secure route, against the public
// route, in one run.
//
// The stack runs as users run it: `mpg stack` (gateway, public model server and emulated enclave,
// each a real process) through the launcher. For each of 1, 10 and 100 concurrent batch-2 base64
// JSON requests, autocannon drives /predict-public, then /predict-secure, through the gateway. It
// reports req/s and images/s, p50/p99/max of 2xx answers, failures, the ratios secure/public and
// the CPU of every process.
//
// Equal CPU: the stack gives each model server half this machine's cores as threads. It is told
// to pin the enclave to *every* CPU, the same set the unpinned public server may use, so both
// servers have the same threads and the same CPUs. The two routes are measured one after the
// other, never at once; after each, the servers are left to go idle before the next starts.
// Flags: --duration S (per route and concurrency, default 10) --warmup S (default 2)
import { saveBenchResult } from './results.js';
import type { ChildProcessByStdio } from 'node:child_process';
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { availableParallelism, loadavg } from 'node:os';
import type { Readable } from 'node:stream';
import autocannon from 'autocannon';
import { cpuMeter, describeEnvironment, percentile, processCpuSeconds, sampleImage } from '../common/index.js';
import { stopChild } from '../common/index.js';

interface BenchOptions {
  durationSeconds: number;
  warmupSeconds: number;
}

function parseArgs(argv: string[]): BenchOptions {
  const value = (flag: string, fallback: number) => {
    const index = argv.indexOf(flag);
    if (index === -1) return fallback;
    const parsed = Number(argv[index + 1]);
    if (!Number.isFinite(parsed) || parsed <= 0) throw new Error(`${flag} needs a positive number, got ${argv[index + 1]}`);
    return parsed;
  };
  return { durationSeconds: value('--duration', 10), warmupSeconds: value('--warmup', 2) };
}

const CLI = new URL('../../bin/mpg', import.meta.url).pathname;
const CONCURRENCIES = [1, 10, 100] as const;
const THROUGHPUT_KEPT_TARGET = 0.95;
const P99_RATIO_TARGET = 1.1;
/** What the seed study saw: the secure route's maximum latency at 100 concurrent requests, over the public route's. */
const SEED_MAX_RATIO_AT_100 = 2.9;
const STOP_GRACE_MS = 20_000;
const STACK_START_TIMEOUT_MS = 120_000;
/** CPU others may use during a run before its figures are called suspect. */
const QUIET_MACHINE_CORES = 0.2;

type Route = 'public' | 'secure';

let stack: ChildProcessByStdio<null, Readable, Readable> | undefined;

interface Stack {
  gatewayUrl: string;
  /** The processes whose CPU is measured, by role. */
  pids: Record<string, number>;
}

async function startStack(): Promise<Stack> {
  const cores = availableParallelism();
  const child = spawn(CLI, ['stack', '--port', '0', '--public-port', '0', '--enclave-cpus', `0-${cores - 1}`], { stdio: ['ignore', 'pipe', 'pipe'] });
  stack = child;
  let stdout = '';
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const gatewayUrl = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`mpg stack was not ready within ${STACK_START_TIMEOUT_MS / 1000} s: ${stderr}`)), STACK_START_TIMEOUT_MS);
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      const match = /gateway\s+(http:\/\/\S+)/.exec(stdout);
      if (match && /Ctrl-C stops everything/.test(stdout)) {
        clearTimeout(timer);
        resolve(match[1]!);
      }
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`mpg stack exited (${signal ?? code}) before it was ready: ${stderr}`));
    });
  });
  child.stdout.resume();
  return { gatewayUrl, pids: stackProcesses(child.pid!) };
}

/** The stack's processes by role, found by walking /proc from the `mpg stack` process down. */
function stackProcesses(root: number): Record<string, number> {
  const parentOf = new Map<number, number>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      parentOf.set(Number(name), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
    } catch {
      // gone meanwhile
    }
  }
  const descendsFrom = (pid: number, ancestor: number) => {
    for (let current = parentOf.get(pid); current !== undefined && current > 1; current = parentOf.get(current)) if (current === ancestor) return true;
    return false;
  };
  const command = (pid: number) => {
    try {
      return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    } catch {
      return [];
    }
  };
  const ours = [...parentOf.keys()].filter((pid) => descendsFrom(pid, root));
  const entrypoint = ours.find((pid) => command(pid).includes('entrypoint'));
  const pids: Record<string, number> = { 'stack + parent relay': root };
  for (const pid of ours) {
    const args = command(pid);
    if (pid === entrypoint) pids['enclave entrypoint + relay'] = pid;
    else if (args.includes('gateway')) pids.gateway = pid;
    else if (args.includes('model-server')) pids[entrypoint !== undefined && descendsFrom(pid, entrypoint) ? 'enclave model server' : 'public model server'] = pid;
  }
  for (const role of ['gateway', 'public model server', 'enclave entrypoint + relay', 'enclave model server']) {
    if (pids[role] === undefined) throw new Error(`the stack's ${role} process was not found`);
  }
  return pids;
}

function stopStack(): Promise<void> {
  return stopChild(stack, STOP_GRACE_MS);
}

/** One request before measuring: 2xx, on the route asked for. */
async function checkRoute(gatewayUrl: string, route: Route, body: string): Promise<void> {
  const response = await fetch(`${gatewayUrl}/predict-${route}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
  await response.arrayBuffer();
  if (response.status !== 200) throw new Error(`/predict-${route} answered ${response.status}`);
  const answeredOn = response.headers.get('x-privacy-route');
  if (answeredOn !== route) throw new Error(`/predict-${route} answered on route ${answeredOn}`);
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
  /** Cores used over the run: CPU seconds / wall seconds, per process, the load generator, and everything else. */
  cores: Record<string, number>;
  latencies?: number[];
}

/** autocannon's closed loop: `connections` requests always outstanding. */
async function load(url: string, body: string, connections: number, seconds: number, pids: Record<string, number>): Promise<Measured> {
  const meter = cpuMeter(pids);
  const latencies: number[] = [];
  const result = await new Promise<autocannon.Result>((resolve, reject) => {
    const instance = autocannon(
      { url, method: 'POST', headers: { 'content-type': 'application/json' }, body, connections, duration: seconds, timeout: 30 },
      (error: unknown, done) => (error ? reject(error instanceof Error ? error : new Error('autocannon failed', { cause: error })) : resolve(done)),
    );
    // autocannon's histogram keeps whole milliseconds; each answer's own time is kept instead.
    instance.on('response', (_client, statusCode, _bytes, responseTime) => {
      if (statusCode >= 200 && statusCode < 300) latencies.push(responseTime);
    });
  });
  latencies.sort((a, b) => a - b);
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
    cores: meter(result.duration),
    latencies,
  };
}

/** Joins the halves of one route: throughput over both, percentiles over all their 2xx answers, CPU averaged by time. */
function combine(runs: Measured[]): Measured {
  const latencies = runs.flatMap((run) => run.latencies ?? []).sort((a, b) => a - b);
  const sum = (pick: (run: Measured) => number) => runs.reduce((total, run) => total + pick(run), 0);
  const seconds = sum((run) => run.seconds);
  const cores: Record<string, number> = {};
  for (const run of runs) for (const [name, value] of Object.entries(run.cores)) cores[name] = (cores[name] ?? 0) + (value * run.seconds) / seconds;
  const ok = sum((run) => run.ok);
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
    cores,
  };
}

/** Waits until the model servers are idle (under 0.05 cores for 250 ms), or 60 s have passed. */
async function settle(pids: Record<string, number>): Promise<void> {
  const servers = [pids['public model server']!, pids['enclave model server']!];
  const busy = () => servers.reduce((total, pid) => total + (processCpuSeconds(pid) ?? 0), 0);
  const deadline = performance.now() + 60_000;
  while (performance.now() < deadline) {
    const before = busy();
    await new Promise((resolve) => setTimeout(resolve, 250));
    if (busy() - before < 0.0125) return;
  }
}

const format = (value: number, digits = 1) => value.toFixed(digits);
const failures = (run: Measured) => run.non2xx + run.errors + run.timeouts;
const coresText = (cores: Record<string, number>) =>
  Object.entries(cores).map(([name, value]) => `${name} ${format(value, 2)}`).join(', ');

async function main() {
  const options = parseArgs(process.argv.slice(2));
  const environment = describeEnvironment();
  const loadAverage = loadavg().map((value) => Math.round(value * 100) / 100);
  console.log(`bench:enclave on ${environment.cpuModel} (${environment.cores} cores), Node ${environment.node}, load average ${loadAverage.join(' ')}`);
  console.log(
    `mpg stack with the enclave pinned to CPUs 0-${availableParallelism() - 1} (every CPU, as the public server has), each model server ` +
      `${Math.max(1, Math.floor(availableParallelism() / 2))} thread(s); per concurrency ${options.warmupSeconds} s warm-up, ` +
      `then ${options.durationSeconds} s per route (both at least concurrency/10 and concurrency/2 s), one route at a time, idle in between; batch-2 base64 JSON`,
  );
  const image = (await sampleImage()).toString('base64');
  const body = JSON.stringify({ images: [image, image], topk: 5 });
  const { gatewayUrl, pids } = await startStack();
  for (const route of ['public', 'secure'] as const) await checkRoute(gatewayUrl, route, body);

  const results = [];
  for (const concurrency of CONCURRENCIES) {
    const url = (route: Route) => `${gatewayUrl}/predict-${route}`;
    // A closed loop of c requests queues about c / throughput seconds at the model server (some 10 s
    // at 100 on a small machine). The warm-up fills that queue, and the run lasts several queue
    // times, so its latencies are not cut off at the end of the window.
    const warmup = Math.max(options.warmupSeconds, concurrency / 10);
    const seconds = Math.max(options.durationSeconds, concurrency / 2);
    const runs: Record<Route, Measured[]> = { public: [], secure: [] };
    for (const route of ['public', 'secure'] as const) {
      await load(url(route), body, concurrency, warmup, pids);
      runs[route].push(await load(url(route), body, concurrency, seconds, pids));
      // Answers autocannon stopped waiting for are still being computed: let them finish, so they
      // do not run on the cores while the other route is measured.
      await settle(pids);
    }
    const measured = { public: combine(runs.public), secure: combine(runs.secure) };
    const ratios = {
      throughput: measured.secure.requestsPerSecond / measured.public.requestsPerSecond,
      p99: measured.secure.p99Ms / measured.public.p99Ms,
      max: measured.secure.maxMs / measured.public.maxMs,
    };
    for (const route of ['public', 'secure'] as const) {
      const run = measured[route];
      console.log(
        `${concurrency} concurrent, /predict-${route}: ${format(run.requestsPerSecond)} req/s (${format(2 * run.requestsPerSecond)} images/s), ` +
          `p50 ${format(run.p50Ms)} ms, p99 ${format(run.p99Ms)} ms, max ${format(run.maxMs)} ms, 2xx ${run.ok}, non-2xx ${run.non2xx}, ` +
          `errors ${run.errors}, timeouts ${run.timeouts}; CPU cores: ${coresText(run.cores)}`,
      );
    }
    results.push({ concurrency, ...measured, ratios });
  }

  const verdict = (met: boolean) => (met ? 'met' : 'MISSED');
  console.log('\n| concurrent | route | req/s (images/s) | p50 / p99 / max ms | failures | secure / public | target |');
  console.log('|---|---|---|---|---|---|---|');
  for (const { concurrency, public: publicRun, secure, ratios } of results) {
    const row = (route: string, run: Measured, ratio: string, target: string) =>
      console.log(
        `| ${concurrency} | ${route} | ${format(run.requestsPerSecond)} (${format(2 * run.requestsPerSecond)}) | ` +
          `${format(run.p50Ms)} / ${format(run.p99Ms)} / ${format(run.maxMs)} | ${failures(run)} | ${ratio} | ${target} |`,
      );
    row('public', publicRun, '', '');
    row(
      'secure',
      secure,
      `throughput ${format(100 * ratios.throughput)}%, p99 ${format(ratios.p99, 2)}x, max ${format(ratios.max, 2)}x`,
      `throughput >= ${100 * THROUGHPUT_KEPT_TARGET}%: ${verdict(ratios.throughput >= THROUGHPUT_KEPT_TARGET)}; p99 <= ${P99_RATIO_TARGET}x: ${verdict(ratios.p99 <= P99_RATIO_TARGET)}` +
        (concurrency === 100 ? `; max vs seed study's ${SEED_MAX_RATIO_AT_100}x: ${verdict(ratios.max < SEED_MAX_RATIO_AT_100)}` : ''),
    );
  }
  for (const { concurrency, public: publicRun, secure } of results) {
    console.log(`| ${concurrency} | CPU (cores), public | ${coresText(publicRun.cores)} | | | | |`);
    console.log(`| ${concurrency} | CPU (cores), secure | ${coresText(secure.cores)} | | | | |`);
  }
  const measuredRuns = results.flatMap((result) => [result.public, result.secure]);
  const failed = measuredRuns.reduce((total, run) => total + failures(run), 0);
  console.log(`| all | answers not 2xx (non-2xx + errors + timeouts) | ${failed} | | | | 0: ${verdict(failed === 0)} |`);
  const others = Math.max(...measuredRuns.map((run) => run.cores.others ?? 0));
  console.log(`| all | CPU used by other processes, most in any route | ${format(others, 2)} cores | | | | ~0 (a quiet machine) |`);
  if (others > QUIET_MACHINE_CORES) {
    console.log(`\nwarning: other processes used up to ${format(others, 2)} of ${environment.cores} cores while measuring; these figures are suspect, run again on a quiet machine`);
  }

  const file = await saveBenchResult('enclave', {
    environment: { ...environment, loadAverage },
    options,
    equalCpu: 'the enclave pinned to every CPU (the set the public server may use); both model servers with the same threads; routes measured one at a time',
    targets: { throughputKept: THROUGHPUT_KEPT_TARGET, p99Ratio: P99_RATIO_TARGET, seedStudyMaxRatioAt100: SEED_MAX_RATIO_AT_100 },
    pids,
    results,
  });
  console.log(`\nresults: ${file}`);
  if (failed > 0) {
    console.error(`bench:enclave: ${failed} answers were not 2xx; the figures above are not valid`);
    process.exitCode = 1;
  }
}

// `mpg stack` takes the enclave down with it on SIGTERM; SIGKILL is the last resort on exit.
process.once('exit', () => stack?.kill('SIGKILL'));
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    void stopStack().finally(() => process.exit(signal === 'SIGINT' ? 130 : 143));
  });
}

try {
  await main();
} catch (error) {
  console.error(`bench:enclave: ${error instanceof Error ? error.message : String(error)}`);
  process.exitCode = 1;
} finally {
  await stopStack();
}
