// npm run bench:enclave — what the emulated enclave costs the secure route, against the public
// route, in one run.
//
// The stack runs as users run it: `mpg stack` (gateway, public model server and emulated enclave,
// each a real process) through the launcher. For each of 1, 10 and 100 concurrent batch-2 base64
// JSON requests, autocannon drives /predict-public, then /predict-secure in plaintext, through the
// gateway; then the encrypted secure route: a closed loop of as many workers, each sending the same
// batch through the client SDK, sealed afresh per request (OHTTP, a new HPKE ephemeral key each),
// to the enclave it attested once, every answer opened and checked. It reports req/s and images/s,
// p50/p99/max of good answers, failures, the ratios secure/public and encrypted/plaintext secure,
// the p50 encryption adds, and the CPU of every process. Before the sweep: the client's cost per
// request (attestation verify cold and cached, seal, open) and the enclave's (open, seal).
//
// Equal CPU: the stack gives each model server half this machine's cores as threads. It is told
// to pin the enclave to *every* CPU, the same set the unpinned public server may use, so both
// servers have the same threads and the same CPUs. The two routes are measured one after the
// other, never at once; after each, the servers are left to go idle before the next starts.
// Flags: npm run bench:enclave -- --help
import { untilStackReady } from './stack-ready.js';
import type { ChildProcessByStdio } from 'node:child_process';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { availableParallelism, loadavg } from 'node:os';
import type { Readable } from 'node:stream';
import type { CoresUsed, OptionsOf } from '../common/index.js';
import {
  QUIET_MACHINE_CORES,
  choice,
  decimal,
  integer,
  list,
  describeEnvironment,
  partsCpuMeter,
  percentile,
  processTree,
  stopChild,
} from '../common/index.js';
import type { SendRequest } from '../loadtest/index.js';
import { SEED_STUDY, checkTarget, closedLoop, settle, studyRequestBody, workerLoop } from '../loadtest/index.js';
import { clientFilesFromStackOutput, encryptedClient, encryptedRequest, measureVerifyCost } from './encrypted-route.js';
import { formatOhttpCost, measureOhttpCost } from './ohttp-cost.js';
import { runBench, saveBenchResult } from './run.js';

const benchOptions = {
  duration: decimal({
    description: 'Time per route and concurrency (at least concurrency/2)',
    unit: 's',
    default: 10,
    min: 0.5,
    max: 3600,
  }),
  warmup: decimal({
    description: 'Warm-up per route and concurrency (at least concurrency/10)',
    unit: 's',
    default: 2,
    min: 0.1,
    max: 600,
  }),
  routes: list(
    choice({
      description: 'Routes measured, always in the order public, secure (plaintext), encrypted [default: all three]',
      choices: ['public', 'secure', 'encrypted'] as const,
    }),
  ),
  verifyIterations: integer({
    description:
      "Attestations verified (cold, then cached) to time the client's verification (the gateway allows one address 5 at once, then 1 a second)",
    min: 1,
    max: 1000,
    default: 10,
  }),
};

type BenchOptions = OptionsOf<typeof benchOptions>;

const CLI = new URL('../../bin/mpg', import.meta.url).pathname;
const CONCURRENCIES = [1, 10, 100] as const;
const THROUGHPUT_KEPT_TARGET = 0.95;
const P99_RATIO_TARGET = 1.1;
/** The encrypted secure route against the plaintext one: throughput kept, and the p50 it may add. */
const ENCRYPTED_THROUGHPUT_TARGET = 0.97;
const ENCRYPTED_P50_ADDED_TARGET_MS = 1;
const STOP_GRACE_MS = 20_000;
const STACK_START_TIMEOUT_MS = 120_000;
const TIMEOUT_SECONDS = 30;

type Route = 'public' | 'secure' | 'encrypted';
const ALL_ROUTES: readonly Route[] = ['public', 'secure', 'encrypted'];
/** The path each route's requests go to (the encrypted one as message/ohttp-req). */
const PATHS: Record<Route, string> = {
  public: '/predict-public',
  secure: '/predict-secure',
  encrypted: '/predict-secure',
};

let stack: ChildProcessByStdio<null, Readable, Readable> | undefined;

interface Stack {
  gatewayUrl: string;
  /** What `mpg stack` printed before it was ready: where the client's pins and the emulated root are. */
  stdout: string;
  /** The processes whose CPU is measured, by role. */
  pids: Record<string, number>;
}

