// The two proxied routes, POST /predict-public and POST /predict-secure, each in a plugin of its
// own: its body parser (the proxied body is streamed, never parsed, and this parser is the route's
// alone: the rest of the gateway keeps Fastify's), its privacy hooks, and its @fastify/http-proxy
// sending the request to the chosen member's /predict over that member's undici pool.
import type { IncomingHttpHeaders } from 'node:http';
import type { FastifyPluginCallback, FastifyReply, FastifyRequest } from 'fastify';
import httpProxy from '@fastify/http-proxy';
import { countBytes, limitBody } from './body-limit.js';
import type { GatewayContext } from './context.js';
import { ROUTE_PATHS } from './context.js';
import { gatewayErrors } from './errors.js';
import { withoutHopByHop } from './headers.js';
import { MemberDispatcher } from './member-dispatcher.js';
import type { PrivacyRoute } from './policy.js';
import privacyHooks from './privacy-hooks.js';
import securePlaintextPolicy from './secure-plaintext.js';
import { TenantRateLimiter } from './rate-limit.js';
import { mapUpstreamFailure } from './upstream-errors.js';

const SMALL_RESPONSE_BYTES = 64 * 1024;
const UPSTREAM_PATH = '/predict';

type PredictRouteOptions = GatewayContext & {
  pathRoute: PrivacyRoute;
  members: MemberDispatcher;
  limiter: TenantRateLimiter;
};

/** Both predict routes; one member dispatcher and one rate limiter serve them both. */
export const predictRoutes: FastifyPluginCallback<GatewayContext> = (instance, context, done) => {
  const members = new MemberDispatcher(context.groups);
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

  // The proxied body is streamed, so Fastify's bodyLimit does not apply: count it on the way through.
  instance.removeAllContentTypeParsers();
  // A declared Content-Length is checked before the body is forwarded (see chooseMember) and Node's
  // parser delivers exactly that many bytes; only a chunked body needs counting on the way.
  instance.addContentTypeParser('*', (request, payload, parsed) => {
    const route = request.privacy?.route ?? 'none';
    const declared = request.headers['content-length'];
    if (declared !== undefined) {
      metrics.bytesIn.inc({ route }, Number(declared));
      parsed(null, payload);
      return;
    }
    parsed(null, limitBody(payload, config.bodyLimit, (bytes) => metrics.bytesIn.inc({ route }, bytes)));
  });

  // Picks the member, or refuses at once with the coded 503 that says why there is none.
  const chooseMember = (request: FastifyRequest, reply: FastifyReply) => {
    const privacy = request.privacy!;
    const declared = Number(request.headers['content-length'] ?? 0);
    if (declared > config.bodyLimit) {
      throw gatewayErrors.GW_BODY_TOO_LARGE(`The body declares ${declared} bytes; the limit is ${config.bodyLimit} bytes`);
    }
    const member = members.choose(privacy.route);
    privacy.member = member;
    // The response's close, not the request's: a request closes once its body is read.
    reply.raw.once('close', () => members.release(member));
  };

  void instance.register(httpProxy, {
    upstream: '',
    prefix: ROUTE_PATHS[pathRoute],
    // The route itself only: nothing below it is proxied.
    routes: [''],
    httpMethods: ['POST'],
    proxyPayloads: false,
    undici: members,
    disableRequestLogging: true,
    preHandler: (request, reply, next) => {
      try {
        chooseMember(request, reply);
        next();
      } catch (error) {
        next(error as Error);
      }
    },
    // Always the member's /predict, with the client's query string as it was sent.
    handler: (_request, reply, _dest, replyOptions) => reply.from(UPSTREAM_PATH, replyOptions),
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
        // The tenant's key proves who called the gateway; it never leaves it.
        delete forwarded[config.apiKeyHeader];
        forwarded['x-request-id'] = request.id;
        forwarded['x-privacy-route'] = privacy.route;
        return forwarded;
      },
      onResponse: (request, reply, response) => {
        const privacy = request.privacy!;
        metrics.upstreamDuration.observe({ route: privacy.route }, (performance.now() - (privacy.upstreamStartedAt ?? 0)) / 1000);
        const declared = Number(upstreamHeaders(response)['content-length'] ?? Number.NaN);
        if (!(declared <= SMALL_RESPONSE_BYTES)) {
          void reply.send(countBytes(response.stream, (bytes) => metrics.bytesOut.inc({ route: privacy.route }, bytes)));
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
        response.stream.once('error', (error: Error) => void reply.send(mapUpstreamFailure(error, privacy.route).error));
      },
      onError: (reply, { error }) => {
        const privacy = reply.request.privacy!;
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

/** reply-from hands over undici's headers object, though its types describe an http.ServerResponse. */
function upstreamHeaders(response: object): IncomingHttpHeaders {
  return 'headers' in response ? (response.headers as IncomingHttpHeaders) : {};
}
