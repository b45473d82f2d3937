// The self-contained HTML page: the same sections with their charts inline as SVG, no script,
// no external resource; prints one chart per block without splitting it.
import type { Section, Table } from './content.js';
import { escapeXml } from './svg.js';

/** Markdown's **bold** and `code`, the only inline marks the sections use. */
function inline(text: string): string {
  return escapeXml(text)
    .replace(/\*\*([^*]+)\*\*/g, '<strong>$1</strong>')
    .replace(/`([^`]+)`/g, '<code>$1</code>');
}

function htmlTable(table: Table): string {
  const head = `<tr>${table.headers.map((header) => `<th>${inline(header)}</th>`).join('')}</tr>`;
  const body = table.rows
    .map(
      (row) =>
        `<tr>${row.map((value, index) => `<td${index > 0 && /^[\d.,–x%\s/()-]+$/.test(value) ? ' class="number"' : ''}>${inline(value)}</td>`).join('')}</tr>`,
    )
    .join('\n');
  return `<table>${table.caption ? `<caption>${inline(table.caption)}</caption>` : ''}<thead>${head}</thead><tbody>\n${body}\n</tbody></table>`;
}

const STYLE = `
body { font-family: system-ui, sans-serif; max-width: 980px; margin: 2em auto; padding: 0 1em; color: #222; line-height: 1.45; }
h1 { font-size: 1.6em; } h2 { margin-top: 2em; border-bottom: 1px solid #ddd; padding-bottom: .2em; }
table { border-collapse: collapse; margin: 1em 0; font-size: .9em; }
caption { text-align: left; font-weight: 600; padding: .3em 0; }
th, td { border: 1px solid #ccc; padding: .25em .5em; } th { background: #f3f3f3; }
td.number { text-align: right; font-variant-numeric: tabular-nums; }
figure { margin: 1em 0; break-inside: avoid; page-break-inside: avoid; }
svg { max-width: 100%; height: auto; }
code { background: #f3f3f3; padding: 0 .2em; }
nav a { margin-right: 1em; }
@media print { body { max-width: none; margin: 0; } nav { display: none; } h2 { break-after: avoid; } }
`;

export function renderHtml(sections: Section[], title: string): string {
  const nav = sections.map((section) => `<a href="#${section.id}">${escapeXml(section.title)}</a>`).join('');
  const body = sections
    .map((section) =>
      [
        `<section id="${section.id}"><h2>${escapeXml(section.title)}</h2>`,
        ...section.paragraphs.map((paragraph) => `<p>${inline(paragraph)}</p>`),
        ...section.charts.map((chart) => `<figure>${chart}</figure>`),
        ...section.tables.map(htmlTable),
        '</section>',
      ].join('\n'),
    )
    .join('\n');
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeXml(title)}</title>
<style>${STYLE}</style>
</head>
<body>
<h1>${escapeXml(title)}</h1>
<nav>${nav}</nav>
${body}
</body>
</html>
`;
}
