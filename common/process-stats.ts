// A process's memory and CPU, and the machine's busy time, from /proc (Linux): what every
// measurement here records beside its figures.
import { readFileSync } from 'node:fs';

/**
 * Resident memory of one process (bytes), from /proc: current, peak (VmHWM), and the anonymous
 * part (what the process allocated, without the shared libraries' file pages).
 */
export function processMemory(
  pid: number,
): { rssBytes: number; peakRssBytes: number; anonymousBytes: number } | undefined {
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
    const [user, nice, system, , , irq, softirq, steal] = readFileSync('/proc/stat', 'utf8')
      .split('\n')[0]!
      .trim()
      .split(/\s+/)
      .slice(1)
      .map(Number);
    return (user! + nice! + system! + irq! + softirq! + steal!) / 100; // clock ticks (USER_HZ = 100)
  } catch {
    return undefined;
  }
}
