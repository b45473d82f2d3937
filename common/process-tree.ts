// A server is a tree of processes (the enclave: its entrypoint, relay and model server), so its
// memory and CPU are the sums over the tree, read from /proc each time: a process that starts
// later (the model server the entrypoint spawns) is counted from then on.
import { readdirSync, readFileSync } from 'node:fs';
import { processCpuSeconds, processMemory } from './process-stats.js';

/** How a part's processes are found from its first pid. */
export interface ProcessTreeRoot {
  pid: number;
  /**
   * 'group': every process in the pid's process group (the enclave's entrypoint leads one);
   * 'descendants': the pid and its children, recursively; 'process': the pid alone.
   */
  by: 'group' | 'descendants' | 'process';
}

interface ProcessEntry {
  ppid: number;
  pgrp: number;
}

function listProcesses(): Map<number, ProcessEntry> {
  const processes = new Map<number, ProcessEntry>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      // Fields after the command name, which is in parentheses and may contain spaces.
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      processes.set(Number(name), { ppid: Number(fields[1]), pgrp: Number(fields[2]) });
    } catch {
      // gone meanwhile
    }
  }
  return processes;
}

export function processTree(root: ProcessTreeRoot): number[] {
  if (root.by === 'process') return processCpuSeconds(root.pid) === undefined ? [] : [root.pid];
  const processes = listProcesses();
  if (root.by === 'group') {
    const members = [...processes].filter(([, entry]) => entry.pgrp === root.pid).map(([pid]) => pid);
    return members.length > 0 || !processes.has(root.pid) ? members : [root.pid];
  }
  if (!processes.has(root.pid)) return [];
  const tree = [root.pid];
  for (let index = 0; index < tree.length; index++) {
    for (const [pid, entry] of processes) if (entry.ppid === tree[index]) tree.push(pid);
  }
  return tree;
}

/** Resident memory of the whole tree (bytes): the sum of each process's RSS (shared pages counted once per process). */
export function treeRssBytes(root: ProcessTreeRoot): number {
  return processTree(root).reduce((total, pid) => total + (processMemory(pid)?.rssBytes ?? 0), 0);
}

export function treeCpuSeconds(root: ProcessTreeRoot): number {
  return processTree(root).reduce((total, pid) => total + (processCpuSeconds(pid) ?? 0), 0);
}
