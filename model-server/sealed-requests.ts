// The enclave's door for end-to-end encrypted requests (Oblivious HTTP, RFC 9458): POST /predict
// with a message/ohttp-req body is opened with the boot key; the Binary HTTP request inside must be
// POST /predict and is served by this same app (app.inject), so its body parsing, limits and coded
// errors are exactly those of a plaintext request; the answer, whatever its status, is sealed
// into a 200 message/ohttp-res. Refusals before the request is opened are plain JSON (the client
// could not open a sealed one); after, they are sealed too, so the parent learns nothing of them.
// The inner request runs with a silent logger and counts in no per-request metric.
import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { CodedError } from '../common/index.js';
import type { BinaryRequest, OhttpErrorReason, OhttpKeyPair } from '../ohttp/index.js';
import {
  MEDIA_TYPE_OHTTP_KEYS,
  MEDIA_TYPE_OHTTP_REQUEST,
  MEDIA_TYPE_OHTTP_RESPONSE,
  OhttpError,
  decodeBinaryRequest,
  encodeBinaryResponse,
  encodeKeyConfigList,
} from '../ohttp/index.js';
import { modelServerErrors } from './errors.js';

const OUTER_ERRORS: Readonly<Record<OhttpErrorReason, () => CodedError>> = {
  malformed: () => modelServerErrors.MS_OHTTP_MALFORMED(),
  'decrypt-failed': () => modelServerErrors.MS_OHTTP_DECRYPT_FAILED(),
  'unsupported-suite': () => modelServerErrors.MS_OHTTP_UNSUPPORTED_SUITE(),
  'unknown-key': () => modelServerErrors.MS_OHTTP_UNKNOWN_KEY(),
};

// Hop-by-hop and framing fields (RFC 9110 §7.6.1): the Binary HTTP message frames the body
// itself, and inject computes content-length from it.
const DROPPED_FIELDS = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'te',
  'trailer',
  'upgrade',
  'expect',
  'content-length',
  'host',
]);
/** Marks a request as the inner half of a sealed one; its value is a secret of this process. */
const INNER_MARK = 'x-mpg-sealed-inner';

export interface SealedRequestDoor {
  readonly keyPair: OhttpKeyPair;
  /** Whether these are the headers of an inner (decrypted) request: log nothing, count nothing. */
  isInner(headers: IncomingHttpHeaders): boolean;
  /** Whether this /predict request is sealed (its body is a message/ohttp-req). */
  carries(request: FastifyRequest): boolean;
  serve(request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply>;
}

function mediaType(headers: IncomingHttpHeaders): string {
  return (headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
}

/** The inner request's fields as inject takes them: repeated names joined (RFC 9110 §5.3). */
function innerHeaders(inner: BinaryRequest, mark: string): OutgoingHttpHeaders {
  const headers: Record<string, string> = {};
  for (const [name, value] of inner.headers) {
    if (DROPPED_FIELDS.has(name) || name === INNER_MARK) continue;
    headers[name] = name in headers ? `${headers[name]}, ${value}` : value;
  }
  headers[INNER_MARK] = mark;
  return headers;
}

function responseFields(headers: OutgoingHttpHeaders): [string, string][] {
  const fields: [string, string][] = [];
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || DROPPED_FIELDS.has(name)) continue;
    for (const one of Array.isArray(value) ? value : [value]) fields.push([name, String(one)]);
  }
  return fields;
}

function codedAnswer(error: CodedError): Uint8Array {
  return encodeBinaryResponse({
    status: error.statusCode,
    headers: [
      ['content-type', 'application/json; charset=utf-8'],
      ...Object.entries(error.headers).map(([name, value]): [string, string] => [name.toLowerCase(), value]),
    ],
    body: Buffer.from(JSON.stringify(error.toJSON())),
  });
}

export function registerSealedRequests(app: FastifyInstance, keyPair: OhttpKeyPair): SealedRequestDoor {
  const mark = randomBytes(32).toString('hex');
  const markBytes = Buffer.from(mark);
  const keyList = Buffer.from(encodeKeyConfigList([keyPair.config]));

  app.addContentTypeParser(MEDIA_TYPE_OHTTP_REQUEST, { parseAs: 'buffer' }, (_request, body, done) => done(null, body));
  app.get('/ohttp-keys', (_request, reply) =>
    reply.type(MEDIA_TYPE_OHTTP_KEYS).header('cache-control', 'no-store').send(keyList),
  );

  const door: SealedRequestDoor = {
    keyPair,
    isInner(headers) {
      const value = headers[INNER_MARK];
      return (
        typeof value === 'string' && value.length === mark.length && timingSafeEqual(Buffer.from(value), markBytes)
      );
    },
    carries(request) {
      return (
        Buffer.isBuffer(request.body) &&
        mediaType(request.headers) === MEDIA_TYPE_OHTTP_REQUEST &&
        !door.isInner(request.headers)
      );
    },
    async serve(request, reply) {
      let opened;
      try {
        opened = await keyPair.decapsulateRequest(request.body as Buffer);
      } catch (error) {
        if (error instanceof OhttpError) throw OUTER_ERRORS[error.reason]();
        throw error;
      }
      const answer = await answerInner(opened.bhttpRequest);
      const sealed = await opened.sealResponse(answer);
      return reply
        .type(MEDIA_TYPE_OHTTP_RESPONSE)
        .header('cache-control', 'no-store')
        .send(Buffer.from(sealed.buffer, sealed.byteOffset, sealed.byteLength));
    },
  };

  async function answerInner(bhttpRequest: Uint8Array): Promise<Uint8Array> {
    let inner: BinaryRequest;
    try {
      inner = decodeBinaryRequest(bhttpRequest);
    } catch (error) {
      if (error instanceof OhttpError)
        return codedAnswer(
          modelServerErrors.MS_OHTTP_MALFORMED(`The sealed Binary HTTP request is malformed: ${error.message}`),
        );
      throw error;
    }
    if (inner.method !== 'POST' || inner.path.split('?')[0] !== '/predict')
      return codedAnswer(modelServerErrors.MS_OHTTP_INNER_ROUTE());
    const headers = innerHeaders(inner, mark);
    // One layer only: a sealed request inside a sealed request would only cost the enclave work.
    if (mediaType(headers as IncomingHttpHeaders) === MEDIA_TYPE_OHTTP_REQUEST)
      return codedAnswer(
        modelServerErrors.MS_UNSUPPORTED_MEDIA_TYPE('A sealed request cannot carry another sealed request'),
      );
    const response = await app.inject({
      method: 'POST',
      url: inner.path,
      headers,
      payload: Buffer.from(inner.body.buffer, inner.body.byteOffset, inner.body.byteLength),
    });
    return encodeBinaryResponse({
      status: response.statusCode,
      headers: responseFields(response.headers),
      body: response.rawPayload,
    });
  }

  return door;
}
