// What a report says, once, for both renderers: sections of paragraphs, tables and charts built
// from a result (and, with --compare, a second one). markdown.ts leaves the charts out; html.ts
// draws them inline.
import type { LatencySummary } from '../../common/index.js';
import type { LatencyStep, LatencyTarget, LoadtestResult, MixedStep } from '../results.js';
import { SEED_STUDY } from '../seed-study.js';
import type { LineSeries, Series } from './svg.js';
import { barChart, formatNumber, lineChart } from './svg.js';

/** The seed study's figures, shown beside ours wherever it reported one. */
const STUDY = SEED_STUDY;

/** One colour per route in every chart; through the gateway is dashed. */
export const COLOURS = {
  public: '#1f77b4',
  secure: '#d62728',
  tcp: '#7f7f7f',
  other: '#9467bd',
  publicB: '#9ecae1',
  secureB: '#fc9272',
};

export interface Table {
  caption?: string;
  headers: string[];
  rows: string[][];
}

export interface Section {
  id: string;
  title: string;
  paragraphs: string[];
  tables: Table[];
  charts: string[];
}

const TARGETS: LatencyTarget[] = ['public direct', 'secure direct', 'public gateway', 'secure gateway'];
const dash = '–';
const fixed = (value: number | null | undefined, digits = 1) =>
  value === null || value === undefined ? dash : value.toFixed(digits);
const ratio = (a: number | null | undefined, b: number | null | undefined, digits = 2) =>
  a == null || b == null || b === 0 ? dash : `${(a / b).toFixed(digits)}x`;
const percent = (value: number | null | undefined) => (value == null ? dash : `${(value * 100).toFixed(1)}%`);
const bytes = (value: number) =>
  value >= 1024 * 1024 ? `${value / (1024 * 1024)} MiB` : value >= 1024 ? `${value / 1024} KiB` : `${value} B`;

function targetSeries(target: LatencyTarget, suffix = '', lighter = false): Series {
  const [route, via] = target.split(' ') as ['public' | 'secure', 'direct' | 'gateway'];
  const colour = lighter ? (route === 'public' ? COLOURS.publicB : COLOURS.secureB) : COLOURS[route];
  return { name: `${target}${suffix}`, colour, dashed: via === 'gateway' };
}

function runLine(result: LoadtestResult): string {
  const { machine, versions } = result;
  return `${result.startedAt.replace('T', ' ').replace(/\.\d+Z$/, ' UTC')}, ${machine.cpuModel} (${machine.cores} cores, ${machine.memoryGiB} GiB, ${machine.kernel}), Node ${versions.node}, onnxruntime ${versions.onnxruntime}, commit ${versions.gitCommit ?? 'unknown'}`;
}

function overview(result: LoadtestResult, other?: LoadtestResult): Section {
  const { config } = result;
  const paragraphs = [
    `Run: ${runLine(result)}. Command: \`mpg loadtest ${result.command.join(' ')}\`; ${result.durationSeconds ?? '?'} s; load average at start ${result.machine.loadAverageAtStart.join(' ')}${result.machine.loadAverageAtEnd ? `, at end ${result.machine.loadAverageAtEnd.join(' ')}` : ''}.`,
    `Stack: enclave ${config.enclave}, ${config.threads} onnxruntime thread(s) per model server; CPUs: public server ${config.cpus.server ?? 'not pinned'}, gateway ${config.cpus.gateway ?? 'not pinned'}, enclave ${config.cpus.enclave ?? 'Nitro'}, load generator ${config.cpus.generator ?? 'not pinned'}. Requests: {"images": [b64, b64], "topk": ${config.requestBody.topk}} of one ${config.requestBody.imageBytes}-byte JPEG.`,
  ];
  if (config.enclave === 'emulated') {
    paragraphs.push(
      "**Caveat.** The enclave here is an emulation: the same model server in its own network namespace behind the same relays, with a Unix socket standing in for vsock. It has no memory encryption and no Nitro hypervisor, and this machine is small and shared: these figures say what the design costs, not what a Nitro Enclave on EC2 costs. The study's figures are shown beside ours for orientation only.",
    );
  }
  if (!result.complete) {
    paragraphs.push(
      result.interrupted
        ? `**Incomplete**: stopped by ${result.interrupted.signal} during ${result.interrupted.scenario ?? 'start-up'}${result.interrupted.step ? ` (${result.interrupted.step})` : ''}; every finished step is shown.`
        : '**Incomplete**: a scenario failed; see its section.',
    );
  }
  for (const note of result.notes) paragraphs.push(`Note: ${note}.`);
  if (other)
    paragraphs.push(
      `Compared with B: ${runLine(other)} (\`mpg loadtest ${other.command.join(' ')}\`). Ratios are this run (A) over B.`,
    );
  return { id: 'overview', title: 'The run', paragraphs, tables: [], charts: [] };
}

