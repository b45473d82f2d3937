// What every answer of the gateway carries, whatever the route: x-request-id, x-privacy-route
// once a request is classified, and Connection: close when the connection must not be reused
// (the gateway is closing, or a refused body was left unread). Shared with every route
// (fastify-plugin).
import type { FastifyPluginCallback } from 'fastify';
import fastifyPlugin from 'fastify-plugin';
import { drainThenKeep, isLingering } from './client-errors.js';
import type { GatewayState } from './context.js';
import { gatewayErrors } from './errors.js';

const connectionHooks: FastifyPluginCallback<{ state: GatewayState; lingerMs: number }> = (
  instance,
  { state, lingerMs },
  done,
) => {
  instance.addHook('onRequest', async (request, reply) => {
    // Pipelined behind a refused request on a connection that is closing: its answer could never
    // be written, so nothing of it is done.
    if (isLingering(request.raw.socket)) {
      reply.hijack();
      return;
    }
    if (state.closing) {
      reply.header('connection', 'close');
      throw gatewayErrors.GW_SHUTTING_DOWN(undefined, { headers: { 'retry-after': '1' } });
    }
  });

  instance.addHook('onSend', async (request, reply) => {
    reply.header('x-request-id', request.id);
    if (request.privacy) reply.header('x-privacy-route', request.privacy.route);
    if (state.closing) {
      reply.header('connection', 'close');
      return;
    }
    // A request refused before its body was read whole: the rest of the body is read and
    // dropped while the answer is sent, so a client still sending it reads the answer instead of
    // a reset connection, and node:http's parser keeps the framing, so no byte of it can be taken
    // for a next request. A body that does not end within --linger-ms closes the connection.
    if (reply.statusCode >= 400 && !request.raw.complete) {
      // A body that stalled (408) will not be finished: nothing to wait for.
      if (reply.statusCode === 408) reply.header('connection', 'close');
      else {
        // (Fastify marks a body-parser error `connection: close`: draining makes that unneeded.)
        reply.removeHeader('connection');
        drainThenKeep(request.raw, lingerMs);
      }
    }
  });
  done();
};

export default fastifyPlugin(connectionHooks, { name: 'mpg-connection-hooks', fastify: '5.x' });
