// The Markdown summary: every section's paragraphs and tables; the charts are in report.html.
import type { Section, Table } from './content.js';

const cell = (text: string) => text.replace(/\|/g, '\\|').replace(/\n/g, ' ');

export function markdownTable(table: Table): string {
  const lines = [
    `| ${table.headers.map(cell).join(' | ')} |`,
    `|${table.headers.map(() => '---').join('|')}|`,
    ...table.rows.map((row) => `| ${row.map(cell).join(' | ')} |`),
  ];
  return (table.caption ? `${table.caption}:\n\n` : '') + lines.join('\n');
}

export function renderMarkdown(sections: Section[], title: string): string {
  const parts = [`# ${title}`, '', 'Charts: see report.html beside this file.'];
  for (const section of sections) {
    parts.push('', `## ${section.title}`);
    for (const paragraph of section.paragraphs) parts.push('', paragraph);
    for (const table of section.tables) parts.push('', markdownTable(table));
  }
  return parts.join('\n') + '\n';
}
