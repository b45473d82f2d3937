// The measuring harness. For now: the fixed request image every benchmark sends.
export { sampleImage, samplePixels } from './sample-image.js';
export type { SampleImageOptions } from './sample-image.js';
export { cpuMeter, describeEnvironment, machineBusySeconds, percentile, processCpuSeconds, processMemory } from './environment.js';
export type { Environment } from './environment.js';
