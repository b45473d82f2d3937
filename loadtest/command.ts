// `mpg loadtest <scenario>|all|report`: every measurement of the study, one command each, and the
// report that draws them. `channel-sink` and `stack-host` are the harness's own helpers (the far
// end of the channel, and the stack under test in a process of its own).
import type { Command, CommandContext, OptionSpecs } from '../common/index.js';
import {
  OptionError,
  commandGroup,
  formatOptionsHelp,
  integer,
  optionCommand,
  parseCommandLine,
  text,
} from '../common/index.js';
import { startChannelSink } from './channel-sink.js';
import type { ScenarioName } from './options.js';
import { SCENARIOS, loadtestOptions, parseLoadtestOptions, scenarioOptions } from './options.js';
import { renderReport } from './report/index.js';
import { InvalidResultError } from './results.js';
import { runLoadtest } from './run.js';
import { runStackHost } from './stack-host.js';

const SUMMARIES: Record<ScenarioName, string> = {
  startup: 'Cold start to ready, N trials: the public model server and the enclave',
  channel: 'Throughput and round trips of the enclave channel against loopback TCP',
  memory: "Each server's memory: peak just after start, mean under light mixed load",
  latency: 'Concurrency sweep per route, direct and through the gateway',
  mixed: 'One stream through the gateway at a fixed rate, secure fraction 0 to 1',
};

const usage = (name: string, lines: string[], options: OptionSpecs) => () =>
  [
    `Usage: mpg loadtest ${name} [options]`,
    '',
    ...lines,
    '',
    'The result goes to results/<timestamp>/result.json (--out DIR to choose); render it with',
    '"mpg loadtest report DIR". Progress goes to stderr. Ctrl-C stops the current step and keeps',
    'what was measured (exit 130). Every option has an MPG_ environment twin; see docs/loadtest.md.',
    ...(options === loadtestOptions
      ? []
      : ['Listed: the options this scenario uses ("mpg loadtest all --help" lists every one).']),
    '',
    'Options:',
    formatOptionsHelp(options),
  ].join('\n');

function scenarioCommand(name: ScenarioName | 'all', scenarios: ScenarioName[], summary: string): Command {
  const options = name === 'all' ? loadtestOptions : scenarioOptions(scenarios);
  return optionCommand({
    path: `loadtest ${name}`,
    summary,
    options,
    usage: usage(
      name,
      [summary + '.', ...(name === 'all' ? [`Runs ${scenarios.join(', ')}, in that order.`] : [])],
      options,
    ),
    parse: (argv, env) => ({ ...parseLoadtestOptions(argv, env, scenarios), argv }),
    run: (parsed, context) => runLoadtest(parsed, [name, ...parsed.argv], context),
  });
}

const reportOptions = {
  compare: text({
    description: "Another run's directory (or result.json): both side by side, with the ratios of this run to it",
    placeholder: 'DIR',
  }),
};

const reportCommand = optionCommand({
  path: 'loadtest report',
  options: reportOptions,
  summary: 'Render a run as Markdown and HTML with SVG charts (report.md, report.html beside result.json)',
  usage: () =>
    [
      'Usage: mpg loadtest report DIR [--compare OTHER_DIR]',
      '',
      'Reads DIR/result.json (checked against results.schema.json) and writes DIR/report.md and',
      'DIR/report.html (self-contained: inline SVG, no script). With --compare, both runs side by side.',
      '',
      'Options:',
      formatOptionsHelp(reportOptions),
    ].join('\n'),
  parse: (argv, env) => {
    const { options, positionals, help } = parseCommandLine(reportOptions, argv, env, { maxPositionals: 1 });
    if (!help && positionals.length === 0)
      throw new OptionError('give the directory of a run: mpg loadtest report results/<timestamp>');
    return { help, directory: positionals[0] ?? '', compare: options.compare };
  },
  async run({ directory, compare }, { stdout, stderr }: CommandContext) {
    try {
      const written = await renderReport(directory, compare);
      for (const file of written) stdout.write(`wrote ${file}\n`);
      return 0;
    } catch (error) {
      if (!(error instanceof InvalidResultError)) throw error;
      stderr.write(`mpg loadtest report: ${error.message}\n`);
      return 1;
    }
  },
});

const sinkOptions = {
  port: integer({ description: 'TCP port on 127.0.0.1; 0 picks a free one', default: 0, min: 0, max: 65535 }),
  socket: text({ description: 'Listen on this Unix socket instead of TCP', placeholder: 'PATH' }),
};

const channelSinkCommand = optionCommand({
  path: 'loadtest channel-sink',
  options: sinkOptions,
  summary: 'The far end of the channel scenario: a byte sink and echo (run it inside an enclave on EC2)',
  usage: () =>
    [
      'Usage: mpg loadtest channel-sink [--port N | --socket PATH]',
      '',
      'Stops on SIGTERM or SIGINT.',
      '',
      'Options:',
      formatOptionsHelp(sinkOptions),
    ].join('\n'),
  parse: (argv, env) => {
    const { options, help } = parseCommandLine(sinkOptions, argv, env);
    return { help, listen: options.socket !== undefined ? { socket: options.socket } : { port: options.port } };
  },
  async run({ listen }, { stdout }) {
    const sink = await startChannelSink(listen);
    stdout.write(`channel sink listening on ${sink.address}\n`);
    await new Promise<void>((resolve) => {
      process.once('SIGTERM', resolve).once('SIGINT', resolve);
    });
    await sink.close();
    return 0;
  },
});

const stackHostCommand = optionCommand({
  path: 'loadtest stack-host',
  hidden: true,
  summary: 'The stack under test, started by the harness in a process of its own (JSON lines on stdout)',
  usage: usage(
    'stack-host',
    ['Starts the stack as the scenarios do and prints its parts as JSON lines; the harness runs it.'],
    loadtestOptions,
  ),
  parse: (argv, env) => parseLoadtestOptions(argv, env, []),
  run: (parsed, context) => runStackHost(parsed, context),
});

export const loadtestCommand = commandGroup(
  'loadtest',
  'Measure what privacy costs, per route: startup, channel, latency, mixed traffic, memory.',
  [
    ...SCENARIOS.map((name) => scenarioCommand(name, [name], SUMMARIES[name])),
    scenarioCommand('all', [...SCENARIOS], 'Every scenario, one after the other'),
    reportCommand,
    channelSinkCommand,
    stackHostCommand,
  ],
);
