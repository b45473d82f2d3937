// Binary HTTP (RFC 9292), known-length form: the message OHTTP seals. The encoder writes every
// section (empty ones as a zero length, as RFC 9292's Figure 8 does); the decoder also accepts what
// RFC 9292 lets an encoder vary: longer integer encodings, trailing empty sections left out
// (RFC 9458's Appendix A does), zero padding. It refuses everything else with
// OhttpError('malformed'): other framings, bad tokens, CR/LF/NUL in values, non-zero padding.
// Trailer sections are read and dropped: nothing on either side of this project sends them.
// A decoded body is a view into the bytes given to the decoder, not a copy.
import { ByteReader, ByteWriter } from './bytes.js';
import { OhttpError } from './errors.js';

export interface BinaryRequest {
  method: string;
  scheme: string;
  authority: string;
  path: string;
  headers: [string, string][];
  body: Uint8Array;
}

export interface BinaryResponse {
  status: number;
  headers: [string, string][];
  body: Uint8Array;
}

const KNOWN_LENGTH_REQUEST = 0;
const KNOWN_LENGTH_RESPONSE = 1;
const EMPTY = new Uint8Array(0);

// tchar (RFC 9110 §5.6.2); field names are lowercase on the wire (as in HTTP/2 and HTTP/3).
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const FIELD_NAME = /^[!#$%&'*+\-.^_`|~0-9a-z]+$/;
// VCHAR, obs-text, SP and HTAB, no whitespace at either end (RFC 9110 §5.5).
const FIELD_VALUE = /^(?:[\x21-\x7e\x80-\xff](?:[ \t\x21-\x7e\x80-\xff]*[\x21-\x7e\x80-\xff])?)?$/;
// Scheme, authority and path: visible ASCII only, so nothing can split the request when replayed.
const VISIBLE_ASCII = /^[\x21-\x7e]*$/;

function malformed(message: string): OhttpError {
  return new OhttpError('malformed', message);
}

/** Bytes as a string of the same octets (HTTP field values are octets, not UTF-8 text). */
function latin1(bytes: Uint8Array): string {
  let text = '';
  for (let i = 0; i < bytes.length; i += 0x2000) text += String.fromCharCode(...bytes.subarray(i, i + 0x2000));
  return text;
}

function octets(text: string, what: string): Uint8Array {
  const bytes = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code > 0xff) throw malformed(`binary HTTP: ${what} holds a character outside one octet`);
    bytes[i] = code;
  }
  return bytes;
}

function checkControlData(method: string, scheme: string, authority: string, path: string): void {
  if (!TOKEN.test(method)) throw malformed('binary HTTP: invalid method');
  if (!VISIBLE_ASCII.test(scheme)) throw malformed('binary HTTP: invalid scheme');
  if (!VISIBLE_ASCII.test(authority)) throw malformed('binary HTTP: invalid authority');
  if (path === '' || !VISIBLE_ASCII.test(path)) throw malformed('binary HTTP: invalid path');
}

function checkField(name: string, value: string): void {
  if (!FIELD_NAME.test(name)) throw malformed('binary HTTP: invalid field name');
  if (!FIELD_VALUE.test(value)) throw malformed('binary HTTP: invalid field value');
}

function writeFieldSection(writer: ByteWriter, fields: readonly [string, string][]): void {
  const section = new ByteWriter();
  for (const [rawName, value] of fields) {
    const name = rawName.toLowerCase();
    checkField(name, value);
    section.lengthPrefixed(octets(name, 'a field name')).lengthPrefixed(octets(value, 'a field value'));
  }
  writer.lengthPrefixed(section.finish());
}

/**
 * A known-length field section, or an empty one when the message ends where it would start
 * (truncation, RFC 9292 §3.8).
 */
