// What every component may import. Kept light: nothing here loads sharp, onnxruntime or pino at
// import time (sampleImage imports sharp on its first call, jsonLineLog pino on its first log).
import type { SampleImageOptions } from './sample-image.js';

export * from './options.js';
export * from './errors.js';
export * from './command.js';
export * from './shutdown.js';
export * from './child-process.js';
export * from './metric-buckets.js';
export * from './parent-watch.js';
export { jsonLineLog, silentLog } from './log.js';
export type { Log } from './log.js';
export { describeEnvironment } from './environment.js';
export type { Environment } from './environment.js';
export { machineBusySeconds, processCpuSeconds, processMemory } from './process-stats.js';
export { processTree, treeCpuSeconds, treeRssBytes } from './process-tree.js';
export type { ProcessTreeRoot } from './process-tree.js';
export { QUIET_MACHINE_CORES, partsCpuMeter } from './cpu-meter.js';
export type { CoresUsed } from './cpu-meter.js';
export { percentile, summariseLatencies } from './latency-summary.js';
export type { LatencySummary } from './latency-summary.js';
export { samplePixels } from './sample-pixels.js';
export type { SampleImageOptions } from './sample-image.js';

/** The study's request image: by default a 500x375 JPEG (about ImageNet's median size). */
export async function sampleImage(options: SampleImageOptions = {}): Promise<Buffer> {
  return (await import('./sample-image.js')).sampleImage(options);
}
