// The two proxied routes: pick a healthy member of the request's route (or refuse at once), then
// stream the request to its /predict with @fastify/http-proxy over the member's undici pool.
import type { IncomingHttpHeaders } from 'node:http';
import type { FastifyReply, FastifyRequest } from 'fastify';
import httpProxy from '@fastify/http-proxy';
import { countBytes, limitBody } from './body-limit.js';
import type { GatewayContext } from './context.js';
import { ROUTE_PATHS } from './context.js';
import { gatewayErrors } from './errors.js';
import { withoutHopByHop } from './headers.js';
import { statusClass } from '../common/index.js';
import { MemberDispatcher } from './member-dispatcher.js';
import { mapUpstreamFailure } from './upstream-errors.js';

const SMALL_RESPONSE_BYTES = 64 * 1024;

export function registerProxyRoutes({ app, config, metrics, groups, sendError }: GatewayContext): void {
  const dispatcher = new MemberDispatcher([...groups.public.members, ...groups.secure.members]);

  // The proxied body is streamed, so Fastify's bodyLimit does not apply: count it on the way through.
  app.removeAllContentTypeParsers();
  // A declared Content-Length is checked before the body is forwarded (see pickMember) and Node's
  // parser delivers exactly that many bytes; only a chunked body needs counting on the way.
  app.addContentTypeParser('*', (request, payload, done) => {
    const route = request.privacy?.route ?? 'none';
    const declared = request.headers['content-length'];
    if (declared !== undefined) {
      metrics.bytesIn.inc({ route }, Number(declared));
      done(null, payload);
      return;
    }
    done(null, limitBody(payload, config.bodyLimit, (bytes) => metrics.bytesIn.inc({ route }, bytes)));
  });

  // Picks the member, or answers 503 at once: a secure request with no healthy secure member is
  // refused here, before any byte of it is sent anywhere.
  const chooseMember = (request: FastifyRequest, reply: FastifyReply, done: (error?: Error) => void) => {
    try {
      pickMember(request, reply);
      done();
    } catch (error) {
      done(error as Error);
    }
  };
  const pickMember = (request: FastifyRequest, reply: FastifyReply) => {
    const privacy = request.privacy!;
    if (request.url.split('?')[0] !== ROUTE_PATHS[request.routeOptions.config.privacyRoute!]) {
      throw gatewayErrors.GW_NOT_FOUND();
    }
    const declared = Number(request.headers['content-length'] ?? 0);
    if (declared > config.bodyLimit) {
      throw gatewayErrors.GW_BODY_TOO_LARGE(`The body declares ${declared} bytes; the limit is ${config.bodyLimit} bytes`);
    }
    const group = groups[privacy.route];
    const member = group.pick();
    if (!member) {
      const refused = group.members.filter((candidate) => candidate.refusedByGate);
      if (privacy.route === 'secure' && refused.length > 0) {
        // Members that answer but did not prove what they are: say so, and why.
        const why = refused.map((candidate) => candidate.lastProblem?.replace(/^attestation: /, '')).join('; ');
        throw gatewayErrors.GW_SECURE_NOT_ATTESTED(`No secure upstream holds a verified attestation (${why}); the request was not sent anywhere else`, { headers: { 'retry-after': '1' } });
      }
      const why = group.members.length === 0 ? 'none is configured' : `none of ${group.members.length} is healthy`;
      throw privacy.route === 'secure'
        ? gatewayErrors.GW_NO_SECURE_UPSTREAM(`No secure upstream can take the request (${why}); it was not sent anywhere else`, { headers: { 'retry-after': '1' } })
        : gatewayErrors.GW_NO_HEALTHY_UPSTREAM(`No public upstream can take the request (${why})`, { headers: { 'retry-after': '1' } });
    }
    privacy.member = member;
    member.inFlight++;
    // The response's close, not the request's: a request closes once its body is read.
    reply.raw.once('close', () => member.inFlight--);
  };

  for (const pathRoute of ['public', 'secure'] as const) {
    void app.register(httpProxy, {
      upstream: '',
      prefix: ROUTE_PATHS[pathRoute],
      rewritePrefix: '/predict',
      httpMethods: ['POST'],
      proxyPayloads: false,
      config: { privacyRoute: pathRoute },
      preHandler: chooseMember,
      undici: dispatcher as never,
      // Passed on to @fastify/reply-from: its own request log lines would carry the query string.
      ...{ disableRequestLogging: true },
      replyOptions: {
        getUpstream: (request) => {
          const privacy = (request as FastifyRequest).privacy!;
          privacy.upstreamStartedAt = performance.now();
          return privacy.member!.dispatchOrigin;
        },
        rewriteHeaders: (headers) => withoutHopByHop(headers),
        rewriteRequestHeaders: (request, headers) => {
          const forwarded = withoutHopByHop(headers);
          // The tenant's key proves who called the gateway; it never leaves it.
          delete forwarded[config.apiKeyHeader];
          forwarded['x-request-id'] = request.id;
          forwarded['x-privacy-route'] = (request as FastifyRequest).privacy!.route;
          return forwarded;
        },
        onResponse: (request, reply, response): void => {
          const privacy = (request as FastifyRequest).privacy!;
          metrics.upstreamDuration.observe({ route: privacy.route, status_class: statusClass(reply.statusCode) }, (performance.now() - (privacy.upstreamStartedAt ?? 0)) / 1000);
          // reply-from hands over undici's headers object; its types describe an http.ServerResponse.
          const declared = Number((response as unknown as { headers: IncomingHttpHeaders }).headers['content-length'] ?? Number.NaN);
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
          response.stream.once('error', (error: Error) => {
            void sendError(request as FastifyRequest, reply as FastifyReply, mapUpstreamFailure(error, privacy.route).error);
          });
        },
        onError: (reply, { error }) => {
          const request = reply.request as FastifyRequest;
          const privacy = request.privacy!;
          const failure = mapUpstreamFailure(error, privacy.route);
          if (failure.eject && privacy.member) {
            metrics.upstreamEjections.inc({ route: privacy.route, member: privacy.member.url });
            groups[privacy.route].eject(privacy.member, failure.error.message);
          }
          void sendError(request, reply as unknown as FastifyReply, failure.error);
        },
      },
    });
  }
}
