// npm run bench:model — the model server against raw onnxruntime, same model, same threads, one run.
//
// Prints: raw onnxruntime images/s (no HTTP, preprocessed tensors), the server's images/s at
// saturation with batch-2 base64 JSON requests (the seed study's request), their ratio, p50/p99
// latency, time from process start to /readyz, and the server's peak RSS under load.
// Flags: npm run bench:model -- --help
import { spawn } from 'node:child_process';
import autocannon from 'autocannon';
import * as ort from 'onnxruntime-node';
import type { OptionsOf } from '../common/index.js';
import { decimal, describeEnvironment, integer, processCpuSeconds, processMemory, sampleImage, stopChild, text, waitForLine } from '../common/index.js';
import { SEED_STUDY } from '../loadtest/index.js';
import { DEFAULT_MODEL_PATH, ensureModel } from '../model/index.js';
import { loadPreprocessing } from '../model-server/index.js';
import { runBench, saveBenchResult } from './run.js';

const benchOptions = {
  threads: integer({ description: 'onnxruntime threads, of the raw baseline and of the server', default: 2, min: 1, max: 256 }),
  duration: decimal({ description: 'Time per phase', unit: 's', default: 15, min: 1, max: 3600 }),
  connections: integer({ description: 'Connections at saturation', default: 8, min: 1, max: 10_000 }),
  startupTrials: integer({ description: 'Starts timed to /readyz (the median is reported)', default: 3, min: 1, max: 100 }),
  configs: text({
    description: 'Server configurations to measure, maxBatch:batchWindowMs each; the first is the default',
    default: '8:2,2:0,1:0',
    placeholder: 'B:MS,...',
    check: (value) => (/^\d+:\d+(,\d+:\d+)*$/.test(value) ? undefined : 'must be maxBatch:windowMs pairs, like 8:2,1:0'),
  }),
};

interface BenchOptions {
  threads: number;
  durationSeconds: number;
  connections: number;
  configs: { maxBatch: number; batchWindowMs: number }[];
  startupTrials: number;
}

function benchSettings(options: OptionsOf<typeof benchOptions>): BenchOptions {
  return {
    threads: options.threads,
    durationSeconds: options.duration,
    connections: options.connections,
    startupTrials: options.startupTrials,
    configs: options.configs.split(',').map((pair) => {
      const [maxBatch, batchWindowMs] = pair.split(':').map(Number);
      return { maxBatch: maxBatch!, batchWindowMs: batchWindowMs! };
    }),
  };
}

// The launcher users run, so its environment defaults are part of what is measured.
const CLI = new URL('../../bin/mpg', import.meta.url).pathname;
const MiB = 2 ** 20;
const STOP_GRACE_MS = 20_000;

async function rawOnnxruntime(threads: number, batch: number, tensor: Float32Array, seconds: number) {
  const session = await ort.InferenceSession.create(DEFAULT_MODEL_PATH, { intraOpNumThreads: threads, interOpNumThreads: 1 });
  const input = new Float32Array(batch * tensor.length);
  for (let slot = 0; slot < batch; slot++) input.set(tensor, slot * tensor.length);
  const feeds = { [session.inputNames[0]!]: new ort.Tensor('float32', input, [batch, 3, 224, 224]) };
  for (let warm = 0; warm < 3; warm++) await session.run(feeds);
  let images = 0;
  const started = performance.now();
  while (performance.now() - started < seconds * 1000) {
    await session.run(feeds);
    images += batch;
  }
  const elapsed = (performance.now() - started) / 1000;
  await session.release();
  return images / elapsed;
}

interface StartedServer {
  url: string;
  pid: number;
  readyMs: number;
  stop(): Promise<void>;
}

