// deploy/prometheus/ and deploy/grafana/ against the code: promtool checks and unit-tests the rules,
// lints the real /metrics of a running gateway and model server, and every series the rules and the
// dashboard name (with the labels they filter and group by) is one the code's registries export.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { Registry } from 'prom-client';
import { createGatewayMetrics } from '../../gateway/metrics.js';
import { sampleImage } from '../../common/index.js';
import { createModelServerMetrics } from '../../model-server/metrics.js';
import { startGateway } from '../helpers/gateway.js';
import { postBytes, postJson, startModelServer } from '../helpers/model-server.js';

const DEPLOY = new URL('../../../deploy/', import.meta.url).pathname;
const RULES = `${DEPLOY}prometheus/rules.yml`;
const rulesText = readFileSync(RULES, 'utf8');
const dashboard = JSON.parse(readFileSync(`${DEPLOY}grafana/dashboards/mpg-gateway.json`, 'utf8')) as Dashboard;

// prom-client's default Node.js metrics are gauges whose names end in _total; they are its names,
// not ours, and every prom-client user exports them so.
const PROM_CLIENT_GAUGES_NAMED_TOTAL = [
  'nodejs_active_handles_total',
  'nodejs_active_requests_total',
  'nodejs_active_resources_total',
];
// Labels Prometheus adds at scrape time (scrape.yml), and the histogram bucket bound.
const TARGET_LABELS = ['job', 'instance', 'component', 'privacy_route', 'le'];

interface Promtool {
  code: number | null;
  output: string;
}

function promtool(args: string[], input?: string): Promise<Promtool> {
  return new Promise((resolve, reject) => {
    const child = spawn('promtool', args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, output }));
    child.stdin.end(input);
  });
}

interface Panel {
  id: number;
  type: string;
  title: string;
  datasource?: { type: string; uid: string };
  gridPos: { x: number; y: number; w: number; h: number };
  targets?: { expr: string; refId: string }[];
}
interface Dashboard {
  uid: string;
  panels: Panel[];
  templating: { list: { name: string; query: unknown }[] };
}

/** Each metric the code can export, with its label names (histograms under all three series). */
async function exportedSeries(): Promise<Map<string, Set<string>>> {
  const series = new Map<string, Set<string>>();
  for (const registry of [
    createGatewayMetrics(new Registry()).registry,
    createModelServerMetrics(new Registry()).registry,
  ]) {
    const text = await registry.metrics();
    for (const metric of registry.getMetricsAsArray()) {
      const declared = 'labelNames' in metric && Array.isArray(metric.labelNames) ? metric.labelNames.map(String) : [];
      // Default metrics declare none; their labels are in the samples they collect.
      const type = new RegExp(`^# TYPE ${metric.name} (\\w+)$`, 'm').exec(text)?.[1];
      const names =
        type === 'histogram' ? ['_bucket', '_sum', '_count'].map((suffix) => metric.name + suffix) : [metric.name];
      for (const name of names) {
        const sampled = [...text.matchAll(new RegExp(`^${name}\\{([^}]*)\\}`, 'gm'))].flatMap((sample) =>
          [...sample[1]!.matchAll(/(\w+)="/g)].map((label) => label[1]!),
        );
        series.set(name, new Set([...declared, ...sampled]));
      }
    }
  }
  return series;
}

interface Rule {
  kind: 'record' | 'alert';
  name: string;
  expr: string;
}

/** The rules of rules.yml (each expr on one line, as that file keeps them). */
function parseRules(text: string): Rule[] {
  const rules: Rule[] = [];
  let pending: Omit<Rule, 'expr'> | undefined;
  for (const line of text.split('\n')) {
    const start = /^\s+- (record|alert): (\S+)$/.exec(line);
    if (start) pending = { kind: start[1] as Rule['kind'], name: start[2]! };
    const expr = /^\s+expr: (.+)$/.exec(line);
    if (expr && pending) {
      rules.push({ ...pending, expr: expr[1]! });
      pending = undefined;
    }
  }
  return rules;
}

/** Names of series (ours: mpg_..., or recorded level:mpg_...:op) and the labels each selector filters on. */
function selectors(expr: string): { name: string; labels: string[] }[] {
  return [...expr.matchAll(/((?:[a-z_]+:)?mpg_[a-z0-9_]+(?::[a-z0-9_]+)?)(\{[^}]*\})?/g)].map((match) => ({
    name: match[1]!,
    labels: [...(match[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)/g)].map((label) => label[1]!),
  }));
}

/** Labels named in `by (...)`/`on (...)` clauses. */
function groupingLabels(expr: string): string[] {
  return [...expr.matchAll(/\b(?:by|on|without|ignoring)\s*\(([^)]*)\)/g)].flatMap((match) =>
    match[1]!
      .split(',')
      .map((label) => label.trim())
      .filter(Boolean),
  );
}

