// The measuring harness (`mpg loadtest`), and what the benchmarks share with it: the fixed request
// image and the environment probe. This door is light: the command loads only when it runs.
import type { Command } from '../common/index.js';

export { sampleImage, samplePixels } from './sample-image.js';
export type { SampleImageOptions } from './sample-image.js';
export { cpuMeter, describeEnvironment, machineBusySeconds, percentile, processCpuSeconds, processMemory } from './environment.js';
export type { Environment } from './environment.js';
export { paced } from './load/paced.js';
export type { PacedAnswer, PacedFigures, Route } from './load/paced.js';
export { studyRequestBody } from './load/check.js';
export { processTree } from './process-tree.js';

export async function loadLoadtestCommand(): Promise<Command> {
  return (await import('./command.js')).loadtestCommand;
}
