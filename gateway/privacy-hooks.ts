// The privacy decision for every request, and what is said about it afterwards: classification by
// path, header and tenant (the most private signal wins), rate limits, the response headers, the
// per-request log line and the request metrics.
import { CodedError, statusClass } from '../common/index.js';
import type { GatewayContext } from './context.js';
import { gatewayErrors } from './errors.js';
import { headerValue } from './headers.js';
import { classifyRequest } from './policy.js';
import { TenantRateLimiter } from './rate-limit.js';

export function registerPrivacyHooks({ app, config, policy, metrics, state }: GatewayContext): void {
  const limiter = new TenantRateLimiter(policy);

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
    metrics.requestDuration.observe({ route: privacy.route, status_class: statusClass(reply.statusCode) }, reply.elapsedTime / 1000);
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
}
