// What a result was measured on, recorded beside every figure so two runs can be compared.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus, release, totalmem, type } from 'node:os';
import * as ort from 'onnxruntime-node';

export interface Environment {
  cpuModel: string;
  cores: number;
  memoryGiB: number;
  kernel: string;
  node: string;
  onnxruntime: string;
  gitCommit: string | undefined;
}

function gitCommit(): string | undefined {
  try {
    return execFileSync('git', ['rev-parse', '--short=12', 'HEAD'], { stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim();
  } catch {
    return undefined;
  }
}

export function describeEnvironment(): Environment {
  return {
    cpuModel: cpus()[0]?.model ?? 'unknown',
    cores: cpus().length,
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    kernel: `${type()} ${release()}`,
    node: process.versions.node,
    onnxruntime: ort.env.versions.common,
    gitCommit: gitCommit(),
  };
}

/**
 * Resident memory of one process (bytes), from /proc: current, peak (VmHWM), and the anonymous
 * part (what the process allocated, without the shared libraries' file pages).
 */
export function processMemory(pid: number): { rssBytes: number; peakRssBytes: number; anonymousBytes: number } | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0) * 1024;
    return { rssBytes: field('VmRSS'), peakRssBytes: field('VmHWM'), anonymousBytes: field('RssAnon') };
  } catch {
    return undefined;
  }
}

/** CPU time a process has used so far (seconds, user + system), from /proc. */
export function processCpuSeconds(pid: number): number | undefined {
  try {
    // Fields after the command name, which is in parentheses and may contain spaces.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (USER_HZ = 100)
  } catch {
    return undefined;
  }
}

/** CPU time the whole machine has been busy (seconds, all cores, idle and iowait left out), from /proc/stat. */
export function machineBusySeconds(): number | undefined {
  try {
    const [user, nice, system, , , irq, softirq, steal] = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
    return (user! + nice! + system! + irq! + softirq! + steal!) / 100; // clock ticks (USER_HZ = 100)
  } catch {
    return undefined;
  }
}

/** Nearest-rank percentile of sorted values. */
export function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] ?? 0;
}

/**
 * Starts counting CPU; the function it returns gives cores used (CPU s / wall s) per process, by
 * this process (the load generator), and by everything else on the machine ("others"): other
 * work on a shared machine makes a run's figures suspect.
 */
export function cpuMeter(pids: Record<string, number>): (seconds: number) => Record<string, number> {
  const before = Object.fromEntries(Object.entries(pids).map(([name, pid]) => [name, processCpuSeconds(pid) ?? 0]));
  const generatorBefore = process.cpuUsage();
  const machineBefore = machineBusySeconds();
  return (seconds) => {
    const generator = process.cpuUsage(generatorBefore);
    const cores: Record<string, number> = { 'load generator': (generator.user + generator.system) / 1e6 / seconds };
    for (const [name, pid] of Object.entries(pids)) cores[name] = ((processCpuSeconds(pid) ?? 0) - before[name]!) / seconds;
    const machineAfter = machineBusySeconds();
    if (machineBefore !== undefined && machineAfter !== undefined) {
      const ours = Object.values(cores).reduce((total, value) => total + value, 0);
      cores.others = Math.max(0, (machineAfter - machineBefore) / seconds - ours);
    }
    return cores;
  };
}
