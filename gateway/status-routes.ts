// GET /healthz (alive) on the traffic listener; GET /readyz (every configured route has a healthy
// member, and what each secure member is trusted on) and /metrics on the admin listener, which is
// the traffic listener itself unless --admin-port gives them one of their own: they name upstream
// addresses, socket paths and counters that are not every client's business.
import Fastify from 'fastify';
import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import { CodedError } from '../common/index.js';
import type { GatewayContext } from './context.js';
import { gatewayErrors } from './errors.js';
import { TRUST_WARNINGS } from './attestation-trust.js';

/** The admin listener's app: the status routes only, answering coded errors like the traffic app. */
export function createAdminApp(log: FastifyBaseLogger): FastifyInstance {
  const admin = Fastify({ loggerInstance: log.child({ listener: 'admin' }), disableRequestLogging: true, return503OnClosing: false });
  admin.setNotFoundHandler((_request, reply) => reply.code(404).send(gatewayErrors.GW_NOT_FOUND('No such route on the admin listener; use GET /readyz or /metrics').toJSON()));
  admin.setErrorHandler((error, request, reply) => {
    const coded = error instanceof CodedError ? error : gatewayErrors.GW_INTERNAL(undefined, { cause: error });
    if (coded.statusCode >= 500) request.log.error({ err: error }, 'admin request failed');
    return reply.code(coded.statusCode).send(coded.toJSON());
  });
  return admin;
}

export function registerStatusRoutes({ app, metrics, groups, state, trust, gate, beforeScrape }: GatewayContext, admin: FastifyInstance = app): void {
  const healthz = () => ({ status: 'ok' });
  app.get('/healthz', healthz);
  if (admin !== app) admin.get('/healthz', healthz);
  admin.get('/readyz', (_request, reply) => {
    const routes = Object.fromEntries(
      Object.values(groups).map((group) => [group.route, { members: group.members.length, healthy: group.healthyCount }]),
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
      return reply.code(503).send({ ...gatewayErrors.GW_NOT_READY(`No healthy member on the ${names} route`).toJSON(), routes, ...extra });
    }
    return reply.send({ status: 'ready', routes, ...extra });
  });
  admin.get('/metrics', async (_request, reply) => {
    beforeScrape();
    return reply.type(metrics.registry.contentType).send(await metrics.registry.metrics());
  });
}
