// ONNX messages as plain objects, and their encoding. Field numbers follow onnx/onnx.proto;
// each encoder writes the fields in the order the official serializer does, so the files look
// familiar in a hex dump and in Netron.
import { ProtoWriter } from './protobuf.js';

/** TensorProto.DataType values used here. */
export const DataType = { float: 1, int64: 7 } as const;

/** AttributeProto.AttributeType values used here. */
const AttributeType = { float: 1, int: 2, string: 3, ints: 7 } as const;

export type AttributeSpec =
  | { name: string; kind: 'float'; value: number }
  | { name: string; kind: 'int'; value: number }
  | { name: string; kind: 'ints'; value: readonly number[] }
  | { name: string; kind: 'string'; value: string };

export interface NodeSpec {
  name: string;
  opType: string;
  inputs: readonly string[];
  outputs: readonly string[];
  attributes?: readonly AttributeSpec[];
}

export interface TensorSpec {
  name: string;
  dims: readonly number[];
  dataType: number;
  /** Little-endian element bytes (raw_data). */
  rawData: Uint8Array;
}

/** A graph input or output: a dimension is a fixed size or a symbolic name such as "batch". */
export interface ValueInfoSpec {
  name: string;
  elemType: number;
  dims: readonly (number | string)[];
}

export interface GraphSpec {
  name: string;
  nodes: readonly NodeSpec[];
  initializers: readonly TensorSpec[];
  inputs: readonly ValueInfoSpec[];
  outputs: readonly ValueInfoSpec[];
  docString?: string;
}

export interface ModelSpec {
  irVersion: number;
  opsetImports: readonly { domain: string; version: number }[];
  producerName: string;
  producerVersion: string;
  docString?: string;
  graph: GraphSpec;
  metadata?: Readonly<Record<string, string>>;
}

export const intAttribute = (name: string, value: number): AttributeSpec => ({ name, kind: 'int', value });
export const intsAttribute = (name: string, value: readonly number[]): AttributeSpec => ({ name, kind: 'ints', value });
export const floatAttribute = (name: string, value: number): AttributeSpec => ({ name, kind: 'float', value });

const hostIsLittleEndian = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** A float32 tensor whose bytes are the array's own memory on little-endian hosts (no copy). */
export function floatTensor(name: string, dims: readonly number[], data: Float32Array): TensorSpec {
  const expected = dims.reduce((product, dim) => product * dim, 1);
  if (data.length !== expected) {
    throw new RangeError(`tensor ${name}: ${data.length} values do not fill dims [${dims.join(', ')}]`);
  }
  let rawData = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  if (!hostIsLittleEndian) {
    rawData = new Uint8Array(data.byteLength);
    const view = new DataView(rawData.buffer);
    data.forEach((value, index) => view.setFloat32(index * 4, value, true));
  }
  return { name, dims, dataType: DataType.float, rawData };
}

function encodeAttribute(attribute: AttributeSpec): ProtoWriter {
  const writer = new ProtoWriter().string(1, attribute.name);
  switch (attribute.kind) {
    case 'float':
      writer.float(2, attribute.value);
      break;
    case 'int':
      writer.varint(3, attribute.value);
      break;
    case 'string':
      writer.string(4, attribute.value);
      break;
    case 'ints':
      // Unpacked: onnx.proto is proto2 and does not mark `ints` as packed.
      for (const value of attribute.value) writer.varint(8, value);
      break;
  }
  return writer.varint(20, AttributeType[attribute.kind]);
}

function encodeNode(node: NodeSpec): ProtoWriter {
  const writer = new ProtoWriter();
  for (const input of node.inputs) writer.string(1, input);
  for (const output of node.outputs) writer.string(2, output);
  writer.string(3, node.name).string(4, node.opType);
  for (const attribute of node.attributes ?? []) writer.message(5, encodeAttribute(attribute));
  return writer;
}

function encodeTensor(tensor: TensorSpec): ProtoWriter {
  const writer = new ProtoWriter();
  for (const dim of tensor.dims) writer.varint(1, dim);
  return writer.varint(2, tensor.dataType).string(8, tensor.name).bytes(9, tensor.rawData);
}

function encodeValueInfo(info: ValueInfoSpec): ProtoWriter {
  const shape = new ProtoWriter();
  for (const dim of info.dims) {
    const dimension = typeof dim === 'number' ? new ProtoWriter().varint(1, dim) : new ProtoWriter().string(2, dim);
    shape.message(1, dimension);
  }
  const tensorType = new ProtoWriter().varint(1, info.elemType).message(2, shape);
  const type = new ProtoWriter().message(1, tensorType);
  return new ProtoWriter().string(1, info.name).message(2, type);
}

function encodeGraph(graph: GraphSpec): ProtoWriter {
  const writer = new ProtoWriter();
  for (const node of graph.nodes) writer.message(1, encodeNode(node));
  writer.string(2, graph.name);
  for (const tensor of graph.initializers) writer.message(5, encodeTensor(tensor));
  if (graph.docString) writer.string(10, graph.docString);
  for (const input of graph.inputs) writer.message(11, encodeValueInfo(input));
  for (const output of graph.outputs) writer.message(12, encodeValueInfo(output));
  return writer;
}

export function encodeModel(model: ModelSpec): Uint8Array {
  const writer = new ProtoWriter()
    .varint(1, model.irVersion)
    .string(2, model.producerName)
    .string(3, model.producerVersion);
  if (model.docString) writer.string(6, model.docString);
  writer.message(7, encodeGraph(model.graph));
  for (const opset of model.opsetImports) {
    writer.message(8, new ProtoWriter().string(1, opset.domain).varint(2, opset.version));
  }
  for (const [key, value] of Object.entries(model.metadata ?? {})) {
    writer.message(14, new ProtoWriter().string(1, key).string(2, value));
  }
  return writer.finish();
}
