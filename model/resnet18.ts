// torchvision's ResNet18, layer for layer and parameter name for parameter name, with weights
// drawn from a seed instead of trained. The server, the enclave image and the benchmarks get a
// real-sized model (same operators, same FLOPs, same 47 MB) without downloading anything, and
// two machines given the same seed get byte-identical files.
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, open, rename, rm } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import type { AttributeSpec, NodeSpec, TensorSpec } from './onnx/encode.js';
import { DataType, encodeModel, floatAttribute, floatTensor, intAttribute, intsAttribute } from './onnx/encode.js';

/** Bump when the weights or graph for a given seed change, so files can say which recipe made them. */
const GENERATOR_VERSION = '1';
const IR_VERSION = 8;
const OPSET = 13;
const IMAGE_SIZE = 224;
const CLASSES = 1000;
/** torchvision's BatchNorm2d defaults; ONNX momentum is PyTorch's 1 - momentum. */
const BN_EPSILON = 1e-5;
const BN_MOMENTUM = 0.9;
const STAGES = [
  { name: 'layer1', channels: 64, stride: 1 },
  { name: 'layer2', channels: 128, stride: 2 },
  { name: 'layer3', channels: 256, stride: 2 },
  { name: 'layer4', channels: 512, stride: 2 },
] as const;
const BLOCKS_PER_STAGE = 2;

export interface ResNet18Options {
  /** Any non-negative safe integer; 0 makes the default model. */
  seed?: number;
}

/**
 * xoshiro128** seeded through splitmix32: fast in 32-bit integer arithmetic, and far better
 * distributed than the 2^32-period generators. Each tensor gets its own stream keyed by
 * (seed, name), so its values do not depend on the order tensors are generated in.
 */
class SeededRandom {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;

  constructor(seed: number, stream: string) {
    let state = fnv1a(`${seed}/${stream}`);
    const splitmix32 = (): number => {
      state = (state + 0x9e3779b9) | 0;
      let z = Math.imul(state ^ (state >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.s0 = splitmix32();
    this.s1 = splitmix32();
    this.s2 = splitmix32();
    this.s3 = splitmix32();
  }

  /** Uniform in the open interval (0, 1), so Box-Muller never takes log(0). */
  next(): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5), 7), 9) >>> 0;
    const shifted = this.s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= shifted;
    this.s3 = rotl(this.s3, 11);
    return (result + 0.5) / 2 ** 32;
  }

  fillNormal(out: Float32Array, std: number): void {
    for (let index = 0; index < out.length; index += 2) {
      // Box-Muller: two independent normals from two uniforms.
      const radius = std * Math.sqrt(-2 * Math.log(this.next()));
      const angle = 2 * Math.PI * this.next();
      out[index] = radius * Math.cos(angle);
      if (index + 1 < out.length) out[index + 1] = radius * Math.sin(angle);
    }
  }

  fillUniform(out: Float32Array, low: number, high: number): void {
    for (let index = 0; index < out.length; index++) out[index] = low + (high - low) * this.next();
  }
}

const rotl = (value: number, bits: number): number => (value << bits) | (value >>> (32 - bits));

function fnv1a(text: string): number {
  let hash = 0x811c9dc5;
  for (let index = 0; index < text.length; index++) hash = Math.imul(hash ^ text.charCodeAt(index), 0x01000193);
  return hash >>> 0;
}

/** Collects nodes and initializers under torchvision's module names (`layer2.0.downsample.1`). */
class ResNetGraph {
  readonly nodes: NodeSpec[] = [];
  readonly initializers: TensorSpec[] = [];

  constructor(private readonly seed: number) {}

  private parameter(name: string, dims: number[], fill: (values: Float32Array, random: SeededRandom) => void): string {
    const values = new Float32Array(dims.reduce((product, dim) => product * dim, 1));
    fill(values, new SeededRandom(this.seed, name));
    this.initializers.push(floatTensor(name, dims, values));
    return name;
  }

  /** Adds a node named like PyTorch's exporter names it, e.g. `/layer1/0/conv1/Conv`. */
  node(module: string, opType: string, inputs: string[], attributes: AttributeSpec[] = [], output?: string): string {
    const name = `${module === '' ? '' : '/' + module.replaceAll('.', '/')}/${opType}`;
    const outputName = output ?? `${name}_output_0`;
    this.nodes.push({ name, opType, inputs, outputs: [outputName], attributes });
    return outputName;
  }

  conv(module: string, input: string, inChannels: number, outChannels: number, kernel: number, stride: number): string {
    // torchvision: kaiming_normal_(mode="fan_out", nonlinearity="relu"), so std = sqrt(2 / fan_out).
    const std = Math.sqrt(2 / (outChannels * kernel * kernel));
    const weight = this.parameter(`${module}.weight`, [outChannels, inChannels, kernel, kernel], (values, random) =>
      random.fillNormal(values, std),
    );
    const pad = (kernel - 1) / 2;
    return this.node(
      module,
      'Conv',
      [input, weight],
      [
        intsAttribute('dilations', [1, 1]),
        intAttribute('group', 1),
        intsAttribute('kernel_shape', [kernel, kernel]),
        intsAttribute('pads', [pad, pad, pad, pad]),
        intsAttribute('strides', [stride, stride]),
      ],
    );
  }

