// A cache of onnxruntime-optimised copies of the model.
//
// Optimising ResNet18 at load (fusing BatchNorm into Conv, choosing NCHWc layouts) costs about
// 100 ms, and glibc keeps the memory onnxruntime frees along the way: ~100 MiB more RSS for the
// life of the process. Loading the already-optimised graph with optimisation off skips both.
// The optimised graph can hold CPU-specific layouts, so the cache key includes the CPU model and
// flags as well as the onnxruntime version and the source file's identity (path, size, inode,
// modification time). Beside each optimised graph, a small JSON file keeps the source's SHA-256,
// so a warm start does not read and hash the whole model again.
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { cpus } from 'node:os';
import { basename, join } from 'node:path';
import * as ort from 'onnxruntime-node';

const CACHE_FORMAT = 1;

export interface SourceIdentity {
  sha256: string;
  bytes: number;
}

export interface OptimizedModelPlan {
  /** The file onnxruntime should load. */
  loadPath: string;
  graphOptimizationLevel: 'all' | 'disabled';
  /** When set, onnxruntime writes the optimised graph here; commit() moves it into the cache. */
  optimizedModelFilePath?: string;
  /** 'hit', 'miss' (will be written) or 'off'. */
  cache: 'hit' | 'miss' | 'off';
  /** On a hit, the source's checksum as recorded when the cache entry was written. */
  source?: SourceIdentity;
  commit(source: SourceIdentity): Promise<void>;
  discard(): Promise<void>;
}

function cpuFlags(): string {
  try {
    return /^flags\s*:\s*(.*)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? '';
  } catch {
    return '';
  }
}

async function writableDirectory(directory: string): Promise<boolean> {
  try {
    await mkdir(directory, { recursive: true });
    return true;
  } catch {
    return false;
  }
}

export async function planOptimizedModel(
  modelPath: string,
  cacheDirectory: string | undefined,
): Promise<OptimizedModelPlan> {
  const noop = async () => {};
  const uncached: OptimizedModelPlan = {
    loadPath: modelPath,
    graphOptimizationLevel: 'all',
    cache: 'off',
    commit: noop,
    discard: noop,
  };
  if (!cacheDirectory || !(await writableDirectory(cacheDirectory))) return uncached;

  const file = await stat(modelPath);
  const key = createHash('sha256')
    .update(
      JSON.stringify([
        CACHE_FORMAT,
        modelPath,
        file.size,
        file.mtimeMs,
        file.ino,
        ort.env.versions.common,
        cpus()[0]?.model,
        cpuFlags(),
      ]),
    )
    .digest('hex')
    .slice(0, 24);
  const cached = join(cacheDirectory, `${basename(modelPath).replace(/\.onnx$/i, '')}-${key}.onnx`);
  const sidecar = `${cached}.json`;
  const hit = await stat(cached).then(
    (found) => found.isFile() && found.size > 0,
    () => false,
  );
  const recorded = hit ? await readSource(sidecar) : undefined;
  if (hit && recorded) {
    return {
      loadPath: cached,
      graphOptimizationLevel: 'disabled',
      cache: 'hit',
      source: recorded,
      commit: noop,
      discard: async () => {
        await rm(cached, { force: true });
        await rm(sidecar, { force: true });
      },
    };
  }
  const partial = `${cached}.partial-${process.pid}-${randomBytes(4).toString('hex')}`;
  return {
    loadPath: modelPath,
    graphOptimizationLevel: 'all',
    optimizedModelFilePath: partial,
    cache: 'miss',
    async commit(identity) {
      await writeFile(sidecar, JSON.stringify(identity) + '\n');
      await rename(partial, cached);
    },
    discard: () => rm(partial, { force: true }),
  };
}

async function readSource(sidecar: string): Promise<SourceIdentity | undefined> {
  try {
    const parsed = JSON.parse(await readFile(sidecar, 'utf8')) as Partial<SourceIdentity>;
    if (typeof parsed.sha256 === 'string' && /^[0-9a-f]{64}$/.test(parsed.sha256) && typeof parsed.bytes === 'number') {
      return { sha256: parsed.sha256, bytes: parsed.bytes };
    }
  } catch {
    // A missing or unreadable record means the entry is rebuilt.
  }
  return undefined;
}
