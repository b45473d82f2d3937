// Between steps: answers a closed loop stopped waiting for are still being computed. They must
// finish before the next step, or they would run on the cores while it is measured.
import type { ProcessTreeRoot } from '../../common/index.js';
import { treeCpuSeconds } from '../../common/index.js';

const IDLE_CORES = 0.05;
const WINDOW_MS = 250;
const MAX_WAIT_MS = 60_000;

/** Waits until the servers are idle (under 0.05 cores for 250 ms), 60 s have passed, or the signal aborts. */
export async function settle(servers: readonly ProcessTreeRoot[], signal?: AbortSignal): Promise<void> {
  const busy = () => servers.reduce((total, root) => total + treeCpuSeconds(root), 0);
  const deadline = performance.now() + MAX_WAIT_MS;
  while (performance.now() < deadline && !signal?.aborted) {
    const before = busy();
    await new Promise<void>((resolve) => {
      const timer = setTimeout(done, WINDOW_MS);
      signal?.addEventListener('abort', done, { once: true });
      function done() {
        clearTimeout(timer);
        signal?.removeEventListener('abort', done);
        resolve();
      }
    });
    if (busy() - before < (IDLE_CORES * WINDOW_MS) / 1000) return;
  }
}

/** The model servers of a stack's parts (the load test's names), for settle. */
export function modelServers(parts: Readonly<Record<string, ProcessTreeRoot>>): ProcessTreeRoot[] {
  return ['public model server', 'enclave'].map((name) => parts[name]).filter((root) => root !== undefined);
}
