// Builds the gateway: classify each request by the privacy policy, pick a healthy member of the
// route it must take, and stream it there with @fastify/http-proxy over undici keep-alive pools.
// A secure request only ever goes to a secure member: there is no fallback to try.
import type { IncomingMessage } from 'node:http';
import Fastify, { LogController } from 'fastify';
import type { FastifyBaseLogger, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import underPressure from '@fastify/under-pressure';
import type { Registry } from 'prom-client';
import { CodedError } from '../common/index.js';
import type { GatewayConfig } from './config.js';
import type { GatewayContext } from './context.js';
import { gatewayErrors } from './errors.js';
import { requestIdFor } from './headers.js';
import { createGatewayMetrics } from './metrics.js';
import type { GatewayMetrics } from './metrics.js';
import type { PrivacyPolicy, PrivacyRoute } from './policy.js';
import { registerPrivacyHooks } from './privacy-hooks.js';
import { registerProxyRoutes } from './proxy-routes.js';
import { registerStatusRoutes } from './status-routes.js';
import type { UpstreamMember } from './upstream-group.js';
import { UpstreamGroup } from './upstream-group.js';
import { AttestationGate } from './attestation-gate.js';
import type { AttestationTrust } from './attestation-trust.js';
import { TRUST_WARNINGS } from './attestation-trust.js';

export interface Gateway {
  app: FastifyInstance;
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
}

export function createGateway(config: GatewayConfig, policy: PrivacyPolicy, dependencies: GatewayDependencies = {}): Gateway {
  const metrics = createGatewayMetrics(dependencies.registry, (config.requestTimeoutMs + config.headersTimeoutMs) / 1000);
  const logger = dependencies.logger ?? { level: config.logLevel, base: { component: 'gateway' } };
  const loggerOptions = typeof logger === 'object' && 'child' in logger ? { loggerInstance: logger } : { logger };
  const app = Fastify({
    ...loggerOptions,
    // One line per request is written by the onResponse hook (privacy-hooks.ts), with nothing a secure
    // request's caller sent in it.
    logController: new LogController({ disableRequestLogging: true }),
    requestTimeout: config.requestTimeoutMs,
    routerOptions: { maxParamLength: 100 },
    http: { maxHeaderSize: config.maxHeaderSize },
    trustProxy: config.trustProxy,
    return503OnClosing: false,
    genReqId: (request: IncomingMessage) => requestIdFor(request.headers),
  } as Parameters<typeof Fastify>[0]) as unknown as FastifyInstance;

  const timeouts = config;
  const observer = {
    onHealthChange(member: UpstreamMember, healthy: boolean, reason: string) {
      metrics.upstreamUp.set({ route: member.route, member: member.url }, healthy ? 1 : 0);
      if (healthy) app.log.info({ route: member.route, member: member.url }, 'upstream member healthy');
      else app.log.warn({ route: member.route, member: member.url, reason }, 'upstream member out of rotation');
    },
  };
  const trust = dependencies.attestationTrust;
  if (config.secureUpstream.length > 0 && !trust) throw new Error('secure upstreams need an attestation trust (loadAttestationTrust)');
  const gate = trust && trust.mode !== 'insecure-skipped' ? new AttestationGate(trust, metrics, app.log) : undefined;
  if (trust) {
    metrics.attestationTrust.set({ mode: trust.mode.replaceAll('-', '_') }, 1);
    if (trust.mode !== 'aws-root') app.log.warn({ trust: trust.mode }, TRUST_WARNINGS[trust.mode]);
  }
  const groups = {
    public: new UpstreamGroup('public', config.publicUpstream, timeouts, observer),
    secure: new UpstreamGroup('secure', config.secureUpstream, timeouts, observer, gate),
  };
  const allMembers = [...groups.public.members, ...groups.secure.members];
  for (const member of allMembers) metrics.upstreamUp.set({ route: member.route, member: member.url }, 0);
  for (const member of groups.secure.members) metrics.attestationVerified.set({ member: member.url }, 0);
  const beforeScrape = () => {
    if (gate) for (const member of groups.secure.members) metrics.attestationAge.set({ member: member.url }, gate.ageSeconds(member));
  };
  const state = { closing: false };

  app.decorateRequest('privacy', undefined);

  const sendError = (request: FastifyRequest, reply: FastifyReply, error: CodedError) => {
    metrics.errors.inc({ route: request.privacy?.route ?? 'none', code: error.code });
    if (error.statusCode >= 500) request.log.warn({ code: error.code, err: error.cause ?? error }, error.message);
    return reply.code(error.statusCode).headers(error.headers).send(error.toJSON());
  };

  app.setErrorHandler((error, request, reply) => {
    let coded: CodedError;
    if (error instanceof CodedError) coded = error;
    else if ((error as { code?: string }).code === 'FST_ERR_CTP_BODY_TOO_LARGE') coded = gatewayErrors.GW_BODY_TOO_LARGE();
    else if ((error as { statusCode?: number }).statusCode === 503 && (error as { code?: string }).code === 'FST_UNDER_PRESSURE') coded = gatewayErrors.GW_OVERLOADED(undefined, { headers: { 'retry-after': '1' } });
    else coded = gatewayErrors.GW_INTERNAL(undefined, { cause: error });
    if (coded.code === 'GW_INTERNAL') request.log.error({ err: error }, 'request failed');
    return sendError(request, reply, coded);
  });
  app.setNotFoundHandler((request, reply) => sendError(request, reply, gatewayErrors.GW_NOT_FOUND()));

  if (config.maxEventLoopDelayMs > 0 || config.maxHeapUsedBytes > 0) {
    void app.register(underPressure, {
      maxEventLoopDelay: config.maxEventLoopDelayMs,
      maxHeapUsedBytes: config.maxHeapUsedBytes,
      retryAfter: 1,
      pressureHandler: (request, reply, type, value) => {
        request.log.warn({ type, value }, 'overloaded');
        void sendError(request, reply, gatewayErrors.GW_OVERLOADED(`The gateway is overloaded (${type}); retry after Retry-After`, { headers: { 'retry-after': '1' } }));
      },
    });
  }

  const context: GatewayContext = { app, config, policy, metrics, groups, state, sendError, trust, gate, beforeScrape };
  registerPrivacyHooks(context);
  registerProxyRoutes(context);
  registerStatusRoutes(context);

  return {
    app,
    metrics,
    groups,
    async start() {
      await Promise.all([groups.public.start(), groups.secure.start()]);
    },
    async close() {
      state.closing = true;
      await app.close();
      await Promise.all([groups.public.stop(), groups.secure.stop()]);
    },
  };
}
