// GET /healthz (alive) on every listener; GET /readyz (every configured route has a healthy member,
// and what each secure member is trusted on) and /metrics only where `adminRoutes` says: the admin
// listener when --admin-port gives them one (they name upstream addresses, socket paths and
// counters that are not every client's business), else the traffic listener.
import Fastify from 'fastify';
import type { FastifyBaseLogger, FastifyInstance, FastifyPluginCallback } from 'fastify';
import type { GatewayContext } from './context.js';
import errorReplies from './error-replies.js';
import { gatewayErrors } from './errors.js';
import type { GatewayMetrics } from './metrics.js';
import { TRUST_WARNINGS } from './attestation-trust.js';

export type StatusRoutesOptions = GatewayContext & {
  /** Whether /readyz and /metrics are served here. */
  adminRoutes: boolean;
};

/** The admin listener's app: coded error replies as on the traffic listener; the caller registers statusRoutes. */
export function createAdminApp(log: FastifyBaseLogger, metrics: GatewayMetrics): FastifyInstance {
  const admin = Fastify({
    loggerInstance: log.child({ listener: 'admin' }),
    disableRequestLogging: true,
    return503OnClosing: false,
  });
  void admin.register(errorReplies, { metrics });
  return admin;
}

export const statusRoutes: FastifyPluginCallback<StatusRoutesOptions> = (
  app,
  { metrics, groups, state, trust, gate, beforeScrape, adminRoutes },
  done,
) => {
  app.get('/healthz', (_request, reply) => reply.send({ status: 'ok' }));
  if (!adminRoutes) return done();
  app.get('/readyz', (_request, reply) => {
    const routes = Object.fromEntries(
      Object.values(groups).map((group) => [
        group.route,
        { members: group.members.length, healthy: group.healthyCount },
      ]),
    );
    // What secure members are trusted on, and whether each holds a verified attestation.
    const attestation = trust && {
      trust: trust.mode,
      ...(trust.mode === 'aws-root' ? {} : { warning: TRUST_WARNINGS[trust.mode] }),
      members: groups.secure.members.map((member) => ({
        member: member.url,
        ...(gate ? gate.status(member) : { attested: false, problem: 'attestation skipped (insecure)' }),
        ...(member.ohttpKeyConfig ? { ohttpKeyId: member.ohttpKeyConfig.keyId } : {}),
      })),
    };
    const extra = attestation ? { attestation } : {};
    const missing = Object.values(groups).filter((group) => group.members.length > 0 && group.healthyCount === 0);
    if (state.closing) return reply.code(503).send({ ...gatewayErrors.GW_SHUTTING_DOWN().toJSON(), routes, ...extra });
    if (missing.length > 0) {
      const names = missing.map((group) => group.route).join(' and ');
      return reply
        .code(503)
        .send({ ...gatewayErrors.GW_NOT_READY(`No healthy member on the ${names} route`).toJSON(), routes, ...extra });
    }
    return reply.send({ status: 'ready', routes, ...extra });
  });
  app.get('/metrics', async (_request, reply) => {
    beforeScrape();
    return reply.type(metrics.registry.contentType).send(await metrics.registry.metrics());
  });
  done();
};
