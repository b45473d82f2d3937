// `mpg loadtest report DIR [--compare DIR]`: report.md and report.html beside DIR/result.json.
import { writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { readResult } from '../results.js';
import { buildSections } from './content.js';
import { renderHtml } from './html.js';
import { renderMarkdown } from './markdown.js';

export const REPORT_TITLE = 'What privacy costs: mpg loadtest';

/** Renders the run in `path` (a directory, or its result.json); returns the files written. */
export async function renderReport(path: string, compare?: string): Promise<string[]> {
  const result = await readResult(path);
  const other = compare === undefined ? undefined : await readResult(compare);
  const directory = path.endsWith('.json') ? dirname(path) : path;
  const sections = buildSections(result, other);
  const title = other ? `${REPORT_TITLE} (A against B)` : REPORT_TITLE;
  const markdown = join(directory, 'report.md');
  const html = join(directory, 'report.html');
  await writeFile(markdown, renderMarkdown(sections, title));
  await writeFile(html, renderHtml(sections, title));
  return [markdown, html];
}
