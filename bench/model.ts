// npm run bench:model — the model server against the best raw onnxruntime configuration on the
// same cores, same model, one run.
//
// Prints: raw onnxruntime images/s for every configuration of threads per session × sessions ×
// batch size (sessions side by side, each on a worker thread of its own) and which was best; the
// decode ceiling (raw CPU per image against decode-and-preprocess CPU per image); the server's
// images/s at saturation with batch-2 base64 JSON requests (the seed study's request) for each
// server configuration, with p50/p99 and peak RSS (private and shared pages); and time from
// process start to /readyz (median). With --baseline-cli PATH (another checkout's bin/mpg, e.g.
// main's), that server is measured the same way in the same run, so "today" sits beside "ours".
// Flags: --duration S --connections N --startup-trials N --servers "sessions:threads:maxBatch:windowMs,..."
//        --raw-batches "1,2,4,8" --baseline-cli PATH
import { runBench, saveBenchResult } from './run.js';
import { closedLoop } from '../loadtest/index.js';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { availableParallelism, loadavg } from 'node:os';
import { Worker } from 'node:worker_threads';
import type { RawSessionJob, RawSessionReport } from './raw-session-worker.js';
import type { OptionsOf } from '../common/index.js';
import {
  decimal,
  describeEnvironment,
  integer,
  processCpuSeconds,
  processMemory,
  sampleImage,
  text,
} from '../common/index.js';
import { DEFAULT_MODEL_PATH, ensureModel } from '../model/index.js';
import { loadPreprocessing } from '../model-server/index.js';

interface ServerConfiguration {
  sessions: number;
  threads: number;
  maxBatch: number;
  batchWindowMs: number;
}

interface BenchOptions {
  cores: number;
  durationSeconds: number;
  connections: number;
  servers: ServerConfiguration[];
  rawBatches: number[];
  startupTrials: number;
  baselineCli: string | undefined;
}

const benchOptions = {
  cores: integer({
    description: 'Cores to spend (raw configurations and the default server layouts)',
    default: availableParallelism(),
    defaultText: 'the number of CPUs',
    min: 1,
    max: 256,
  }),
  duration: decimal({ description: 'Time per phase', unit: 's', default: 15, min: 1, max: 3600 }),
  connections: integer({ description: 'Connections at saturation', default: 8, min: 1, max: 10_000 }),
  startupTrials: integer({
    description: 'Starts timed to /readyz (the median is reported)',
    default: 7,
    min: 1,
    max: 100,
  }),
  rawBatches: text({
    description: 'Batch sizes of the raw onnxruntime configurations',
    default: '1,2,4,8',
    placeholder: 'N,...',
    check: (value) => (/^\d+(,\d+)*$/.test(value) ? undefined : 'must be batch sizes, like 1,2,8'),
  }),
  servers: text({
    description:
      'Server configurations, sessions:threads:maxBatch:windowMs each; the first is the default, which the summary judges; default: one session of every core, then one single-threaded session per core',
    placeholder: 'S:T:B:MS,...',
    check: (value) =>
      /^\d+:\d+:\d+:\d+(,\d+:\d+:\d+:\d+)*$/.test(value)
        ? undefined
        : 'must be sessions:threads:maxBatch:windowMs, like 1:2:8:2',
  }),
  baselineCli: text({
    description: "Another checkout's bin/mpg (e.g. main's), measured the same way in the same run",
    placeholder: 'PATH',
  }),
};

function benchSettings(options: OptionsOf<typeof benchOptions>): BenchOptions {
  const cores = options.cores;
  return {
    cores,
    durationSeconds: options.duration,
    connections: options.connections,
    startupTrials: options.startupTrials,
    rawBatches: options.rawBatches.split(',').map(Number),
    baselineCli: options.baselineCli,
    servers: (options.servers ?? `1:${cores}:8:2,${cores}:1:4:2`).split(',').map((entry) => {
      const [sessions, threads, maxBatch, batchWindowMs] = entry.split(':').map(Number);
      return { sessions: sessions!, threads: threads!, maxBatch: maxBatch!, batchWindowMs: batchWindowMs! };
    }),
  };
}

