import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import * as ort from 'onnxruntime-node';
import { buildResNet18, writeResNet18 } from '../../model/resnet18.js';
import { decodeOnnxModel } from '../helpers/onnx/decode.js';
import type { NodeSummary, OnnxModelSummary } from '../helpers/onnx/decode.js';
import { ensureModel } from '../../model/default-model.js';
import { generateCommand } from '../../model/generate-command.js';

/** torchvision.models.resnet18(): sum(p.numel() for p in model.parameters()). */
const TORCHVISION_RESNET18_PARAMETERS = 11_689_512;
const IMAGE_VALUES = 3 * 224 * 224;

async function temporaryDirectory(t: { after(fn: () => Promise<void>): void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'mpg-resnet18-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

function nodesOf(model: OnnxModelSummary, opType: string): NodeSummary[] {
  return model.nodes.filter((node) => node.opType === opType);
}

function initializerDims(model: OnnxModelSummary, name: string | undefined): number[] {
  const initializer = model.initializers.find((candidate) => candidate.name === name);
  assert.ok(initializer, `initializer ${name} exists`);
  return initializer.dims;
}

/** A deterministic, image-like input: smooth per-channel patterns in roughly [-2, 2]. */
function syntheticImage(variant: number): Float32Array {
  const image = new Float32Array(IMAGE_VALUES);
  for (let index = 0; index < IMAGE_VALUES; index++) {
    const channel = Math.floor(index / (224 * 224));
    const y = Math.floor(index / 224) % 224;
    const x = index % 224;
    image[index] = 2 * Math.sin((x * (variant + 1)) / 17 + channel) * Math.cos((y + 13 * variant) / 23);
  }
  return image;
}

function collect(): { stream: Writable; text: () => string } {
  const chunks: Buffer[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      chunks.push(chunk);
      callback();
    },
  });
  return { stream, text: () => Buffer.concat(chunks).toString('utf8') };
}

async function runGenerate(argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const stdout = collect();
  const stderr = collect();
  const code = await generateCommand.run({ argv, env: {}, stdout: stdout.stream, stderr: stderr.stream });
  return { code, stdout: stdout.text(), stderr: stderr.text() };
}

