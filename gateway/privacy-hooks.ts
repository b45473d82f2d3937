// The privacy decision for every proxied request, and what is said about it afterwards:
// classification by path, header and tenant (the most private signal wins), rate limits, the
// per-request log line and the request metrics. Registered inside each predict route's plugin
// (fastify-plugin, so its hooks apply to the route beside it and nowhere else).
import type { FastifyPluginCallback } from 'fastify';
import fastifyPlugin from 'fastify-plugin';
import type { GatewayConfig } from './config.js';
import { statusClass } from '../common/index.js';
import { gatewayErrors } from './errors.js';
import { headerValue } from './headers.js';
import type { GatewayMetrics } from './metrics.js';
import type { PrivacyPolicy, PrivacyRoute } from './policy.js';
import { classifyRequest } from './policy.js';
import type { TenantRateLimiter } from './rate-limit.js';

export type PrivacyHooksOptions = {
  /** The route the request's path asks for. */
  pathRoute: PrivacyRoute;
  config: GatewayConfig;
  policy: PrivacyPolicy;
  metrics: GatewayMetrics;
  /** Shared by both paths: a tenant's budget does not double by using both. */
  limiter: TenantRateLimiter;
};

const privacyHooks: FastifyPluginCallback<PrivacyHooksOptions> = (
  instance,
  { pathRoute, config, policy, metrics, limiter },
  done,
) => {
  instance.addHook('onRequest', async (request, reply) => {
    const decision = classifyRequest(policy, {
      pathRoute,
      privacyHeader: headerValue(request.headers, config.privacyHeader),
      apiKey: headerValue(request.headers, config.apiKeyHeader),
    });
    if (decision.kind === 'reject') {
      // A rejected request is answered as if on the more private route, and counted there.
      request.privacy = {
        route: pathRoute === 'secure' || decision.code === 'GW_SECURE_ONLY_TENANT' ? 'secure' : pathRoute,
        tenant: decision.tenant,
        upgraded: false,
      };
      metrics.policyDecisions.inc({ decision: decision.code });
      throw gatewayErrors[decision.code](decision.message);
    }
    request.privacy = { route: decision.route, tenant: decision.tenant, upgraded: decision.upgraded };
    if (decision.upgraded) metrics.policyDecisions.inc({ decision: 'upgraded' });
    if (decision.tenant) {
      const allowed = limiter.take(decision.tenant, Date.now());
      if (!allowed.allowed) {
        throw gatewayErrors.GW_RATE_LIMITED(undefined, {
          headers: { 'retry-after': String(allowed.retryAfterSeconds) },
        });
      }
    }
    const route = decision.route;
    metrics.inFlight.inc({ route });
    reply.raw.once('close', () => metrics.inFlight.dec({ route }));
  });

  instance.addHook('onResponse', async (request, reply) => {
    const privacy = request.privacy;
    if (!privacy) return;
    const labels = { route: privacy.route, status: String(reply.statusCode) };
    metrics.requests.inc(labels);
    metrics.requestDuration.observe(
      { route: privacy.route, status_class: statusClass(reply.statusCode) },
      reply.elapsedTime / 1000,
    );
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
  done();
};

export default fastifyPlugin(privacyHooks, { name: 'mpg-privacy-hooks', fastify: '5.x' });
