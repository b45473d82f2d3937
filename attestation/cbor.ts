// A strict CBOR (RFC 8949) decoder and a deterministic encoder, just what attestation documents
// and COSE_Sign1 need. Strict: every malformed, truncated or unsupported input is a CborError
// naming the byte offset; nothing is guessed. Heads need not be in shortest form (genuine NSM
// documents encode the timestamp with 8 bytes), but everything else is checked. Browser-safe: no
// node: imports and no Buffer, so the client SDK runs it in browsers too.
import { concatBytes } from './bytes.js';

export class CborError extends Error {
  override name = 'CborError';
}

/** A tagged item, e.g. tag 18 around a COSE_Sign1 array. */
export class CborTag {
  constructor(
    readonly tag: number,
    readonly value: CborValue,
  ) {}
}

export type CborKey = string | number;
export type CborValue =
  number | bigint | string | Uint8Array | boolean | null | CborValue[] | Map<CborKey, CborValue> | CborTag;

export interface DecodeLimits {
  /** Largest input accepted, checked before decoding. */
  maxBytes?: number;
  /** Deepest nesting of arrays, maps and tags. */
  maxDepth?: number;
}

export const DEFAULT_CBOR_MAX_BYTES = 64 * 1024; // 64 KiB
export const DEFAULT_CBOR_MAX_DEPTH = 16;

const BREAK = 0xff;
// ignoreBOM: a leading U+FEFF is text like any other, never silently dropped.
const textDecoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Decodes exactly one CBOR item that spans the whole input; trailing bytes are an error. */
export function decodeCbor(bytes: Uint8Array, limits: DecodeLimits = {}): CborValue {
  const maxBytes = limits.maxBytes ?? DEFAULT_CBOR_MAX_BYTES;
  if (bytes.length > maxBytes)
    throw new CborError(`input is ${bytes.length} bytes, more than the limit of ${maxBytes}`);
  if (bytes.length === 0) throw new CborError('input is empty');
  const reader = new Reader(bytes, limits.maxDepth ?? DEFAULT_CBOR_MAX_DEPTH);
  const value = reader.item(0);
  if (reader.offset !== bytes.length)
    throw new CborError(`${bytes.length - reader.offset} trailing bytes after the item at offset ${reader.offset}`);
  return value;
}

class Reader {
  offset = 0;
  private readonly view: DataView;

  constructor(
    private readonly bytes: Uint8Array,
    private readonly maxDepth: number,
  ) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  private need(count: number, what: string): void {
    if (this.offset + count > this.bytes.length)
      throw new CborError(
        `truncated: ${what} at offset ${this.offset} needs ${count} bytes, ${this.bytes.length - this.offset} left`,
      );
  }

  /** The argument of a head: a number, a bigint beyond 2^53, or undefined for indefinite length. */
  private argument(info: number, start: number): number | bigint | undefined {
    if (info < 24) return info;
    switch (info) {
      case 24:
        this.need(1, 'a 1-byte argument');
        return this.bytes[this.offset++]!;
      case 25:
        this.need(2, 'a 2-byte argument');
        this.offset += 2;
        return this.view.getUint16(this.offset - 2);
      case 26:
        this.need(4, 'a 4-byte argument');
        this.offset += 4;
        return this.view.getUint32(this.offset - 4);
      case 27: {
        this.need(8, 'an 8-byte argument');
        const value = this.view.getBigUint64(this.offset);
        this.offset += 8;
        return value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : value;
      }
      case 31:
        return undefined;
      default:
        throw new CborError(`reserved additional information ${info} at offset ${start}`);
    }
  }

  /** A length: definite, within what is left of the input (so no huge allocation), or undefined. */
  private length(info: number, start: number, what: string, minItemBytes: number): number | undefined {
    const value = this.argument(info, start);
    if (value === undefined) return undefined;
    const left = this.bytes.length - this.offset;
    if (typeof value === 'bigint' || value * minItemBytes > left) {
      throw new CborError(`truncated: ${what} at offset ${start} declares length ${value}, only ${left} bytes left`);
    }
    return value;
  }