function readFieldSection(reader: ByteReader, what: string): [string, string][] {
  if (reader.remaining === 0) return [];
  const section = new ByteReader(reader.lengthPrefixed(what), `binary HTTP ${what}`);
  const fields: [string, string][] = [];
  while (section.remaining > 0) {
    const name = latin1(section.lengthPrefixed('field name'));
    const value = latin1(section.lengthPrefixed('field value'));
    checkField(name, value);
    fields.push([name, value]);
  }
  return fields;
}

/** The content, as a view into the message (not a copy: a body can be megabytes). */
function readContent(reader: ByteReader): Uint8Array {
  return reader.remaining === 0 ? EMPTY : reader.lengthPrefixed('content');
}

/** Trailers (read and dropped), then padding: zero bytes only. */
function readEnd(reader: ByteReader): void {
  readFieldSection(reader, 'trailer section');
  const padding = reader.rest();
  if (padding.some((byte) => byte !== 0))
    throw malformed('binary HTTP: bytes after the message that are not zero padding');
}

function readFraming(reader: ByteReader, expected: number, kind: string): void {
  const framing = reader.varint('framing indicator');
  if (framing === expected) return;
  if (framing === expected + 2)
    throw malformed(`binary HTTP: an indeterminate-length ${kind}; only the known-length form is supported`);
  throw malformed(`binary HTTP: not a known-length ${kind} (framing indicator ${framing})`);
}

export function encodeBinaryRequest(request: BinaryRequest): Uint8Array {
  checkControlData(request.method, request.scheme, request.authority, request.path);
  const writer = new ByteWriter().varint(KNOWN_LENGTH_REQUEST);
  for (const [part, what] of [
    [request.method, 'the method'],
    [request.scheme, 'the scheme'],
    [request.authority, 'the authority'],
    [request.path, 'the path'],
  ] as const) {
    writer.lengthPrefixed(octets(part, what));
  }
  writeFieldSection(writer, request.headers);
  writer.lengthPrefixed(request.body);
  writeFieldSection(writer, []);
  return writer.finish();
}

export function decodeBinaryRequest(bytes: Uint8Array): BinaryRequest {
  const reader = new ByteReader(bytes, 'binary HTTP request');
  readFraming(reader, KNOWN_LENGTH_REQUEST, 'request');
  const method = latin1(reader.lengthPrefixed('method'));
  const scheme = latin1(reader.lengthPrefixed('scheme'));
  const authority = latin1(reader.lengthPrefixed('authority'));
  const path = latin1(reader.lengthPrefixed('path'));
  checkControlData(method, scheme, authority, path);
  const headers = readFieldSection(reader, 'header section');
  const body = readContent(reader);
  readEnd(reader);
  return { method, scheme, authority, path, headers, body };
}

export function encodeBinaryResponse(response: BinaryResponse): Uint8Array {
  if (!Number.isInteger(response.status) || response.status < 200 || response.status > 599)
    throw malformed(`binary HTTP: a final status is 200-599, got ${response.status}`);
  const writer = new ByteWriter().varint(KNOWN_LENGTH_RESPONSE).varint(response.status);
  writeFieldSection(writer, response.headers);
  writer.lengthPrefixed(response.body);
  writeFieldSection(writer, []);
  return writer.finish();
}

/** The final response; informational (1xx) responses before it are read and dropped. */
export function decodeBinaryResponse(bytes: Uint8Array): BinaryResponse {
  const reader = new ByteReader(bytes, 'binary HTTP response');
  readFraming(reader, KNOWN_LENGTH_RESPONSE, 'response');
  for (;;) {
    const status = reader.varint('status');
    if (status >= 100 && status <= 199) {
      // An informational response carries its own field section, which must be present.
      if (reader.remaining === 0) throw malformed('binary HTTP: an informational response without its field section');
      readFieldSection(reader, 'informational field section');
      continue;
    }
    if (status < 200 || status > 599) throw malformed(`binary HTTP: status ${status} is not 100-599`);
    const headers = readFieldSection(reader, 'header section');
    const body = readContent(reader);
    readEnd(reader);
    return { status, headers, body };
  }
}
