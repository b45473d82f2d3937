// Hardening (issue 12, failure 9): valid images that are small on the wire but huge decoded must
// not inflate the model server's memory, nor keep it inflated. Four concurrent requests of 32
// solid-colour 6300x6300 PNGs (about 130 KB each, 119 MB of pixels each, inside every limit) used
// to take the server from 175 to about 475 MiB, still resident afterwards. The server under test
// is the real launcher's process; its memory is read from /proc as an operator would read it.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import sharp from 'sharp';
import { processMemory, sampleImage } from '../../common/index.js';
import { postJson, testModelPath } from '../helpers/model-server.js';
import type { RunningProcess } from '../helpers/process.js';
import { startMpg, waitUntilOk } from '../helpers/process.js';

const MiB = 2 ** 20;
// The budget docs/performance.md states, measured against the server after ordinary traffic (a
// full batch of ordinary images): the burst may raise the peak by this much, and must leave at
// most SETTLED_MARGIN behind. Measured on a loaded 2-core machine: +70-82 MiB peak and at most +18 MiB left
// after; before the decoded-bytes budget and jemalloc, +220 MiB peak and +190 MiB left.
const BURST_PEAK_BUDGET = 128 * MiB;
const SETTLED_MARGIN = 64 * MiB;
const SETTLE_MS = 10_000;

async function solidPng(side: number, colour: { r: number; g: number; b: number }): Promise<Buffer> {
  return sharp({ create: { width: side, height: side, channels: 3, background: colour } })
    .png({ compressionLevel: 9 })
    .toBuffer();
}

async function startServer(t: TestContext): Promise<{ server: RunningProcess; url: string }> {
  const server = startMpg(t, ['model-server', '--port', '0', '--log-level', 'warn']);
  const url = (await server.waitForOutput(/listening on (http:\/\/\S+)/))[1]!;
  await waitUntilOk(`${url}/readyz`);
  return { server, url };
}

function memoryOf(pid: number): { rssBytes: number; peakRssBytes: number } {
  const memory = processMemory(pid);
  assert.ok(memory, `no /proc/${pid}/status`);
  return memory;
}

test('a burst of huge-when-decoded PNGs stays within the memory budget, the server keeps serving, and memory comes back', async (t) => {
  await testModelPath();
  let { server, url } = await startServer(t);
  // A server that optimised the model itself keeps ~100 MiB that glibc never gives back, which
  // would hide the burst's growth: measure one that loaded the optimised model from the cache.
  if (
    ((await (await fetch(`${url}/v1/model`)).json()) as { runtime: { optimizedModelCache: string } }).runtime
      .optimizedModelCache !== 'hit'
  ) {
    server.child.kill('SIGTERM');
    await server.exited;
    ({ server, url } = await startServer(t));
  }
  const pid = server.child.pid!;

  // Ordinary traffic first: a full batch of ordinary images sizes onnxruntime's arena as any
  // working server's is; the budget is about what the huge images add on top.
  const ordinary = (await sampleImage()).toString('base64');
  // Until one run took a full batch (max-batch 8): the arena grows to that once, and keeps it.
  for (let fullBatch = false; !fullBatch;) {
    const warm = await postJson(`${url}/predict`, { images: Array.from({ length: 32 }, () => ordinary) });
    assert.equal(warm.status, 200);
    fullBatch = (warm.body.timings as { batchSizes: number[] }).batchSizes.includes(8);
  }
  const baseline = memoryOf(pid).rssBytes;

  const colours = await Promise.all(
    [
      { r: 200, g: 30, b: 30 },
      { r: 30, g: 200, b: 30 },
      { r: 30, g: 30, b: 200 },
      { r: 120, g: 120, b: 120 },
    ].map((colour) => solidPng(6300, colour)),
  );
  for (const png of colours)
    assert.ok(png.length < 200_000, `a solid 6300x6300 PNG is small on the wire (${png.length} bytes)`);
  const body = {
    images: Array.from({ length: 32 }, (_, index) => colours[index % colours.length]!.toString('base64')),
  };

  let healthAnswers = 0;
  let healthFailures = 0;
  let bursting = true;
  const probing = (async () => {
    while (bursting) {
      const ok = await fetch(`${url}/healthz`).then(
        (response) => response.ok,
        () => false,
      );
      if (ok) healthAnswers++;
      else healthFailures++;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  })();
  const answers = await Promise.all(Array.from({ length: 4 }, () => postJson(`${url}/predict`, body)));
  bursting = false;
  await probing;

  for (const answer of answers) {
    if (answer.status === 200) continue;
    // The bounded queue may refuse what it cannot hold; anything else is a failure.
    assert.equal(answer.status, 503, JSON.stringify(answer.body));
    assert.equal(answer.body.code, 'MS_QUEUE_FULL');
    assert.equal(answer.headers.get('retry-after'), '1');
  }
  assert.ok(
    answers.some((answer) => answer.status === 200),
    'huge images are valid input: some are served',
  );
  assert.ok(
    healthAnswers > 0 && healthFailures === 0,
    `the server answered /healthz during the burst (${healthAnswers} ok, ${healthFailures} failed)`,
  );

  const { peakRssBytes } = memoryOf(pid);
  t.diagnostic(`RSS before the burst ${(baseline / MiB).toFixed(0)} MiB, peak ${(peakRssBytes / MiB).toFixed(0)} MiB`);
  assert.ok(
    peakRssBytes - baseline <= BURST_PEAK_BUDGET,
    `peak RSS ${(peakRssBytes / MiB).toFixed(0)} MiB is ${((peakRssBytes - baseline) / MiB).toFixed(0)} MiB over the ${(baseline / MiB).toFixed(0)} MiB before the burst; the budget is ${BURST_PEAK_BUDGET / MiB} MiB`,
  );

  const after = await postJson(`${url}/predict`, { images: [ordinary] });
  assert.equal(after.status, 200, 'the server keeps serving after the burst');
  // Freed memory goes back to the system within a moment, not at once: look for up to SETTLE_MS.
  let settled = memoryOf(pid).rssBytes;
  const settleStarted = performance.now();
  while (settled - baseline > SETTLED_MARGIN && performance.now() - settleStarted < SETTLE_MS) {
    await new Promise((resolve) => setTimeout(resolve, 250));
    settled = memoryOf(pid).rssBytes;
  }
  t.diagnostic(
    `RSS after the burst ${(settled / MiB).toFixed(0)} MiB, ${Math.round(performance.now() - settleStarted)} ms after it`,
  );
  assert.ok(
    settled - baseline <= SETTLED_MARGIN,
    `RSS after the burst is ${(settled / MiB).toFixed(0)} MiB, ${((settled - baseline) / MiB).toFixed(0)} MiB over the ${(baseline / MiB).toFixed(0)} MiB before it; at most ${SETTLED_MARGIN / MiB} MiB may stay`,
  );
});