function failed(section: { complete: boolean; error: string | null }): string[] {
  if (section.error) return [`**This scenario failed**: ${section.error}`];
  if (!section.complete) return ['**Incomplete**: the run was interrupted during this scenario.'];
  return [];
}

function startupSection(result: LoadtestResult, other?: LoadtestResult): Section | undefined {
  const startup = result.scenarios.startup;
  if (!startup) return undefined;
  const otherParts = other?.scenarios.startup?.parts;
  const table: Table = {
    headers: [
      'part',
      'trials',
      'min s',
      'median s',
      'max s',
      'the study s',
      ...(otherParts ? ['B median s', 'A / B'] : []),
    ],
    rows: startup.parts.map((part) => {
      const mine = otherParts?.find((candidate) => candidate.part === part.part);
      return [
        `${part.part} (${part.how})`,
        String(part.trialsSeconds.length),
        fixed(part.minSeconds, 2),
        fixed(part.medianSeconds, 2),
        fixed(part.maxSeconds, 2),
        fixed(STUDY.startupSeconds[part.part], 1),
        ...(otherParts ? [fixed(mine?.medianSeconds, 2), ratio(part.medianSeconds, mine?.medianSeconds)] : []),
      ];
    }),
  };
  const series: Series[] = [
    { name: 'this run: median (min-max)', colour: COLOURS.secure },
    ...(otherParts ? [{ name: 'B: median', colour: COLOURS.secureB }] : []),
    { name: 'the study', colour: '#555', hatched: true },
  ];
  const chart = barChart({
    title: 'Cold start to ready',
    yLabel: 'seconds',
    series,
    groups: startup.parts.map((part) => ({
      label: part.part,
      values: [
        part.medianSeconds,
        ...(otherParts ? [otherParts.find((candidate) => candidate.part === part.part)?.medianSeconds ?? null] : []),
        STUDY.startupSeconds[part.part],
      ],
      ranges: [
        part.minSeconds !== null && part.maxSeconds !== null ? [part.minSeconds, part.maxSeconds] : null,
        ...(otherParts ? [null] : []),
        null,
      ],
    })),
  });
  return {
    id: 'startup',
    title: 'Start-up',
    paragraphs: [
      ...failed(startup),
      'From spawning the part to its `/readyz` answering 200 (for the enclave: through the parent relay), then stopped; trials alternate between the two parts.',
    ],
    tables: [table],
    charts: [chart],
  };
}

function channelSection(result: LoadtestResult): Section | undefined {
  const channel = result.scenarios.channel;
  if (!channel) return undefined;
  const find = (transport: 'tcp' | 'channel', size: number, streams: number) =>
    channel.throughput.find(
      (step) => step.transport === transport && step.messageBytes === size && step.streams === streams,
    );
  const table: Table = {
    headers: [
      'message size',
      'streams',
      'TCP Gbit/s',
      'channel Gbit/s',
      'channel / TCP',
      'generator cores (TCP / channel)',
    ],
    rows: channel.ratios.map((entry) => {
      const tcp = find('tcp', entry.messageBytes, entry.streams);
      const through = find('channel', entry.messageBytes, entry.streams);
      return [
        bytes(entry.messageBytes),
        String(entry.streams),
        fixed(tcp?.gbitPerSecond, 2),
        fixed(through?.gbitPerSecond, 2),
        percent(entry.channelOverTcp),
        `${fixed(tcp?.cpu['load generator'], 2)} / ${fixed(through?.cpu['load generator'], 2)}`,
      ];
    }),
  };
  table.rows.push([
    'the study (vsock vs TCP)',
    dash,
    `${formatNumber(STUDY.vsockGbitPerSecond / STUDY.vsockOverTcp)} (implied)`,
    formatNumber(STUDY.vsockGbitPerSecond),
    percent(STUDY.vsockOverTcp),
    dash,
  ]);
  const roundTrips: Table = {
    caption: `Round trips of ${channel.roundTrip[0]?.messageBytes ?? '?'}-byte messages, one at a time`,
    headers: ['transport', 'round trips', 'p50 µs', 'p99 µs', 'mean µs', 'max µs'],
    rows: channel.roundTrip.map((entry) => [
      entry.transport,
      String(entry.count),
      fixed(entry.latencyUs.p50),
      fixed(entry.latencyUs.p99),
      fixed(entry.latencyUs.mean),
      fixed(entry.latencyUs.max),
    ]),
  };
  const groups = channel.ratios.map((entry) => ({ label: `${bytes(entry.messageBytes)} x${entry.streams}`, entry }));
  const throughputChart = barChart({
    title: 'Channel throughput against loopback TCP',
    yLabel: 'Gbit/s',
    series: [
      { name: 'TCP loopback', colour: COLOURS.tcp },
      { name: channel.channel === 'unix relay chain' ? 'channel (relay chain)' : 'channel', colour: COLOURS.secure },
    ],
    groups: groups.map(({ label, entry }) => ({
      label,
      values: [
        find('tcp', entry.messageBytes, entry.streams)?.gbitPerSecond ?? null,
        find('channel', entry.messageBytes, entry.streams)?.gbitPerSecond ?? null,
      ],
    })),
  });
  const ratioChart = barChart({
    title: 'Channel throughput as a share of TCP',
    yLabel: 'percent of TCP',
    series: [
      { name: 'this run', colour: COLOURS.secure },
      { name: 'the study (vsock)', colour: '#555', hatched: true },
    ],
    groups: [
      ...groups.map(({ label, entry }) => ({ label, values: [Math.round(entry.channelOverTcp * 1000) / 10, null] })),
      { label: 'study', values: [null, STUDY.vsockOverTcp * 100] },
    ],
  });
  return {
    id: 'channel',
    title: 'The enclave channel',
    paragraphs: [
      ...failed(channel),
      `Channel: ${channel.description}. Bulk bytes for ${result.config.channel.seconds} s per size and stream count, counted by the sink; the TCP baseline goes straight to the same sink. Both ends are Node processes on this machine, so these are Node socket figures, and the ratio is what the relay chain costs.`,
    ],
    tables: [table, roundTrips],
    charts: [throughputChart, ratioChart],
  };
}