void test('generated ResNet18 (seed 0)', async (t) => {
  const dir = await temporaryDirectory(t);
  const written = await writeResNet18(join(dir, 'nested', 'resnet18.onnx'), { seed: 0 });
  const bytes = await readFile(written.path);
  const model = decodeOnnxModel(bytes);

  await t.test('is written whole, in a directory it creates, with no partial file left', async () => {
    assert.equal(bytes.length, written.bytes);
    assert.equal(createHash('sha256').update(bytes).digest('hex'), written.sha256);
    assert.deepEqual(await readdir(join(dir, 'nested')), ['resnet18.onnx']);
  });

  await t.test('has exactly the trainable parameters of torchvision resnet18, counted from the graph', () => {
    // Trainable inputs by position: Conv W; BatchNormalization scale and B (not the running
    // statistics); Gemm B and C. Names play no part, so a renamed tensor cannot fool the count.
    const trainableInputs: Record<string, number[]> = { Conv: [1], BatchNormalization: [1, 2], Gemm: [1, 2] };
    const sizes = new Map(model.initializers.map((initializer) => [initializer.name, initializer.elementCount]));
    let total = 0;
    for (const node of model.nodes) {
      for (const position of trainableInputs[node.opType] ?? []) {
        const size = sizes.get(node.inputs[position] ?? '');
        assert.ok(size !== undefined, `${node.name} input ${position} is an initializer`);
        total += size;
      }
    }
    assert.equal(total, TORCHVISION_RESNET18_PARAMETERS);
  });

  await t.test('stores every initializer as float32 raw_data of the right length', () => {
    for (const initializer of model.initializers) {
      assert.equal(initializer.dataTypeName, 'float', initializer.name);
      assert.equal(initializer.rawDataLength, initializer.elementCount * 4, initializer.name);
    }
    const names = model.initializers.map((initializer) => initializer.name);
    for (const name of [
      'conv1.weight',
      'bn1.running_var',
      'layer1.0.conv1.weight',
      'layer2.0.downsample.0.weight',
      'layer2.0.downsample.1.weight',
      'layer4.1.bn2.bias',
      'fc.weight',
      'fc.bias',
    ]) {
      assert.ok(names.includes(name), `initializer ${name}`);
    }
  });

  await t.test('has the architecture of torchvision resnet18', () => {
    const counts: Record<string, number> = {};
    for (const node of model.nodes) counts[node.opType] = (counts[node.opType] ?? 0) + 1;
    assert.deepEqual(counts, {
      Conv: 20,
      BatchNormalization: 20,
      Relu: 17,
      Add: 8,
      MaxPool: 1,
      GlobalAveragePool: 1,
      Flatten: 1,
      Gemm: 1,
    });

    const convs = nodesOf(model, 'Conv');
    const [stem] = convs;
    assert.ok(stem);
    assert.equal(stem.inputs[0], 'input');
    assert.deepEqual(initializerDims(model, stem.inputs[1]), [64, 3, 7, 7]);
    assert.deepEqual(stem.attributes.kernel_shape, [7, 7]);
    assert.deepEqual(stem.attributes.strides, [2, 2]);
    assert.deepEqual(stem.attributes.pads, [3, 3, 3, 3]);
    assert.equal(stem.inputs.length, 2, 'no bias on convolutions');

    const downsamples = convs.filter((conv) => (conv.attributes.kernel_shape as number[])[0] === 1);
    assert.deepEqual(
      downsamples.map((conv) => initializerDims(model, conv.inputs[1])),
      [
        [128, 64, 1, 1],
        [256, 128, 1, 1],
        [512, 256, 1, 1],
      ],
    );
    for (const conv of downsamples) {
      assert.deepEqual(conv.attributes.strides, [2, 2]);
      assert.deepEqual(conv.attributes.pads, [0, 0, 0, 0]);
    }
    const threeByThree = convs.filter((conv) => (conv.attributes.kernel_shape as number[])[0] === 3);
    assert.equal(threeByThree.length, 16);
    for (const conv of threeByThree) assert.deepEqual(conv.attributes.pads, [1, 1, 1, 1]);
    assert.equal(threeByThree.filter((conv) => (conv.attributes.strides as number[])[0] === 2).length, 3);

    // Five convolutions and five batch norms at each width: 4 in the stage, plus the stem or a downsample.
    const widths = (nodes: NodeSummary[]) =>
      nodes.map((node) => initializerDims(model, node.inputs[1])[0]).sort((a, b) => (a ?? 0) - (b ?? 0));
    const fiveEach = [64, 128, 256, 512].flatMap((width) => Array<number>(5).fill(width));
    assert.deepEqual(widths(convs), fiveEach);
    assert.deepEqual(widths(nodesOf(model, 'BatchNormalization')), fiveEach);

    const [maxPool] = nodesOf(model, 'MaxPool');
    assert.deepEqual(maxPool?.attributes.kernel_shape, [3, 3]);
    assert.deepEqual(maxPool?.attributes.strides, [2, 2]);
    assert.deepEqual(maxPool?.attributes.pads, [1, 1, 1, 1]);
    const [gemm] = nodesOf(model, 'Gemm');
    assert.equal(gemm?.attributes.transB, 1);
    assert.deepEqual(initializerDims(model, gemm?.inputs[1]), [1000, 512]);
    assert.deepEqual(initializerDims(model, gemm?.inputs[2]), [1000]);
    assert.deepEqual(gemm?.outputs, ['logits']);
  });

  await t.test('lists its nodes in an order where every input already exists', () => {
    const known = new Set(['input', ...model.initializers.map((initializer) => initializer.name)]);
    for (const node of model.nodes) {
      for (const input of node.inputs) assert.ok(known.has(input), `${node.name} reads ${input} before it exists`);
      for (const output of node.outputs) known.add(output);
    }
  });

  await t.test('declares a float input [batch, 3, 224, 224] with a symbolic batch and logits [batch, 1000]', () => {
    assert.equal(model.irVersion, 8);
    assert.equal(model.opset, 13);
    assert.deepEqual(model.inputs, [
      { name: 'input', elemType: 1, elemTypeName: 'float', dims: ['batch', 3, 224, 224] },
    ]);
    assert.deepEqual(model.outputs, [{ name: 'logits', elemType: 1, elemTypeName: 'float', dims: ['batch', 1000] }]);
    assert.equal(model.metadata.weights, 'seeded-random');
    assert.equal(model.metadata.seed, '0');
  });

  await t.test('is byte-identical for the same seed and differs for another', () => {
    assert.ok(Buffer.from(buildResNet18({ seed: 0 })).equals(bytes));
    const other = buildResNet18({ seed: 1 });
    assert.equal(other.length, bytes.length);
    assert.ok(!Buffer.from(other).equals(bytes));
  });

  await t.test('runs in onnxruntime at batch 1 and 3, each image independent of its batch', async (t) => {
    const session = await ort.InferenceSession.create(written.path);
    t.after(() => session.release());
    assert.deepEqual(session.inputNames, ['input']);
    assert.deepEqual(session.outputNames, ['logits']);

    const images = [syntheticImage(0), syntheticImage(1), syntheticImage(2)];
    const run = async (batch: Float32Array[]) => {
      const input = new Float32Array(batch.length * IMAGE_VALUES);
      batch.forEach((image, index) => input.set(image, index * IMAGE_VALUES));
      const { logits } = await session.run({ input: new ort.Tensor('float32', input, [batch.length, 3, 224, 224]) });
      assert.ok(logits);
      return { dims: logits.dims, values: logits.data as Float32Array };
    };

    const alone = await run([images[0]!]);
    const batched = await run(images);
    assert.deepEqual(alone.dims, [1, 1000]);
    assert.deepEqual(batched.dims, [3, 1000]);
    for (const value of batched.values) assert.ok(Number.isFinite(value));
    assert.ok(new Set(alone.values).size > 1, 'logits are not all equal');

    const maxDifference = (a: Float32Array, b: Float32Array) =>
      a.reduce((max, value, index) => Math.max(max, Math.abs(value - b[index]!)), 0);
    assert.ok(maxDifference(alone.values, batched.values.subarray(0, 1000)) < 1e-4, 'same image, same logits');
    assert.ok(
      maxDifference(batched.values.subarray(0, 1000), batched.values.subarray(1000, 2000)) > 1e-3,
      'different images, different logits',
    );
  });

  await t.test('mpg model generate leaves an existing file alone without --force', async () => {
    const result = await runGenerate(['--out', written.path, '--seed', '1']);
    assert.equal(result.code, 0);
    assert.match(result.stdout, /left it alone/);
    assert.match(result.stdout, new RegExp(written.sha256));
    assert.ok((await readFile(written.path)).equals(bytes));
  });

  await t.test('mpg model generate --force overwrites and prints path, size and sha256', async () => {
    const path = join(dir, 'forced.onnx');
    await writeFile(path, 'not a model');
    const result = await runGenerate(['--out', path, '--seed', '1', '--force']);
    assert.equal(result.code, 0, result.stderr);
    const forced = await readFile(path);
    assert.match(result.stdout, new RegExp(path));
    assert.match(result.stdout, new RegExp(`${forced.length} bytes`));
    assert.match(result.stdout, new RegExp(createHash('sha256').update(forced).digest('hex')));
    assert.equal(decodeOnnxModel(forced).metadata.seed, '1');
  });

  await t.test('ensureModel generates only when the file is missing', async () => {
    const lines: string[] = [];
    assert.deepEqual(await ensureModel(written.path, (line) => lines.push(line)), { generated: false });
    assert.equal(lines.length, 0, 'nothing to log when the model exists');
    const missing = join(dir, 'fresh', 'resnet18.onnx');
    assert.deepEqual(await ensureModel(missing, (line) => lines.push(line)), { generated: true });
    assert.ok((await readFile(missing)).equals(bytes), 'the default model is seed 0');
    assert.ok(lines.length > 0);
  });
});

