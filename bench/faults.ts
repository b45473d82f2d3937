// npm run bench:faults — a soak with faults: mixed public and secure load against `mpg stack` (every
// part a real process, supervised as `npm start` runs it) while parts are killed with SIGKILL: the
// enclave's model server, its relay (the enclave entrypoint, which holds the enclave side of the
// channel) and the public model server (and, when asked, the gateway). The stack restarts each.
//
// Load: the load-test harness's paced open loop (loadtest/load/paced.ts) at a fixed offered rate,
// so an outage is not hidden by a client that waits. Per fault it reports the requests lost per
// route and how (coded 503s, which clients can act on, apart from every other failure), the time
// from the kill to the first coded 503 and to recovery, the restart time the stack itself logged,
// and at the end the RSS of every process at the start and the end of the soak. The first
// stretch, before any fault, is the baseline: nothing may be lost there.
//
// Flags: see --help (each has its MPG_ twin). Results: results/bench/faults-<time>.json.
import { untilStackReady } from './stack-ready.js';
import type { ChildProcessByStdio } from 'node:child_process';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import type { Readable } from 'node:stream';
import {
  stopChild,
  choice,
  decimal,
  describeEnvironment,
  formatOptionsHelp,
  integer,
  list,
  parseCommandLine,
  processMemory,
  processTree,
} from '../common/index.js';
import type { PacedAnswer } from '../loadtest/index.js';
import { paced, studyRequestBody } from '../loadtest/index.js';
import type { FaultFigures, FaultTarget } from './fault-timeline.js';
import { AFFECTED_ROUTES, FAULT_TARGETS, analyseFault, countOutcomes } from './fault-timeline.js';
import { saveBenchResult } from './results.js';

export const faultsOptions = {
  durationS: decimal({
    description: 'Length of the soak: the load runs this long, the faults spread over it',
    unit: 's',
    default: 60,
    min: 10,
    max: 24 * 3600,
  }),
  rate: decimal({
    description: "Requests offered per second, both routes together (batch-2 JSON, the study's request)",
    unit: 'req/s',
    default: 4,
    min: 0.5,
    max: 10_000,
  }),
  secureFraction: decimal({
    description: 'Share of the requests sent to /predict-secure',
    default: 0.5,
    min: 0,
    max: 1,
  }),
  faults: list(
    choice({
      description:
        'Parts killed (SIGKILL), in this order, evenly spread after the baseline [default: enclave-model-server,enclave-relay,public-model-server]',
      choices: FAULT_TARGETS,
    }),
  ),
  baselineS: decimal({
    description: 'Load before the first fault: the no-fault baseline',
    unit: 's',
    default: 10,
    min: 2,
    max: 3600,
  }),
  timeoutS: integer({
    description: 'A request not answered in this time counts as lost (timeout)',
    unit: 's',
    default: 15,
    min: 1,
    max: 600,
  }),
  connections: integer({ description: 'Keep-alive connections to the gateway', default: 32, min: 1, max: 4096 }),
};

const DEFAULT_FAULTS: readonly FaultTarget[] = ['enclave-model-server', 'enclave-relay', 'public-model-server'];
const CLI = new URL('../../bin/mpg', import.meta.url).pathname;
const STACK_START_TIMEOUT_MS = 180_000;
const STOP_GRACE_MS = 20_000;
// How often the processes' RSS is read, and how long to wait for a killed part's successor.
const SAMPLE_INTERVAL_MS = 1_000;
const MIB = 1024 * 1024;

type Role =
  'stack + parent relay' | 'gateway' | 'public model server' | 'enclave entrypoint + relay' | 'enclave model server';
const ROLES: readonly Role[] = [
  'stack + parent relay',
  'gateway',
  'public model server',
  'enclave entrypoint + relay',
  'enclave model server',
];
// The part's name in the stack's supervision log lines ("the enclave is back").
const STACK_PART_OF_TARGET: Readonly<Record<FaultTarget, string>> = {
  'enclave-model-server': 'enclave',
  'enclave-relay': 'enclave',
  'public-model-server': 'public model server',
  gateway: 'gateway',
};
const ROLE_OF_TARGET: Readonly<Record<FaultTarget, Role>> = {
  'enclave-model-server': 'enclave model server',
  'enclave-relay': 'enclave entrypoint + relay',
  'public-model-server': 'public model server',
  gateway: 'gateway',
};

function commandLine(pid: number): string[] {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
  } catch {
    return [];
  }
}

function parentOf(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name, which is in parentheses and may contain spaces.
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    return undefined;
  }
}

