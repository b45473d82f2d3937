// A small DER (X.690) reader and writer: enough to read a certificate's validity and basic
// constraints, which node:crypto's X509Certificate does not expose on Node 20, and to write the
// emulated NSM's certificates. Not a general ASN.1 library. Browser-safe (no Buffer): the client
// SDK reads certificates with it.
import { concatBytes, fromLatin1, latin1 } from './bytes.js';

export interface DerNode {
  tag: number;
  /** The contents, without tag and length. */
  value: Uint8Array;
  /** The whole encoding, tag and length included. */
  raw: Uint8Array;
}

export class DerError extends Error {
  override name = 'DerError';
}

export const DER = {
  BOOLEAN: 0x01,
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  NULL: 0x05,
  OID: 0x06,
  UTF8_STRING: 0x0c,
  PRINTABLE_STRING: 0x13,
  UTC_TIME: 0x17,
  GENERALIZED_TIME: 0x18,
  SEQUENCE: 0x30,
  SET: 0x31,
} as const;

/** Reads the one TLV at `offset`; the caller says whether it must span the rest. */
export function readDer(bytes: Uint8Array, offset = 0): DerNode {
  if (offset + 2 > bytes.length) throw new DerError(`truncated DER at offset ${offset}`);
  const tag = bytes[offset]!;
  if ((tag & 0x1f) === 0x1f) throw new DerError(`multi-byte DER tags are not supported (offset ${offset})`);
  let length = bytes[offset + 1]!;
  let header = 2;
  if (length & 0x80) {
    const count = length & 0x7f;
    if (count === 0 || count > 3) throw new DerError(`unsupported DER length form at offset ${offset}`);
    if (offset + 2 + count > bytes.length) throw new DerError(`truncated DER length at offset ${offset}`);
    length = 0;
    for (let index = 0; index < count; index++) length = length * 256 + bytes[offset + 2 + index]!;
    header += count;
  }
  const end = offset + header + length;
  if (end > bytes.length) throw new DerError(`DER value at offset ${offset} runs past the end`);
  return { tag, value: bytes.subarray(offset + header, end), raw: bytes.subarray(offset, end) };
}

/** The TLVs inside a constructed value, in order. */
export function derChildren(node: DerNode): DerNode[] {
  const children: DerNode[] = [];
  for (let offset = 0; offset < node.value.length;) {
    const child = readDer(node.value, offset);
    children.push(child);
    offset += child.raw.length;
  }
  return children;
}

/** Dotted form of an OBJECT IDENTIFIER's contents. */
export function oidToString(value: Uint8Array): string {
  const parts: number[] = [];
  let current = 0;
  for (const byte of value) {
    current = current * 128 + (byte & 0x7f);
    if (!(byte & 0x80)) {
      parts.push(current);
      current = 0;
    }
  }
  const first = parts.shift() ?? 0;
  const head = first < 80 ? [Math.floor(first / 40), first % 40] : [2, first - 80];
  return [...head, ...parts].join('.');
}

/** A UTCTime or GeneralizedTime in the Z form certificates use (RFC 5280 4.1.2.5). */
export function derTimeToDate(node: DerNode): Date {
  const text = latin1(node.value);
  const match =
    node.tag === DER.UTC_TIME
      ? /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(text)
      : node.tag === DER.GENERALIZED_TIME
        ? /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(text)
        : null;
  if (!match) throw new DerError(`not a UTCTime or GeneralizedTime in Z form: ${JSON.stringify(text)}`);
  let year = Number(match[1]);
  if (node.tag === DER.UTC_TIME) year += year >= 50 ? 1900 : 2000;
  return new Date(
    Date.UTC(year, Number(match[2]) - 1, Number(match[3]), Number(match[4]), Number(match[5]), Number(match[6])),
  );
}

// ---- writing -----------------------------------------------------------------------------------

export function derEncode(tag: number, ...contents: Uint8Array[]): Uint8Array {
  const body = concatBytes(contents);
  const length = body.length;
  let lengthBytes: number[];
  if (length < 0x80) lengthBytes = [length];
  else if (length < 0x100) lengthBytes = [0x81, length];
  else if (length < 0x10000) lengthBytes = [0x82, length >> 8, length & 0xff];
  else lengthBytes = [0x83, length >> 16, (length >> 8) & 0xff, length & 0xff];
  return concatBytes([Uint8Array.of(tag, ...lengthBytes), body]);
}

export const derSequence = (...items: Uint8Array[]) => derEncode(DER.SEQUENCE, ...items);

/** A non-negative INTEGER from big-endian bytes (a leading zero added when the top bit is set). */
export function derUnsignedInteger(bytes: Uint8Array): Uint8Array {
  let start = 0;
  while (start < bytes.length - 1 && bytes[start] === 0) start++;
  const trimmed = bytes.subarray(start);
  return derEncode(DER.INTEGER, trimmed[0]! & 0x80 ? concatBytes([Uint8Array.of(0), trimmed]) : trimmed);
}

export function derSmallInteger(value: number): Uint8Array {
  if (!Number.isInteger(value) || value < 0 || value > 0x7fffffff) throw new RangeError(`unsupported INTEGER ${value}`);
  const bytes: number[] = [];
  let rest = value;
  do {
    bytes.unshift(rest & 0xff);
    rest = Math.floor(rest / 256);
  } while (rest > 0);
  return derUnsignedInteger(Uint8Array.from(bytes));
}

export function derOid(dotted: string): Uint8Array {
  const [first, second, ...rest] = dotted.split('.').map(Number);
  const bytes: number[] = [first! * 40 + second!];
  for (const arc of rest) {
    const chunk: number[] = [arc & 0x7f];
    for (let value = Math.floor(arc / 128); value > 0; value = Math.floor(value / 128))
      chunk.unshift((value & 0x7f) | 0x80);
    bytes.push(...chunk);
  }
  return derEncode(DER.OID, Uint8Array.from(bytes));
}

export const derBoolean = (value: boolean) => derEncode(DER.BOOLEAN, Uint8Array.of(value ? 0xff : 0));
export const derOctetString = (bytes: Uint8Array) => derEncode(DER.OCTET_STRING, bytes);
export const derUtf8 = (text: string) => derEncode(DER.UTF8_STRING, new TextEncoder().encode(text));
/** A BIT STRING with no unused bits. */
export const derBitString = (bytes: Uint8Array) => derEncode(DER.BIT_STRING, Uint8Array.of(0), bytes);
/** A context-specific constructed (explicit) tag [n]. */
export const derExplicit = (n: number, ...contents: Uint8Array[]) => derEncode(0xa0 | n, ...contents);

/** UTCTime through 2049, GeneralizedTime from 2050 (RFC 5280 4.1.2.5), whole seconds. */
export function derTime(date: Date): Uint8Array {
  const iso = date.toISOString();
  const digits = iso.slice(0, 19).replace(/[-T:]/g, '');
  const year = date.getUTCFullYear();
  if (year >= 1950 && year < 2050) return derEncode(DER.UTC_TIME, fromLatin1(digits.slice(2) + 'Z'));
  return derEncode(DER.GENERALIZED_TIME, fromLatin1(digits + 'Z'));
}
