// The protobuf wire format, only as much of it as writing ONNX files needs: varints, fixed32 floats
// and length-delimited fields (the tests' reader is test/helpers/onnx/protobuf-reader.ts). Written
// by hand because a generated model is ~47 MB of raw floats and a general protobuf library would
// copy that payload several times on its way to disk.

export const WireType = { varint: 0, fixed64: 1, lengthDelimited: 2, fixed32: 5 } as const;

const textEncoder = new TextEncoder();

/**
 * Builds one message. Small fields go into a growing byte list; large byte payloads and nested
 * messages are kept by reference, so tensor data is copied exactly once, by `finish()`.
 */
export class ProtoWriter {
  private readonly chunks: Uint8Array[] = [];
  private pending: number[] = [];
  /** Encoded length in bytes so far: what a parent message writes as this message's length. */
  length = 0;

  private flushPending(): void {
    if (this.pending.length === 0) return;
    this.chunks.push(Uint8Array.from(this.pending));
    this.pending = [];
  }

  private rawVarint(value: number | bigint): void {
    if (typeof value === 'number' && value >= 0 && Number.isSafeInteger(value)) {
      let rest = value;
      while (rest >= 0x80) {
        this.pending.push((rest % 0x80) | 0x80);
        rest = Math.floor(rest / 0x80);
      }
      this.pending.push(rest);
      this.length += varintLength(value);
      return;
    }
    // Negative int64 values are ten-byte two's complement varints, as protobuf's int64 demands.
    let rest = BigInt.asUintN(64, BigInt(value));
    do {
      const low = Number(rest & 0x7fn);
      rest >>= 7n;
      this.pending.push(rest === 0n ? low : low | 0x80);
      this.length += 1;
    } while (rest !== 0n);
  }

  private tag(field: number, wireType: number): void {
    this.rawVarint(field * 8 + wireType);
  }

  /** int32, int64, enum and bool fields. */
  varint(field: number, value: number | bigint): this {
    if (typeof value === 'number' && !Number.isSafeInteger(value)) {
      throw new RangeError(`protobuf field ${field}: ${value} is not a safe integer`);
    }
    this.tag(field, WireType.varint);
    this.rawVarint(value);
    return this;
  }

  float(field: number, value: number): this {
    this.tag(field, WireType.fixed32);
    const bytes = new Uint8Array(4);
    new DataView(bytes.buffer).setFloat32(0, value, true);
    this.pending.push(...bytes);
    this.length += 4;
    return this;
  }

  string(field: number, value: string): this {
    return this.bytes(field, textEncoder.encode(value));
  }

  /** Keeps a reference to `value`: the caller must not change it before `finish()`. */
  bytes(field: number, value: Uint8Array): this {
    this.tag(field, WireType.lengthDelimited);
    this.rawVarint(value.length);
    if (value.length < 64) {
      for (const byte of value) this.pending.push(byte);
    } else {
      this.flushPending();
      this.chunks.push(value);
    }
    this.length += value.length;
    return this;
  }

  /** Embeds a finished child message by reference. */
  message(field: number, child: ProtoWriter): this {
    this.tag(field, WireType.lengthDelimited);
    this.rawVarint(child.length);
    this.flushPending();
    child.flushPending();
    this.chunks.push(...child.chunks);
    this.length += child.length;
    return this;
  }

  finish(): Uint8Array {
    this.flushPending();
    const out = new Uint8Array(this.length);
    let offset = 0;
    for (const chunk of this.chunks) {
      out.set(chunk, offset);
      offset += chunk.length;
    }
    return out;
  }
}

function varintLength(value: number): number {
  let length = 1;
  for (let rest = value; rest >= 0x80; rest = Math.floor(rest / 0x80)) length++;
  return length;
}
