// Builds the gateway: classify each request by the privacy policy, pick a healthy member of the
// route it must take, and stream it there with @fastify/http-proxy over undici keep-alive pools.
// A secure request only ever goes to a secure member: there is no fallback to try.
//
// The Fastify instance holds only what every route shares (coded error replies, the connection
// hooks, overload protection); each concern is a plugin of its own: the status routes, and the two
// predict routes with their body parsers, privacy hooks and proxies (proxy-routes.ts), the secure
// route's discovery routes (secure-discovery-routes.ts); /readyz and /metrics on an admin listener of
// their own with --admin-port; TLS on the traffic listener with --tls-cert (tls.ts).
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import Fastify, { LogController } from 'fastify';
import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import underPressure from '@fastify/under-pressure';
import type { Registry } from 'prom-client';
import type { CodedError } from '../common/index.js';
import { answerClientError } from './client-errors.js';
import type { GatewayConfig } from './config.js';
import connectionHooks from './connection-hooks.js';
import type { GatewayContext } from './context.js';
import errorReplies from './error-replies.js';
import { gatewayErrors } from './errors.js';
import { requestIdFor } from './headers.js';
import { createGatewayMetrics } from './metrics.js';
import type { GatewayMetrics } from './metrics.js';
import type { PrivacyPolicy, PrivacyRoute } from './policy.js';
import { predictRoutes } from './proxy-routes.js';
import { createAdminApp, statusRoutes } from './status-routes.js';
import { secureDiscoveryRoutes } from './secure-discovery-routes.js';
import { clientPage } from './client-page.js';
import type { TlsFiles } from './tls.js';
import { manageTlsListener, readTlsFiles, tlsServerOptions } from './tls.js';
import type { UpstreamMember } from './upstream-group.js';
import { UpstreamGroup } from './upstream-group.js';
import { AttestationGate } from './attestation-gate.js';
import { ohttpKeyBinding } from './ohttp-key-binding.js';
import type { AttestationTrust } from './attestation-trust.js';
import { TRUST_WARNINGS } from './attestation-trust.js';

export interface Gateway {
  app: FastifyInstance;
  /** The admin listener's app (/readyz, /metrics), when --admin-port gives it one; the caller listens on it. */
  admin: FastifyInstance | undefined;
  metrics: GatewayMetrics;
  groups: Readonly<Record<PrivacyRoute, UpstreamGroup>>;
  /** Starts the health checks; resolves after the first round. */
  start(): Promise<void>;
  /** Stops accepting, finishes requests in flight, closes the upstream pools. */
  close(): Promise<void>;
}

export interface GatewayDependencies {
  /** What secure members are trusted on (loadAttestationTrust); required with secure upstreams. */
  attestationTrust?: AttestationTrust;
  registry?: Registry;
  /** A pino logger, or Fastify logger options. */
  logger?: FastifyBaseLogger | boolean | Record<string, unknown>;
  /** The traffic listener's certificate and key, read already (readTlsFiles); read here otherwise. */
  tls?: TlsFiles;
}

function isLogger(logger: FastifyBaseLogger | boolean | Record<string, unknown>): logger is FastifyBaseLogger {
  return typeof logger === 'object' && typeof logger.child === 'function';
}

// How often node:http looks for requests over --request-timeout-ms (its default, 30 s, let a 30 s
// timeout fire after up to 60 s).
const REQUEST_TIMEOUT_CHECK_MS = 500;

