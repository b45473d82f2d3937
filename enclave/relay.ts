// A byte relay: listens on a Unix socket and, for every connection it accepts, opens exactly one
// connection to its target (a Unix socket or host:port TCP) and copies bytes both ways.
//
// It runs on both sides of the enclave boundary: on the parent it listens on the gateway's secure
// upstream socket and targets the channel into the enclave (the vsock port, or in emulation the
// Unix socket standing in for it); inside the enclave it listens on that channel and targets the
// model server on loopback.
//
// One accepted connection is one target connection for its whole life, so the gateway's
// keep-alive pool reaches the model server unbroken: per-connection setup across vsock is the
// known bottleneck of existing enclave proxies, and reusing connections pays it once per pooled
// connection instead of once per request. Backpressure is the pipe's: a slow reader pauses the
// writer on the other side. A half-close (FIN) is passed on as a half-close; an error on either
// side destroys both.
import { chmod, lstat, unlink } from 'node:fs/promises';
import type { Server, Socket } from 'node:net';
import { connect, createConnection, createServer } from 'node:net';
import type { Log } from '../common/index.js';
import { silentLog } from '../common/index.js';

export type RelayTarget = { path: string } | { host: string; port: number };

export interface RelayOptions {
  listen: { path: string };
  target: RelayTarget;
  log?: Log;
}

export interface RelayStats {
  /** Connections accepted since the relay started. */
  accepted: number;
  /** Accepted connections still open. */
  active: number;
  /** Accepted connections closed because the target could not be reached or failed. */
  targetFailures: number;
  /** Bytes read from accepted connections and written towards the target. */
  bytesToTarget: number;
  /** Bytes read from target connections and written back to the accepted side. */
  bytesFromTarget: number;
}

export interface Relay {
  /** The Unix socket path the relay listens on. */
  readonly address: string;
  readonly target: RelayTarget;
  stats(): RelayStats;
  /**
   * Stops accepting and removes the socket file at once; connections still open may finish
   * for up to `graceMs` and are then destroyed.
   */
  close(graceMs?: number): Promise<void>;
}

/** While the target stays down (e.g. the enclave is starting), one warning per this interval. */
export const TARGET_FAILURE_LOG_INTERVAL_MS = 5_000;
/** How long close() lets open connections finish before it destroys them. */
export const RELAY_CLOSE_GRACE_MS = 5_000;
/** Owner read and write only: whoever can connect to the socket can reach the model server. */
export const RELAY_SOCKET_MODE = 0o600;

export function describeTarget(target: RelayTarget): string {
  return 'path' in target ? `unix:${target.path}` : `tcp:${target.host}:${target.port}`;
}

interface Pair {
  accepted: Socket;
  upstream: Socket;
}

export async function createRelay({ listen, target, log = silentLog }: RelayOptions): Promise<Relay> {
  await removeStaleSocket(listen.path);
  const pairs = new Set<Pair>();
  const totals = { accepted: 0, targetFailures: 0, bytesToTarget: 0, bytesFromTarget: 0 };
  let lastFailureLogged = -Infinity;
  let failuresNotLogged = 0;

  const server: Server = createServer({ allowHalfOpen: true, pauseOnConnect: true }, (accepted) => {
    totals.accepted++;
    const upstream =
      'path' in target
        ? createConnection({ path: target.path, allowHalfOpen: true })
        : createConnection({ host: target.host, port: target.port, allowHalfOpen: true, noDelay: true });
    const pair = { accepted, upstream };
    pairs.add(pair);
    let targetFailed = false;

    accepted.on('error', (error: NodeJS.ErrnoException) => {
      // A client going away mid-stream is ordinary; anything else is worth a line.
      if (error.code !== 'ECONNRESET' && error.code !== 'EPIPE')
        log.warn({ err: error }, 'relay: accepted connection failed');
      upstream.destroy();
    });
    upstream.on('error', (error: NodeJS.ErrnoException) => {
      if (!targetFailed) {
        targetFailed = true;
        totals.targetFailures++;
        const now = Date.now();
        if (now - lastFailureLogged >= TARGET_FAILURE_LOG_INTERVAL_MS) {
          const since = failuresNotLogged > 0 ? { failuresSinceLastWarning: failuresNotLogged } : {};
          log.warn(
            { err: error, target: describeTarget(target), ...since },
            'relay: target connection failed; closing the accepted connection',
          );
          lastFailureLogged = now;
          failuresNotLogged = 0;
        } else {
          failuresNotLogged++;
        }
      }
      accepted.destroy();
    });
    // A side that is gone with its bytes delivered ends the other gracefully (its pending
    // writes still flush); the pipes below have usually done so already.
    accepted.once('close', () => {
      totals.bytesToTarget += accepted.bytesRead;
      if (!upstream.destroyed) upstream.end();
      if (upstream.destroyed || upstream.closed) pairs.delete(pair);
    });
    upstream.once('close', () => {
      totals.bytesFromTarget += upstream.bytesRead;
      if (!accepted.destroyed) accepted.end();
      if (accepted.destroyed || accepted.closed) pairs.delete(pair);
    });
    // Both sides are paused until both exist; bytes sent before the target answers wait in the
    // upstream socket's write buffer, which counts towards backpressure like any other.
    accepted.pipe(upstream);
    upstream.pipe(accepted);
    accepted.resume();
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ path: listen.path }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  // The socket exists for the moment between listen and chmod with the umask's mode; a private
  // parent directory closes that window where it matters.
  await chmod(listen.path, RELAY_SOCKET_MODE);
  server.on('error', (error) => log.error({ err: error }, 'relay: listening socket failed'));
  log.info({ listen: `unix:${listen.path}`, target: describeTarget(target) }, 'relay listening');

  let closing: Promise<void> | undefined;
  return {
    address: listen.path,
    target,
    stats() {
      let bytesToTarget = totals.bytesToTarget;
      let bytesFromTarget = totals.bytesFromTarget;
      for (const { accepted, upstream } of pairs) {
        if (!accepted.closed) bytesToTarget += accepted.bytesRead;
        if (!upstream.closed) bytesFromTarget += upstream.bytesRead;
      }
      return { ...totals, active: pairs.size, bytesToTarget, bytesFromTarget };
    },
    close(graceMs = RELAY_CLOSE_GRACE_MS) {
      closing ??= (async () => {
        // server.close() unlinks the socket file itself; its callback waits for open connections.
        const drained = new Promise<void>((resolve) => server.close(() => resolve()));
        const timer = setTimeout(() => {
          for (const { accepted, upstream } of pairs) {
            accepted.destroy();
            upstream.destroy();
          }
        }, graceMs);
        await drained;
        clearTimeout(timer);
        log.info({ listen: `unix:${listen.path}`, ...totals }, 'relay closed');
      })();
      return closing;
    },
  };
}

/**
 * A socket file left by a relay that died is removed; a live one (something answers on it) or a
 * path that is not a socket at all is refused, so a relay never takes over another's socket or
 * deletes an ordinary file.
 */
async function removeStaleSocket(path: string): Promise<void> {
  const stat = await lstat(path).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return undefined;
    throw error;
  });
  if (!stat) return;
  if (!stat.isSocket()) throw new Error(`${path} exists and is not a socket; refusing to replace it`);
  const live = await new Promise<boolean>((resolve) => {
    const probe = connect({ path });
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => resolve(false));
  });
  if (live) throw new Error(`${path} is in use by another process; stop it or choose another socket path`);
  await unlink(path);
}