function latencyCell(summary: LatencySummary, key: keyof Omit<LatencySummary, 'count'>) {
  return fixed(summary[key]);
}

/** Requests wait longer in a full queue than the step lasted: the slowest never came back inside it. */
const censored = (step: LatencyStep) => step.queueSeconds === null || step.queueSeconds > step.seconds;

function latencySection(result: LoadtestResult, other?: LoadtestResult): Section | undefined {
  const latency = result.scenarios.latency;
  if (!latency) return undefined;
  const steps = latency.steps;
  const anyCensored = steps.some(censored);
  const table: Table = {
    headers: [
      'target',
      'concurrent',
      'req/s',
      'min ms',
      'mean ms',
      'p50 ms',
      'p90 ms',
      'p99 ms',
      'max ms',
      'errors',
      'timeouts',
      'non-2xx',
      'mismatches',
    ],
    rows: TARGETS.flatMap((target) =>
      steps
        .filter((step) => step.target === target)
        .map((step) => [
          target,
          `${step.concurrency}${censored(step) ? ' †' : ''}`,
          fixed(step.requestsPerSecond, 2),
          latencyCell(step.latencyMs, 'min'),
          latencyCell(step.latencyMs, 'mean'),
          latencyCell(step.latencyMs, 'p50'),
          latencyCell(step.latencyMs, 'p90'),
          latencyCell(step.latencyMs, 'p99'),
          latencyCell(step.latencyMs, 'max'),
          String(step.errors),
          String(step.timeouts),
          String(step.non2xx),
          String(step.mismatches),
        ]),
    ),
  };
  const at = (list: LatencyStep[], target: LatencyTarget, concurrency: number) =>
    list.find((step) => step.target === target && step.concurrency === concurrency);
  const concurrencies = [...new Set(steps.map((step) => step.concurrency))].sort((a, b) => a - b);
  const ratios: Table = {
    caption: `Secure over public at each concurrency (the study: the enclave's max latency ${STUDY.maxLatencyRatioAt100}x the standard server's at 100 concurrent)`,
    headers: [
      'concurrent',
      'direct: req/s',
      'direct: p99',
      'direct: max',
      'gateway: req/s',
      'gateway: p99',
      'gateway: max',
    ],
    rows: concurrencies.map((concurrency) => {
      const cell = (via: 'direct' | 'gateway') => {
        const secure = at(steps, `secure ${via}`, concurrency);
        const open = at(steps, `public ${via}`, concurrency);
        return [
          ratio(secure?.requestsPerSecond, open?.requestsPerSecond),
          ratio(secure?.latencyMs.p99, open?.latencyMs.p99),
          ratio(secure?.latencyMs.max, open?.latencyMs.max),
        ];
      };
      return [String(concurrency), ...cell('direct'), ...cell('gateway')];
    }),
  };
  const cpu: Table = {
    caption: 'CPU per step, in cores (the load generator shares the machine with the servers)',
    headers: [
      'target',
      'concurrent',
      'load generator',
      'public model server',
      'enclave',
      'gateway',
      'parent relay',
      'others',
    ],
    rows: steps.map((step) => [
      step.target,
      String(step.concurrency),
      ...['load generator', 'public model server', 'enclave', 'gateway', 'parent relay', 'others'].map((name) =>
        fixed(step.cpu[name], 2),
      ),
    ]),
  };
  const otherSteps = other?.scenarios.latency?.steps;
  const lines = (pick: (step: LatencyStep) => number | null): LineSeries[] => [
    ...TARGETS.map((target) => ({
      ...targetSeries(target),
      points: concurrencies.map((x) => ({ x, y: at(steps, target, x) ? pick(at(steps, target, x)!) : null })),
    })),
    ...(otherSteps
      ? TARGETS.map((target) => ({
          ...targetSeries(target, ' (B)', true),
          points: concurrencies.map((x) => ({
            x,
            y: at(otherSteps, target, x) ? pick(at(otherSteps, target, x)!) : null,
          })),
        }))
      : []),
  ];
  const chart = (title: string, yLabel: string, pick: (step: LatencyStep) => number | null) =>
    lineChart({
      title,
      xLabel: 'concurrent requests',
      yLabel,
      xs: concurrencies,
      xScale: 'category',
      series: lines(pick),
    });
  const tables = [table, ratios, cpu];
  if (otherSteps) {
    tables.push({
      caption: 'A against B',
      headers: [
        'target',
        'concurrent',
        'req/s A',
        'req/s B',
        'A / B',
        'p50 A',
        'p50 B',
        'A / B',
        'p99 A',
        'p99 B',
        'A / B',
      ],
      rows: TARGETS.flatMap((target) =>
        concurrencies.map((concurrency) => {
          const a = at(steps, target, concurrency);
          const b = at(otherSteps, target, concurrency);
          return [
            target,
            String(concurrency),
            fixed(a?.requestsPerSecond, 2),
            fixed(b?.requestsPerSecond, 2),
            ratio(a?.requestsPerSecond, b?.requestsPerSecond),
            fixed(a?.latencyMs.p50),
            fixed(b?.latencyMs.p50),
            ratio(a?.latencyMs.p50, b?.latencyMs.p50),
            fixed(a?.latencyMs.p99),
            fixed(b?.latencyMs.p99),
            ratio(a?.latencyMs.p99, b?.latencyMs.p99),
          ];
        }),
      ),
    });
  }
  return {
    id: 'latency',
    title: 'Latency against concurrency, per route',
    paragraphs: [
      ...failed(latency),
      `autocannon's closed loop, ${result.config.latency.seconds} s per step: direct to each model server (the secure one through the parent relay's Unix socket) and through the gateway. Only answers checked good (200, two predictions, the right route) count; latency percentiles are over them.`,
      ...(anyCensored
        ? [
            `† The step was shorter than a full queue's wait (concurrency / req/s > ${result.config.latency.seconds} s): answers slower than the step never came back inside it, so its latency figures are censored (too low, capped near the step's length). Run longer steps (\`--duration\`) to see the whole queue.`,
          ]
        : []),
    ],
    tables,
    charts: [
      chart('p50 latency', 'ms', (step) => step.latencyMs.p50),
      chart('p99 latency', 'ms', (step) => step.latencyMs.p99),
      chart('Throughput (good answers)', 'requests/s', (step) => step.requestsPerSecond),
    ],
  };
}

