// Builds the gateway: classify each request by the privacy policy, pick a healthy member of the
// route it must take, and stream it there with @fastify/http-proxy over undici keep-alive pools.
// A secure request only ever goes to a secure member: there is no fallback to try.
import { randomUUID } from 'node:crypto';
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import Fastify, { LogController } from 'fastify';
import type { FastifyBaseLogger, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import httpProxy from '@fastify/http-proxy';
import underPressure from '@fastify/under-pressure';
import type { Registry } from 'prom-client';
import { CodedError } from '../common/index.js';
import { countBytes, limitBody } from './body-limit.js';
import { MemberDispatcher } from './member-dispatcher.js';
import type { GatewayConfig } from './config.js';
import { gatewayErrors } from './errors.js';
import { createGatewayMetrics } from './metrics.js';
import type { GatewayMetrics } from './metrics.js';
import type { PrivacyPolicy, PrivacyRoute } from './policy.js';
import { classifyRequest } from './policy.js';
import { TenantRateLimiter } from './rate-limit.js';
import { mapUpstreamFailure } from './upstream-errors.js';
import type { UpstreamMember } from './upstream-group.js';
import { UpstreamGroup } from './upstream-group.js';

/** Where a request was routed, and to whom; set once per request, read by hooks and logs. */
interface RequestPrivacy {
  route: PrivacyRoute;
  tenant: string | undefined;
  upgraded: boolean;
  member?: UpstreamMember;
  upstreamStartedAt?: number;
}

declare module 'fastify' {
  interface FastifyRequest {
    privacy: RequestPrivacy | undefined;
  }
  interface FastifyContextConfig {
    /** The route a request's path asks for; only the two predict routes have one. */
    privacyRoute?: PrivacyRoute;
  }
}

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
  registry?: Registry;
  /** A pino logger, or Fastify logger options. */
  logger?: FastifyBaseLogger | boolean | Record<string, unknown>;
}

