// The stack's private runtime directory (0700, in the temporary directory): the gateway's secure
// socket, the emulated enclave's channel, the pinned measurements, the emulated root, the sample
// image. A stack killed with SIGKILL cannot remove it, so each one is marked with its owner (pid
// and the kernel's start time of that pid, which tells a reused pid apart), and the next start
// removes every marked directory of this user whose owner is gone. Nothing unmarked is touched.
import { readFileSync } from 'node:fs';
import { lstat, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const RUNTIME_DIR_PREFIX = 'mpg-stack-';
/** The mark: a file only `mpg stack` writes, holding its owner. */
export const OWNER_FILE = 'mpg-stack-owner.json';

interface Owner {
  pid: number;
  /** Field 22 of /proc/PID/stat (clock ticks since boot); null where /proc is not available. */
  startTime: string | null;
}

function processStartTime(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name, which may itself hold spaces and parentheses.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? null;
  } catch {
    return null;
  }
}

function isAlive(owner: Owner): boolean {
  try {
    process.kill(owner.pid, 0);
  } catch (error) {
    // EPERM: the pid exists but belongs to someone else, so it is not our stack.
    return (error as NodeJS.ErrnoException).code !== 'ESRCH' && (error as NodeJS.ErrnoException).code !== 'EPERM';
  }
  return owner.startTime === null || processStartTime(owner.pid) === owner.startTime;
}

export async function createRuntimeDir(parent = tmpdir()): Promise<string> {
  const dir = await mkdtemp(join(parent, RUNTIME_DIR_PREFIX));
  const owner: Owner = { pid: process.pid, startTime: processStartTime(process.pid) };
  await writeFile(join(dir, OWNER_FILE), JSON.stringify(owner) + '\n', { mode: 0o600 });
  return dir;
}

/** Removes the runtime directories of stacks that died without cleaning up; returns their paths. */
export async function removeStaleRuntimeDirs(parent = tmpdir()): Promise<string[]> {
  const uid = process.getuid?.();
  const removed: string[] = [];
  for (const name of await readdir(parent).catch(() => [])) {
    if (!name.startsWith(RUNTIME_DIR_PREFIX)) continue;
    const dir = join(parent, name);
    try {
      const stat = await lstat(dir);
      if (!stat.isDirectory() || (uid !== undefined && stat.uid !== uid)) continue;
      const owner = JSON.parse(await readFile(join(dir, OWNER_FILE), 'utf8')) as Owner;
      if (typeof owner.pid !== 'number' || isAlive(owner)) continue;
      await rm(dir, { recursive: true, force: true });
      removed.push(dir);
    } catch {
      // unmarked, unreadable or vanished meanwhile: not ours to remove
    }
  }
  return removed;
}
