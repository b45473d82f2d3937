// The two proxied routes, POST /predict-public and POST /predict-secure, each in a plugin of its
// own: its body parser (the proxied body is streamed, never parsed, and this parser is the route's
// alone: the rest of the gateway keeps Fastify's), its privacy hooks, and its @fastify/http-proxy
// sending the request to the chosen member's /predict over that member's undici pool.
import type { IncomingHttpHeaders } from 'node:http';
import type { FastifyPluginCallback, FastifyReply, FastifyRequest } from 'fastify';
import httpProxy from '@fastify/http-proxy';
import { countBytes } from './response-bytes.js';
import type { GatewayContext } from './context.js';
import { ROUTE_PATHS } from './context.js';
import { gatewayErrors } from './errors.js';
import { withoutHopByHop } from './headers.js';
import { MemberDispatcher } from './member-dispatcher.js';
import type { PrivacyRoute } from './policy.js';
import privacyHooks from './privacy-hooks.js';
import securePlaintextPolicy from './secure-plaintext.js';
import { TenantRateLimiter } from './rate-limit.js';
import { OHTTP_HEADER_BYTES, isOhttpRequest, ohttpKeyId } from './ohttp-routing.js';
import { StreamedBody, readRequestBody } from './request-body.js';
import type { ReadBody } from './request-body.js';
import { mapUpstreamFailure } from './upstream-errors.js';
import { statusClass } from '../common/index.js';

const SMALL_RESPONSE_BYTES = 64 * 1024;
const UPSTREAM_PATH = '/predict';
// reply-from needs a content type to send a body it is given; a request that had none gets none.
const NO_CONTENT_TYPE = 'application/octet-stream';

type PredictRouteOptions = GatewayContext & {
  pathRoute: PrivacyRoute;
  members: MemberDispatcher;
  limiter: TenantRateLimiter;
};

/** Both predict routes; one member dispatcher and one rate limiter serve them both. */
export const predictRoutes: FastifyPluginCallback<GatewayContext> = (instance, context, done) => {
  const members = new MemberDispatcher(context.groups, context.config);
  const limiter = new TenantRateLimiter(context.policy);
  for (const pathRoute of ['public', 'secure'] as const) {
    void instance.register(predictRoute, { ...context, pathRoute, members, limiter });
  }
  done();
};

