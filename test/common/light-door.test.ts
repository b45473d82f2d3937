// Every component imports common/, so its door must not load the heavy libraries: sharp (the
// sample image), pino (the JSON-line log) and onnxruntime (the environment probe) load only when
// one of those is used (a dynamic import or a require at the first call).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';

const COMMON_DOOR = fileURLToPath(new URL('../../common/index.js', import.meta.url));
// Static imports and re-exports only: `import(...)` and createRequire are what loads on demand.
const STATIC_IMPORT = /^(?:import|export)\s[^;]*?\sfrom\s+'([^']+)';|^import\s+'([^']+)';/gm;

/** The packages (and node: modules) loaded by importing `file`, following its relative static imports. */
function staticallyLoaded(file: string, seen = new Set<string>()): Set<string> {
  const packages = new Set<string>();
  if (seen.has(file)) return packages;
  seen.add(file);
  for (const match of readFileSync(file, 'utf8').matchAll(STATIC_IMPORT)) {
    const specifier = match[1] ?? match[2]!;
    if (specifier.startsWith('.'))
      for (const name of staticallyLoaded(join(dirname(file), specifier), seen)) packages.add(name);
    else packages.add(specifier);
  }
  return packages;
}

test('importing common/ loads node: modules only, no npm package', () => {
  const loaded = [...staticallyLoaded(COMMON_DOOR)];
  assert.ok(loaded.includes('node:fs'), 'the walk follows the re-exports');
  assert.deepEqual(
    loaded.filter((name) => !name.startsWith('node:')),
    [],
  );
});