async function startServer(flags: string[]): Promise<StartedServer> {
  const started = performance.now();
  const child = spawn(CLI, ['model-server', '--port', '0', '--log-level', 'warn', ...flags], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const [, url] = await waitForLine(child, /listening on (http:\/\/\S+)/, 'model-server');
  for (;;) {
    const ready = await fetch(`${url}/readyz`).then((response) => response.status === 200, () => false);
    if (ready) break;
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  const readyMs = performance.now() - started;
  return {
    url: url!,
    pid: child.pid!,
    readyMs,
    stop: () => stopChild(child, STOP_GRACE_MS),
  };
}

async function saturate(url: string, body: string, seconds: number, connections: number, pid: number) {
  let peakRss = 0;
  const samples: number[] = [];
  const anonymous: number[] = [];
  const sampler = setInterval(() => {
    const memory = processMemory(pid);
    if (memory) {
      samples.push(memory.rssBytes);
      anonymous.push(memory.anonymousBytes);
      peakRss = Math.max(peakRss, memory.rssBytes);
    }
  }, 250);
  const serverCpuBefore = processCpuSeconds(pid) ?? 0;
  const generatorCpuBefore = process.cpuUsage();
  const result = await autocannon({
    url: `${url}/predict`,
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body,
    connections,
    duration: seconds,
    // A fast error must never count as throughput.
    expectBody: undefined,
  });
  clearInterval(sampler);
  const serverCores = ((processCpuSeconds(pid) ?? 0) - serverCpuBefore) / result.duration;
  const generatorCpu = process.cpuUsage(generatorCpuBefore);
  const generatorCores = (generatorCpu.user + generatorCpu.system) / 1e6 / result.duration;
  const ok = result['2xx'];
  return {
    requestsPerSecond: ok / result.duration,
    imagesPerSecond: (2 * ok) / result.duration,
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    maxMs: result.latency.max,
    meanRssMiB: mean(samples) / MiB,
    peakRssMiB: peakRss / MiB,
    meanAnonymousRssMiB: mean(anonymous) / MiB,
    serverCores,
    generatorCores,
  };
}

const format = (value: number, digits = 1) => value.toFixed(digits);
const mean = (values: number[]) => values.reduce((sum, value) => sum + value, 0) / Math.max(values.length, 1);

/** CPU time one image's preprocessing costs (ms), sequentially on this thread's view of the process. */
async function preprocessingCpuMs(preprocess: (bytes: Buffer) => Promise<unknown>, image: Buffer): Promise<number> {
  for (let warm = 0; warm < 20; warm++) await preprocess(image);
  const before = process.cpuUsage();
  const count = 200;
  for (let index = 0; index < count; index++) await preprocess(image);
  const used = process.cpuUsage(before);
  return (used.user + used.system) / 1000 / count;
}

async function main(options: BenchOptions) {
  await ensureModel(DEFAULT_MODEL_PATH);
  const image = await sampleImage();
  const { preprocessImage } = await loadPreprocessing();
  const tensor = await preprocessImage(image, { maxPixels: 40_000_000, kernel: 'linear' });
  const body = JSON.stringify({ images: [image.toString('base64'), image.toString('base64')], topk: 5 });
  const environment = describeEnvironment();
  console.log(`bench:model on ${environment.cpuModel} (${environment.cores} cores), Node ${environment.node}, onnxruntime ${environment.onnxruntime}`);
  console.log(`threads ${options.threads}, ${options.durationSeconds} s per phase, ${options.connections} connections, image ${image.length} bytes JPEG 500x375, batch-2 JSON`);

  const batches = [...new Set([2, ...options.configs.map((config) => config.maxBatch)])].sort((a, b) => a - b);
  const raw: Record<number, number> = {};
  for (const batch of batches) {
    raw[batch] = await rawOnnxruntime(options.threads, batch, tensor, Math.max(5, options.durationSeconds / 2));
    console.log(`raw onnxruntime, batch ${batch}: ${format(raw[batch])} images/s`);
  }
  const rawBest = Math.max(...Object.values(raw));
  const preprocessMs = await preprocessingCpuMs((bytes) => preprocessImage(bytes, { maxPixels: 40_000_000, kernel: 'linear' }), image);
  // What one image costs onnxruntime in CPU at its best: all threads busy for 1/rawBest seconds.
  const inferenceCpuMs = (1000 * options.threads) / rawBest;
  console.log(
    `preprocessing (decode, resize, crop, normalise): ${format(preprocessMs, 2)} ms CPU per image = ` +
      `${format((100 * preprocessMs) / inferenceCpuMs)}% of onnxruntime's ${format(inferenceCpuMs)} ms CPU per image`,
  );

  const startup: number[] = [];
  for (let trial = 0; trial < options.startupTrials; trial++) {
    const server = await startServer(['--threads', String(options.threads)]);
    startup.push(server.readyMs);
    await server.stop();
  }
  startup.sort((a, b) => a - b);
  const startupMedian = startup[Math.floor(startup.length / 2)]!;
  console.log(`start to /readyz: median ${format(startupMedian, 0)} ms (${startup.map((ms) => format(ms, 0)).join(', ')})`);

  const runs = [];
  for (const config of options.configs) {
    const server = await startServer([
      '--threads', String(options.threads),
      '--max-batch', String(config.maxBatch),
      '--batch-window-ms', String(config.batchWindowMs),
    ]);
    // Warm up the connections and onnxruntime's shapes before measuring.
    await saturate(server.url, body, 2, options.connections, server.pid);
    const measured = await saturate(server.url, body, options.durationSeconds, options.connections, server.pid);
    await server.stop();
    const versusRaw = measured.imagesPerSecond / rawBest;
    runs.push({ ...config, ...measured, versusRawBest: versusRaw, versusRawBatch2: measured.imagesPerSecond / raw[2]! });
    console.log(
      `server max-batch ${config.maxBatch} window ${config.batchWindowMs} ms: ${format(measured.imagesPerSecond)} images/s ` +
        `= ${format(100 * versusRaw)}% of raw best (${format(100 * measured.imagesPerSecond / raw[2]!)}% of raw batch 2), ` +
        `p50 ${measured.p50Ms} ms, p99 ${measured.p99Ms} ms, non-2xx ${measured.non2xx}, errors ${measured.errors}, ` +
        `RSS mean ${format(measured.meanRssMiB)} MiB (anonymous ${format(measured.meanAnonymousRssMiB)}) peak ${format(measured.peakRssMiB)} MiB, ` +
        `CPU: server ${format(measured.serverCores, 2)} cores, load generator ${format(measured.generatorCores, 2)} cores`,
    );
  }

  console.log('\n| figure | ours | baseline (same run) | ratio | target |');
  console.log('|---|---|---|---|---|');
  const best = runs.reduce((a, b) => (b.imagesPerSecond > a.imagesPerSecond ? b : a));
  const def = runs[0]!;
  console.log(`| throughput, default (max-batch ${def.maxBatch}) | ${format(def.imagesPerSecond)} images/s | raw onnxruntime best ${format(rawBest)} images/s | ${format(100 * def.versusRawBest)}% | >= 90% |`);
  for (const run of runs.slice(1)) {
    console.log(`| throughput, max-batch ${run.maxBatch} window ${run.batchWindowMs} ms | ${format(run.imagesPerSecond)} images/s | raw onnxruntime best ${format(rawBest)} images/s | ${format(100 * run.versusRawBest)}% | |`);
  }
  console.log(`| latency p50 / p99, default, ${options.connections} connections | ${def.p50Ms} / ${def.p99Ms} ms | | | |`);
  console.log(`| start to /readyz (median of ${startup.length}) | ${format(startupMedian, 0)} ms | study: ${1000 * SEED_STUDY.startupSeconds['public model server']} ms | ${format((1000 * SEED_STUDY.startupSeconds['public model server']) / startupMedian)}x faster | < 500 ms |`);
  console.log(`| RSS under load, default: mean (anonymous) / peak | ${format(def.meanRssMiB)} (${format(def.meanAnonymousRssMiB)}) / ${format(def.peakRssMiB)} MiB | study: ${SEED_STUDY.memoryMiB['public model server']!.startup}-${Math.round(SEED_STUDY.memoryMiB['public model server']!.runtime)} MiB | | <= 256 MiB |`);
  console.log(`| preprocessing CPU per image | ${format(preprocessMs, 2)} ms | onnxruntime ${format(inferenceCpuMs)} ms per image | ${format((100 * preprocessMs) / inferenceCpuMs)}% | |`);
  console.log(`| load generator CPU, default | ${format(def.generatorCores, 2)} cores | server ${format(def.serverCores, 2)} cores | | |`);
  console.log(`(best configuration: max-batch ${best.maxBatch}, window ${best.batchWindowMs} ms)`);

  console.log(`\nresults: ${await saveBenchResult('model', { environment, options, raw, preprocessCpuMs: preprocessMs, startupMs: startup, runs })}`);
}

await runBench({
  name: 'model',
  summary: ['The model server against raw onnxruntime, same model, same threads, one run.'],
  options: benchOptions,
  main: (options) => main(benchSettings(options)),
});
