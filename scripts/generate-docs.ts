// The reference documents that can be made from the code, made from it: docs/configuration.md
// from every command's option declarations, docs/errors.md from every component's error table,
// docs/metrics.md from the metric registries of the gateway and the model server, and
// loadtest/results.schema.json from the load-test result's TypeBox schema.
//
//   npm run docs          build, then write the three files (commit them with the change)
//
// test/docs.test.ts fails when a committed file differs from what this would write now, so a new
// option, error code or metric shows up as drift that one command repairs.
import { writeFile } from 'node:fs/promises';
import { dirname, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Registry, collectDefaultMetrics } from 'prom-client';
import { mpgCommand } from '../cli/commands.js';
import type { Command, ErrorDefinition, OptionSpec, OptionSpecs } from '../common/index.js';
import { envName, flagName } from '../common/index.js';
import { attestationErrors } from '../attestation/index.js';
import { gatewayErrors, gatewayOptions } from '../gateway/index.js';
import { modelServerErrors } from '../model-server/index.js';
// The metric factories are not part of their components' doors (nothing else needs them).
import { createGatewayMetrics } from '../gateway/metrics.js';
import { createModelServerMetrics } from '../model-server/metrics.js';
import { LoadtestResultSchema } from '../loadtest/results-schema.js';

/** The checkout's root: defaults that are paths under it are shown relative to it. */
export const PACKAGE_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Every component's coded errors, in the order docs/errors.md lists them. */
export const ERROR_TABLES: readonly {
  component: string;
  prefix: string;
  table: Readonly<Record<string, ErrorDefinition>>;
}[] = [
  { component: 'gateway', prefix: 'GW', table: gatewayErrors.table },
  { component: 'model-server', prefix: 'MS', table: modelServerErrors.table },
  { component: 'attestation', prefix: 'ATT', table: attestationErrors.table },
];

/**
 * Commands built with optionCommand but without their `options` given (they parse through a
 * config function of their own): their declarations, by command path.
 */
const OPTIONS_GIVEN_APART: Readonly<Record<string, OptionSpecs>> = { gateway: gatewayOptions };

const GENERATED = (what: string) =>
  `<!-- Generated from ${what} by \`npm run docs\` (scripts/generate-docs.ts); test/docs.test.ts fails when it drifts. Do not edit by hand. -->`;

const cell = (value: string) => value.replace(/\|/g, '\\|').replace(/\n/g, ' ');

// ---------------------------------------------------------------------------------------------
// docs/configuration.md

interface DocumentedCommand {
  path: string;
  summary: string;
  options: OptionSpecs;
}

async function collectCommands(command: Command, words: readonly string[]): Promise<DocumentedCommand[]> {
  if (command.load) return collectCommands(await command.load(), words);
  if (command.subcommands) {
    const nested = await Promise.all(
      command.subcommands.filter((sub) => !sub.hidden).map((sub) => collectCommands(sub, [...words, sub.name])),
    );
    return nested.flat();
  }
  const path = words.join(' ');
  const options = command.options ?? OPTIONS_GIVEN_APART[path];
  if (options === undefined) throw new Error(`mpg ${path} declares no options: give optionCommand its \`options\``);
  return [{ path, summary: command.summary, options }];
}

function showDefault(spec: OptionSpec<unknown>): string {
  if (spec.defaultText !== undefined) return spec.defaultText;
  const value = spec.default;
  if (value === undefined || (Array.isArray(value) && value.length === 0)) return '';
  if (typeof value === 'string' && value.startsWith(PACKAGE_ROOT + sep)) return `\`${relative(PACKAGE_ROOT, value)}\``;
  const scalar = typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean';
  const shown = Array.isArray(value) ? value.join(',') : scalar ? String(value) : JSON.stringify(value);
  return `\`${shown}\``;
}

