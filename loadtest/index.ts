// The measuring harness (`mpg loadtest`), and its load library, which the benchmarks drive too:
// the closed loop (autocannon, every answer checked), the worker loop (a fresh request each time),
// the paced open loop, and the study's request.
// The command loads only when it runs.
import type { Command } from '../common/index.js';

export { IMAGES_PER_REQUEST, TOPK, checkAnswer, exactAnswer, studyAnswer, studyRequestBody } from './load/check.js';
export type { AnswerCheck, Verdict } from './load/check.js';
export { checkTarget, closedLoop } from './load/closed-loop.js';
export type { AnswerCounts, ClosedLoopFigures, ClosedLoopOptions, HttpTarget } from './load/closed-loop.js';
export { isSecureRequest, paced, pacedStream } from './load/paced.js';
export { settle } from './load/settle.js';
export { workerLoop } from './load/worker-loop.js';
export type { SendRequest, WorkerLoopOptions } from './load/worker-loop.js';
export type { PacedAnswer, PacedFigures, PacedOptions, PacedStreamOptions, Route, RouteFigures } from './load/paced.js';
export { SEED_STUDY } from './seed-study.js';

export async function loadLoadtestCommand(): Promise<Command> {
  return (await import('./command.js')).loadtestCommand;
}