/** A request target in absolute form (`POST http://host/predict-secure`) as the path it names. */
function originForm(url: string): string {
  if (url.startsWith('/') || !/^https?:\/\//i.test(url)) return url;
  try {
    const parsed = new URL(url);
    return parsed.pathname + parsed.search;
  } catch {
    return url;
  }
}

function createFastify(
  config: GatewayConfig,
  logger: FastifyBaseLogger | boolean | Record<string, unknown>,
  onClientError: (error: CodedError) => void,
  tls: TlsFiles | undefined,
): FastifyInstance {
  const options = {
    ...tlsServerOptions(tls, config.http2),
    // One line per request is written by the onResponse hook (privacy-hooks.ts), with nothing a secure
    // request's caller sent in it.
    logController: new LogController({ disableRequestLogging: true }),
    requestTimeout: config.requestTimeoutMs,
    routerOptions: { maxParamLength: 100 },
    http: { maxHeaderSize: config.maxHeaderSize, connectionsCheckingInterval: REQUEST_TIMEOUT_CHECK_MS },
    rewriteUrl: (request: IncomingMessage) => originForm(request.url ?? '/'),
    clientErrorHandler: (error: NodeJS.ErrnoException, socket: Socket) =>
      answerClientError(error, socket, onClientError),
    trustProxy: config.trustProxy,
    return503OnClosing: false,
    genReqId: (request: IncomingMessage) => requestIdFor(request.headers),
  };
  const app = isLogger(logger) ? Fastify({ ...options, loggerInstance: logger }) : Fastify({ ...options, logger });
  // node:http keeps the first 1000 header lines and silently drops the rest, so a privacy header
  // past them would be missed: let it keep as many as the largest header block can hold.
  app.server.maxHeadersCount = config.maxHeaderSize;
  // node:http enforces neither timeout while its headers timeout (60 s by default) is longer than
  // the request timeout: the headers must arrive within the request's time anyway.
  app.server.headersTimeout = config.requestTimeoutMs;
  // Expect: 100-continue is answered here, where the declared length is known: a body over
  // --body-limit is refused (413) before the client sends any of it; any other gets its 100.
  app.server.on('checkContinue', (request: IncomingMessage, response: ServerResponse) => {
    if (!(Number(request.headers['content-length'] ?? 0) > config.bodyLimit)) response.writeContinue();
    app.server.emit('request', request, response);
  });
  return app;
}

/** Builds the gateway from a parsed configuration; nothing listens until the caller's listen(). */
export function buildGateway(
  config: GatewayConfig,
  policy: PrivacyPolicy,
  dependencies: GatewayDependencies = {},
): Gateway {
  const metrics = createGatewayMetrics(
    dependencies.registry,
    (config.requestTimeoutMs + config.headersTimeoutMs) / 1000,
  );
  const tls = dependencies.tls ?? readTlsFiles(config);
  const app = createFastify(
    config,
    dependencies.logger ?? { level: config.logLevel, base: { component: 'gateway' } },
    (error) => metrics.errors.inc({ route: 'none', code: error.code }),
    tls,
  );

  const observer = {
    onHealthChange(member: UpstreamMember, healthy: boolean, reason: string) {
      metrics.upstreamUp.set({ route: member.route, member: member.url }, healthy ? 1 : 0);
      if (healthy) app.log.info({ route: member.route, member: member.url }, 'upstream member healthy');
      else app.log.warn({ route: member.route, member: member.url, reason }, 'upstream member out of rotation');
    },
  };
  const trust = dependencies.attestationTrust;
  if (config.secureUpstream.length > 0 && !trust)
    throw new Error('secure upstreams need an attestation trust (loadAttestationTrust)');
  const gate: AttestationGate | undefined =
    trust && trust.mode !== 'insecure-skipped'
      ? new AttestationGate(
          trust,
          metrics,
          app.log,
          ohttpKeyBinding((): readonly UpstreamMember[] => groups.secure.members),
        )
      : undefined;
  if (trust) {
    metrics.attestationTrust.set({ mode: trust.mode.replaceAll('-', '_') }, 1);
    if (trust.mode !== 'aws-root') app.log.warn({ trust: trust.mode }, TRUST_WARNINGS[trust.mode]);
  }
  const groups = {
    public: new UpstreamGroup('public', config.publicUpstream, config, observer),
    secure: new UpstreamGroup('secure', config.secureUpstream, config, observer, gate),
  };
  const allMembers = [...groups.public.members, ...groups.secure.members];
  for (const member of allMembers) metrics.upstreamUp.set({ route: member.route, member: member.url }, 0);
  for (const member of groups.secure.members) metrics.attestationVerified.set({ member: member.url }, 0);
  const beforeScrape = () => {
    if (gate)
      for (const member of groups.secure.members)
        metrics.attestationAge.set({ member: member.url }, gate.ageSeconds(member));
  };
  const state = { closing: false };
  const context: GatewayContext = { config, policy, metrics, groups, state, trust, gate, beforeScrape };

  app.decorateRequest('privacy', undefined);
  void app.register(errorReplies, { metrics });
  void app.register(connectionHooks, { state, lingerMs: config.lingerMs });
  if (config.maxEventLoopDelayMs > 0 || config.maxHeapUsedBytes > 0) {
    void app.register(underPressure, {
      maxEventLoopDelay: config.maxEventLoopDelayMs,
      maxHeapUsedBytes: config.maxHeapUsedBytes,
      retryAfter: 1,
      pressureHandler: (request, reply, type, value) => {
        request.log.warn({ type, value }, 'overloaded');
        void reply.send(
          gatewayErrors.GW_OVERLOADED(`The gateway is overloaded (${type}); retry after Retry-After`, {
            headers: { 'retry-after': '1' },
          }),
        );
      },
    });
  }
  const admin = config.adminPort === undefined ? undefined : createAdminApp(app.log, metrics);
  void app.register(statusRoutes, { ...context, adminRoutes: admin === undefined });
  if (admin) void admin.register(statusRoutes, { ...context, adminRoutes: true });
  void app.register(predictRoutes, context);
  void app.register(secureDiscoveryRoutes, { secure: groups.secure, config });
  void app.register(clientPage, { trust });
  if (tls) manageTlsListener(app, tls);

  return {
    app,
    admin,
    metrics,
    groups,
    async start() {
      await Promise.all([groups.public.start(), groups.secure.start()]);
    },
    async close() {
      state.closing = true;
      await app.close();
      await admin?.close();
      await Promise.all([groups.public.stop(), groups.secure.stop()]);
    },
  };
}