  batchNorm(module: string, input: string, channels: number): string {
    const scale = this.parameter(`${module}.weight`, [channels], (values) => values.fill(1));
    const bias = this.parameter(`${module}.bias`, [channels], (values) => values.fill(0));
    // Untrained statistics would be exactly 0 and 1, which makes every BatchNormalization an
    // identity that runtimes could treat specially; mild seeded values keep the arithmetic real.
    const mean = this.parameter(`${module}.running_mean`, [channels], (values, random) =>
      random.fillUniform(values, -0.1, 0.1),
    );
    const variance = this.parameter(`${module}.running_var`, [channels], (values, random) =>
      random.fillUniform(values, 0.9, 1.1),
    );
    return this.node(
      module,
      'BatchNormalization',
      [input, scale, bias, mean, variance],
      [floatAttribute('epsilon', BN_EPSILON), floatAttribute('momentum', BN_MOMENTUM)],
    );
  }

  relu(module: string, input: string): string {
    return this.node(module, 'Relu', [input]);
  }

  basicBlock(module: string, input: string, inChannels: number, outChannels: number, stride: number): string {
    let out = this.conv(`${module}.conv1`, input, inChannels, outChannels, 3, stride);
    out = this.relu(`${module}.relu`, this.batchNorm(`${module}.bn1`, out, outChannels));
    out = this.conv(`${module}.conv2`, out, outChannels, outChannels, 3, 1);
    out = this.batchNorm(`${module}.bn2`, out, outChannels);
    let identity = input;
    if (stride !== 1 || inChannels !== outChannels) {
      identity = this.conv(`${module}.downsample.0`, input, inChannels, outChannels, 1, stride);
      identity = this.batchNorm(`${module}.downsample.1`, identity, outChannels);
    }
    // BasicBlock reuses one ReLU module, which the exporter names relu and relu_1.
    return this.relu(`${module}.relu_1`, this.node(module, 'Add', [out, identity]));
  }

  fc(input: string, inFeatures: number, outFeatures: number, output: string): string {
    // nn.Linear's default init: kaiming_uniform_(a=sqrt(5)) comes to U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
    const bound = 1 / Math.sqrt(inFeatures);
    const weight = this.parameter('fc.weight', [outFeatures, inFeatures], (values, random) =>
      random.fillUniform(values, -bound, bound),
    );
    const bias = this.parameter('fc.bias', [outFeatures], (values, random) =>
      random.fillUniform(values, -bound, bound),
    );
    return this.node(
      'fc',
      'Gemm',
      [input, weight, bias],
      [floatAttribute('alpha', 1), floatAttribute('beta', 1), intAttribute('transB', 1)],
      output,
    );
  }
}

function checkSeed(seed: number): void {
  if (!Number.isSafeInteger(seed) || seed < 0) {
    throw new RangeError(`seed must be a non-negative integer, got ${seed}`);
  }
}

/** The ONNX model bytes of a ResNet18 with weights from `seed`; the same seed gives the same bytes. */
export function buildResNet18({ seed = 0 }: ResNet18Options = {}): Uint8Array {
  checkSeed(seed);
  const graph = new ResNetGraph(seed);
  let x = graph.conv('conv1', 'input', 3, 64, 7, 2);
  x = graph.relu('relu', graph.batchNorm('bn1', x, 64));
  x = graph.node(
    'maxpool',
    'MaxPool',
    [x],
    [
      intAttribute('ceil_mode', 0),
      intsAttribute('kernel_shape', [3, 3]),
      intsAttribute('pads', [1, 1, 1, 1]),
      intsAttribute('strides', [2, 2]),
    ],
  );
  let channels = 64;
  for (const stage of STAGES) {
    for (let block = 0; block < BLOCKS_PER_STAGE; block++) {
      x = graph.basicBlock(`${stage.name}.${block}`, x, channels, stage.channels, block === 0 ? stage.stride : 1);
      channels = stage.channels;
    }
  }
  x = graph.node('avgpool', 'GlobalAveragePool', [x]);
  x = graph.node('', 'Flatten', [x], [intAttribute('axis', 1)]);
  graph.fc(x, channels, CLASSES, 'logits');

  return encodeModel({
    irVersion: IR_VERSION,
    opsetImports: [{ domain: '', version: OPSET }],
    producerName: 'mixed-privacy-gateway',
    producerVersion: GENERATOR_VERSION,
    docString:
      `torchvision ResNet18 architecture with untrained weights drawn from seed ${seed}. ` +
      'Its predictions are meaningless: it exists to measure serving, not to classify.',
    graph: {
      name: 'resnet18',
      nodes: graph.nodes,
      initializers: graph.initializers,
      inputs: [{ name: 'input', elemType: DataType.float, dims: ['batch', 3, IMAGE_SIZE, IMAGE_SIZE] }],
      outputs: [{ name: 'logits', elemType: DataType.float, dims: ['batch', CLASSES] }],
    },
    metadata: { architecture: 'torchvision.models.resnet18', weights: 'seeded-random', seed: String(seed) },
  });
}

/**
 * Writes the model atomically: a reader sees either no file or a whole one, never a partial
 * model, even when two processes generate the same path at once.
 */
export async function writeResNet18(
  path: string,
  { seed = 0 }: ResNet18Options = {},
): Promise<{ path: string; bytes: number; sha256: string }> {
  const model = buildResNet18({ seed });
  const target = resolve(path);
  await mkdir(dirname(target), { recursive: true });
  // Same directory, so the rename cannot cross filesystems; `.partial-` is ignored by git.
  const partial = `${target}.partial-${process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    const handle = await open(partial, 'wx');
    try {
      await handle.writeFile(model);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(partial, target);
  } catch (error) {
    await rm(partial, { force: true });
    throw error;
  }
  return { path: target, bytes: model.length, sha256: createHash('sha256').update(model).digest('hex') };
}
