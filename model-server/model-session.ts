// Loads an ONNX image classifier into onnxruntime and checks it honours the input contract
// ([N,3,224,224] float32, one [N,classes] output) before anything is served.
import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import * as ort from 'onnxruntime-node';
import { planOptimizedModel } from './optimized-model.js';
import { CHANNELS, CROP_SIZE, IMAGE_ELEMENTS } from './preprocess.js';

export interface ModelSessionOptions {
  path: string;
  name?: string;
  threads: number;
  labels?: readonly string[];
  /** Labels used when the model has exactly this many classes and no labels were given. */
  defaultLabels?: readonly string[];
  /** Where optimised copies of the model are kept; undefined turns the cache off. */
  cacheDirectory?: string;
  log?: (fields: Record<string, unknown>, line: string) => void;
}

export interface ModelSession {
  readonly name: string;
  readonly path: string;
  readonly sha256: string;
  readonly fileBytes: number;
  /** Whether the optimised graph came from the cache. */
  readonly optimizedCache: 'hit' | 'miss' | 'off';
  readonly inputName: string;
  readonly outputName: string;
  readonly inputShape: readonly (number | string)[];
  readonly classes: number;
  readonly labels: readonly string[];
  readonly threads: number;
  /** Runs `count` images laid out back to back in `input`; resolves to [count, classes] logits. */
  readonly run: (input: Float32Array, count: number) => Promise<Float32Array>;
  readonly release: () => Promise<void>;
}

export class ModelContractError extends Error {
  override name = 'ModelContractError';
}

function describeShape(shape: readonly (number | string)[]): string {
  return `[${shape.join(',')}]`;
}

/** SHA-256 of a file, read and hashed on libuv's thread pool while the main thread loads the model. */
async function hashFile(path: string): Promise<{ sha256: string; bytes: number }> {
  const file = await readFile(path);
  const digest = await crypto.subtle.digest('SHA-256', file);
  return { sha256: Buffer.from(digest).toString('hex'), bytes: file.length };
}

export async function loadModelSession(options: ModelSessionOptions): Promise<ModelSession> {
  const hashing = hashFile(options.path);
  hashing.catch(() => {}); // awaited below; this only keeps an early failure from being unhandled
  const plan = await planOptimizedModel(options.path, options.cacheDirectory);
  let session: ort.InferenceSession;
  try {
    session = await ort.InferenceSession.create(plan.loadPath, {
      intraOpNumThreads: options.threads,
      interOpNumThreads: 1,
      executionMode: 'sequential',
      graphOptimizationLevel: plan.graphOptimizationLevel,
      enableCpuMemArena: true,
      enableMemPattern: true,
      // Warnings only say that an optimised graph is CPU-specific, which the cache key accounts for.
      logSeverityLevel: 3,
      ...(plan.optimizedModelFilePath ? { optimizedModelFilePath: plan.optimizedModelFilePath } : {}),
    });
  } catch (error) {
    await plan.discard();
    if (plan.cache !== 'hit') throw error;
    options.log?.({ err: error }, 'the cached optimised model did not load; optimising the original again');
    return loadModelSession({ ...options, cacheDirectory: undefined });
  }
  await plan.commit().catch(async (error: unknown) => {
    options.log?.({ err: error }, 'could not keep the optimised model in the cache');
    await plan.discard();
  });
  const { sha256, bytes: fileBytes } = await hashing;

  const input = session.inputMetadata[0];
  const output = session.outputMetadata[0];
  if (!input?.isTensor || !output?.isTensor || session.inputMetadata.length !== 1) {
    await session.release();
    throw new ModelContractError(`${options.path}: the model must have one tensor input and a tensor output`);
  }
  const inputShape = input.shape;
  const [, channels, height, width] = inputShape;
  if (input.type !== 'float32' || inputShape.length !== 4 || channels !== CHANNELS || height !== CROP_SIZE || width !== CROP_SIZE) {
    await session.release();
    throw new ModelContractError(
      `${options.path}: the model input must be float32 [N,3,224,224], got ${input.type} ${describeShape(inputShape)}`,
    );
  }

  const run = async (batch: Float32Array, count: number): Promise<Float32Array> => {
    const tensor = new ort.Tensor('float32', batch.subarray(0, count * IMAGE_ELEMENTS), [count, CHANNELS, CROP_SIZE, CROP_SIZE]);
    const results = await session.run({ [input.name]: tensor });
    const logits = results[output.name];
    if (!logits || logits.type !== 'float32' || logits.dims.length !== 2 || logits.dims[0] !== count) {
      throw new ModelContractError(`the model output must be float32 [N,classes], got ${describeShape(logits?.dims ?? [])}`);
    }
    const data = logits.data as Float32Array;
    return data;
  };

  // The class count comes from the output shape when it is static, otherwise from one run.
  const declaredClasses = output.shape[1];
  const classes =
    typeof declaredClasses === 'number' && declaredClasses > 0
      ? declaredClasses
      : (await run(new Float32Array(IMAGE_ELEMENTS), 1)).length;

  let labels = options.labels;
  if (labels && labels.length !== classes) {
    await session.release();
    throw new ModelContractError(`the labels list has ${labels.length} names but the model has ${classes} classes`);
  }
  if (!labels) {
    labels = options.defaultLabels?.length === classes ? options.defaultLabels : Array.from({ length: classes }, (_, index) => `class ${index}`);
  }

  return Object.freeze({
    name: options.name ?? basename(options.path).replace(/\.onnx$/i, ''),
    path: options.path,
    sha256,
    fileBytes,
    optimizedCache: plan.cache,
    inputName: input.name,
    outputName: output.name,
    inputShape: Object.freeze([...inputShape]),
    classes,
    labels,
    threads: options.threads,
    run,
    release: () => session.release(),
  });
}
