// Bounded reading and writing of the byte layouts RFC 9458 and RFC 9292 use. Every read checks
// what is left first, so a short or lying input becomes an OhttpError('malformed'), never a
// RangeError or an out-of-bounds undefined.
import { OhttpError } from './errors.js';

/** Reads a byte string front to back; `what` names the structure in error messages. */
export class ByteReader {
  #offset = 0;

  constructor(
    private readonly bytes: Uint8Array,
    private readonly what: string,
  ) {}

  get remaining(): number {
    return this.bytes.length - this.#offset;
  }

  get offset(): number {
    return this.#offset;
  }

  #need(count: number, field: string): void {
    if (count > this.remaining)
      throw new OhttpError('malformed', `${this.what}: ${field} needs ${count} bytes, ${this.remaining} left`);
  }

  uint8(field: string): number {
    this.#need(1, field);
    return this.bytes[this.#offset++]!;
  }

  uint16(field: string): number {
    this.#need(2, field);
    const value = (this.bytes[this.#offset]! << 8) | this.bytes[this.#offset + 1]!;
    this.#offset += 2;
    return value;
  }

  take(count: number, field: string): Uint8Array {
    this.#need(count, field);
    const slice = this.bytes.subarray(this.#offset, this.#offset + count);
    this.#offset += count;
    return slice;
  }

  rest(): Uint8Array {
    return this.take(this.remaining, 'rest');
  }

  /** A QUIC variable-length integer (RFC 9000 §16), as RFC 9292 uses for every length. */
  varint(field: string): number {
    const first = this.uint8(field);
    const length = 1 << (first >> 6);
    let value = first & 0x3f;
    this.#need(length - 1, field);
    for (let i = 1; i < length; i++) value = value * 256 + this.bytes[this.#offset++]!;
    // Only an 8-byte integer can exceed 2^53; no length this large can be honoured anyway.
    if (!Number.isSafeInteger(value)) throw new OhttpError('malformed', `${this.what}: ${field} is too large`);
    return value;
  }

  /** A varint length, then that many bytes. */
  lengthPrefixed(field: string): Uint8Array {
    const length = this.varint(`${field} length`);
    return this.take(length, field);
  }
}

/** Collects byte pieces and joins them once. */
export class ByteWriter {
  readonly #parts: Uint8Array[] = [];
  #length = 0;

  get length(): number {
    return this.#length;
  }

  bytes(part: Uint8Array): this {
    this.#parts.push(part);
    this.#length += part.length;
    return this;
  }

  uint8(value: number): this {
    return this.bytes(Uint8Array.of(value & 0xff));
  }

  uint16(value: number): this {
    return this.bytes(Uint8Array.of((value >> 8) & 0xff, value & 0xff));
  }

  varint(value: number): this {
    if (!Number.isSafeInteger(value) || value < 0)
      throw new RangeError(`a varint holds a non-negative integer, got ${value}`);
    if (value < 0x40) return this.uint8(value);
    if (value < 0x4000) return this.bytes(Uint8Array.of(0x40 | (value >> 8), value & 0xff));
    if (value < 0x40000000)
      return this.bytes(
        Uint8Array.of(0x80 | (value >>> 24), (value >>> 16) & 0xff, (value >>> 8) & 0xff, value & 0xff),
      );
    const high = Math.floor(value / 2 ** 32);
    const low = value >>> 0;
    return this.bytes(
      Uint8Array.of(
        0xc0 | (high >>> 24),
        (high >>> 16) & 0xff,
        (high >>> 8) & 0xff,
        high & 0xff,
        low >>> 24,
        (low >>> 16) & 0xff,
        (low >>> 8) & 0xff,
        low & 0xff,
      ),
    );
  }

  lengthPrefixed(part: Uint8Array): this {
    return this.varint(part.length).bytes(part);
  }

  finish(): Uint8Array {
    return concatBytes(this.#parts, this.#length);
  }
}

export function concatBytes(
  parts: readonly Uint8Array[],
  length = parts.reduce((sum, part) => sum + part.length, 0),
): Uint8Array {
  const out = new Uint8Array(length);
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

const encoder = new TextEncoder();

/** ASCII/UTF-8 text as bytes (labels, method names). */
export function utf8(text: string): Uint8Array {
  return encoder.encode(text);
}