/**
 * The stack's processes by role, from the `mpg stack` process down (the stack itself and its
 * parent relay are `root`). The public model server is the stack's own child (taskset and the
 * launcher exec); any other model server belongs to an enclave, even one whose entrypoint was
 * just killed.
 */
function stackRoles(root: number): Partial<Record<Role, number>> {
  const roles: Partial<Record<Role, number>> = { 'stack + parent relay': root };
  for (const pid of processTree({ pid: root, by: 'descendants' })) {
    const args = commandLine(pid);
    // node's own argv: [node, .../dist/cli/index.js, <command>, ...]
    if (args[2] === 'gateway') roles.gateway = pid;
    else if (args[2] === 'enclave' && args[3] === 'entrypoint') roles['enclave entrypoint + relay'] = pid;
    else if (args[2] === 'model-server')
      roles[parentOf(pid) === root ? 'public model server' : 'enclave model server'] = pid;
  }
  return roles;
}

interface RestartLogged {
  part: string;
  at: number;
  downForMs: number | undefined;
}

interface RunningStack {
  child: ChildProcessByStdio<null, Readable, Readable>;
  gatewayUrl: string;
  restarts: RestartLogged[];
}

/** `mpg stack` on free ports; resolves once it printed its URLs; collects its supervision lines. */
async function startStack(): Promise<RunningStack> {
  const child = spawn(
    CLI,
    ['stack', '--port', '0', '--public-port', '0', '--log-level', 'warn', '--log-format', 'json'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const restarts: RestartLogged[] = [];
  let stderr = '';
  let partial = '';
  child.stderr.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-20_000);
    const lines = (partial + chunk.toString()).split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) {
      let parsed: { msg?: string; downForMs?: number };
      try {
        parsed = JSON.parse(line) as typeof parsed;
      } catch {
        continue;
      }
      const back = /^the (.+) is back$/.exec(parsed.msg ?? '');
      if (back) restarts.push({ part: back[1]!, at: performance.now(), downForMs: parsed.downForMs });
    }
  });
  const { gatewayUrl } = await untilStackReady(child, () => stderr, STACK_START_TIMEOUT_MS);
  return { child, gatewayUrl, restarts };
}

interface RssSample {
  at: number;
  role: Role;
  pid: number;
  rssBytes: number;
}

