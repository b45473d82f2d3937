// Reads the protobuf wire format, as much of it as the tests need to check a written ONNX model:
// varints, fixed32 floats and length-delimited fields (the writer is model/onnx/protobuf.ts).
import { WireType } from '../../../model/onnx/protobuf.js';

export { WireType };

const textDecoder = new TextDecoder('utf-8', { fatal: true });

export interface FieldHeader {
  field: number;
  wireType: number;
}

/** Reads the fields of one message in `bytes[start, end)`; offsets stay absolute to `bytes`. */
export class ProtoReader {
  position: number;

  constructor(
    readonly bytes: Uint8Array,
    readonly start = 0,
    readonly end = bytes.length,
  ) {
    this.position = start;
  }

  private fail(problem: string): never {
    throw new Error(`malformed protobuf at byte ${this.position}: ${problem}`);
  }

  /** The next field's number and wire type, or undefined at the end of the message. */
  next(): FieldHeader | undefined {
    if (this.position >= this.end) return undefined;
    const key = this.uint();
    const field = Math.floor(key / 8);
    if (field === 0) this.fail('field number 0');
    return { field, wireType: key % 8 };
  }

  /** Fails unless a known field arrived with the wire type its declaration implies. */
  expect(header: FieldHeader, wireType: number): void {
    if (header.wireType !== wireType) {
      this.fail(`field ${header.field} has wire type ${header.wireType}, expected ${wireType}`);
    }
  }

  /** A varint that must fit a non-negative safe integer (lengths, tags, small enums). */
  uint(): number {
    const value = this.int64();
    if (value < 0) this.fail(`expected a non-negative varint, got ${value}`);
    return value;
  }

  /** An int64 varint as a number; values beyond 2^53 lose precision, as they would in JSON. */
  int64(): number {
    let low = 0;
    let shift = 0;
    // The first four bytes fit 28 bits of plain integer arithmetic; the rest go through BigInt.
    for (; shift < 28; shift += 7) {
      const byte = this.byte();
      low += (byte & 0x7f) * 2 ** shift;
      if (byte < 0x80) return low;
    }
    let value = BigInt(low);
    for (; shift < 70; shift += 7) {
      const byte = this.byte();
      value |= BigInt(byte & 0x7f) << BigInt(shift);
      if (byte < 0x80) return Number(BigInt.asIntN(64, value));
    }
    return this.fail('varint longer than 10 bytes');
  }

  private byte(): number {
    if (this.position >= this.end) this.fail('truncated varint');
    return this.bytes[this.position++]!;
  }

  float(): number {
    if (this.position + 4 > this.end) this.fail('truncated fixed32');
    const view = new DataView(this.bytes.buffer, this.bytes.byteOffset + this.position, 4);
    this.position += 4;
    return view.getFloat32(0, true);
  }

  /** The bounds of a length-delimited field, without copying it. */
  span(): { start: number; end: number } {
    const length = this.uint();
    const start = this.position;
    if (start + length > this.end) this.fail(`field of ${length} bytes runs past the end of its message`);
    this.position = start + length;
    return { start, end: start + length };
  }

  string(): string {
    const { start, end } = this.span();
    return textDecoder.decode(this.bytes.subarray(start, end));
  }

  /** A reader over an embedded message. */
  message(): ProtoReader {
    const { start, end } = this.span();
    return new ProtoReader(this.bytes, start, end);
  }

  /** Repeated numeric fields arrive packed or one by one; both are legal for a reader to accept. */
  repeatedInt64(wireType: number, into: number[]): void {
    if (wireType === WireType.varint) {
      into.push(this.int64());
      return;
    }
    const packed = this.message();
    while (packed.position < packed.end) into.push(packed.int64());
  }

  repeatedFloat(wireType: number, into: number[]): void {
    if (wireType === WireType.fixed32) {
      into.push(this.float());
      return;
    }
    const packed = this.message();
    while (packed.position < packed.end) into.push(packed.float());
  }

  skip(wireType: number): void {
    switch (wireType) {
      case WireType.varint:
        this.int64();
        return;
      case WireType.fixed64:
        this.advance(8);
        return;
      case WireType.lengthDelimited:
        this.span();
        return;
      case WireType.fixed32:
        this.advance(4);
        return;
      default:
        this.fail(`unsupported wire type ${wireType}`);
    }
  }

  private advance(count: number): void {
    if (this.position + count > this.end) this.fail('truncated fixed-width field');
    this.position += count;
  }
}
