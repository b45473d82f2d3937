// Rendering a run: report.md and report.html beside its result.json.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { readResult } from '../results.js';

export async function renderReport(directory: string, compare?: string): Promise<string[]> {
  const result = await readResult(directory);
  const other = compare === undefined ? undefined : await readResult(compare);
  const markdown = join(directory.endsWith('.json') ? join(directory, '..') : directory, 'report.md');
  await writeFile(markdown, `# placeholder ${result.startedAt} ${other?.startedAt ?? ''}\n`);
  return [markdown];
}
