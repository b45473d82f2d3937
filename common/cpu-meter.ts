// CPU used over a step, in cores (CPU seconds / wall seconds): by each part of the stack (its
// whole process tree), by this process (the load generator: it competes for the same cores), and
// by everything else on the machine ("others": a busy machine makes a step's figures suspect).
import { machineBusySeconds } from './process-stats.js';
import type { ProcessTreeRoot } from './process-tree.js';
import { treeCpuSeconds } from './process-tree.js';

export type CoresUsed = Record<string, number>;

/** CPU (cores) everything else on the machine may use in a measured phase before its figures are called suspect. */
export const QUIET_MACHINE_CORES = 0.25;

const round = (value: number) => Math.round(value * 1000) / 1000;

export function partsCpuMeter(parts: Readonly<Record<string, ProcessTreeRoot>>): () => CoresUsed {
  const started = performance.now();
  const before = Object.fromEntries(Object.entries(parts).map(([name, root]) => [name, treeCpuSeconds(root)]));
  const generatorBefore = process.cpuUsage();
  const machineBefore = machineBusySeconds();
  return () => {
    const seconds = Math.max(1e-3, (performance.now() - started) / 1000);
    const generator = process.cpuUsage(generatorBefore);
    const cores: CoresUsed = { 'load generator': (generator.user + generator.system) / 1e6 / seconds };
    for (const [name, root] of Object.entries(parts))
      cores[name] = Math.max(0, treeCpuSeconds(root) - before[name]!) / seconds;
    const machineAfter = machineBusySeconds();
    if (machineBefore !== undefined && machineAfter !== undefined) {
      const ours = Object.values(cores).reduce((total, value) => total + value, 0);
      cores.others = Math.max(0, (machineAfter - machineBefore) / seconds - ours);
    }
    return Object.fromEntries(Object.entries(cores).map(([name, value]) => [name, round(value)]));
  };
}
