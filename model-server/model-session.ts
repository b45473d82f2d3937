// Loads an ONNX image classifier into onnxruntime and checks it honours the input contract
// ([N,3,224,224] float32, one [N,classes] output) before anything is served. Runs inside the
// inference worker: onnxruntime-node's run() computes on the calling thread.
import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import * as ort from 'onnxruntime-node';
import { planOptimizedModel } from './optimized-model.js';
import { ModelContractError } from './inference-protocol.js';
import { CHANNELS, CROP_SIZE, IMAGE_ELEMENTS } from './tensor-layout.js';

export interface ModelSessionOptions {
  path: string;
  name?: string;
  threads: number;
  /** Where optimised copies of the model are kept; undefined turns the cache off. */
  cacheDirectory?: string;
  /** Run one image through the model before reporting ready. */
  warmup: boolean;
  /** Let onnxruntime's threads spin between operators instead of sleeping. */
  spinWait: boolean;
}

/** What is known of a loaded model; plain data, so it can cross from the worker. */
export interface ModelDescription {
  name: string;
  path: string;
  sha256: string;
  fileBytes: number;
  /** Whether the optimised graph came from the cache. */
  optimizedCache: 'hit' | 'miss' | 'off';
  inputName: string;
  outputName: string;
  inputShape: (number | string)[];
  classes: number;
  threads: number;
  onnxruntime: string;
  /** Problems worth a log line that did not stop the load. */
  warnings: string[];
}

export interface ModelSession {
  readonly description: ModelDescription;
  /** Runs `count` images laid out back to back in `input`; resolves to [count, classes] logits. */
  readonly run: (input: Float32Array, count: number) => Promise<Float32Array>;
  readonly release: () => Promise<void>;
}

export { ModelContractError };

function describeShape(shape: readonly (number | string)[]): string {
  return `[${shape.join(',')}]`;
}

async function hashFile(path: string): Promise<{ sha256: string; bytes: number }> {
  const file = await readFile(path);
  const digest = await crypto.subtle.digest('SHA-256', file);
  return { sha256: Buffer.from(digest).toString('hex'), bytes: file.length };
}

async function createSession(options: ModelSessionOptions, warnings: string[]) {
  const plan = await planOptimizedModel(options.path, options.cacheDirectory);
  // Read and hashed on libuv's thread pool while this thread loads the model.
  const hashing = plan.source ? Promise.resolve(plan.source) : hashFile(options.path);
  hashing.catch(() => {}); // awaited below; this only keeps an early failure from being unhandled
  try {
    const session = await ort.InferenceSession.create(plan.loadPath, {
      intraOpNumThreads: options.threads,
      interOpNumThreads: 1,
      executionMode: 'sequential',
      graphOptimizationLevel: plan.graphOptimizationLevel,
      enableCpuMemArena: true,
      enableMemPattern: true,
      // Warnings only say that an optimised graph is CPU-specific, which the cache key accounts for.
      logSeverityLevel: 3,
      extra: { session: { intra_op: { allow_spinning: options.spinWait ? '1' : '0' } } },
      ...(plan.optimizedModelFilePath ? { optimizedModelFilePath: plan.optimizedModelFilePath } : {}),
    });
    const source = await hashing;
    await plan.commit(source).catch(async (error: unknown) => {
      warnings.push(`could not keep the optimised model in the cache: ${(error as Error).message}`);
      await plan.discard();
    });
    return { session, cache: plan.cache, source };
  } catch (error) {
    await plan.discard();
    if (plan.cache !== 'hit') throw error;
    warnings.push(
      `the cached optimised model did not load (${(error as Error).message}); optimised the original again`,
    );
    const session = await ort.InferenceSession.create(options.path, {
      intraOpNumThreads: options.threads,
      logSeverityLevel: 3,
    });
    return { session, cache: 'off' as const, source: await hashFile(options.path) };
  }
}

export async function loadModelSession(options: ModelSessionOptions): Promise<ModelSession> {
  const warnings: string[] = [];
  const { session, cache, source } = await createSession(options, warnings);

  const input = session.inputMetadata[0];
  const output = session.outputMetadata[0];
  if (!input?.isTensor || !output?.isTensor || session.inputMetadata.length !== 1) {
    await session.release();
    throw new ModelContractError(`${options.path}: the model must have one tensor input and a tensor output`);
  }
  const inputShape = input.shape;
  const [, channels, height, width] = inputShape;
  if (
    input.type !== 'float32' ||
    inputShape.length !== 4 ||
    channels !== CHANNELS ||
    height !== CROP_SIZE ||
    width !== CROP_SIZE
  ) {
    await session.release();
    throw new ModelContractError(
      `${options.path}: the model input must be float32 [N,3,224,224], got ${input.type} ${describeShape(inputShape)}`,
    );
  }

  const run = async (batch: Float32Array, count: number): Promise<Float32Array> => {
    const tensor = new ort.Tensor('float32', batch.subarray(0, count * IMAGE_ELEMENTS), [
      count,
      CHANNELS,
      CROP_SIZE,
      CROP_SIZE,
    ]);
    const results = await session.run({ [input.name]: tensor });
    const logits = results[output.name];
    if (!logits || logits.type !== 'float32' || logits.dims.length !== 2 || logits.dims[0] !== count) {
      throw new ModelContractError(
        `the model output must be float32 [N,classes], got ${describeShape(logits?.dims ?? [])}`,
      );
    }
    return logits.data as Float32Array;
  };

  // The first run allocates onnxruntime's arena and picks kernels: pay for it before ready. It
  // also gives the class count when the output shape does not declare it.
  const declaredClasses = output.shape[1];
  let classes = typeof declaredClasses === 'number' && declaredClasses > 0 ? declaredClasses : 0;
  if (options.warmup || classes === 0) classes = (await run(new Float32Array(IMAGE_ELEMENTS), 1)).length;

  const { sha256, bytes: fileBytes } = source;
  return {
    description: {
      name: options.name ?? basename(options.path).replace(/\.onnx$/i, ''),
      path: options.path,
      sha256,
      fileBytes,
      optimizedCache: cache,
      inputName: input.name,
      outputName: output.name,
      inputShape: [...inputShape],
      classes,
      threads: options.threads,
      onnxruntime: ort.env.versions.common,
      warnings,
    },
    run,
    release: () => session.release(),
  };
}
