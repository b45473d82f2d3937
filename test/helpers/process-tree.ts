// The processes a test started, found through /proc: a process's descendants, what each runs, and
// whether it is still alive (a zombie is not).
import { readdirSync, readFileSync } from 'node:fs';

export interface ProcessInfo {
  pid: number;
  ppid: number;
  /** The command line's arguments. */
  argv: string[];
}

function readProcess(pid: number): ProcessInfo | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const [state, ppid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (state === 'Z') return undefined;
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8')
      .split('\0')
      .filter((arg) => arg !== '');
    return { pid, ppid: Number(ppid), argv };
  } catch {
    return undefined;
  }
}

export function allProcesses(): ProcessInfo[] {
  return readdirSync('/proc')
    .filter((name) => /^\d+$/.test(name))
    .map((name) => readProcess(Number(name)))
    .filter((info): info is ProcessInfo => info !== undefined);
}

/** Every live descendant of `root`. */
export function descendants(root: number): ProcessInfo[] {
  const processes = allProcesses();
  const found: ProcessInfo[] = [];
  let parents = new Set([root]);
  while (parents.size > 0) {
    const children = processes.filter((info) => parents.has(info.ppid));
    found.push(...children);
    parents = new Set(children.map((info) => info.pid));
  }
  return found;
}

export function isAlive(pid: number): boolean {
  return readProcess(pid) !== undefined;
}

/** The one descendant of `root` whose arguments satisfy `matches`; fails the test unless exactly one does. */
export function findDescendant(root: number, what: string, matches: (argv: string[]) => boolean): ProcessInfo {
  const found = descendants(root).filter((info) => matches(info.argv));
  if (found.length !== 1)
    throw new Error(
      `expected one ${what} under ${root}, found ${found.length}: ${JSON.stringify(descendants(root).map((info) => info.argv.slice(1, 4)))}`,
    );
  return found[0]!;
}
