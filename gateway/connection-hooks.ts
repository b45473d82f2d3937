// What every answer of the gateway carries, whatever the route: x-request-id, x-privacy-route
// once a request is classified, and Connection: close when the connection must not be reused
// (the gateway is closing, or a refused body was left unread). Shared with every route
// (fastify-plugin).
import type { FastifyPluginCallback } from 'fastify';
import fastifyPlugin from 'fastify-plugin';
import type { GatewayState } from './context.js';
import { gatewayErrors } from './errors.js';

const connectionHooks: FastifyPluginCallback<{ state: GatewayState }> = (instance, { state }, done) => {
  instance.addHook('onRequest', async (_request, reply) => {
    if (state.closing) {
      reply.header('connection', 'close');
      throw gatewayErrors.GW_SHUTTING_DOWN(undefined, { headers: { 'retry-after': '1' } });
    }
  });

  instance.addHook('onSend', async (request, reply) => {
    reply.header('x-request-id', request.id);
    if (request.privacy) reply.header('x-privacy-route', request.privacy.route);
    // Closing the connection discards a body the gateway refused without reading, rather than
    // leaving its bytes to be parsed as the next request.
    if (state.closing || (reply.statusCode >= 400 && !request.raw.complete)) reply.header('connection', 'close');
  });
  done();
};

export default fastifyPlugin(connectionHooks, { name: 'mpg-connection-hooks', fastify: '5.x' });
