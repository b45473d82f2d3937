// Where the model server looks for its model when told nothing, and the first-run step that puts
// a model there, so a fresh checkout serves without a download.
import { existsSync, readFileSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeResNet18 } from './resnet18.js';

const PACKAGE_NAME = 'mixed-privacy-gateway';

/**
 * The package root, found by walking up to our own package.json rather than counting levels:
 * this module runs as dist/model/default-model.js, but also from source under a TypeScript
 * loader or from a bundle, where the depth differs.
 */
function findPackageRoot(start: string): string {
  for (let dir = start; ; dir = dirname(dir)) {
    const manifest = join(dir, 'package.json');
    if (existsSync(manifest) && readPackageName(manifest) === PACKAGE_NAME) return dir;
    if (dirname(dir) === dir) break;
  }
  // Not found (e.g. copied without its package.json): assume the compiled layout, dist/model/.
  return resolve(start, '..', '..');
}

function readPackageName(manifest: string): string | undefined {
  try {
    const parsed = JSON.parse(readFileSync(manifest, 'utf8')) as { name?: unknown };
    return typeof parsed.name === 'string' ? parsed.name : undefined;
  } catch {
    return undefined;
  }
}

export const DEFAULT_MODEL_PATH = join(
  findPackageRoot(dirname(fileURLToPath(import.meta.url))),
  'models',
  'resnet18.onnx',
);

/** Generates the default ResNet18 (seed 0) at `path` unless a file is already there. */
export async function ensureModel(
  path: string,
  log: (line: string) => void = () => {},
): Promise<{ generated: boolean }> {
  const existing = await stat(path).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return undefined;
    throw error;
  });
  if (existing) {
    if (!existing.isFile()) throw new Error(`model path ${path} exists but is not a file`);
    return { generated: false };
  }
  log(`no model at ${path}; generating ResNet18 with seeded random weights (seed 0)`);
  const started = performance.now();
  const written = await writeResNet18(path, { seed: 0 });
  const seconds = ((performance.now() - started) / 1000).toFixed(2);
  log(`wrote ${written.path} (${written.bytes} bytes, sha256 ${written.sha256}) in ${seconds} s`);
  return { generated: true };
}