  item(depth: number): CborValue {
    const start = this.offset;
    this.need(1, 'an item');
    const initial = this.bytes[this.offset++]!;
    const major = initial >> 5;
    const info = initial & 0x1f;
    if (initial === BREAK) throw new CborError(`unexpected break (0xff) at offset ${start}`);
    switch (major) {
      case 0:
      case 1: {
        const value = this.argument(info, start);
        if (value === undefined)
          throw new CborError(`indefinite length is not allowed for an integer at offset ${start}`);
        if (major === 0) return value;
        return typeof value === 'bigint' || value === Number.MAX_SAFE_INTEGER ? -1n - BigInt(value) : -1 - value;
      }
      case 2:
      case 3: {
        const length = this.length(info, start, major === 2 ? 'a byte string' : 'a text string', 1);
        const bytes = length === undefined ? this.chunks(major, start) : this.take(length);
        if (major === 2) return bytes;
        try {
          return textDecoder.decode(bytes);
        } catch (cause) {
          throw new CborError(`text string at offset ${start} is not valid UTF-8`, { cause });
        }
      }
      case 4: {
        if (depth >= this.maxDepth) throw new CborError(`nesting deeper than ${this.maxDepth} at offset ${start}`);
        const length = this.length(info, start, 'an array', 1);
        const items: CborValue[] = [];
        if (length === undefined) while (!this.atBreak()) items.push(this.item(depth + 1));
        else for (let index = 0; index < length; index++) items.push(this.item(depth + 1));
        return items;
      }
      case 5: {
        if (depth >= this.maxDepth) throw new CborError(`nesting deeper than ${this.maxDepth} at offset ${start}`);
        const length = this.length(info, start, 'a map', 2);
        const map = new Map<CborKey, CborValue>();
        const entry = () => {
          const keyOffset = this.offset;
          const key = this.item(depth + 1);
          if (typeof key !== 'string' && typeof key !== 'number')
            throw new CborError(`map key at offset ${keyOffset} is not a text string or a small integer`);
          if (map.has(key)) throw new CborError(`duplicate map key ${JSON.stringify(key)} at offset ${keyOffset}`);
          map.set(key, this.item(depth + 1));
        };
        if (length === undefined) while (!this.atBreak()) entry();
        else for (let index = 0; index < length; index++) entry();
        return map;
      }
      case 6: {
        if (depth >= this.maxDepth) throw new CborError(`nesting deeper than ${this.maxDepth} at offset ${start}`);
        const tag = this.argument(info, start);
        if (tag === undefined || typeof tag === 'bigint')
          throw new CborError(`unsupported tag head at offset ${start}`);
        return new CborTag(tag, this.item(depth + 1));
      }
      default:
        switch (info) {
          case 20:
            return false;
          case 21:
            return true;
          case 22:
            return null;
          case 23:
            throw new CborError(`"undefined" (0xf7) at offset ${start} is not accepted`);
          case 25:
          case 26:
          case 27:
            throw new CborError(`floating-point number at offset ${start} is not accepted`);
          default:
            throw new CborError(`unsupported simple value (0x${initial.toString(16)}) at offset ${start}`);
        }
    }
  }

  private take(length: number): Uint8Array {
    const bytes = this.bytes.subarray(this.offset, this.offset + length);
    this.offset += length;
    return bytes;
  }

  /** Consumes a break byte when one is next; errors at the end of input. */
  private atBreak(): boolean {
    this.need(1, 'an item or a break');
    if (this.bytes[this.offset] !== BREAK) return false;
    this.offset++;
    return true;
  }

  /** An indefinite-length string: definite chunks of the same major type up to a break. */
  private chunks(major: number, start: number): Uint8Array {
    const parts: Uint8Array[] = [];
    while (!this.atBreak()) {
      const chunkStart = this.offset;
      const initial = this.bytes[this.offset++]!;
      if (initial >> 5 !== major || (initial & 0x1f) === 31)
        throw new CborError(`bad chunk at offset ${chunkStart} in the indefinite-length string at offset ${start}`);
      parts.push(this.take(this.length(initial & 0x1f, chunkStart, 'a string chunk', 1)!));
    }
    return concatBytes(parts);
  }
}

// ---- encoding ----------------------------------------------------------------------------------

/**
 * Encodes deterministically: shortest heads, definite lengths, map keys in the order given (the
 * NSM's own order, which callers choose; RFC 8949 key sorting is not applied). Numbers must be
 * integers; plain objects are not accepted (use a Map, so key types stay exact).
 */
export function encodeCbor(value: CborValue): Uint8Array {
  const parts: Uint8Array[] = [];
  write(value, parts);
  return concatBytes(parts);
}

/** The head of an item: major type and argument in the shortest form. */
export function cborHead(major: number, argument: number | bigint): Uint8Array {
  const value = BigInt(argument);
  if (value < 0n || value > 0xffffffffffffffffn) throw new RangeError(`CBOR argument out of range: ${value}`);
  const type = major << 5;
  if (value < 24n) return Uint8Array.of(type | Number(value));
  if (value <= 0xffn) return Uint8Array.of(type | 24, Number(value));
  const bytes = value <= 0xffffn ? 2 : value <= 0xffffffffn ? 4 : 8;
  const head = new Uint8Array(1 + bytes);
  head[0] = type | (bytes === 2 ? 25 : bytes === 4 ? 26 : 27);
  const view = new DataView(head.buffer);
  if (bytes === 2) view.setUint16(1, Number(value));
  else if (bytes === 4) view.setUint32(1, Number(value));
  else view.setBigUint64(1, value);
  return head;
}

const textEncoder = new TextEncoder();

function write(value: CborValue, parts: Uint8Array[]): void {
  if (value === null) parts.push(Uint8Array.of(0xf6));
  else if (value === false) parts.push(Uint8Array.of(0xf4));
  else if (value === true) parts.push(Uint8Array.of(0xf5));
  else if (typeof value === 'number' || typeof value === 'bigint') {
    if (typeof value === 'number' && !Number.isSafeInteger(value))
      throw new RangeError(`only safe integers are encoded, got ${value}`);
    const big = BigInt(value);
    parts.push(big >= 0n ? cborHead(0, big) : cborHead(1, -1n - big));
  } else if (typeof value === 'string') {
    const bytes = textEncoder.encode(value);
    parts.push(cborHead(3, bytes.length), bytes);
  } else if (value instanceof Uint8Array) {
    parts.push(cborHead(2, value.length), value);
  } else if (Array.isArray(value)) {
    parts.push(cborHead(4, value.length));
    for (const item of value) write(item, parts);
  } else if (value instanceof Map) {
    parts.push(cborHead(5, value.size));
    for (const [key, item] of value) {
      write(key, parts);
      write(item, parts);
    }
  } else if (value instanceof CborTag) {
    parts.push(cborHead(6, value.tag));
    write(value.value, parts);
  } else {
    throw new TypeError(`cannot encode ${Object.prototype.toString.call(value)} as CBOR`);
  }
}