void test('mpg model generate --help prints the options and exits 0', async () => {
  const result = await runGenerate(['--help']);
  assert.equal(result.code, 0);
  for (const flag of ['--out PATH', '--seed N', '--force']) assert.match(result.stdout, new RegExp(flag));
});

void test('mpg model generate rejects a bad option with exit code 2 and a message on stderr', async () => {
  for (const argv of [
    ['--seed', '-1'],
    ['--seed', 'x'],
    ['--colour', 'blue'],
  ]) {
    const result = await runGenerate(argv);
    assert.equal(result.code, 2, argv.join(' '));
    assert.equal(result.stdout, '');
    assert.match(result.stderr, argv[0] === '--colour' ? /unknown option --colour/ : /--seed must be an integer/);
  }
});

void test('decodeOnnxModel rejects bytes that are not an ONNX model', () => {
  assert.throws(() => decodeOnnxModel(new TextEncoder().encode('{"not":"onnx"}')), /ONNX model/);
  assert.throws(() => decodeOnnxModel(buildResNet18({ seed: 0 }).subarray(0, 1000)), /not a well-formed ONNX model/);
});

void test('buildResNet18 rejects a seed that is not a non-negative integer', () => {
  for (const seed of [-1, 1.5, Number.NaN]) assert.throws(() => buildResNet18({ seed }), RangeError);
});