// The launcher users run, so its environment defaults are part of what is measured.
const CLI = new URL('../../bin/mpg', import.meta.url).pathname;
const MiB = 2 ** 20;

const RAW_WORKER = new URL('./raw-session-worker.js', import.meta.url);

/** `sessions` raw sessions of `threads` threads each, side by side on worker threads, for `seconds`. */
async function rawOnnxruntime(
  sessions: number,
  threads: number,
  batch: number,
  image: Float32Array,
  seconds: number,
): Promise<{ imagesPerSecond: number; cpuMsPerImage: number }> {
  const workers = Array.from(
    { length: sessions },
    () =>
      new Worker(RAW_WORKER, {
        workerData: { modelPath: DEFAULT_MODEL_PATH, threads, batch, seconds, image } satisfies RawSessionJob,
      }),
  );
  const next = (worker: Worker) =>
    new Promise<RawSessionReport>((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
    });
  await Promise.all(workers.map(next));
  const reports = workers.map(next);
  // This thread idles meanwhile: the process's CPU time is the sessions' (on a loaded machine,
  // wall time would overstate what an image costs).
  const cpuBefore = process.cpuUsage();
  for (const worker of workers) worker.postMessage('go');
  const done = await Promise.all(reports);
  const cpu = process.cpuUsage(cpuBefore);
  await Promise.all(workers.map((worker) => new Promise((resolve) => worker.once('exit', resolve))));
  let images = 0;
  let imagesPerSecond = 0;
  for (const report of done) {
    if (report.type !== 'done') continue;
    images += report.images;
    imagesPerSecond += report.images / report.seconds;
  }
  return { imagesPerSecond, cpuMsPerImage: (cpu.user + cpu.system) / 1000 / Math.max(images, 1) };
}

/** Threads per session × sessions that fill `cores`: one session with every core, one per core, and between. */
function rawLayouts(cores: number): { sessions: number; threads: number }[] {
  const layouts = [];
  for (let sessions = 1; sessions <= cores; sessions++)
    if (cores % sessions === 0) layouts.push({ sessions, threads: cores / sessions });
  return layouts;
}

interface StartedServer {
  url: string;
  pid: number;
  readyMs: number;
  stop(): Promise<void>;
}