function showFlag(key: string, spec: OptionSpec<unknown>): string {
  if (spec.isSwitch) return spec.default === true ? `\`--[no-]${flagName(key).slice(2)}\`` : `\`${flagName(key)}\``;
  return `\`${flagName(key)} ${spec.placeholder}\``;
}

function optionsTable(command: DocumentedCommand): string[] {
  // A command with a `config` option reads a JSON file keyed by option name (common/options.ts).
  const readsFile = Object.hasOwn(command.options, 'config');
  const header = readsFile
    ? ['| flag | environment | config file key | unit | default | description |', '|---|---|---|---|---|---|']
    : ['| flag | environment | unit | default | description |', '|---|---|---|---|---|'];
  const rows = Object.entries(command.options).map(([key, spec]) => {
    const notes = [spec.repeatable ? 'Repeatable; its environment twin takes a comma-separated list.' : ''].filter(
      Boolean,
    );
    const columns = [
      showFlag(key, spec),
      spec.env === false ? '' : `\`${envName(key)}\``,
      ...(readsFile ? [key === 'config' ? '' : `\`${key}\``] : []),
      spec.unit ?? '',
      showDefault(spec),
      [spec.description, ...notes].join(' '),
    ];
    return `| ${columns.map(cell).join(' | ')} |`;
  });
  return [...header, ...rows];
}

export async function configurationDocument(): Promise<string> {
  const commands = await collectCommands(mpgCommand, []);
  const lines = [
    GENERATED("every command's option declarations"),
    '# Configuration',
    '',
    'Every option of every `mpg` command. Each is a flag, and (unless the environment column is',
    'empty) an environment variable: the flag wins over the variable, the variable over the',
    'configuration file (`mpg gateway --config FILE`, a JSON object keyed by the config file key),',
    'the file over the default. A switch also takes `--no-` before its name, and its variable takes',
    '`true` or `false`. Unknown flags and unknown file keys are errors. `mpg <command> --help` prints',
    'the same list.',
    '',
    ...commands.map((command) => `- [mpg ${command.path}](#${anchor(`mpg ${command.path}`)})`),
  ];
  for (const command of commands) {
    lines.push('', `## mpg ${command.path}`, '', command.summary.replace(/\.?$/, '.'), '', ...optionsTable(command));
  }
  return lines.join('\n') + '\n';
}

/** GitHub's heading anchors: lower case, spaces to dashes, other punctuation dropped. */
const anchor = (heading: string) =>
  heading
    .toLowerCase()
    .replace(/[^a-z0-9 -]/g, '')
    .replace(/ /g, '-');

// ---------------------------------------------------------------------------------------------
// docs/errors.md

export function errorsDocument(): string {
  const lines = [
    GENERATED("every component's errors.ts table"),
    '# Error codes',
    '',
    'Every error answer is JSON `{"statusCode", "code", "message"}`. The code is stable; the message',
    "says how to fix the problem and may name the exact field or limit at fault. 4xx: the caller's",
    'mistake; 502/503/504: upstream trouble (503 answers carry `Retry-After` where retrying helps).',
  ];
  for (const { component, prefix, table } of ERROR_TABLES) {
    lines.push('', `## ${component} (\`${prefix}_…\`)`, '', '| code | status | meaning |', '|---|---|---|');
    for (const [code, { statusCode, message }] of Object.entries(table))
      lines.push(`| \`${code}\` | ${statusCode} | ${cell(message)} |`);
  }
  return lines.join('\n') + '\n';
}

// ---------------------------------------------------------------------------------------------
// docs/metrics.md

interface Series {
  name: string;
  type: string;
  help: string;
  labels: readonly string[];
  buckets: readonly number[] | undefined;
}

type MetricObject = ReturnType<Registry['getMetricsAsArray']>[number];

/** A metric's declaration as prom-client keeps it: its labels and a histogram's bounds are not in its type. */
function describeMetric(metric: MetricObject): Series {
  const labelNames: unknown = 'labelNames' in metric ? metric.labelNames : [];
  const upperBounds: unknown = 'upperBounds' in metric ? metric.upperBounds : undefined;
  return {
    name: metric.name,
    type: String(metric.type),
    help: metric.help,
    labels: Array.isArray(labelNames) ? labelNames.map(String) : [],
    buckets: Array.isArray(upperBounds) ? upperBounds.map(Number) : undefined,
  };
}

