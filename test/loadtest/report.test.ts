// Rendering a recorded run (test/fixtures/loadtest/result.json, from `mpg loadtest all --quick`):
// the Markdown has the expected rows, the SVG charts the expected series and points, taken from
// the fixture's own figures; --compare adds the ratios; a result that breaks the schema is refused.
import assert from 'node:assert/strict';
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import type { LoadtestResult } from '../../loadtest/results.js';
import { validateResult } from '../../loadtest/results.js';
import { renderReport } from '../../loadtest/report/index.js';
import { runMpg } from '../helpers/process.js';
import { temporaryDirectory } from './helpers.js';

const FIXTURE = new URL('../../../test/fixtures/loadtest/result.json', import.meta.url).pathname;
const fixture = JSON.parse(readFileSync(FIXTURE, 'utf8')) as LoadtestResult;

function renderedCopy(t: Parameters<typeof temporaryDirectory>[0]): string {
  const directory = temporaryDirectory(t);
  copyFileSync(FIXTURE, join(directory, 'result.json'));
  return directory;
}

/** The SVG of the chart titled `title` in the page. */
function chart(html: string, title: string): string {
  const found = [...html.matchAll(/<svg[\s\S]*?<\/svg>/g)]
    .map((match) => match[0])
    .find((svg) => svg.includes(`<title>${title}</title>`));
  assert.ok(found, `a chart titled "${title}"`);
  return found;
}

function points(svg: string, series: string): [number, number][] {
  const group = new RegExp(`<g class="series" data-series="${series}">([\\s\\S]*?)</g>`).exec(svg);
  assert.ok(group, `series "${series}"`);
  return [...group[1]!.matchAll(/data-x="([^"]+)" data-y="([^"]+)"/g)].map((match) => [
    Number(match[1]),
    Number(match[2]),
  ]);
}

test('the fixture is a complete recorded run that matches the schema', () => {
  assert.deepEqual(validateResult(fixture), []);
  assert.equal(fixture.complete, true);
  assert.deepEqual(Object.keys(fixture.scenarios).sort(), ['channel', 'latency', 'memory', 'mixed', 'startup']);
});

test('mpg loadtest report writes report.md and report.html beside result.json', async (t) => {
  const directory = renderedCopy(t);
  const { code, stdout } = await runMpg(['loadtest', 'report', directory]);
  assert.equal(code, 0);
  assert.equal(stdout, `wrote ${directory}/report.md\nwrote ${directory}/report.html\n`);
  const html = readFileSync(join(directory, 'report.html'), 'utf8');
  assert.doesNotMatch(html, /<script|<link |src="http/, 'self-contained, no script');
  assert.equal([...html.matchAll(/<svg /g)].length, 9, 'start-up, 2 channel, 3 latency, 2 mixed, memory');
});

test('the Markdown has the expected table rows, with the study beside ours', async (t) => {
  const directory = renderedCopy(t);
  await renderReport(directory);
  const markdown = readFileSync(join(directory, 'report.md'), 'utf8');
  const publicStart = fixture.scenarios.startup!.parts[0]!;
  assert.ok(
    markdown.includes(
      `| public model server (process) | 1 | ${publicStart.minSeconds!.toFixed(2)} | ${publicStart.medianSeconds!.toFixed(2)} | ${publicStart.maxSeconds!.toFixed(2)} | 3.0 |`,
    ),
  );
  assert.match(markdown, /\| enclave \(emulated enclave\) \| 1 \| [\d.]+ \| [\d.]+ \| [\d.]+ \| 14\.1 \|/);
  assert.ok(markdown.includes('| the study (vsock vs TCP) | – | 71.4 (implied) | 9.28 | 13.0% | – |'));
  for (const step of fixture.scenarios.latency!.steps) {
    const { min, mean, p50, p90, p99, max } = step.latencyMs;
    const censored = step.queueSeconds === null || step.queueSeconds > step.seconds;
    const row = `| ${step.target} | ${step.concurrency}${censored ? ' †' : ''} | ${step.requestsPerSecond.toFixed(2)} | ${[min, mean, p50, p90, p99, max].map((value) => value!.toFixed(1)).join(' | ')} | ${step.errors} | ${step.timeouts} | ${step.non2xx} | ${step.mismatches} |`;
    assert.ok(markdown.includes(row), row);
  }
  const enclave = fixture.scenarios.memory!.parts.find((part) => part.part === 'enclave')!;
  assert.ok(
    markdown.includes(
      `| enclave | RSS of its process tree | ${enclave.startupPeakMiB!.toFixed(1)} | ${enclave.runtimeMeanMiB!.toFixed(1)} | ${enclave.runtimeMaxMiB!.toFixed(1)} | 1023 / 3.3 |`,
    ),
  );
  assert.match(markdown, /\*\*Caveat\.\*\* The enclave here is an emulation/);
  assert.match(markdown, /^## Mixed traffic: latency against the secure fraction$/m);
});

test('the SVG charts hold the expected series and points', async (t) => {
  const directory = renderedCopy(t);
  await renderReport(directory);
  const html = readFileSync(join(directory, 'report.html'), 'utf8');
  const latency = fixture.scenarios.latency!.steps;
  const p99 = chart(html, 'p99 latency');
  for (const target of ['public direct', 'secure direct', 'public gateway', 'secure gateway'] as const) {
    const expected = latency
      .filter((step) => step.target === target)
      .map((step): [number, number] => [step.concurrency, step.latencyMs.p99!]);
    assert.deepEqual(points(p99, target), expected, target);
  }
  assert.match(
    p99,
    /<g class="series" data-series="secure gateway"><path d="[^"]+" fill="none" stroke="#d62728" stroke-width="2" stroke-dasharray="6 4"\/>/,
    'secure is red, gateway dashed',
  );
  assert.match(
    p99,
    /<g class="series" data-series="public direct"><path d="[^"]+" fill="none" stroke="#1f77b4" stroke-width="2"\/>/,
    'public is blue, direct solid',
  );

  const mixed = fixture.scenarios.mixed!.steps;
  assert.deepEqual(
    points(chart(html, 'p50 latency through the gateway against the secure fraction'), 'secure route'),
    mixed
      .filter((step) => step.routes.secure.latencyMs.p50 !== null)
      .map((step) => [step.secureFraction, step.routes.secure.latencyMs.p50!]),
  );

  const startup = chart(html, 'Cold start to ready');
  for (const part of fixture.scenarios.startup!.parts) {
    assert.ok(
      startup.includes(
        `data-series="this run: median (min-max)" data-group="${part.part}" data-value="${part.medianSeconds}"`,
      ),
      part.part,
    );
  }
  assert.ok(startup.includes('data-series="the study" data-group="enclave" data-value="14.1"'));
  const share = chart(html, 'Channel throughput as a share of TCP');
  assert.ok(share.includes('data-series="the study (vsock)" data-group="study" data-value="13"'));
  for (const ratio of fixture.scenarios.channel!.ratios)
    assert.ok(share.includes(`data-value="${Math.round(ratio.channelOverTcp * 1000) / 10}"`));
});