/**
 * What is wrong with `expr`: series the code does not export (or rules.yml does not record), and
 * labels that none of its series carries.
 */
function problemsOf(expr: string, exported: Map<string, Set<string>>, recorded: Map<string, Set<string>>): string[] {
  const problems: string[] = [];
  const found = selectors(expr);
  const known = (name: string) => exported.get(name) ?? recorded.get(name);
  for (const { name, labels } of found) {
    const carried = known(name);
    if (!carried) {
      problems.push(`${name} is not exported by the code${name.includes(':') ? ' nor recorded by rules.yml' : ''}`);
      continue;
    }
    for (const label of labels)
      if (!carried.has(label) && !TARGET_LABELS.includes(label)) problems.push(`${name} has no label ${label}`);
  }
  const union = new Set(found.flatMap(({ name }) => [...(known(name) ?? [])]));
  for (const label of groupingLabels(expr))
    if (!union.has(label) && !TARGET_LABELS.includes(label))
      problems.push(`no series of "${expr}" has the label ${label}`);
  return problems;
}

/** Recorded series with their labels: those of the rule's `by (...)`, or of the series it combines. */
function recordedSeries(rules: Rule[], exported: Map<string, Set<string>>): Map<string, Set<string>> {
  const recorded = new Map<string, Set<string>>();
  for (const rule of rules.filter((candidate) => candidate.kind === 'record')) {
    const by = /\bby\s*\(([^)]*)\)/.exec(rule.expr);
    const labels = by
      ? by[1]!.split(',').map((label) => label.trim())
      : selectors(rule.expr).flatMap(({ name }) => [...(exported.get(name) ?? recorded.get(name) ?? [])]);
    recorded.set(rule.name, new Set(labels));
  }
  return recorded;
}

test('promtool: the rules load, their unit tests pass, and scrape.yml is a valid configuration', async () => {
  const check = await promtool(['check', 'rules', RULES]);
  assert.equal(check.code, 0, check.output);
  const counted = Number(/SUCCESS: (\d+) rules found/.exec(check.output)?.[1]);
  assert.equal(parseRules(rulesText).length, counted, 'this test reads every rule promtool loads');

  const unit = await promtool(['test', 'rules', `${DEPLOY}prometheus/rules.test.yml`]);
  assert.equal(unit.code, 0, unit.output);
  assert.match(unit.output, /SUCCESS/);

  const config = await promtool(['check', 'config', '--syntax-only', `${DEPLOY}prometheus/scrape.yml`]);
  assert.equal(config.code, 0, config.output);
});

test('every alert in rules.yml has a promtool unit test that expects it to fire', () => {
  const tests = readFileSync(`${DEPLOY}prometheus/rules.test.yml`, 'utf8');
  const alerts = parseRules(rulesText).filter((rule) => rule.kind === 'alert');
  assert.ok(alerts.length >= 6, 'secure route, attestation (2), ejections, error ratio, latency');
  for (const alert of alerts) {
    const firing = new RegExp(`alertname: ${alert.name}\\n\\s+eval_time: \\S+\\n\\s+exp_alerts:\\n\\s+- exp_labels:`);
    assert.match(tests, firing, `${alert.name} has a test in which it fires`);
  }
});

test('promtool check metrics passes on the real /metrics of a gateway and a model server after traffic on both routes', async (t) => {
  const publicServer = await startModelServer(t);
  const secureServer = await startModelServer(t);
  const { url } = await startGateway(t, ['--public-upstream', publicServer.url, '--secure-upstream', secureServer.url]);
  const image = await sampleImage();
  for (const route of ['public', 'secure']) {
    assert.equal((await postBytes(`${url}/predict-${route}`, image, 'image/jpeg')).status, 200);
    assert.equal((await postJson(`${url}/predict-${route}`, { images: [] })).status, 400);
  }
  for (const [who, metricsUrl] of [
    ['gateway', `${url}/metrics`],
    ['model server', `${publicServer.url}/metrics`],
  ] as const) {
    const text = await (await fetch(metricsUrl)).text();
    assert.match(
      text,
      /_request_duration_seconds_bucket\{[^}]*status_class="2xx"/,
      `${who} exports the histograms it is checked on`,
    );
    const lint = await promtool(['check', 'metrics'], text);
    const problems = lint.output
      .split('\n')
      .filter(
        (line) =>
          line.trim() &&
          !PROM_CLIENT_GAUGES_NAMED_TOTAL.some((name) =>
            line.includes(`_${name} non-counter metrics should not have "_total" suffix`),
          ),
      );
    assert.deepEqual(problems, [], `promtool check metrics on the ${who}'s /metrics`);
    // promtool exits 3 for lint findings and 1 for text it cannot parse; only the known findings are left.
    assert.ok(lint.code === 0 || lint.code === 3, lint.output);
  }
});

