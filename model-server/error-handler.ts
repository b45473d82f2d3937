// The one place where any failure becomes the JSON error a client sees. Coded errors pass
// through; Fastify's own errors get our codes; anything unexpected is a 500 that says only
// "Internal Server Error" while the log keeps the whole error.
import type { FastifyError, FastifyInstance, FastifyRequest } from 'fastify';
import { CodedError } from '../common/index.js';
import { modelServerErrors } from './errors.js';
import type { ModelServerMetrics } from './metrics.js';

const FASTIFY_CODES: Readonly<Record<string, () => CodedError>> = {
  FST_ERR_CTP_BODY_TOO_LARGE: () => modelServerErrors.MS_BODY_TOO_LARGE(),
  FST_ERR_CTP_INVALID_MEDIA_TYPE: () => modelServerErrors.MS_UNSUPPORTED_MEDIA_TYPE(),
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: () =>
    modelServerErrors.MS_INVALID_REQUEST('Content-Length does not match the body'),
  FST_ERR_CTP_EMPTY_JSON_BODY: () =>
    modelServerErrors.MS_INVALID_JSON('The body is empty; send {"images": ["<base64>"]}'),
  FST_ERR_CTP_INVALID_JSON_BODY: () => modelServerErrors.MS_INVALID_JSON(),
  FST_ERR_CTP_EMPTY_TYPE: () => modelServerErrors.MS_UNSUPPORTED_MEDIA_TYPE(),
  FST_ERR_CTP_INVALID_TYPE: () => modelServerErrors.MS_UNSUPPORTED_MEDIA_TYPE(),
};

export function toCodedError(error: FastifyError | Error): CodedError {
  if (error instanceof CodedError) return error;
  const code = (error as FastifyError).code;
  const known = code ? FASTIFY_CODES[code] : undefined;
  if (known) return known();
  if (error instanceof SyntaxError) return modelServerErrors.MS_INVALID_JSON();
  const statusCode = (error as FastifyError).statusCode;
  if (statusCode && statusCode >= 400 && statusCode < 500) return modelServerErrors.MS_INVALID_REQUEST(error.message);
  return modelServerErrors.MS_INFERENCE_FAILED(undefined, { cause: error });
}

/** `isPrivate`: a request whose errors count in no metric (the inner half of a sealed request). */
export function installErrorHandling(
  app: FastifyInstance,
  metrics: ModelServerMetrics,
  isPrivate: (request: FastifyRequest) => boolean = () => false,
): void {
  app.setErrorHandler((error: FastifyError, request, reply) => {
    const coded = toCodedError(error);
    if (!isPrivate(request)) metrics.errors.inc({ code: coded.code });
    if (coded.statusCode >= 500) request.log.error({ err: error, code: coded.code }, 'request failed');
    else request.log.info({ code: coded.code, reason: coded.message }, 'request rejected');
    void reply.code(coded.statusCode).headers(coded.headers).send(coded.toJSON());
  });
  app.setNotFoundHandler((request, reply) => {
    const coded = modelServerErrors.MS_NOT_FOUND(
      `No route ${request.method} ${request.url.split('?')[0]}; see GET /v1/model and POST /predict`,
    );
    if (!isPrivate(request)) metrics.errors.inc({ code: coded.code });
    void reply.code(coded.statusCode).send(coded.toJSON());
  });
}
