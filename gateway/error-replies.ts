// The one way the gateway says no: every error, thrown by a hook or a route or handed to
// reply.send(), leaves as the coded JSON body of errors.ts, counted by code and route; 5xx are logged
// with their cause. Shared with every plugin (fastify-plugin), since Fastify's error handler is
// inherited by the routes registered after it.
import type { FastifyError, FastifyPluginCallback } from 'fastify';
import fastifyPlugin from 'fastify-plugin';
import { CodedError } from '../common/index.js';
import { gatewayErrors } from './errors.js';
import type { GatewayMetrics } from './metrics.js';

/** A Fastify or plugin error as the gateway's coded error; anything unknown is a 500. */
function codedErrorFor(error: FastifyError | CodedError): CodedError {
  if (error instanceof CodedError) return error;
  if (error.code === 'FST_ERR_CTP_BODY_TOO_LARGE') return gatewayErrors.GW_BODY_TOO_LARGE();
  if (error.code === 'FST_UNDER_PRESSURE')
    return gatewayErrors.GW_OVERLOADED(undefined, { headers: { 'retry-after': '1' } });
  // Fastify's own refusals of what the client sent (an unparsable content type, say).
  if (error.statusCode !== undefined && error.statusCode >= 400 && error.statusCode < 500) {
    return gatewayErrors.GW_BAD_REQUEST(`The request could not be parsed (${error.code}): ${error.message}`);
  }
  return gatewayErrors.GW_INTERNAL(undefined, { cause: error });
}

const errorReplies: FastifyPluginCallback<{ metrics: GatewayMetrics }> = (instance, { metrics }, done) => {
  instance.setErrorHandler((error: FastifyError | CodedError, request, reply) => {
    const coded = codedErrorFor(error);
    metrics.errors.inc({ route: request.privacy?.route ?? 'none', code: coded.code });
    if (coded.code === 'GW_INTERNAL') request.log.error({ err: error }, 'request failed');
    else if (coded.statusCode >= 500) request.log.warn({ code: coded.code, err: coded.cause ?? coded }, coded.message);
    return reply.code(coded.statusCode).headers(coded.headers).send(coded.toJSON());
  });
  instance.setNotFoundHandler(() => {
    throw gatewayErrors.GW_NOT_FOUND();
  });
  done();
};

export default fastifyPlugin(errorReplies, { name: 'mpg-error-replies', fastify: '5.x' });