const ROUTE_PATHS: Readonly<Record<PrivacyRoute, string>> = { public: '/predict-public', secure: '/predict-secure' };
// RFC 9110 section 7.6.1: connection-specific fields are not forwarded. (Connection itself and the
// fields it names are removed by @fastify/reply-from.)
const HOP_BY_HOP = ['keep-alive', 'proxy-connection', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer', 'transfer-encoding', 'upgrade'];
const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;
const SMALL_RESPONSE_BYTES = 64 * 1024;

/** A copy of the headers without the connection-specific ones, including those Connection names. */
function withoutHopByHop<Headers extends Record<string, unknown>>(headers: Headers): Headers {
  const copy: Record<string, unknown> = { ...headers };
  const named = typeof headers.connection === 'string' ? headers.connection.split(',').map((name) => name.trim().toLowerCase()) : [];
  for (const name of [...HOP_BY_HOP, 'connection', ...named]) delete copy[name];
  return copy as Headers;
}

function headerValue(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value.join(',') : value;
}

export function createGateway(config: GatewayConfig, policy: PrivacyPolicy, dependencies: GatewayDependencies = {}): Gateway {
  const metrics = createGatewayMetrics(dependencies.registry);
  const logger = dependencies.logger ?? { level: config.logLevel, base: { component: 'gateway' } };
  const loggerOptions = typeof logger === 'object' && 'child' in logger ? { loggerInstance: logger } : { logger };
  const app = Fastify({
    ...loggerOptions,
    // One line per request is written by the onResponse hook below, with nothing a secure
    // request's caller sent in it.
    logController: new LogController({ disableRequestLogging: true }),
    requestTimeout: config.requestTimeoutMs,
    routerOptions: { maxParamLength: 100 },
    http: { maxHeaderSize: config.maxHeaderSize },
    trustProxy: config.trustProxy,
    return503OnClosing: false,
    genReqId: (request: IncomingMessage) => {
      const given = headerValue(request.headers, 'x-request-id');
      return given && REQUEST_ID.test(given) ? given : randomUUID();
    },
  } as Parameters<typeof Fastify>[0]) as unknown as FastifyInstance;

  const timeouts = config;
  const observer = {
    onHealthChange(member: UpstreamMember, healthy: boolean, reason: string) {
      metrics.upstreamUp.set({ route: member.route, member: member.url }, healthy ? 1 : 0);
      if (healthy) app.log.info({ route: member.route, member: member.url }, 'upstream member healthy');
      else app.log.warn({ route: member.route, member: member.url, reason }, 'upstream member out of rotation');
    },
  };
  const groups = {
    public: new UpstreamGroup('public', config.publicUpstream, timeouts, observer),
    secure: new UpstreamGroup('secure', config.secureUpstream, timeouts, observer),
  };
  const allMembers = [...groups.public.members, ...groups.secure.members];
  for (const member of allMembers) metrics.upstreamUp.set({ route: member.route, member: member.url }, 0);
  const dispatcher = new MemberDispatcher(allMembers);
  const limiter = new TenantRateLimiter(policy);
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

  // The proxied body is streamed, so Fastify's bodyLimit does not apply: count it on the way through.
  app.removeAllContentTypeParsers();
  // A declared Content-Length is checked before the body is forwarded (see pickMember) and Node's
  // parser delivers exactly that many bytes; only a chunked body needs counting on the way.
  app.addContentTypeParser('*', (request, payload, done) => {
    const route = request.privacy?.route ?? 'none';
    const declared = request.headers['content-length'];
    if (declared !== undefined) {
      metrics.bytesIn.inc({ route }, Number(declared));
      done(null, payload);
      return;
    }
    done(null, limitBody(payload, config.bodyLimit, (bytes) => metrics.bytesIn.inc({ route }, bytes)));
  });

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

  app.addHook('onRequest', async (request, reply) => {
    if (state.closing) {
      reply.header('connection', 'close');
      throw gatewayErrors.GW_SHUTTING_DOWN(undefined, { headers: { 'retry-after': '1' } });
    }
    const pathRoute = request.routeOptions.config.privacyRoute;
    if (!pathRoute) return;
    const decision = classifyRequest(policy, {
      pathRoute,
      privacyHeader: headerValue(request.headers, config.privacyHeader),
      apiKey: headerValue(request.headers, config.apiKeyHeader),
    });
    if (decision.kind === 'reject') {
      // A rejected request is answered as if on the more private route, and counted there.
      request.privacy = { route: pathRoute === 'secure' || decision.code === 'GW_SECURE_ONLY_TENANT' ? 'secure' : pathRoute, tenant: decision.tenant, upgraded: false };
      metrics.policyDecisions.inc({ decision: decision.code });
      throw new CodedError(decision.code, decision.status, decision.message);
    }
    request.privacy = { route: decision.route, tenant: decision.tenant, upgraded: decision.upgraded };
    if (decision.upgraded) metrics.policyDecisions.inc({ decision: 'upgraded' });
    if (decision.tenant) {
      const allowed = limiter.take(decision.tenant, Date.now());
      if (!allowed.allowed) {
        throw gatewayErrors.GW_RATE_LIMITED(undefined, { headers: { 'retry-after': String(allowed.retryAfterSeconds) } });
      }
    }
    const route = decision.route;
    metrics.inFlight.inc({ route });
    reply.raw.once('close', () => metrics.inFlight.dec({ route }));
  });

  app.addHook('onSend', async (request, reply) => {
    reply.header('x-request-id', request.id);
    if (request.privacy) reply.header('x-privacy-route', request.privacy.route);
    // Closing the connection discards a body the gateway refused without reading, rather than
    // leaving its bytes to be parsed as the next request.
    if (state.closing || (reply.statusCode >= 400 && !request.raw.complete)) reply.header('connection', 'close');
  });

  app.addHook('onResponse', async (request, reply) => {
    const privacy = request.privacy;
    if (!privacy) return;
    const labels = { route: privacy.route, status: String(reply.statusCode) };
    metrics.requests.inc(labels);
    metrics.requestDuration.observe({ route: privacy.route }, reply.elapsedTime / 1000);
    // Route, status, time and member only. A secure request's body, query, key, authorization,
    // cookies and forwarded-for never reach a log line; nor does its tenant.
    request.log.info(
      {
        route: privacy.route,
        status: reply.statusCode,
        ms: Math.round(reply.elapsedTime * 100) / 100,
        member: privacy.member?.url,
        upgraded: privacy.upgraded || undefined,
        tenant: privacy.route === 'public' ? privacy.tenant : undefined,
      },
      'request done',
    );
  });

  // Picks the member, or answers 503 at once: a secure request with no healthy secure member is
  // refused here, before any byte of it is sent anywhere.
  const chooseMember = (request: FastifyRequest, reply: FastifyReply, done: (error?: Error) => void) => {
    try {
      pickMember(request, reply);
      done();
    } catch (error) {
      done(error as Error);
    }
  };
  const pickMember = (request: FastifyRequest, reply: FastifyReply) => {
    const privacy = request.privacy!;
    if (request.url.split('?')[0] !== ROUTE_PATHS[request.routeOptions.config.privacyRoute!]) {
      throw gatewayErrors.GW_NOT_FOUND();
    }
    const declared = Number(request.headers['content-length'] ?? 0);
    if (declared > config.bodyLimit) {
      throw gatewayErrors.GW_BODY_TOO_LARGE(`The body declares ${declared} bytes; the limit is ${config.bodyLimit} bytes`);
    }
    const group = groups[privacy.route];
    const member = group.pick();
    if (!member) {
      const why = group.members.length === 0 ? 'none is configured' : `none of ${group.members.length} is healthy`;
      throw privacy.route === 'secure'
        ? gatewayErrors.GW_NO_SECURE_UPSTREAM(`No secure upstream can take the request (${why}); it was not sent anywhere else`, { headers: { 'retry-after': '1' } })
        : gatewayErrors.GW_NO_HEALTHY_UPSTREAM(`No public upstream can take the request (${why})`, { headers: { 'retry-after': '1' } });
    }
    privacy.member = member;
    member.inFlight++;
    // The response's close, not the request's: a request closes once its body is read.
    reply.raw.once('close', () => member.inFlight--);
  };

  for (const pathRoute of ['public', 'secure'] as const) {
    void app.register(httpProxy, {
      upstream: '',
      prefix: ROUTE_PATHS[pathRoute],
      rewritePrefix: '/predict',
      httpMethods: ['POST'],
      proxyPayloads: false,
      config: { privacyRoute: pathRoute },
      preHandler: chooseMember,
      undici: dispatcher as never,
      // Passed on to @fastify/reply-from: its own request log lines would carry the query string.
      ...{ disableRequestLogging: true },
      replyOptions: {
        getUpstream: (request) => {
          const privacy = (request as FastifyRequest).privacy!;
          privacy.upstreamStartedAt = performance.now();
          return privacy.member!.dispatchOrigin;
        },
        rewriteHeaders: (headers) => withoutHopByHop(headers),
        rewriteRequestHeaders: (request, headers) => {
          const forwarded = withoutHopByHop(headers);
          // The tenant's key proves who called the gateway; it never leaves it.
          delete forwarded[config.apiKeyHeader];
          forwarded['x-request-id'] = request.id;
          forwarded['x-privacy-route'] = (request as FastifyRequest).privacy!.route;
          return forwarded;
        },
        onResponse: (request, reply, response): void => {
          const privacy = (request as FastifyRequest).privacy!;
          metrics.upstreamDuration.observe({ route: privacy.route }, (performance.now() - (privacy.upstreamStartedAt ?? 0)) / 1000);
          // reply-from hands over undici's headers object; its types describe an http.ServerResponse.
          const declared = Number((response as unknown as { headers: IncomingHttpHeaders }).headers['content-length'] ?? Number.NaN);
          if (!(declared <= SMALL_RESPONSE_BYTES)) {
            void reply.send(countBytes(response.stream, (bytes) => metrics.bytesOut.inc({ route: privacy.route }, bytes)));
            return;
          }
          // A prediction is a few hundred bytes: gathered, it leaves in one write with its headers.
          const chunks: Buffer[] = [];
          response.stream.on('data', (chunk: Buffer) => chunks.push(chunk));
          response.stream.once('end', () => {
            const body = Buffer.concat(chunks);
            metrics.bytesOut.inc({ route: privacy.route }, body.length);
            void reply.send(body);
          });
          response.stream.once('error', (error: Error) => {
            void sendError(request as FastifyRequest, reply as FastifyReply, mapUpstreamFailure(error, privacy.route).error);
          });
        },
        onError: (reply, { error }) => {
          const request = reply.request as FastifyRequest;
          const privacy = request.privacy!;
          const failure = mapUpstreamFailure(error, privacy.route);
          if (failure.eject && privacy.member) {
            metrics.upstreamEjections.inc({ route: privacy.route, member: privacy.member.url });
            groups[privacy.route].eject(privacy.member, failure.error.message);
          }
          void sendError(request, reply as unknown as FastifyReply, failure.error);
        },
      },
    });
  }

  app.get('/healthz', (_request, reply) => reply.send({ status: 'ok' }));
  app.get('/readyz', (_request, reply) => {
    const routes = Object.fromEntries(
      Object.values(groups).map((group) => [group.route, { members: group.members.length, healthy: group.healthyCount }]),
    );
    const missing = Object.values(groups).filter((group) => group.members.length > 0 && group.healthyCount === 0);
    if (state.closing) return reply.code(503).send({ ...gatewayErrors.GW_SHUTTING_DOWN().toJSON(), routes });
    if (missing.length > 0) {
      const names = missing.map((group) => group.route).join(' and ');
      return reply.code(503).send({ ...gatewayErrors.GW_NOT_READY(`No healthy member on the ${names} route`).toJSON(), routes });
    }
    return reply.send({ status: 'ready', routes });
  });
  app.get('/metrics', async (_request, reply) => reply.type(metrics.registry.contentType).send(await metrics.registry.metrics()));

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
