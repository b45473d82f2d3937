// bench:faults' reading of a timeline: lost requests by kind and route, the first coded 503, and
// recovery as the start of the final run of good answers on the routes the dead part serves.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { analyseFault, countOutcomes } from '../../bench/fault-timeline.js';
import type { PacedAnswer } from '../../loadtest/index.js';

const ok = (route: 'public' | 'secure', scheduledAt: number, answeredAt = scheduledAt + 50): PacedAnswer => ({
  route,
  scheduledAt,
  answeredAt,
  verdict: 'ok',
  status: 200,
});
const refused = (
  route: 'public' | 'secure',
  scheduledAt: number,
  status: number,
  code?: string,
  answeredAt = scheduledAt + 5,
): PacedAnswer => ({
  route,
  scheduledAt,
  answeredAt,
  verdict: 'non2xx',
  status,
  ...(code ? { code } : {}),
});
const broken = (
  route: 'public' | 'secure',
  scheduledAt: number,
  errorCode: string,
  answeredAt = scheduledAt + 5,
): PacedAnswer => ({ route, scheduledAt, answeredAt, verdict: 'error', errorCode });

test('an enclave death: in-flight requests lost, then coded 503s, then recovery; the public route counted apart', () => {
  const killedAt = 10_000;
  const answers = [
    ok('secure', 9_000), // before the kill: not in the window
    broken('secure', 9_980, 'UND_ERR_SOCKET', 10_020), // in flight when killed
    refused('secure', 10_100, 502, 'GW_UPSTREAM_BAD_RESPONSE'),
    refused('secure', 10_300, 503, 'GW_NO_SECURE_UPSTREAM'),
    refused('secure', 11_000, 503, 'GW_NO_SECURE_UPSTREAM'),
    ok('secure', 12_000),
    refused('secure', 12_500, 503, 'GW_NO_SECURE_UPSTREAM'), // a relapse: recovery is after it
    ok('secure', 13_000),
    ok('secure', 14_000),
    ok('public', 10_500),
    refused('public', 11_500, 500), // uncoded
    ok('public', 30_000), // after the window
  ];
  const figures = analyseFault(answers, 'enclave-model-server', killedAt, 20_000);
  assert.deepEqual(figures.affected, ['secure']);
  assert.equal(figures.firstFailureMs, 20);
  assert.equal(figures.firstCoded503Ms, 305);
  assert.equal(figures.recoveredAfterMs, 3_000);
  assert.deepEqual(figures.routes.secure, {
    answered: 8,
    ok: 3,
    coded503: 3,
    coded503ByCode: { GW_NO_SECURE_UPSTREAM: 3 },
    otherCoded: { '502 GW_UPSTREAM_BAD_RESPONSE': 1 },
    uncoded: 0,
    transport: { UND_ERR_SOCKET: 1 },
    lost: 5,
    lostUncoded: 2,
  });
  assert.deepEqual(figures.routes.public, {
    answered: 2,
    ok: 1,
    coded503: 0,
    coded503ByCode: {},
    otherCoded: {},
    uncoded: 1,
    transport: {},
    lost: 1,
    lostUncoded: 1,
  });
});

test('no failure seen: recovery 0 and no first failure; never recovered: null', () => {
  const quiet = analyseFault([ok('public', 1_000), ok('public', 1_500)], 'public-model-server', 900, 5_000);
  assert.deepEqual([quiet.firstFailureMs, quiet.firstCoded503Ms, quiet.recoveredAfterMs], [null, null, 0]);
  const down = analyseFault([ok('public', 1_000), broken('public', 1_500, 'ECONNREFUSED')], 'gateway', 900, 5_000);
  assert.equal(down.recoveredAfterMs, null);
  assert.equal(down.firstCoded503Ms, null);
  assert.equal(down.routes.public.lostUncoded, 1);
});

test('countOutcomes keeps to its window by when answers came', () => {
  const routes = countOutcomes([ok('public', 0, 99), ok('public', 0, 100), ok('public', 0, 200)], 100, 200);
  assert.equal(routes.public.answered, 1);
});