test('the rules and the dashboard name only series the code exports, with labels those series carry', async () => {
  const exported = await exportedSeries();
  const rules = parseRules(rulesText);
  const recorded = recordedSeries(rules, exported);

  // The check itself catches a misspelt series, a recorded one that is not recorded, and a label
  // the series does not carry.
  assert.deepEqual(problemsOf('rate(mpg_gateway_request_total[5m])', exported, recorded), [
    'mpg_gateway_request_total is not exported by the code',
  ]);
  assert.deepEqual(problemsOf('route:mpg_gateway_errors:rate1m', exported, recorded), [
    'route:mpg_gateway_errors:rate1m is not exported by the code nor recorded by rules.yml',
  ]);
  assert.deepEqual(problemsOf('mpg_gateway_request_duration_seconds_bucket{status="200"}', exported, recorded), [
    'mpg_gateway_request_duration_seconds_bucket has no label status',
  ]);
  assert.deepEqual(problemsOf('sum by (status) (mpg_gateway_upstream_up)', exported, recorded), [
    'no series of "sum by (status) (mpg_gateway_upstream_up)" has the label status',
  ]);

  for (const rule of rules) assert.deepEqual(problemsOf(rule.expr, exported, recorded), [], `rules.yml ${rule.name}`);

  const panels = dashboard.panels.filter((panel) => panel.type !== 'row');
  const expressions = panels.flatMap((panel) =>
    (panel.targets ?? []).map((target) => ({ panel: panel.title, expr: target.expr })),
  );
  assert.ok(expressions.length >= 20);
  for (const { panel, expr } of expressions)
    assert.deepEqual(problemsOf(expr, exported, recorded), [], `dashboard panel "${panel}": ${expr}`);

  // What the alerts watch is on the dashboard too.
  const shown = new Set(expressions.flatMap(({ expr }) => selectors(expr).map(({ name }) => name)));
  for (const watched of [
    'instance:mpg_gateway_secure_members_attested:sum',
    'mpg_gateway_attestation_failures_total',
    'mpg_gateway_upstream_ejections_total',
    'route:mpg_gateway_error_ratio:rate5m',
    'route:mpg_gateway_request_duration_seconds:p99_5m',
    'mpg_gateway_attestation_trust',
  ]) {
    assert.ok(shown.has(watched), `the dashboard shows ${watched}`);
  }
});

test('the dashboard is provisionable: a fixed uid, unique panel ids, every panel on the datasource variable, no two panels overlapping', () => {
  assert.equal(dashboard.uid, 'mpg-gateway');
  assert.ok(
    dashboard.templating.list.some((variable) => variable.name === 'datasource' && variable.query === 'prometheus'),
  );
  const ids = dashboard.panels.map((panel) => panel.id);
  assert.equal(new Set(ids).size, ids.length);
  const cells = new Set<string>();
  for (const panel of dashboard.panels) {
    if (panel.type !== 'row')
      assert.deepEqual(panel.datasource, { type: 'prometheus', uid: '${datasource}' }, panel.title);
    const { x, y, w, h } = panel.gridPos;
    assert.ok(x >= 0 && w > 0 && x + w <= 24, `${panel.title} fits the 24-column grid`);
    for (let row = y; row < y + h; row++) {
      for (let column = x; column < x + w; column++) {
        assert.ok(!cells.has(`${row},${column}`), `${panel.title} overlaps another panel`);
        cells.add(`${row},${column}`);
      }
    }
  }
  const provider = readFileSync(`${DEPLOY}grafana/provisioning/dashboards/mpg.yaml`, 'utf8');
  assert.match(provider, /^apiVersion: 1$/m);
  assert.match(provider, /path: \/var\/lib\/grafana\/dashboards\/mpg$/m);
});

test("docs/operations.md lists every metric the code exports (but prom-client's own), every alert and every recorded series", () => {
  const docs = readFileSync(new URL('../../../docs/operations.md', import.meta.url), 'utf8');
  const ours = [createGatewayMetrics(new Registry()).registry, createModelServerMetrics(new Registry()).registry]
    .flatMap((registry) => registry.getMetricsAsArray().map((metric) => metric.name))
    .filter((name) => !/^mpg_(gateway|model_server)_(process_|nodejs_)/.test(name));
  assert.ok(ours.length >= 25);
  for (const name of ours) assert.ok(docs.includes(`\`${name}\``), `docs/operations.md lists ${name}`);
  for (const rule of parseRules(rulesText))
    assert.ok(docs.includes(rule.name), `docs/operations.md names ${rule.kind} ${rule.name}`);
});
