// GET /healthz (alive), /readyz (every configured route has a healthy member) and /metrics.
import type { FastifyPluginCallback } from 'fastify';
import type { GatewayContext } from './context.js';
import { gatewayErrors } from './errors.js';
import { TRUST_WARNINGS } from './attestation-trust.js';

export const statusRoutes: FastifyPluginCallback<GatewayContext> = (app, { metrics, groups, state, trust, gate, beforeScrape }, done) => {
  app.get('/healthz', (_request, reply) => reply.send({ status: 'ok' }));
  app.get('/readyz', (_request, reply) => {
    const routes = Object.fromEntries(
      Object.values(groups).map((group) => [group.route, { members: group.members.length, healthy: group.healthyCount }]),
    );
    // What secure members are trusted on, and whether each holds a verified attestation.
    const attestation = trust && {
      trust: trust.mode,
      ...(trust.mode === 'aws-root' ? {} : { warning: TRUST_WARNINGS[trust.mode] }),
      members: groups.secure.members.map((member) => ({ member: member.url, ...(gate ? gate.status(member) : { attested: false, problem: 'attestation skipped (insecure)' }) })),
    };
    const extra = attestation ? { attestation } : {};
    const missing = Object.values(groups).filter((group) => group.members.length > 0 && group.healthyCount === 0);
    if (state.closing) return reply.code(503).send({ ...gatewayErrors.GW_SHUTTING_DOWN().toJSON(), routes, ...extra });
    if (missing.length > 0) {
      const names = missing.map((group) => group.route).join(' and ');
      return reply.code(503).send({ ...gatewayErrors.GW_NOT_READY(`No healthy member on the ${names} route`).toJSON(), routes, ...extra });
    }
    return reply.send({ status: 'ready', routes, ...extra });
  });
  app.get('/metrics', async (_request, reply) => {
    beforeScrape();
    return reply.type(metrics.registry.contentType).send(await metrics.registry.metrics());
  });
  done();
};