async function startServer(flags: string[], cli = CLI): Promise<StartedServer> {
  const started = performance.now();
  const child = spawn(cli, ['model-server', '--port', '0', '--log-level', 'warn', ...flags], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const url = await new Promise<string>((resolve, reject) => {
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      const match = /listening on (http:\/\/\S+)/.exec(output);
      if (match) resolve(match[1]!);
    });
    child.once('exit', (code) => reject(new Error(`model-server exited with ${code} before listening`)));
  });
  for (;;) {
    const ready = await fetch(`${url}/readyz`).then(
      (response) => response.status === 200,
      () => false,
    );
    if (ready) break;
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  const readyMs = performance.now() - started;
  return {
    url,
    pid: child.pid!,
    readyMs,
    stop: () =>
      new Promise<void>((resolve) => {
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

/** Resident pages of a process split into private and shared (MiB), from /proc/PID/smaps_rollup. */
function residentSplit(pid: number): { privateMiB: number; sharedMiB: number } | undefined {
  try {
    const rollup = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
    const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(rollup)?.[1] ?? 0) / 1024;
    return {
      privateMiB: field('Private_Clean') + field('Private_Dirty'),
      sharedMiB: field('Shared_Clean') + field('Shared_Dirty'),
    };
  } catch {
    return undefined;
  }
}

async function saturate(url: string, body: string, seconds: number, connections: number, pid: number) {
  let peakRss = 0;
  let atPeak = { privateMiB: 0, sharedMiB: 0 };
  const samples: number[] = [];
  const sampler = setInterval(() => {
    const memory = processMemory(pid);
    if (!memory) return;
    samples.push(memory.rssBytes);
    if (memory.rssBytes >= peakRss) {
      peakRss = memory.rssBytes;
      atPeak = residentSplit(pid) ?? atPeak;
    }
  }, 250);
  const serverCpuBefore = processCpuSeconds(pid) ?? 0;
  const generatorCpuBefore = process.cpuUsage();
  // The load library's closed loop: every answer checked (the study's answer: two predictions),
  // only good ones counted as throughput and timed.
  const result = await closedLoop({ url: `${url}/predict` }, { body, connections, seconds, timeoutSeconds: 60 });
  clearInterval(sampler);
  const serverCores = ((processCpuSeconds(pid) ?? 0) - serverCpuBefore) / result.seconds;
  const generatorCpu = process.cpuUsage(generatorCpuBefore);
  return {
    imagesPerSecond: 2 * result.requestsPerSecond,
    non2xx: result.non2xx + result.mismatches,
    errors: result.errors,
    p50Ms: result.latencyMs.p50 ?? Number.NaN,
    p99Ms: result.latencyMs.p99 ?? Number.NaN,
    maxMs: result.latencyMs.max ?? Number.NaN,
    meanRssMiB: mean(samples) / MiB,
    peakRssMiB: peakRss / MiB,
    // VmHWM: the kernel's own peak, which a 250 ms sampler can miss.
    highWaterMarkMiB: (processMemory(pid)?.peakRssBytes ?? 0) / MiB,
    peakPrivateMiB: atPeak.privateMiB,
    peakSharedMiB: atPeak.sharedMiB,
    serverCores,
    generatorCores: (generatorCpu.user + generatorCpu.system) / 1e6 / result.seconds,
  };
}

const format = (value: number, digits = 1) => value.toFixed(digits);
const mean = (values: number[]) => values.reduce((sum, value) => sum + value, 0) / Math.max(values.length, 1);
const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

/** CPU time one image's decoding and preprocessing costs (ms), sequentially on this thread. */
async function preprocessingCpuMs(preprocess: (bytes: Buffer) => Promise<unknown>, image: Buffer): Promise<number> {
  for (let warm = 0; warm < 20; warm++) await preprocess(image);
  const before = process.cpuUsage();
  const count = 200;
  for (let index = 0; index < count; index++) await preprocess(image);
  const used = process.cpuUsage(before);
  return (used.user + used.system) / 1000 / count;
}

async function startupMs(flags: string[], trials: number, cli?: string): Promise<number[]> {
  const times: number[] = [];
  for (let trial = 0; trial < trials; trial++) {
    const server = await startServer(flags, cli);
    times.push(server.readyMs);
    await server.stop();
  }
  return times;
}

const serverFlags = (config: ServerConfiguration) => [
  '--sessions',
  String(config.sessions),
  '--threads',
  String(config.threads),
  '--max-batch',
  String(config.maxBatch),
  '--batch-window-ms',
  String(config.batchWindowMs),
];

async function measureServer(flags: string[], body: string, options: BenchOptions, cli?: string) {
  const server = await startServer(flags, cli);
  // Warm up the connections and onnxruntime's shapes before measuring.
  await saturate(server.url, body, 2, options.connections, server.pid);
  const measured = await saturate(server.url, body, options.durationSeconds, options.connections, server.pid);
  await server.stop();
  return measured;
}

async function main(options: BenchOptions) {
  await ensureModel(DEFAULT_MODEL_PATH);
  const image = await sampleImage();
  const { preprocessImage } = await loadPreprocessing();
  const tensor = await preprocessImage(image, { maxPixels: 40_000_000, kernel: 'linear' });
  const body = JSON.stringify({ images: [image.toString('base64'), image.toString('base64')], topk: 5 });
  const environment = describeEnvironment();
  const loadBefore = loadavg()[0]!;
  console.log(
    `bench:model on ${environment.cpuModel} (${environment.cores} cores), Node ${environment.node}, onnxruntime ${environment.onnxruntime}, load average ${format(loadBefore, 2)}`,
  );
  console.log(
    `${options.cores} cores for onnxruntime, ${options.durationSeconds} s per server phase, ${options.connections} connections, image ${image.length} bytes JPEG 500x375, batch-2 JSON`,
  );

  // The raw baseline: every way of spending the cores on sessions, threads and batch size.
  const raw: { sessions: number; threads: number; batch: number; imagesPerSecond: number; cpuMsPerImage: number }[] =
    [];
  const rawSeconds = Math.max(4, options.durationSeconds / 3);
  for (const layout of rawLayouts(options.cores)) {
    for (const batch of options.rawBatches) {
      const measured = await rawOnnxruntime(layout.sessions, layout.threads, batch, tensor, rawSeconds);
      raw.push({ ...layout, batch, ...measured });
      console.log(
        `raw onnxruntime, ${layout.sessions} session(s) x ${layout.threads} thread(s), batch ${batch}: ${format(measured.imagesPerSecond)} images/s, ${format(measured.cpuMsPerImage)} ms CPU per image`,
      );
    }
  }
  const rawBest = raw.reduce((a, b) => (b.imagesPerSecond > a.imagesPerSecond ? b : a));
  const rawBestName = `${rawBest.sessions} session(s) x ${rawBest.threads} thread(s), batch ${rawBest.batch}`;
  console.log(`best raw configuration: ${rawBestName}, ${format(rawBest.imagesPerSecond)} images/s`);

  // The decode ceiling: inference and decoding share the same cores.
  const decodeMs = await preprocessingCpuMs(
    (bytes) => preprocessImage(bytes, { maxPixels: 40_000_000, kernel: 'linear' }),
    image,
  );
  // The ceiling as a share of raw: decoding adds decodeMs of CPU to the inferenceCpuMs an image costs.
  const inferenceCpuMs = rawBest.cpuMsPerImage;
  const ceiling = (rawBest.imagesPerSecond * inferenceCpuMs) / (inferenceCpuMs + decodeMs);
  console.log(
    `decode ceiling: raw onnxruntime ${format(inferenceCpuMs)} ms CPU per image + decode and preprocess ${format(decodeMs, 2)} ms CPU per image ` +
      `-> at most ${format(ceiling)} images/s = ${format((100 * ceiling) / rawBest.imagesPerSecond)}% of raw best`,
  );

  const defaultFlags = serverFlags(options.servers[0]!);
  const startup = await startupMs(defaultFlags, options.startupTrials);
  console.log(
    `ours: start to /readyz: median ${format(median(startup), 0)} ms (${startup.map((ms) => format(ms, 0)).join(', ')})`,
  );
  const baselineStartup = options.baselineCli
    ? await startupMs(['--threads', String(options.cores)], options.startupTrials, options.baselineCli)
    : undefined;
  if (baselineStartup)
    console.log(
      `baseline (${options.baselineCli}): start to /readyz: median ${format(median(baselineStartup), 0)} ms (${baselineStartup.map((ms) => format(ms, 0)).join(', ')})`,
    );

  const describe = (name: string, run: Awaited<ReturnType<typeof measureServer>>) =>
    console.log(
      `${name}: ${format(run.imagesPerSecond)} images/s = ${format((100 * run.imagesPerSecond) / rawBest.imagesPerSecond)}% of raw best, ` +
        `${format((100 * run.imagesPerSecond) / ceiling)}% of the decode ceiling; p50 ${run.p50Ms} ms, p99 ${run.p99Ms} ms; non-2xx ${run.non2xx}, errors ${run.errors}; ` +
        `RSS mean ${format(run.meanRssMiB)} MiB, peak ${format(run.peakRssMiB)} MiB (private ${format(run.peakPrivateMiB)}, shared ${format(run.peakSharedMiB)}), VmHWM ${format(run.highWaterMarkMiB)} MiB; ` +
        `CPU: server ${format(run.serverCores, 2)} cores, load generator ${format(run.generatorCores, 2)} cores`,
    );
  const runs = [];
  for (const config of options.servers) {
    const measured = await measureServer(serverFlags(config), body, options);
    runs.push({ ...config, ...measured });
    describe(
      `ours, ${config.sessions} session(s) x ${config.threads} thread(s), max-batch ${config.maxBatch}, window ${config.batchWindowMs} ms`,
      measured,
    );
  }
  const baseline = options.baselineCli
    ? await measureServer(['--threads', String(options.cores)], body, options, options.baselineCli)
    : undefined;
  if (baseline) describe(`baseline (${options.baselineCli}), its defaults`, baseline);
  const loadAfter = loadavg()[0]!;

  const def = runs[0]!;
  const best = runs.reduce((a, b) => (b.imagesPerSecond > a.imagesPerSecond ? b : a));
  console.log('\n| figure | ours (default) | baseline (same run) | ratio | target |');
  console.log('|---|---|---|---|---|');
  console.log(
    `| throughput, batch-2 JSON, ${options.connections} connections | ${format(def.imagesPerSecond)} images/s | best raw onnxruntime (${rawBestName}) ${format(rawBest.imagesPerSecond)} images/s | ${format(def.imagesPerSecond / rawBest.imagesPerSecond, 2)}x | >= 0.85x |`,
  );
  console.log(
    `| throughput against the decode ceiling | ${format(def.imagesPerSecond)} images/s | ceiling ${format(ceiling)} images/s (${format(inferenceCpuMs)} + ${format(decodeMs, 2)} ms CPU per image) | ${format(def.imagesPerSecond / ceiling, 2)}x | >= 0.95x |`,
  );
  for (const run of runs.slice(1)) {
    console.log(
      `| throughput, ${run.sessions} session(s) x ${run.threads} thread(s), max-batch ${run.maxBatch} | ${format(run.imagesPerSecond)} images/s | best raw ${format(rawBest.imagesPerSecond)} images/s | ${format(run.imagesPerSecond / rawBest.imagesPerSecond, 2)}x | |`,
    );
  }
  if (baseline)
    console.log(
      `| throughput, today's server | ${format(def.imagesPerSecond)} images/s | today ${format(baseline.imagesPerSecond)} images/s | ${format(def.imagesPerSecond / baseline.imagesPerSecond, 2)}x | |`,
    );
  console.log(
    `| p99 latency, ${options.connections} connections | ${def.p99Ms} ms | ${baseline ? `today ${baseline.p99Ms} ms` : 'run with --baseline-cli'} | ${baseline ? format(def.p99Ms / baseline.p99Ms, 2) + 'x' : ''} | <= today |`,
  );
  console.log(
    `| peak RSS under that load (private + shared) | ${format(def.peakRssMiB)} MiB (${format(def.peakPrivateMiB)} + ${format(def.peakSharedMiB)}), VmHWM ${format(def.highWaterMarkMiB)} | ${baseline ? `today ${format(baseline.peakRssMiB)} MiB (${format(baseline.peakPrivateMiB)} + ${format(baseline.peakSharedMiB)}), VmHWM ${format(baseline.highWaterMarkMiB)}` : ''} | | <= 256 MiB |`,
  );
  console.log(
    `| start to /readyz, median of ${startup.length} | ${format(median(startup), 0)} ms | ${baselineStartup ? `today ${format(median(baselineStartup), 0)} ms` : 'study: 3000 ms'} | | <= 300 ms |`,
  );
  console.log(
    `(fastest server configuration: ${best.sessions} session(s) x ${best.threads} thread(s), max-batch ${best.maxBatch}; load average ${format(loadBefore, 2)} before, ${format(loadAfter, 2)} after: ${loadAfter > options.cores ? 'the machine was loaded, compare ratios only' : 'a quiet machine'})`,
  );

  console.log(
    `\nresults: ${await saveBenchResult('model', { environment, options, loadAverage: [loadBefore, loadAfter], raw, rawBest, decodeCpuMs: decodeMs, inferenceCpuMs, ceiling, startupMs: startup, baselineStartupMs: baselineStartup, runs, baseline })}`,
  );
}

await runBench({
  name: 'model',
  summary: ['The model server against the best raw onnxruntime configuration on the same cores, one run.'],
  options: benchOptions,
  main: (options) => main(benchSettings(options)),
});