const predictRoute: FastifyPluginCallback<PredictRouteOptions> = (instance, options, done) => {
  const { pathRoute, config, policy, metrics, groups, members, limiter } = options;
  void instance.register(privacyHooks, { pathRoute, config, policy, metrics, limiter });
  void instance.register(securePlaintextPolicy, { config, policy });

  // A route with no member that could take the request refuses it before reading its body.
  instance.addHook('preParsing', (request, _reply, payload, next) => {
    try {
      members.ensureRoutable(request.privacy!.route);
      next(null, payload);
    } catch (error) {
      next(error as Error);
    }
  });

  // This route's bodies are proxied, never parsed: read whole when small, streamed when large
  // (request-body.ts). The parser is this plugin's alone; the rest of the gateway keeps Fastify's.
  const bodyOptions = {
    limitBytes: config.bodyLimit,
    bufferBytes: config.bodyBufferBytes,
    idleTimeoutMs: config.bodyIdleTimeoutMs,
    signalHeaders: [config.privacyHeader, config.apiKeyHeader],
    // An encrypted request's member is chosen by its first bytes, streamed or not.
    headBytes: OHTTP_HEADER_BYTES,
  };
  instance.removeAllContentTypeParsers();
  instance.addContentTypeParser('*', (request, payload, parsed) => {
    const route = request.privacy?.route ?? 'none';
    readRequestBody(request.raw, bodyOptions, (bytes) => metrics.bytesIn.inc({ route }, bytes), parsed);
  });

  void instance.register(httpProxy, {
    upstream: '',
    prefix: ROUTE_PATHS[pathRoute],
    // The route itself (and with a trailing slash, as the study's clients sent it); nothing below it.
    routes: ['/'],
    httpMethods: ['POST'],
    proxyPayloads: false,
    undici: members,
    disableRequestLogging: true,
    preHandler: (request, reply, next) => {
      const chooseMember = () => {
        try {
          const privacy = request.privacy!;
          const member =
            privacy.route === 'secure' && isOhttpRequest(request.headers['content-type'])
              ? members.chooseByKeyId(ohttpKeyId(request.body as ReadBody | undefined))
              : members.choose(privacy.route);
          privacy.member = member;
          // The response's close, not the request's: a request closes once its body is read.
          reply.raw.once('close', () => members.release(member));
          next();
        } catch (error) {
          next(error as Error);
        }
      };
      if (reply.raw.socket) chooseMember();
      else untilAnswerHoldsConnection(request, reply).then(chooseMember, next);
    },
    // Always the member's /predict, with the client's query string as it was sent; a body read
    // whole is sent as it is, with its own length.
    handler: (request, reply, _dest, replyOptions) =>
      reply.from(
        UPSTREAM_PATH,
        Buffer.isBuffer(request.body)
          ? { ...replyOptions, body: request.body, contentType: request.headers['content-type'] ?? NO_CONTENT_TYPE }
          : replyOptions,
      ),
    replyOptions: {
      getUpstream: (request) => {
        const privacy = request.privacy!;
        privacy.upstreamStartedAt = performance.now();
        return members.keyOf(privacy.member!);
      },
      rewriteHeaders: (headers) => withoutHopByHop(headers),
      rewriteRequestHeaders: (request, headers) => {
        const privacy = request.privacy!;
        const forwarded = withoutHopByHop(headers);
        forwarded.host = members.hostOf(privacy.member!);
        if (forwarded['content-type'] === NO_CONTENT_TYPE && request.headers['content-type'] === undefined)
          delete forwarded['content-type'];
        // The gateway answered 100 Continue itself (node:http does, before the body); the member
        // gets the whole request and must not wait to be asked for its body.
        delete forwarded.expect;
        // The tenant's key proves who called the gateway; it never leaves it.
        delete forwarded[config.apiKeyHeader];
        forwarded['x-request-id'] = request.id;
        forwarded['x-privacy-route'] = privacy.route;
        return forwarded;
      },
      onResponse: (request, reply, response) => {
        const privacy = request.privacy!;
        metrics.upstreamDuration.observe(
          { route: privacy.route, status_class: statusClass(reply.statusCode) },
          (performance.now() - (privacy.upstreamStartedAt ?? 0)) / 1000,
        );
        const declared = Number(upstreamHeaders(response)['content-length'] ?? Number.NaN);
        if (!(declared <= SMALL_RESPONSE_BYTES)) {
          void reply.send(
            countBytes(response.stream, (bytes) => metrics.bytesOut.inc({ route: privacy.route }, bytes)),
          );
          return;
        }
        // A prediction is a few hundred bytes: gathered, it leaves in one write with its headers.
        const chunks: Buffer[] = [];
        response.stream.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.stream.once('end', () => {
          const body = Buffer.concat(chunks);
          metrics.bytesOut.inc({ route: privacy.route }, body.length);
          void reply.send(body);
        });
        response.stream.once(
          'error',
          (error: Error) => void reply.send(mapUpstreamFailure(error, privacy.route).error),
        );
      },
      onError: (reply, { error }) => {
        const request = reply.request;
        const privacy = request.privacy!;
        // The client's own failure while its body streamed (gone, broken framing, too slow, too
        // large) is the client's: it never counts against the member.
        const clientFailure = request.body instanceof StreamedBody ? request.body.clientFailure : undefined;
        if (clientFailure) {
          void reply.send(clientFailure);
          return;
        }
        const failure = mapUpstreamFailure(error, privacy.route);
        if (failure.eject && privacy.member) {
          metrics.upstreamEjections.inc({ route: privacy.route, member: privacy.member.url });
          groups[privacy.route].eject(privacy.member, failure.error.message);
        }
        void reply.send(failure.error);
      },
    },
  });
  done();
};

/**
 * Waits until this request's answer holds the connection, i.e. every answer before it on the
 * connection has been written. A request pipelined behind one whose answer closes the connection
 * (an HTTP/1.0 request, a refused body) never gets that far, so it is never sent to a member.
 */
function untilAnswerHoldsConnection(request: FastifyRequest, reply: FastifyReply): Promise<void> {
  const response = reply.raw;
  const socket = request.raw.socket;
  return new Promise((resolve, reject) => {
    const onSocket = () => {
      socket.off('close', onClose);
      resolve();
    };
    const onClose = () => {
      response.off('socket', onSocket);
      reject(
        gatewayErrors.GW_REQUEST_ABORTED('The connection closed before the answers before this request were written'),
      );
    };
    response.once('socket', onSocket);
    socket.once('close', onClose);
  });
}

/** reply-from hands over undici's headers object, though its types describe an http.ServerResponse. */
function upstreamHeaders(response: object): IncomingHttpHeaders {
  return 'headers' in response ? (response.headers as IncomingHttpHeaders) : {};
}