/** The series a component registers itself, without prom-client's default process metrics. */
function ownSeries(registry: Registry, prefix: string): Series[] {
  const defaults = new Registry();
  collectDefaultMetrics({ register: defaults, prefix });
  const defaultNames = new Set(defaults.getMetricsAsArray().map((metric) => metric.name));
  return registry
    .getMetricsAsArray()
    .filter((metric) => !defaultNames.has(metric.name))
    .map(describeMetric);
}

function metricsSection(title: string, where: string, prefix: string, series: Series[]): string[] {
  const lines = [`## ${title}`, '', where, '', '| series | type | labels | meaning |', '|---|---|---|---|'];
  for (const one of series) {
    const labels = one.labels.map((label) => `\`${label}\``).join(', ');
    lines.push(`| \`${one.name}\` | ${one.type} | ${labels} | ${cell(one.help)} |`);
  }
  const bucketSets = new Map<string, string[]>();
  for (const one of series.filter((candidate) => candidate.buckets)) {
    const key = one.buckets!.join(', ');
    bucketSets.set(key, [...(bucketSets.get(key) ?? []), one.name]);
  }
  lines.push('', 'Histogram buckets (upper bounds):', '');
  for (const [buckets, names] of bucketSets)
    lines.push(`- ${names.map((name) => `\`${name}\``).join(', ')}: ${buckets}`);
  lines.push(
    '',
    `Beside these, prom-client's default process and Node.js metrics, each name prefixed \`${prefix}\` (for example \`${prefix}process_cpu_seconds_total\`, \`${prefix}nodejs_eventloop_lag_seconds\`).`,
  );
  return lines;
}

export function metricsDocument(): string {
  const gateway = createGatewayMetrics(new Registry());
  const modelServer = createModelServerMetrics(new Registry());
  return (
    [
      GENERATED('the metric registries of the gateway and the model server'),
      '# Metrics',
      '',
      "Prometheus text on each server's `GET /metrics`. The same names serve both routes: the",
      '`route` label (`public`, `secure`) tells them apart. Durations are in seconds.',
      '',
      ...metricsSection(
        'Gateway',
        "`GET /metrics` on the gateway's port; `route` is the privacy route a request took (`public`, `secure`).",
        'mpg_gateway_',
        ownSeries(gateway.registry, 'mpg_gateway_'),
      ),
      '',
      ...metricsSection(
        'Model server',
        "`GET /metrics` on the model server's port (the public container, and inside the enclave behind its relay); `route` is the server's own path. `mpg_model_server_batch_size`'s buckets follow `--max-batch` (shown: the default).",
        'mpg_model_server_',
        ownSeries(modelServer.registry, 'mpg_model_server_'),
      ),
    ].join('\n') + '\n'
  );
}

// ---------------------------------------------------------------------------------------------
// loadtest/results.schema.json, for those who read result.json without this code

export function resultSchemaDocument(): string {
  return (
    JSON.stringify({ $schema: 'https://json-schema.org/draft/2020-12/schema', ...LoadtestResultSchema }, null, 2) + '\n'
  );
}

// ---------------------------------------------------------------------------------------------

/** Every generated document by its path under the checkout's root. */
export async function referenceDocuments(): Promise<Record<string, string>> {
  return {
    'docs/configuration.md': await configurationDocument(),
    'docs/errors.md': errorsDocument(),
    'docs/metrics.md': metricsDocument(),
    'loadtest/results.schema.json': resultSchemaDocument(),
  };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  for (const [path, contents] of Object.entries(await referenceDocuments())) {
    await writeFile(join(PACKAGE_ROOT, path), contents);
    console.log(`wrote ${path}`);
  }
}
