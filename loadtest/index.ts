// The measuring harness (`mpg loadtest`), and its load library, which the benchmarks drive too:
// the closed loop (autocannon, every answer checked), the paced open loop, and the study's request.
// The command loads only when it runs.
import type { Command } from '../common/index.js';

export { IMAGES_PER_REQUEST, TOPK, checkAnswer, studyRequestBody } from './load/check.js';
export type { Verdict } from './load/check.js';
export { checkTarget, closedLoop } from './load/closed-loop.js';
export type { AnswerCounts, ClosedLoopFigures, ClosedLoopOptions, HttpTarget } from './load/closed-loop.js';
export { isSecureRequest, paced } from './load/paced.js';
export type { PacedFigures, PacedOptions, Route, RouteFigures } from './load/paced.js';

export async function loadLoadtestCommand(): Promise<Command> {
  return (await import('./command.js')).loadtestCommand;
}
