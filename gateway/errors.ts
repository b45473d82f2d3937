// Every way a request through the gateway can fail, with a stable code; README.md lists them and
// a test keeps the two in step. Upstream transport failures are mapped in upstream-errors.ts only.
import { defineErrors } from '../common/index.js';

export const gatewayErrors = defineErrors({
  GW_BAD_REQUEST: {
    statusCode: 400,
    message: 'The request could not be parsed as HTTP/1.1 (its framing or syntax is wrong)',
  },
  GW_REQUEST_ABORTED: {
    statusCode: 400,
    message: 'The client closed the connection, or broke its framing, before its body was complete',
  },
  GW_PRIVACY_TRAILER: {
    statusCode: 400,
    message: 'The privacy or API key header was sent as a trailer; send it as a header, before the body',
  },
  GW_OHTTP_MALFORMED: {
    statusCode: 400,
    message: 'The message/ohttp-req body is too short to carry an OHTTP header (RFC 9458 section 4.3)',
  },
  GW_INVALID_PRIVACY_HEADER: { statusCode: 400, message: 'The privacy header must be "secure" or "public"' },
  GW_API_KEY_REQUIRED: { statusCode: 401, message: 'An API key is required; send it in the API key header' },
  GW_UNKNOWN_API_KEY: { statusCode: 401, message: 'The API key belongs to no tenant' },
  GW_SECURE_ONLY_TENANT: { statusCode: 403, message: 'This tenant may only use /predict-secure' },
  GW_INVALID_NONCE: {
    statusCode: 400,
    message: 'GET /attestation needs nonce=HEX: an even number of hex digits, 1 to 512 bytes',
  },
  GW_INVALID_KEY_ID: {
    statusCode: 400,
    message: 'GET /attestation needs key-id=N: a key id from /.well-known/ohttp-gateway, 0 to 255',
  },
  GW_NOT_FOUND: { statusCode: 404, message: 'No such route; use POST /predict-public or POST /predict-secure' },
  GW_BODY_TOO_LARGE: { statusCode: 413, message: 'The request body is larger than the gateway accepts' },
  GW_SECURE_PLAINTEXT_REFUSED: {
    statusCode: 415,
    message:
      'This gateway refuses plaintext on the secure route: encrypt the request to the attested enclave with the client SDK (mixed-privacy-gateway/client, or `mpg client predict`) and send it as message/ohttp-req',
  },
  GW_ATTESTATION_RATE_LIMITED: {
    statusCode: 429,
    message:
      'Too many attestation requests from this address; a verified key stays valid for many requests; retry after Retry-After',
  },
  GW_REQUEST_TIMEOUT: { statusCode: 408, message: 'The request was not received whole in time (--request-timeout-ms)' },
  GW_BODY_TIMEOUT: {
    statusCode: 408,
    message: 'The request body paused for longer than the gateway waits (--body-idle-timeout-ms)',
  },
  GW_OHTTP_UNKNOWN_KEY: {
    statusCode: 422,
    message:
      'No attested secure upstream holds the OHTTP key the request was encrypted to; fetch /.well-known/ohttp-gateway again and retry once',
  },
  GW_RATE_LIMITED: { statusCode: 429, message: "The tenant's request rate is over its limit; retry after Retry-After" },
  GW_HEADERS_TOO_LARGE: {
    statusCode: 431,
    message: 'The request header block is larger than the gateway accepts (--max-header-size)',
  },
  GW_INTERNAL: { statusCode: 500, message: 'Internal Server Error' },
  GW_UPSTREAM_CONNECTION_FAILED: {
    statusCode: 502,
    message: 'The upstream could not be reached or closed the connection',
  },
  GW_UPSTREAM_BAD_RESPONSE: { statusCode: 502, message: 'The upstream sent an invalid response' },
  GW_NO_HEALTHY_UPSTREAM: { statusCode: 503, message: 'No healthy public upstream; retry later' },
  GW_NO_SECURE_UPSTREAM: {
    statusCode: 503,
    message: 'No healthy secure upstream; the request was not sent anywhere else',
  },
  GW_SECURE_NOT_ATTESTED: {
    statusCode: 503,
    message: 'No secure upstream holds a verified attestation; the request was not sent anywhere else',
  },
  GW_NOT_READY: { statusCode: 503, message: 'A route has no healthy member' },
  GW_OVERLOADED: { statusCode: 503, message: 'The gateway is overloaded; retry after Retry-After' },
  GW_SHUTTING_DOWN: { statusCode: 503, message: 'The gateway is shutting down; send the request to another instance' },
  GW_UPSTREAM_BUSY: {
    statusCode: 503,
    message: "Every connection of the route's members is busy and their queues are full; retry after Retry-After",
  },
  GW_UPSTREAM_TIMEOUT: { statusCode: 504, message: 'The upstream did not answer in time' },
});

export type GatewayErrorCode = Exclude<keyof typeof gatewayErrors, 'table'>;