async function startStack(): Promise<Stack> {
  const cores = availableParallelism();
  const child = spawn(CLI, ['stack', '--port', '0', '--public-port', '0', '--enclave-cpus', `0-${cores - 1}`], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  stack = child;
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const { gatewayUrl, stdout } = await untilStackReady(child, () => stderr, STACK_START_TIMEOUT_MS);
  return { gatewayUrl, stdout, pids: stackProcesses(child.pid!) };
}

/** The stack's processes by role, found among the `mpg stack` process's descendants. */
function stackProcesses(root: number): Record<string, number> {
  const command = (pid: number) => {
    try {
      return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    } catch {
      return [];
    }
  };
  const ours = processTree({ pid: root, by: 'descendants' }).filter((pid) => pid !== root);
  const entrypoint = ours.find((pid) => command(pid).includes('entrypoint'));
  const underEntrypoint = new Set(entrypoint === undefined ? [] : processTree({ pid: entrypoint, by: 'descendants' }));
  const pids: Record<string, number> = { 'stack + parent relay': root };
  for (const pid of ours) {
    const args = command(pid);
    if (pid === entrypoint) pids['enclave entrypoint + relay'] = pid;
    else if (args.includes('gateway')) pids.gateway = pid;
    else if (args.includes('model-server'))
      pids[underEntrypoint.has(pid) ? 'enclave model server' : 'public model server'] = pid;
  }
  for (const role of ['gateway', 'public model server', 'enclave entrypoint + relay', 'enclave model server']) {
    if (pids[role] === undefined) throw new Error(`the stack's ${role} process was not found`);
  }
  return pids;
}

function stopStack(): Promise<void> {
  return stopChild(stack, STOP_GRACE_MS);
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
  /** Answers that were 2xx but not the study's answer on the route asked for. */
  mismatches: number;
  /** Cores used over the run: CPU seconds / wall seconds, per process, the load generator, and everything else. */
  cores: CoresUsed;
  latencies?: number[];
}

const processes = (pids: Record<string, number>) =>
  Object.fromEntries(Object.entries(pids).map(([name, pid]) => [name, { pid, by: 'process' as const }]));

/**
 * The load library's closed loops: `connections` requests always outstanding, every answer checked;
 * autocannon's fixed body in plaintext, the worker loop with a request sealed afresh each time encrypted.
 */
async function load(
  target: { gatewayUrl: string; body: string; encrypted?: SendRequest },
  route: Route,
  connections: number,
  seconds: number,
  pids: Record<string, number>,
): Promise<Measured> {
  const meter = partsCpuMeter(processes(pids));
  const loopOptions = { connections, seconds, timeoutSeconds: TIMEOUT_SECONDS, keepLatencies: true };
  const figures =
    route === 'encrypted'
      ? await workerLoop(target.encrypted!, loopOptions)
      : await closedLoop({ url: `${target.gatewayUrl}${PATHS[route]}`, route }, { body: target.body, ...loopOptions });
  return {
    ok: figures.ok,
    seconds: figures.seconds,
    requestsPerSecond: figures.requestsPerSecond,
    p50Ms: figures.latencyMs.p50 ?? 0,
    p99Ms: figures.latencyMs.p99 ?? 0,
    maxMs: figures.latencyMs.max ?? 0,
    non2xx: figures.non2xx,
    errors: figures.errors,
    timeouts: figures.timeouts,
    mismatches: figures.mismatches,
    cores: meter(),
    latencies: figures.latencies ?? [],
  };
}

/** Joins the halves of one route: throughput over both, percentiles over all their 2xx answers, CPU averaged by time. */
function combine(runs: Measured[]): Measured {
  const latencies = runs.flatMap((run) => run.latencies ?? []).sort((a, b) => a - b);
  const sum = (pick: (run: Measured) => number) => runs.reduce((total, run) => total + pick(run), 0);
  const seconds = sum((run) => run.seconds);
  const cores: Record<string, number> = {};
  for (const run of runs)
    for (const [name, value] of Object.entries(run.cores))
      cores[name] = (cores[name] ?? 0) + (value * run.seconds) / seconds;
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
    mismatches: sum((run) => run.mismatches),
    cores,
  };
}

const format = (value: number, digits = 1) => value.toFixed(digits);
const failures = (run: Measured) => run.non2xx + run.errors + run.timeouts + run.mismatches;
const coresText = (cores: Record<string, number>) =>
  Object.entries(cores)
    .map(([name, value]) => `${name} ${format(value, 2)}`)
    .join(', ');

