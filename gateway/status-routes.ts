// GET /healthz (alive), /readyz (every configured route has a healthy member) and /metrics.
import type { GatewayContext } from './context.js';
import { gatewayErrors } from './errors.js';

export function registerStatusRoutes({ app, metrics, groups, state }: GatewayContext): void {
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
}