function mixedSection(result: LoadtestResult, other?: LoadtestResult): Section | undefined {
  const mixed = result.scenarios.mixed;
  if (!mixed) return undefined;
  const failures = (step: MixedStep, route: 'public' | 'secure') => {
    const figures = step.routes[route];
    return figures.errors + figures.non2xx + figures.mismatches;
  };
  const table: Table = {
    headers: [
      'secure fraction',
      'sent/s',
      'public: answers',
      'public p50 ms',
      'public p99 ms',
      'secure: answers',
      'secure p50 ms',
      'secure p99 ms',
      'failures',
      'generator cores',
    ],
    rows: mixed.steps.map((step) => [
      step.secureFraction.toFixed(2),
      fixed(step.sentPerSecond, 2),
      String(step.routes.public.ok),
      fixed(step.routes.public.latencyMs.p50),
      fixed(step.routes.public.latencyMs.p99),
      String(step.routes.secure.ok),
      fixed(step.routes.secure.latencyMs.p50),
      fixed(step.routes.secure.latencyMs.p99),
      String(failures(step, 'public') + failures(step, 'secure')),
      fixed(step.cpu['load generator'], 2),
    ]),
  };
  const fractions = mixed.steps.map((step) => step.secureFraction);
  const otherSteps = other?.scenarios.mixed?.steps;
  const series = (key: 'p50' | 'p99'): LineSeries[] => [
    ...(['public', 'secure'] as const).map((route) => ({
      name: `${route} route`,
      colour: COLOURS[route],
      points: mixed.steps.map((step) => ({ x: step.secureFraction, y: step.routes[route].latencyMs[key] })),
    })),
    ...(otherSteps
      ? (['public', 'secure'] as const).map((route) => ({
          name: `${route} route (B)`,
          colour: route === 'public' ? COLOURS.publicB : COLOURS.secureB,
          points: otherSteps.map((step) => ({ x: step.secureFraction, y: step.routes[route].latencyMs[key] })),
        }))
      : []),
  ];
  const chart = (key: 'p50' | 'p99') =>
    lineChart({
      title: `${key} latency through the gateway against the secure fraction`,
      xLabel: 'secure fraction of the stream',
      yLabel: 'ms',
      xs: fractions,
      xScale: 'linear',
      series: series(key),
      xFormat: (x) => x.toFixed(2),
    });
  return {
    id: 'mixed',
    title: 'Mixed traffic: latency against the secure fraction',
    paragraphs: [
      ...failed(mixed),
      `One stream through the gateway at ${result.config.mixed.rate} requests/s, sent on schedule whatever the answers do (an open loop, so queueing shows in the latency), ${result.config.mixed.seconds} s per fraction; the secure requests are spread evenly through it.`,
    ],
    tables: [table],
    charts: [chart('p50'), chart('p99')],
  };
}

