// TLS on the traffic listener: between the client and the parent it protects the public route
// and the secure route's metadata (the secure route's content is protected end to end by OHTTP
// whatever the transport). The certificate and key are read at start, where a bad file stops the
// gateway, and re-read whenever either file changes: certificates are renewed (ACME, cert-manager)
// without a restart. A renewal that cannot be loaded (a half-written pair, a key that does not
// match) keeps the running certificate and says so in the log. HTTP/2 is offered through ALPN
// beside HTTP/1.1, which stays available to every client that does not ask for h2.
import { readFileSync, unwatchFile, watchFile } from 'node:fs';
import type { Stats } from 'node:fs';
import { Server as TlsServer, createSecureContext } from 'node:tls';
import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import type { ServerHttp2Session } from 'node:http2';
import { OptionError } from '../common/index.js';
import type { GatewayConfig } from './config.js';

/** How often the files' stat is polled: a watch on the path survives the rename an atomic replace makes. */
export const TLS_WATCH_INTERVAL_MS = 1_000;

export interface TlsFiles {
  certFile: string;
  keyFile: string;
  cert: Buffer;
  key: Buffer;
}

/** Reads and checks the pair (the key must match the certificate); throws OptionError naming the file. */
export function readTlsFiles(config: Pick<GatewayConfig, 'tlsCert' | 'tlsKey'>): TlsFiles | undefined {
  if (config.tlsCert === undefined || config.tlsKey === undefined) return undefined;
  const read = (flag: string, path: string) => {
    try {
      return readFileSync(path);
    } catch (error) {
      throw new OptionError(`${flag} ${path}: ${(error as Error).message}`, { cause: error });
    }
  };
  const files = {
    certFile: config.tlsCert,
    keyFile: config.tlsKey,
    cert: read('--tls-cert', config.tlsCert),
    key: read('--tls-key', config.tlsKey),
  };
  try {
    createSecureContext({ cert: files.cert, key: files.key });
  } catch (error) {
    throw new OptionError(
      `--tls-cert ${files.certFile} and --tls-key ${files.keyFile} are not a usable pair: ${(error as Error).message}`,
      { cause: error },
    );
  }
  return files;
}

/** What to give Fastify for the traffic listener. */
export function tlsServerOptions(files: TlsFiles | undefined, http2: boolean): Record<string, unknown> {
  if (!files) return {};
  const https = { cert: files.cert, key: files.key, minVersion: 'TLSv1.2' as const };
  return http2 ? { http2: true, https: { ...https, allowHTTP1: true } } : { https };
}

/** Re-reads the pair whenever either file changes, until the returned function is called. */
export function watchTlsFiles(
  server: object,
  files: TlsFiles,
  log: FastifyBaseLogger,
  intervalMs = TLS_WATCH_INTERVAL_MS,
): () => void {
  // https and http2's secure server are both TLS servers.
  if (!(server instanceof TlsServer)) throw new Error('the traffic listener is not a TLS server');
  const reload = (current: Stats, previous: Stats) => {
    if (current.mtimeMs === previous.mtimeMs && current.ino === previous.ino && current.size === previous.size) return;
    try {
      const next = readTlsFiles({ tlsCert: files.certFile, tlsKey: files.keyFile })!;
      server.setSecureContext({ cert: next.cert, key: next.key });
      log.info({ cert: files.certFile }, 'TLS certificate reloaded');
    } catch (error) {
      log.error(
        { cert: files.certFile, key: files.keyFile, err: error },
        'TLS files changed but could not be loaded: still serving the previous certificate',
      );
    }
  };
  watchFile(files.certFile, { interval: intervalMs, persistent: false }, reload);
  watchFile(files.keyFile, { interval: intervalMs, persistent: false }, reload);
  return () => {
    unwatchFile(files.certFile, reload);
    unwatchFile(files.keyFile, reload);
  };
}

/**
 * Watches the files of a TLS traffic listener, and closes its HTTP/2 sessions when the gateway
 * stops: an idle HTTP/2 client would otherwise hold the shutdown for the whole session timeout.
 * close() sends GOAWAY, so streams in flight still finish.
 */
export function manageTlsListener(app: FastifyInstance, files: TlsFiles): void {
  const stopWatching = watchTlsFiles(app.server, files, app.log);
  const sessions = new Set<ServerHttp2Session>();
  app.server.on('session', (session: ServerHttp2Session) => {
    sessions.add(session);
    session.once('close', () => sessions.delete(session));
  });
  app.addHook('preClose', (done) => {
    for (const session of sessions) session.close();
    done();
  });
  app.addHook('onClose', (_instance, done) => {
    stopWatching();
    done();
  });
}