interface Kill {
  target: FaultTarget;
  pid: number;
  at: number;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function main(): Promise<number> {
  const { options, help } = parseCommandLine(faultsOptions, process.argv.slice(2), process.env);
  if (help) {
    process.stdout.write(
      `Usage: npm run bench:faults -- [options]\n\nA soak with faults against mpg stack.\n\n${formatOptionsHelp(faultsOptions)}\n`,
    );
    return 0;
  }
  const faults = options.faults.length > 0 ? options.faults : DEFAULT_FAULTS;
  const spacingS = (options.durationS - options.baselineS) / faults.length;
  if (spacingS < 5)
    throw new Error(
      `--duration-s ${options.durationS} leaves ${spacingS.toFixed(1)} s per fault after the ${options.baselineS} s baseline; give at least 5 s each`,
    );

  const environment = describeEnvironment();
  console.log(
    `bench:faults on ${environment.cpuModel} (${environment.cores} cores), Node ${environment.node}: ${options.durationS} s at ${options.rate} req/s (${Math.round(options.secureFraction * 100)}% secure), killing ${faults.join(', ')} every ${spacingS.toFixed(1)} s after a ${options.baselineS} s baseline`,
  );
  const body = await studyRequestBody();
  const stack = await startStack();
  const stackPid = stack.child.pid!;
  const answers: PacedAnswer[] = [];
  const samples: RssSample[] = [];
  const kills: Kill[] = [];
  let sampling = true;
  try {
    const initial = stackRoles(stackPid);
    const missing = ROLES.filter((role) => initial[role] === undefined);
    if (missing.length > 0) throw new Error(`the stack's ${missing.join(', ')} process was not found`);

    const sampler = (async () => {
      while (sampling) {
        const at = performance.now();
        for (const [role, pid] of Object.entries(stackRoles(stackPid)) as [Role, number][]) {
          const rssBytes = processMemory(pid)?.rssBytes;
          if (rssBytes !== undefined) samples.push({ at, role, pid, rssBytes });
        }
        await sleep(SAMPLE_INTERVAL_MS);
      }
    })();

    const loadStarted = performance.now();
    const load = paced({
      gatewayUrl: stack.gatewayUrl,
      body,
      rate: options.rate,
      seconds: options.durationS,
      secureFraction: options.secureFraction,
      timeoutSeconds: options.timeoutS,
      connections: options.connections,
      onAnswer: (answer) => answers.push(answer),
    });
    const loadEndsAt = loadStarted + options.durationS * 1000;
    for (const [index, target] of faults.entries()) {
      await sleep(Math.max(0, loadStarted + (options.baselineS + index * spacingS) * 1000 - performance.now()));
      // Faults one at a time: the previous part must be back (the stack logged its restart) first,
      // or two outages would overlap in one window.
      const previous = kills.at(-1);
      const restartOfPrevious = () =>
        previous === undefined
          ? undefined
          : stack.restarts.find(
              (restart) => restart.part === STACK_PART_OF_TARGET[previous.target] && restart.at > previous.at,
            );
      // ...and its routes answering well again after it, so its recovery is inside its own window.
      const previousRoutesServing = () => {
        if (previous === undefined) return true;
        const restart = restartOfPrevious();
        return (
          restart !== undefined &&
          AFFECTED_ROUTES[previous.target].every((route) =>
            answers.some(
              (answer) => answer.route === route && answer.verdict === 'ok' && answer.scheduledAt > restart.at,
            ),
          )
        );
      };
      while (!previousRoutesServing() && performance.now() < loadEndsAt) await sleep(200);
      if (performance.now() >= loadEndsAt) {
        console.log(
          `  ${target}: not killed: the load ended before the ${STACK_PART_OF_TARGET[previous!.target]} was back and serving (lengthen --duration-s)`,
        );
        break;
      }
      if (previous && performance.now() > loadStarted + (options.baselineS + index * spacingS) * 1000 + 1_000)
        console.log(`  (waited for the ${STACK_PART_OF_TARGET[previous.target]} to be back)`);
      const pid = stackRoles(stackPid)[ROLE_OF_TARGET[target]];
      if (pid === undefined) {
        console.log(`  ${target}: no such process at its turn (still restarting?); not killed`);
        continue;
      }
      process.kill(pid, 'SIGKILL');
      kills.push({ target, pid, at: performance.now() });
      console.log(
        `  ${((performance.now() - loadStarted) / 1000).toFixed(1)} s: killed the ${ROLE_OF_TARGET[target]} (pid ${pid})`,
      );
    }
    const figures = await load;
    const loadEnded = performance.now();
    sampling = false;
    await sampler;

    const baselineEnd = kills[0]?.at ?? loadEnded;
    const baseline = countOutcomes(answers, loadStarted, baselineEnd);
    const perFault: (FaultFigures & { pid: number; restartLoggedMs: number | undefined })[] = kills.map(
      (kill, index) => {
        const endsAt = kills[index + 1]?.at ?? loadEnded + 1;
        const logged = stack.restarts.find(
          (restart) =>
            restart.part === STACK_PART_OF_TARGET[kill.target] && restart.at >= kill.at && restart.at < endsAt,
        );
        return {
          ...analyseFault(answers, kill.target, kill.at, endsAt),
          pid: kill.pid,
          restartLoggedMs: logged?.downForMs,
        };
      },
    );
    const memory = ROLES.map((role) => {
      const ofRole = samples.filter((sample) => sample.role === role);
      const afterBaseline = ofRole.find((sample) => sample.at >= baselineEnd - SAMPLE_INTERVAL_MS) ?? ofRole[0];
      const last = ofRole.at(-1);
      const pids = [...new Set(ofRole.map((sample) => sample.pid))];
      const samePid = afterBaseline !== undefined && last !== undefined && afterBaseline.pid === last.pid;
      return {
        role,
        pids,
        startMiB: afterBaseline ? round1(afterBaseline.rssBytes / MIB) : null,
        endMiB: last ? round1(last.rssBytes / MIB) : null,
        peakMiB: ofRole.length > 0 ? round1(Math.max(...ofRole.map((sample) => sample.rssBytes)) / MIB) : null,
        // Only a process that lived through the whole soak has a growth; a restarted one started afresh.
        growthMiB: samePid ? round1((last.rssBytes - afterBaseline.rssBytes) / MIB) : null,
      };
    });

    printReport(baseline, perFault, memory, figures.sentPerSecond, figures.maxSendLagMs);
    const file = await saveBenchResult('faults', {
      environment,
      config: { ...options, faults },
      gitCommit: gitCommit(),
      figures: {
        sent: figures.sent,
        sentPerSecond: figures.sentPerSecond,
        maxSendLagMs: figures.maxSendLagMs,
        baseline,
        faults: perFault,
        memory,
        restartsLogged: stack.restarts.length,
      },
    });
    console.log(`\nresults: ${file}`);
    // The baseline losing anything means the figures measure something other than the faults.
    return baseline.public.lost + baseline.secure.lost === 0 ? 0 : 1;
  } finally {
    sampling = false;
    await stopChild(stack.child, STOP_GRACE_MS);
  }
}

function round1(value: number): number {
  return Math.round(value * 10) / 10;
}

function gitCommit(): string | undefined {
  try {
    const head = readFileSync('.git/HEAD', 'utf8').trim();
    return head.startsWith('ref: ') ? readFileSync(`.git/${head.slice(5)}`, 'utf8').trim() : head;
  } catch {
    return undefined;
  }
}

function describeLoss(outcome: ReturnType<typeof countOutcomes>['public']): string {
  if (outcome.lost === 0) return `0 of ${outcome.answered}`;
  const parts = [
    ...Object.entries(outcome.coded503ByCode).map(([code, count]) => `${count} × 503 ${code}`),
    ...Object.entries(outcome.otherCoded).map(([key, count]) => `${count} × ${key}`),
    outcome.uncoded > 0 ? `${outcome.uncoded} uncoded` : '',
    ...Object.entries(outcome.transport).map(([key, count]) => `${count} × ${key}`),
  ].filter(Boolean);
  return `${outcome.lost} of ${outcome.answered} (${parts.join(', ')})`;
}

const ms = (value: number | null | undefined) =>
  value === null || value === undefined ? '—' : `${(value / 1000).toFixed(2)} s`;

function printReport(
  baseline: ReturnType<typeof countOutcomes>,
  perFault: (FaultFigures & { restartLoggedMs: number | undefined })[],
  memory: {
    role: Role;
    pids: number[];
    startMiB: number | null;
    endMiB: number | null;
    peakMiB: number | null;
    growthMiB: number | null;
  }[],
  sentPerSecond: number,
  maxSendLagMs: number,
): void {
  console.log(`\nOffered ${sentPerSecond} req/s (the generator was at most ${Math.round(maxSendLagMs)} ms late).`);
  console.log('\n| window | route | lost (of answered) | first coded 503 | recovered after | restart (stack log) |');
  console.log('|---|---|---|---|---|---|');
  for (const route of ['public', 'secure'] as const)
    console.log(`| baseline, no fault | ${route} | ${describeLoss(baseline[route])} | | | |`);
  for (const fault of perFault) {
    for (const route of ['public', 'secure'] as const) {
      const affected = AFFECTED_ROUTES[fault.target].includes(route);
      console.log(
        `| kill ${fault.target} | ${route}${affected ? '' : ' (not served by it)'} | ${describeLoss(fault.routes[route])} | ${affected ? ms(fault.firstCoded503Ms) : ''} | ${affected ? (fault.recoveredAfterMs === null ? 'not within the window' : ms(fault.recoveredAfterMs)) : ''} | ${affected ? ms(fault.restartLoggedMs) : ''} |`,
      );
    }
  }
  // The stack's promise: a route whose part is down answers coded 503s and nothing else; the other route loses nothing.
  console.log('');
  for (const fault of perFault) {
    const affected = AFFECTED_ROUTES[fault.target];
    const otherwise = affected.reduce((total, route) => total + fault.routes[route].lostUncoded, 0);
    const collateral = (['public', 'secure'] as const)
      .filter((route) => !affected.includes(route))
      .reduce((total, route) => total + fault.routes[route].lost, 0);
    const kept = otherwise === 0 && collateral === 0;
    console.log(
      `kill ${fault.target}: ${kept ? 'kept' : 'NOT kept'}: ${otherwise === 0 ? 'only coded 503s' : `${otherwise} failed other than with a coded 503`} on ${affected.join(' and ')}` +
        `${affected.length < 2 ? `, ${collateral === 0 ? 'nothing' : collateral} lost on the other route` : ''}`,
    );
  }
  console.log('\n| process | pids | RSS after baseline | RSS at end | peak | growth |');
  console.log('|---|---|---|---|---|---|');
  for (const row of memory) {
    const mib = (value: number | null) => (value === null ? '—' : `${value} MiB`);
    console.log(
      `| ${row.role} | ${row.pids.join(', ')} | ${mib(row.startMiB)} | ${mib(row.endMiB)} | ${mib(row.peakMiB)} | ${row.growthMiB === null ? 'restarted' : `${row.growthMiB >= 0 ? '+' : ''}${row.growthMiB} MiB`} |`,
    );
  }
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(`bench:faults: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(1);
  },
);
