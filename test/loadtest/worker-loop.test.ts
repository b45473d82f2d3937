// The load library's worker loop against a real HTTP server on port 0: exactly `connections`
// requests in flight, only good answers counted as throughput and latency, and every other kind
// (non-2xx, a 200 without the predictions, a dropped connection, no answer in time) counted apart.
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { createServer } from 'node:http';
import { test } from 'node:test';
import type { SendRequest } from '../../loadtest/index.js';
import { checkAnswer, workerLoop } from '../../loadtest/index.js';

test(
  'workerLoop keeps `connections` requests in flight and counts each kind of answer apart',
  { timeout: 30_000 },
  async (t) => {
    let inFlight = 0;
    let mostInFlight = 0;
    const server = createServer((request, response) => {
      inFlight++;
      mostInFlight = Math.max(mostInFlight, inFlight);
      response.on('close', () => inFlight--);
      const kind = request.url!.slice(1);
      if (kind === 'hang') return;
      if (kind === 'drop') return request.socket.destroy();
      setTimeout(() => {
        if (kind === 'busy') response.writeHead(503).end('{}');
        else if (kind === 'wrong')
          response.writeHead(200, { 'content-type': 'application/json' }).end('{"predictions":[]}');
        else response.writeHead(200, { 'content-type': 'application/json' }).end('{"predictions":[{},{}]}');
      }, 5);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    t.after(() => {
      server.closeAllConnections();
      server.close();
    });
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const to =
      (kind: string): SendRequest =>
      async (signal) => {
        const response = await fetch(`${base}/${kind}`, { method: 'POST', body: '{}', signal });
        return checkAnswer(response.status, await response.text(), {});
      };
    // Each request is a new one: the loop asks for it every time.
    let made = 0;
    const counted: SendRequest = (signal) => {
      made++;
      return to('ok')(signal);
    };

    const good = await workerLoop(counted, {
      connections: 4,
      seconds: 0,
      requests: 40,
      timeoutSeconds: 5,
      keepLatencies: true,
    });
    assert.equal(good.ok, 40);
    assert.equal(made, 40);
    assert.equal(mostInFlight, 4);
    assert.equal(good.latencies!.length, 40);
    assert.ok(good.latencies!.every((ms) => ms >= 4));
    assert.ok(good.requestsPerSecond > 0 && good.latencyMs.p50! >= 4);

    const busy = await workerLoop(to('busy'), { connections: 2, seconds: 0, requests: 6, timeoutSeconds: 5 });
    assert.deepEqual(
      [busy.ok, busy.non2xx, busy.mismatches, busy.errors, busy.timeouts, busy.requestsPerSecond],
      [0, 6, 0, 0, 0, 0],
    );
    const wrong = await workerLoop(to('wrong'), { connections: 2, seconds: 0, requests: 6, timeoutSeconds: 5 });
    assert.deepEqual([wrong.ok, wrong.non2xx, wrong.mismatches, wrong.errors, wrong.timeouts], [0, 0, 6, 0, 0]);
    const dropped = await workerLoop(to('drop'), { connections: 2, seconds: 0, requests: 4, timeoutSeconds: 5 });
    assert.deepEqual(
      [dropped.ok, dropped.non2xx, dropped.mismatches, dropped.errors, dropped.timeouts],
      [0, 0, 0, 4, 0],
    );
    const started = performance.now();
    const hung = await workerLoop(to('hang'), { connections: 3, seconds: 0, requests: 3, timeoutSeconds: 0.3 });
    assert.deepEqual([hung.ok, hung.errors, hung.timeouts], [0, 3, 3]);
    assert.ok(performance.now() - started < 3000, 'a request with no answer is abandoned at the timeout');

    // By time: it stops sending at the deadline.
    const timed = await workerLoop(to('ok'), { connections: 2, seconds: 0.5, timeoutSeconds: 5 });
    assert.ok(timed.ok > 0 && timed.seconds >= 0.5 && timed.seconds < 2, JSON.stringify(timed));
  },
);
