// Encrypted requests on the secure route (message/ohttp-req, RFC 9458): the gateway reads only the
// key id, the message's first byte, to choose the secure member holding that key; the message is
// forwarded untouched and never decrypted, and the member's message/ohttp-res comes back untouched.
import { MEDIA_TYPE_OHTTP_REQUEST, REQUEST_HEADER_BYTES, requestKeyId } from '../ohttp/index.js';
import { gatewayErrors } from './errors.js';
import type { ReadBody } from './request-body.js';

/** The bytes a streamed body is handed over with at least: an OHTTP request header's. */
export const OHTTP_HEADER_BYTES = REQUEST_HEADER_BYTES;

export function isOhttpRequest(contentType: string | undefined): boolean {
  if (contentType === undefined) return false;
  const semicolon = contentType.indexOf(';');
  return (
    (semicolon === -1 ? contentType : contentType.slice(0, semicolon)).trim().toLowerCase() === MEDIA_TYPE_OHTTP_REQUEST
  );
}

/** The key id of an OHTTP request body; 400 GW_OHTTP_MALFORMED when it is too short to carry a header. */
export function ohttpKeyId(body: ReadBody | undefined): number {
  const head = body === undefined ? undefined : Buffer.isBuffer(body) ? body : body.head;
  const keyId = head === undefined ? undefined : requestKeyId(head);
  if (keyId === undefined) {
    throw gatewayErrors.GW_OHTTP_MALFORMED(
      `A message/ohttp-req body starts with a ${REQUEST_HEADER_BYTES}-byte header (key id, KEM, KDF, AEAD); this one has ${head?.length ?? 0} bytes`,
    );
  }
  return keyId;
}
