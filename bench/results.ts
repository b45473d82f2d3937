// Where every benchmark keeps its figures: results/bench/<name>-<time>.json (git-ignored), the
// environment and configuration beside the figures, so that two runs can be compared.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/** Writes `{benchmark, ...result}` and returns the file's path. */
export async function saveBenchResult(benchmark: string, result: Record<string, unknown>): Promise<string> {
  const directory = join('results', 'bench');
  await mkdir(directory, { recursive: true });
  const file = join(directory, `${benchmark}-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  await writeFile(file, JSON.stringify({ benchmark, ...result }, null, 2) + '\n');
  return file;
}
