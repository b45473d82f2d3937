// What bench:faults reads from the timeline of answers around each fault: per route, how many
// requests were lost and how (a coded 503 is the answer a client can act on: retry later; any
// other failure is what the stack must never give), how soon the first coded 503 came after the
// kill, and how soon every affected route answered well again for good.
import type { PacedAnswer, Route } from '../loadtest/index.js';

export const FAULT_TARGETS = ['enclave-model-server', 'enclave-relay', 'public-model-server', 'gateway'] as const;
export type FaultTarget = (typeof FAULT_TARGETS)[number];

/** The routes a dead part takes down; the others must not notice. */
export const AFFECTED_ROUTES: Readonly<Record<FaultTarget, readonly Route[]>> = {
  'enclave-model-server': ['secure'],
  'enclave-relay': ['secure'],
  'public-model-server': ['public'],
  gateway: ['public', 'secure'],
};

export interface RouteOutcomes {
  /** Answers (or failures) that came in this window. */
  answered: number;
  ok: number;
  /** 503 with a JSON code: the fail-fast answer while a part is down. */
  coded503: number;
  /** The same, by code (GW_NO_SECURE_UPSTREAM, GW_NO_HEALTHY_UPSTREAM, GW_OVERLOADED...). */
  coded503ByCode: Record<string, number>;
  /** Any other status with a JSON code (a 502 or 504 blaming the upstream...), by "status code". */
  otherCoded: Record<string, number>;
  /** Non-2xx without a JSON code, and 2xx answers that were not a prediction. */
  uncoded: number;
  /** No answer: connection refused or reset, timeouts; by error code. */
  transport: Record<string, number>;
  /** Everything that was not a good prediction. */
  lost: number;
  /** Lost other than by a coded 503: what a client could not act on. */
  lostUncoded: number;
}

export interface FaultFigures {
  target: FaultTarget;
  affected: readonly Route[];
  /** From the kill to the end of this window (the next kill, or the end of the load), ms. */
  windowMs: number;
  routes: Record<Route, RouteOutcomes>;
  /** From the kill to the first failure of any kind on an affected route; null when none came. */
  firstFailureMs: number | null;
  /** From the kill to the first coded 503 on an affected route; null when none came. */
  firstCoded503Ms: number | null;
  /**
   * From the kill to the moment from which every request to the affected routes succeeded until
   * the window's end (by when each was sent); 0 when no failure came; null when not recovered.
   */
  recoveredAfterMs: number | null;
}

function emptyOutcomes(): RouteOutcomes {
  return {
    answered: 0,
    ok: 0,
    coded503: 0,
    coded503ByCode: {},
    otherCoded: {},
    uncoded: 0,
    transport: {},
    lost: 0,
    lostUncoded: 0,
  };
}

/** Counts the answers that came in [from, to) by route and kind. */
export function countOutcomes(answers: readonly PacedAnswer[], from: number, to: number): Record<Route, RouteOutcomes> {
  const routes: Record<Route, RouteOutcomes> = { public: emptyOutcomes(), secure: emptyOutcomes() };
  for (const answer of answers) {
    if (answer.answeredAt < from || answer.answeredAt >= to) continue;
    const outcome = routes[answer.route];
    outcome.answered++;
    if (answer.verdict === 'ok') {
      outcome.ok++;
      continue;
    }
    outcome.lost++;
    if (answer.verdict === 'error') {
      const key = answer.errorCode ?? 'unknown';
      outcome.transport[key] = (outcome.transport[key] ?? 0) + 1;
    } else if (answer.status === 503 && answer.code) {
      outcome.coded503++;
      outcome.coded503ByCode[answer.code] = (outcome.coded503ByCode[answer.code] ?? 0) + 1;
    } else if (answer.code) {
      const key = `${answer.status} ${answer.code}`;
      outcome.otherCoded[key] = (outcome.otherCoded[key] ?? 0) + 1;
    } else {
      outcome.uncoded++;
    }
    if (!(answer.status === 503 && answer.code)) outcome.lostUncoded++;
  }
  return routes;
}

/** The figures of one fault: `killedAt` to `endsAt` (performance.now() ms), answers by when they came. */
export function analyseFault(
  answers: readonly PacedAnswer[],
  target: FaultTarget,
  killedAt: number,
  endsAt: number,
): FaultFigures {
  const affected = AFFECTED_ROUTES[target];
  const inWindow = answers.filter((answer) => answer.answeredAt >= killedAt && answer.answeredAt < endsAt);
  const onAffected = inWindow.filter((answer) => affected.includes(answer.route));
  const failures = onAffected.filter((answer) => answer.verdict !== 'ok').sort((a, b) => a.answeredAt - b.answeredAt);
  const firstCoded503 = failures.find((answer) => answer.status === 503 && answer.code !== undefined);

  let recoveredAfterMs: number | null = 0;
  if (failures.length > 0) {
    // By when each request was sent: the last one that failed, then the first after it that succeeded.
    const bySending = [...onAffected].sort((a, b) => a.scheduledAt - b.scheduledAt);
    let lastFailure = -1;
    bySending.forEach((answer, index) => {
      if (answer.verdict !== 'ok') lastFailure = index;
    });
    const firstGoodAfter = bySending.slice(lastFailure + 1).find((answer) => answer.verdict === 'ok');
    recoveredAfterMs = firstGoodAfter ? Math.max(0, firstGoodAfter.scheduledAt - killedAt) : null;
  }
  const round = (value: number) => Math.round(value);
  return {
    target,
    affected,
    windowMs: round(endsAt - killedAt),
    routes: countOutcomes(answers, killedAt, endsAt),
    firstFailureMs: failures[0] ? round(failures[0].answeredAt - killedAt) : null,
    firstCoded503Ms: firstCoded503 ? round(firstCoded503.answeredAt - killedAt) : null,
    recoveredAfterMs: recoveredAfterMs === null ? null : round(recoveredAfterMs),
  };
}