test('--compare renders both runs with the ratios of one to the other', async (t) => {
  const directory = renderedCopy(t);
  const other = temporaryDirectory(t);
  const slower = structuredClone(fixture);
  for (const step of slower.scenarios.latency!.steps) step.requestsPerSecond /= 2;
  writeFileSync(join(other, 'result.json'), JSON.stringify(slower));
  const { code } = await runMpg(['loadtest', 'report', directory, '--compare', other]);
  assert.equal(code, 0);
  const markdown = readFileSync(join(directory, 'report.md'), 'utf8');
  assert.match(markdown, /^# What privacy costs: mpg loadtest \(A against B\)$/m);
  const step = fixture.scenarios.latency!.steps[0]!;
  assert.ok(
    markdown.includes(
      `| ${step.target} | ${step.concurrency} | ${step.requestsPerSecond.toFixed(2)} | ${(step.requestsPerSecond / 2).toFixed(2)} | 2.00x | ${step.latencyMs.p50!.toFixed(1)} | ${step.latencyMs.p50!.toFixed(1)} | 1.00x |`,
    ),
  );
  const html = readFileSync(join(directory, 'report.html'), 'utf8');
  assert.ok(chart(html, 'Throughput (good answers)').includes('data-series="secure gateway (B)"'));
});

test('a result that does not match the schema is refused with the path at fault', async (t) => {
  const directory = temporaryDirectory(t);
  const broken = structuredClone(fixture) as unknown as {
    scenarios: { latency: { steps: Record<string, unknown>[] } };
  };
  delete broken.scenarios.latency.steps[1]!.ok;
  broken.scenarios.latency.steps[2]!.concurrency = 0;
  writeFileSync(join(directory, 'result.json'), JSON.stringify(broken));
  const { code, stderr } = await runMpg(['loadtest', 'report', directory]);
  assert.equal(code, 1);
  assert.match(
    stderr,
    /does not match results\.schema\.json: \/scenarios\/latency\/steps\/1 must have property "ok"; \/scenarios\/latency\/steps\/2\/concurrency must be >= 1, got 0/,
  );
  const missing = await runMpg(['loadtest', 'report', join(directory, 'nowhere')]);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /cannot read \S+nowhere\/result\.json: no such file/);
});
