// Header handling shared by the gateway's hooks and proxy: hop-by-hop fields, request ids.
import type { IncomingHttpHeaders } from 'node:http';
import { randomUUID } from 'node:crypto';

// RFC 9110 section 7.6.1: connection-specific fields are not forwarded, nor those Connection names.
const HOP_BY_HOP = [
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
];
const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** A copy of the headers without the connection-specific ones, including those Connection names. */
export function withoutHopByHop<Headers extends Record<string, unknown>>(headers: Headers): Headers {
  const copy: Record<string, unknown> = { ...headers };
  const named =
    typeof headers.connection === 'string'
      ? headers.connection.split(',').map((name) => name.trim().toLowerCase())
      : [];
  for (const name of [...HOP_BY_HOP, 'connection', ...named]) delete copy[name];
  return copy as Headers;
}

export function headerValue(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value.join(',') : value;
}

/** The client's x-request-id when it is well-formed, a new UUID otherwise. */
export function requestIdFor(headers: IncomingHttpHeaders): string {
  const given = headerValue(headers, 'x-request-id');
  return given && REQUEST_ID.test(given) ? given : randomUUID();
}