async function main(options: BenchOptions) {
  const routes = ALL_ROUTES.filter((route) => options.routes.length === 0 || options.routes.includes(route));
  const environment = describeEnvironment();
  const loadAverage = loadavg().map((value) => Math.round(value * 100) / 100);
  console.log(
    `bench:enclave on ${environment.cpuModel} (${environment.cores} cores), Node ${environment.node}, load average ${loadAverage.join(' ')}`,
  );
  console.log(
    `mpg stack with the enclave pinned to CPUs 0-${availableParallelism() - 1} (every CPU, as the public server has), each model server ` +
      `${Math.max(1, Math.floor(availableParallelism() / 2))} thread(s); per concurrency ${options.warmup} s warm-up, ` +
      `then ${options.duration} s per route (both at least concurrency/10 and concurrency/2 s), one route at a time, idle in between; batch-2 base64 JSON; ` +
      `routes ${routes.join(', ')}`,
  );
  const body = await studyRequestBody();
  const bodyBytes = new TextEncoder().encode(body);
  const { gatewayUrl, stdout, pids } = await startStack();
  for (const route of routes)
    if (route !== 'encrypted') await checkTarget({ url: `${gatewayUrl}${PATHS[route]}`, route }, body, TIMEOUT_SECONDS);

  let encrypted: SendRequest | undefined;
  let costs;
  if (routes.includes('encrypted')) {
    const client = await encryptedClient(gatewayUrl, clientFilesFromStackOutput(stdout));
    const verify = await measureVerifyCost(client, options.verifyIterations);
    const ohttp = await measureOhttpCost(bodyBytes);
    costs = { verify, ohttp };
    console.log(
      `\nclient attestation (createSecureClient against this stack's gateway, emulated NSM), median of ${verify.iterations}:\n` +
        `  verify cold (key list + attestation with a fresh nonce + WebCrypto verification)  ${format(verify.coldMs, 3).padStart(8)} ms\n` +
        `  verify cached (what each request pays while the key is fresh)                  ${format(verify.cachedMs, 3).padStart(8)} ms`,
    );
    console.log(formatOhttpCost(ohttp));
    encrypted = encryptedRequest(client, bodyBytes);
    const check = await workerLoop(encrypted, {
      connections: 1,
      seconds: 0,
      requests: 1,
      timeoutSeconds: TIMEOUT_SECONDS,
    });
    if (check.ok !== 1) throw new Error(`the encrypted secure route did not answer well: ${JSON.stringify(check)}`);
  }
  const target = { gatewayUrl, body, encrypted };

  const results = [];
  for (const concurrency of CONCURRENCIES) {
    // A closed loop of c requests queues about c / throughput seconds at the model server (some 10 s
    // at 100 on a small machine). The warm-up fills that queue, and the run lasts several queue
    // times, so its latencies are not cut off at the end of the window.
    const warmup = Math.max(options.warmup, concurrency / 10);
    const seconds = Math.max(options.duration, concurrency / 2);
    const measured: Partial<Record<Route, Measured>> = {};
    for (const route of routes) {
      await load(target, route, concurrency, warmup, pids);
      measured[route] = combine([await load(target, route, concurrency, seconds, pids)]);
      // Answers the load generator stopped waiting for are still being computed: let them finish,
      // so they do not run on the cores while the next route is measured.
      await settle(
        [pids['public model server']!, pids['enclave model server']!].map((pid) => ({ pid, by: 'process' as const })),
      );
    }
    const { public: publicRun, secure, encrypted: encryptedRun } = measured;
    const ratios = {
      ...(secure && publicRun
        ? {
            throughput: secure.requestsPerSecond / publicRun.requestsPerSecond,
            p99: secure.p99Ms / publicRun.p99Ms,
            max: secure.maxMs / publicRun.maxMs,
          }
        : {}),
      ...(encryptedRun && secure
        ? {
            encryptedThroughput: encryptedRun.requestsPerSecond / secure.requestsPerSecond,
            encryptedP50AddedMs: encryptedRun.p50Ms - secure.p50Ms,
          }
        : {}),
    };
    for (const route of routes) {
      const run = measured[route]!;
      console.log(
        `${concurrency} concurrent, ${route === 'encrypted' ? '/predict-secure encrypted (OHTTP)' : `${PATHS[route]}${route === 'secure' ? ' plaintext' : ''}`}: ` +
          `${format(run.requestsPerSecond)} req/s (${format(2 * run.requestsPerSecond)} images/s), ` +
          `p50 ${format(run.p50Ms)} ms, p99 ${format(run.p99Ms)} ms, max ${format(run.maxMs)} ms, 2xx ${run.ok}, non-2xx ${run.non2xx}, ` +
          `errors ${run.errors}, timeouts ${run.timeouts}, mismatches ${run.mismatches}; CPU cores: ${coresText(run.cores)}`,
      );
    }
    results.push({ concurrency, ...measured, ratios });
  }

  const verdict = (met: boolean) => (met ? 'met' : 'MISSED');
  console.log(
    '\n| concurrent | route | req/s (images/s) | p50 / p99 / max ms | failures | against its baseline | target |',
  );
  console.log('|---|---|---|---|---|---|---|');
  for (const { concurrency, public: publicRun, secure, encrypted: encryptedRun, ratios } of results) {
    const row = (route: string, run: Measured, ratio: string, target: string) =>
      console.log(
        `| ${concurrency} | ${route} | ${format(run.requestsPerSecond)} (${format(2 * run.requestsPerSecond)}) | ` +
          `${format(run.p50Ms)} / ${format(run.p99Ms)} / ${format(run.maxMs)} | ${failures(run)} | ${ratio} | ${target} |`,
      );
    if (publicRun) row('public', publicRun, '', '');
    if (secure) {
      const { throughput, p99, max } = ratios;
      row(
        'secure (plaintext)',
        secure,
        throughput === undefined || p99 === undefined || max === undefined
          ? ''
          : `vs public: throughput ${format(100 * throughput)}%, p99 ${format(p99, 2)}x, max ${format(max, 2)}x`,
        throughput === undefined || p99 === undefined || max === undefined
          ? ''
          : `throughput >= ${100 * THROUGHPUT_KEPT_TARGET}%: ${verdict(throughput >= THROUGHPUT_KEPT_TARGET)}; p99 <= ${P99_RATIO_TARGET}x: ${verdict(p99 <= P99_RATIO_TARGET)}` +
              (concurrency === 100
                ? `; max vs seed study's ${SEED_STUDY.maxLatencyRatioAt100}x: ${verdict(max < SEED_STUDY.maxLatencyRatioAt100)}`
                : ''),
      );
    }
    if (encryptedRun) {
      const { encryptedThroughput, encryptedP50AddedMs } = ratios;
      row(
        'secure (encrypted)',
        encryptedRun,
        encryptedThroughput === undefined || encryptedP50AddedMs === undefined
          ? ''
          : `vs plaintext secure: throughput ${format(encryptedThroughput, 3)}x, p50 added ${format(encryptedP50AddedMs, 2)} ms`,
        encryptedThroughput === undefined || encryptedP50AddedMs === undefined
          ? ''
          : `throughput >= ${ENCRYPTED_THROUGHPUT_TARGET}x: ${verdict(encryptedThroughput >= ENCRYPTED_THROUGHPUT_TARGET)}; ` +
              `p50 added <= ${ENCRYPTED_P50_ADDED_TARGET_MS} ms: ${verdict(encryptedP50AddedMs <= ENCRYPTED_P50_ADDED_TARGET_MS)}`,
      );
    }
  }
  for (const result of results) {
    for (const route of routes)
      console.log(`| ${result.concurrency} | CPU (cores), ${route} | ${coresText(result[route]!.cores)} | | | | |`);
  }
  const measuredRuns = results.flatMap((result) => routes.map((route) => result[route]!));
  const failed = measuredRuns.reduce((total, run) => total + failures(run), 0);
  console.log(
    `| all | answers not good (non-2xx + errors + timeouts + mismatches) | ${failed} | | | | 0: ${verdict(failed === 0)} |`,
  );
  const others = Math.max(...measuredRuns.map((run) => run.cores.others ?? 0));
  console.log(
    `| all | CPU used by other processes, most in any route | ${format(others, 2)} cores | | | | ~0 (a quiet machine) |`,
  );
  if (others > QUIET_MACHINE_CORES) {
    console.log(
      `\nwarning: other processes used up to ${format(others, 2)} of ${environment.cores} cores while measuring; these figures are suspect, run again on a quiet machine`,
    );
  }

  const file = await saveBenchResult('enclave', {
    environment: { ...environment, loadAverage },
    options,
    equalCpu:
      'the enclave pinned to every CPU (the set the public server may use); both model servers with the same threads; routes measured one at a time',
    targets: {
      throughputKept: THROUGHPUT_KEPT_TARGET,
      p99Ratio: P99_RATIO_TARGET,
      seedStudyMaxRatioAt100: SEED_STUDY.maxLatencyRatioAt100,
      encryptedThroughput: ENCRYPTED_THROUGHPUT_TARGET,
      encryptedP50AddedMs: ENCRYPTED_P50_ADDED_TARGET_MS,
    },
    pids,
    ...(costs ? { costs } : {}),
    results,
  });
  console.log(`\nresults: ${file}`);
  if (failed > 0) {
    console.error(`bench:enclave: ${failed} answers were not good; the figures above are not valid`);
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

await runBench({
  name: 'enclave',
  summary: [
    'What the emulated enclave costs the secure route, against the public route, and what end-to-end encryption (OHTTP,',
    'the client SDK) costs against the plaintext secure route, through mpg stack, at 1, 10 and 100 concurrent requests.',
  ],
  options: benchOptions,
  main: (options) => main(options).finally(stopStack),
});
