// Every way a request to the model server can fail, with a stable code. README.md lists them and
// a test keeps the two in step.
import { defineErrors } from '../common/index.js';

export const modelServerErrors = defineErrors({
  MS_INVALID_JSON: { statusCode: 400, message: 'The body is not valid JSON; send {"images": ["<base64>"], "topk": 5}' },
  MS_INVALID_REQUEST: {
    statusCode: 400,
    message: 'The JSON body must be an object {"images": ["<base64>", ...], "topk": N}',
  },
  MS_NO_IMAGES: { statusCode: 400, message: '"images" must be a non-empty array of base64 strings' },
  MS_TOO_MANY_IMAGES: { statusCode: 400, message: 'Too many images in one request; split the batch' },
  MS_INVALID_BASE64: { statusCode: 400, message: 'An image is not valid base64' },
  MS_INVALID_TOPK: { statusCode: 400, message: '"topk" must be an integer from 1 to the number of classes' },
  MS_NOT_AN_IMAGE: { statusCode: 400, message: 'The bytes are not a JPEG, PNG or WebP image' },
  MS_CORRUPT_IMAGE: { statusCode: 400, message: 'The image is truncated or corrupt and cannot be decoded' },
  MS_UNSUPPORTED_IMAGE_FORMAT: { statusCode: 415, message: 'Only JPEG, PNG and WebP images are accepted' },
  MS_IMAGE_TOO_LARGE: { statusCode: 413, message: 'The image declares more pixels than the server accepts' },
  MS_BODY_TOO_LARGE: { statusCode: 413, message: 'The request body is larger than the server accepts' },
  MS_UNSUPPORTED_MEDIA_TYPE: { statusCode: 415, message: 'Send application/json, image/jpeg, image/png or image/webp' },
  MS_INVALID_CHALLENGE: {
    statusCode: 400,
    message: `"proof" must be a ${96}-hex-digit challenge (an X25519 public key and a nonce)`,
  },
  MS_INVALID_NONCE: { statusCode: 400, message: '"nonce" must be hex digits, at most 512 bytes' },
  MS_OHTTP_MALFORMED: {
    statusCode: 400,
    message:
      'The message/ohttp-req (or the Binary HTTP request sealed in it) is malformed; build it as RFC 9458 and RFC 9292 say',
  },
  MS_OHTTP_DECRYPT_FAILED: {
    statusCode: 400,
    message: "The message/ohttp-req does not open with this enclave's key: it was altered, or sealed to another key",
  },
  MS_OHTTP_UNSUPPORTED_SUITE: {
    statusCode: 400,
    message: 'The message/ohttp-req uses an HPKE suite this key does not offer; use one from GET /ohttp-keys',
  },
  MS_OHTTP_UNKNOWN_KEY: {
    statusCode: 422,
    message:
      'The message/ohttp-req is sealed to a key id this enclave does not hold (it restarted?); fetch the keys, attest again and retry',
  },
  MS_OHTTP_INNER_ROUTE: { statusCode: 404, message: 'A sealed request must be POST /predict' },
  MS_NOT_FOUND: { statusCode: 404, message: 'No such route; see GET /v1/model and POST /predict' },
  MS_ATTESTATION_RATE_LIMITED: {
    statusCode: 429,
    message: 'Too many fresh attestation documents asked for; retry after Retry-After',
  },
  MS_QUEUE_FULL: { statusCode: 503, message: 'The server is at capacity; retry after the time in Retry-After' },
  MS_NOT_READY: { statusCode: 503, message: 'The model is still loading; retry when GET /readyz answers 200' },
  MS_SHUTTING_DOWN: { statusCode: 503, message: 'The server is shutting down; send the request to another instance' },
  MS_ATTESTATION_UNAVAILABLE: {
    statusCode: 503,
    message: 'The Nitro Secure Module gave no attestation document; retry after Retry-After',
  },
  MS_INFERENCE_FAILED: { statusCode: 500, message: 'Internal Server Error' },
});

export type ModelServerErrorCode = Exclude<keyof typeof modelServerErrors, 'table'>;
