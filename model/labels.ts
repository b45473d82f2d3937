// The 1000 ImageNet class names, in ILSVRC-2012 class index order, that label predictions.
// Source and licence: model/LABELS-NOTICE.md.
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const LABEL_COUNT = 1000;

// The JSON is not compiled: it stays in model/ at the package root while this module runs from
// dist/model/. A copy next to the module (a bundle, or running the sources directly) wins.
const candidates = [
  new URL('./imagenet-labels.json', import.meta.url),
  new URL('../../model/imagenet-labels.json', import.meta.url),
].map((url) => fileURLToPath(url));

function loadLabels(): readonly string[] {
  const path = candidates.find((candidate) => existsSync(candidate));
  if (path === undefined) {
    throw new Error(`imagenet-labels.json not found; looked in: ${candidates.join(', ')}`);
  }
  const parsed: unknown = JSON.parse(readFileSync(path, 'utf8'));
  const valid =
    Array.isArray(parsed) &&
    parsed.length === LABEL_COUNT &&
    parsed.every((label) => typeof label === 'string' && label.trim() !== '');
  if (!valid) throw new Error(`${path} must be a JSON array of ${LABEL_COUNT} non-empty strings`);
  return Object.freeze(parsed as string[]);
}

export const imagenetLabels: readonly string[] = loadLabels();