function memorySection(result: LoadtestResult, other?: LoadtestResult): Section | undefined {
  const memory = result.scenarios.memory;
  if (!memory) return undefined;
  const otherParts = other?.scenarios.memory?.parts;
  const table: Table = {
    headers: [
      'part',
      'measured as',
      'start-up peak MiB',
      'runtime mean MiB',
      'runtime max MiB',
      'the study: start-up / runtime MiB',
      ...(otherParts ? ['B: peak / mean MiB'] : []),
    ],
    rows: memory.parts.map((part) => {
      const study = STUDY.memoryMiB[part.part];
      const mine = otherParts?.find((candidate) => candidate.part === part.part);
      return [
        part.part,
        part.source === 'proc-rss' ? 'RSS of its process tree' : 'allotted by nitro-cli',
        fixed(part.startupPeakMiB),
        fixed(part.runtimeMeanMiB),
        fixed(part.runtimeMaxMiB),
        study ? `${study.startup} / ${study.runtime}` : dash,
        ...(otherParts ? [`${fixed(mine?.startupPeakMiB)} / ${fixed(mine?.runtimeMeanMiB)}`] : []),
      ];
    }),
  };
  const servers = memory.parts.filter((part) => STUDY.memoryMiB[part.part]);
  const chart = barChart({
    title: 'Memory: start-up peak and runtime mean',
    yLabel: 'MiB',
    series: [
      { name: 'start-up peak', colour: COLOURS.secure },
      { name: 'runtime mean', colour: COLOURS.public },
      { name: 'the study: start-up', colour: '#555', hatched: true },
      { name: 'the study: runtime', colour: '#999', hatched: true },
    ],
    groups: servers.map((part) => ({
      label: part.part,
      values: [
        part.startupPeakMiB,
        part.runtimeMeanMiB,
        STUDY.memoryMiB[part.part]!.startup,
        STUDY.memoryMiB[part.part]!.runtime,
      ],
    })),
  });
  return {
    id: 'memory',
    title: 'Memory',
    paragraphs: [
      ...failed(memory),
      `Start-up peak: the highest summed RSS of the part's process tree in the first ${result.config.memory.startupSeconds} s after its first process existed, sampled every 100 ms. Runtime: the mean of samples every ${result.config.memory.sampleEverySeconds} s under light mixed load (${result.config.memory.rate} requests/s through the gateway, half secure). RSS counts shared library pages once per process. The study measured its containers with docker stats and its enclave by the memory allotted to it.`,
    ],
    tables: [table],
    charts: [chart],
  };
}

export function buildSections(result: LoadtestResult, other?: LoadtestResult): Section[] {
  return [
    overview(result, other),
    startupSection(result, other),
    channelSection(result),
    latencySection(result, other),
    mixedSection(result, other),
    memorySection(result, other),
  ].filter((section): section is Section => section !== undefined);
}
