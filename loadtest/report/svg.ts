// Hand-written SVG charts: bars with labelled axes and values, lines with markers and a legend.
// Readable without JavaScript and in print; every bar and point carries data-* attributes with
// its series and value, so a test (or a curious reader) can check what was drawn.

export interface Series {
  name: string;
  colour: string;
  /** Dashed lines (through the gateway), or hatched bars (the study's figures). */
  dashed?: boolean;
  hatched?: boolean;
}

const WIDTH = 720;
const MARGIN = { top: 40, right: 20, bottom: 70, left: 70 };
const FONT = 'font-family="system-ui, sans-serif"';

export function escapeXml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** Round numbers for an axis from 0 to at least `max`. */
export function niceTicks(max: number, count = 5): number[] {
  if (!(max > 0)) return [0, 1];
  const rough = max / count;
  const magnitude = 10 ** Math.floor(Math.log10(rough));
  const step = [1, 2, 2.5, 5, 10].map((factor) => factor * magnitude).find((candidate) => candidate >= rough) ?? rough;
  const ticks: number[] = [];
  for (let value = 0; value < max + step * 0.999; value += step) ticks.push(Number(value.toPrecision(12)));
  return ticks;
}

export function formatNumber(value: number): string {
  if (value === 0) return '0';
  const magnitude = Math.abs(value);
  if (magnitude >= 1000) return Math.round(value).toLocaleString('en-US');
  if (magnitude >= 100) return value.toFixed(0);
  if (magnitude >= 10) return value.toFixed(1);
  if (magnitude >= 1) return value.toFixed(2);
  return value.toPrecision(2);
}

const LEGEND_ROW = 16;

/** The legend, wrapped into rows that fit the width; starts at `y` and grows downwards. */
function legend(series: readonly Series[], y: number): { svg: string; rows: number } {
  let x = MARGIN.left;
  let row = 0;
  const entries = series.map((item) => {
    const width = 28 + item.name.length * 6.5;
    if (x + width > WIDTH - MARGIN.right && x > MARGIN.left) {
      row++;
      x = MARGIN.left;
    }
    const top = y + row * LEGEND_ROW;
    const swatch = item.hatched
      ? `<rect x="${x}" y="${top - 9}" width="14" height="10" fill="url(#hatch)" stroke="${item.colour}"/>`
      : `<line x1="${x}" y1="${top - 4}" x2="${x + 14}" y2="${top - 4}" stroke="${item.colour}" stroke-width="3"${item.dashed ? ' stroke-dasharray="5 3"' : ''}/>`;
    const entry = `<g class="legend-entry" data-series="${escapeXml(item.name)}">${swatch}<text x="${x + 18}" y="${top}" font-size="12" ${FONT}>${escapeXml(item.name)}</text></g>`;
    x += width;
    return entry;
  });
  return { svg: entries.join(''), rows: row + 1 };
}

function frame(title: string, height: number, body: string, description: string): string {
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${WIDTH} ${height}" width="${WIDTH}" height="${height}" role="img" aria-label="${escapeXml(title)}">`,
    `<title>${escapeXml(title)}</title><desc>${escapeXml(description)}</desc>`,
    '<defs><pattern id="hatch" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><rect width="6" height="6" fill="#fff"/><line x1="0" y1="0" x2="0" y2="6" stroke="#888" stroke-width="3"/></pattern></defs>',
    `<rect width="${WIDTH}" height="${height}" fill="#fff"/>`,
    `<text x="${WIDTH / 2}" y="20" text-anchor="middle" font-size="15" font-weight="600" ${FONT}>${escapeXml(title)}</text>`,
    body,
    '</svg>',
  ].join('\n');
}

/** Axis labels: as short as the value allows (5, 2.5, 1000). */
const tickLabel = (value: number) => String(Number(value.toPrecision(6)));

function yAxis(
  ticks: number[],
  scale: (value: number) => number,
  plotWidth: number,
  label: string,
  plotHeight: number,
): string {
  const lines = ticks
    .map((tick) => {
      const y = scale(tick);
      return `<line x1="${MARGIN.left}" y1="${y}" x2="${MARGIN.left + plotWidth}" y2="${y}" stroke="#e3e3e3"/><text x="${MARGIN.left - 6}" y="${y + 4}" text-anchor="end" font-size="11" ${FONT}>${tickLabel(tick)}</text>`;
    })
    .join('');
  const middle = MARGIN.top + plotHeight / 2;
  return `${lines}<line x1="${MARGIN.left}" y1="${MARGIN.top}" x2="${MARGIN.left}" y2="${MARGIN.top + plotHeight}" stroke="#333"/><text x="16" y="${middle}" text-anchor="middle" font-size="12" transform="rotate(-90 16 ${middle})" ${FONT}>${escapeXml(label)}</text>`;
}

export interface BarGroup {
  label: string;
  /** One value per series, in the series' order; null draws nothing. */
  values: (number | null)[];
  /** Optional whiskers (min, max) per series. */
  ranges?: ([number, number] | null)[];
}

export function barChart(options: {
  title: string;
  yLabel: string;
  series: Series[];
  groups: BarGroup[];
  height?: number;
}): string {
  const height = options.height ?? 360;
  const plotHeight = height - MARGIN.top - MARGIN.bottom;
  const plotWidth = WIDTH - MARGIN.left - MARGIN.right;
  const all = options.groups
    .flatMap((group) => [...group.values, ...(group.ranges ?? []).map((range) => range?.[1] ?? null)])
    .filter((value): value is number => value !== null);
  const ticks = niceTicks(Math.max(...all, 0) * 1.1);
  const top = ticks.at(-1)!;
  const scale = (value: number) => MARGIN.top + plotHeight - (value / top) * plotHeight;
  const groupWidth = plotWidth / Math.max(1, options.groups.length);
  const barWidth = Math.min(60, (groupWidth * 0.8) / options.series.length);
  const bars = options.groups
    .map((group, groupIndex) => {
      const start = MARGIN.left + groupIndex * groupWidth + (groupWidth - barWidth * options.series.length) / 2;
      const drawn = options.series
        .map((series, seriesIndex) => {
          const value = group.values[seriesIndex];
          if (value === null || value === undefined) return '';
          const x = start + seriesIndex * barWidth;
          const y = scale(value);
          const fill = series.hatched ? 'url(#hatch)' : series.colour;
          const range = group.ranges?.[seriesIndex];
          const whisker = range
            ? `<line class="range" x1="${x + barWidth / 2}" y1="${scale(range[0])}" x2="${x + barWidth / 2}" y2="${scale(range[1])}" stroke="#222" stroke-width="1.5"/>`
            : '';
          return (
            `<g class="bar" data-series="${escapeXml(series.name)}" data-group="${escapeXml(group.label)}" data-value="${value}">` +
            `<rect x="${x + 1}" y="${y}" width="${barWidth - 2}" height="${scale(0) - y}" fill="${fill}" stroke="${series.colour}"/>${whisker}` +
            `<text x="${x + barWidth / 2}" y="${Math.min(y, range ? scale(range[1]) : y) - 4}" text-anchor="middle" font-size="11" ${FONT}>${formatNumber(value)}</text></g>`
          );
        })
        .join('');
      return `${drawn}<text x="${MARGIN.left + groupIndex * groupWidth + groupWidth / 2}" y="${MARGIN.top + plotHeight + 16}" text-anchor="middle" font-size="12" ${FONT}>${escapeXml(group.label)}</text>`;
    })
    .join('\n');
  const axis = `<line x1="${MARGIN.left}" y1="${scale(0)}" x2="${MARGIN.left + plotWidth}" y2="${scale(0)}" stroke="#333"/>`;
  const description = options.groups
    .map(
      (group) =>
        `${group.label}: ${options.series.map((series, index) => `${series.name} ${group.values[index] ?? 'n/a'}`).join(', ')}`,
    )
    .join('; ');
  const key = legend(options.series, height - 18);
  return frame(
    options.title,
    height + (key.rows - 1) * LEGEND_ROW,
    `${yAxis(ticks, scale, plotWidth, options.yLabel, plotHeight)}${axis}\n${bars}\n${key.svg}`,
    description,
  );
}

export interface LineSeries extends Series {
  points: { x: number; y: number | null }[];
}

/**
 * Lines over x values: 'category' spaces the given x values evenly (concurrency 1..300 reads
 * better so), 'linear' places them by value (a fraction from 0 to 1).
 */
export function lineChart(options: {
  title: string;
  xLabel: string;
  yLabel: string;
  xs: number[];
  xScale: 'category' | 'linear';
  series: LineSeries[];
  height?: number;
  xFormat?: (x: number) => string;
}): string {
  const height = options.height ?? 380;
  const plotHeight = height - MARGIN.top - MARGIN.bottom;
  const plotWidth = WIDTH - MARGIN.left - MARGIN.right;
  const values = options.series
    .flatMap((series) => series.points.map((point) => point.y))
    .filter((value): value is number => value !== null);
  const ticks = niceTicks(Math.max(...values, 0) * 1.05);
  const top = ticks.at(-1)!;
  const yScale = (value: number) => MARGIN.top + plotHeight - (value / top) * plotHeight;
  const xs = [...options.xs];
  const inset = 24;
  const minX = Math.min(...xs);
  const maxX = Math.max(...xs);
  const xScale = (x: number) =>
    options.xScale === 'category'
      ? MARGIN.left +
        inset +
        (xs.length === 1 ? (plotWidth - 2 * inset) / 2 : (xs.indexOf(x) / (xs.length - 1)) * (plotWidth - 2 * inset))
      : MARGIN.left +
        inset +
        (maxX === minX ? (plotWidth - 2 * inset) / 2 : ((x - minX) / (maxX - minX)) * (plotWidth - 2 * inset));
  const xFormat = options.xFormat ?? tickLabel;
  const xAxis =
    `<line x1="${MARGIN.left}" y1="${yScale(0)}" x2="${MARGIN.left + plotWidth}" y2="${yScale(0)}" stroke="#333"/>` +
    xs
      .map(
        (x) =>
          `<line x1="${xScale(x)}" y1="${yScale(0)}" x2="${xScale(x)}" y2="${yScale(0) + 4}" stroke="#333"/><text x="${xScale(x)}" y="${yScale(0) + 17}" text-anchor="middle" font-size="11" ${FONT}>${escapeXml(xFormat(x))}</text>`,
      )
      .join('') +
    `<text x="${MARGIN.left + plotWidth / 2}" y="${yScale(0) + 36}" text-anchor="middle" font-size="12" ${FONT}>${escapeXml(options.xLabel)}</text>`;
  const lines = options.series
    .map((series) => {
      const drawn = series.points.filter(
        (point): point is { x: number; y: number } => point.y !== null && xs.includes(point.x),
      );
      const path = drawn
        .map((point, index) => `${index === 0 ? 'M' : 'L'}${xScale(point.x).toFixed(1)},${yScale(point.y).toFixed(1)}`)
        .join(' ');
      const markers = drawn
        .map(
          (point) =>
            `<circle class="point" cx="${xScale(point.x).toFixed(1)}" cy="${yScale(point.y).toFixed(1)}" r="3.5" fill="${series.colour}" data-x="${point.x}" data-y="${point.y}"><title>${escapeXml(`${series.name}: ${xFormat(point.x)} -> ${formatNumber(point.y)}`)}</title></circle>`,
        )
        .join('');
      return `<g class="series" data-series="${escapeXml(series.name)}"><path d="${path}" fill="none" stroke="${series.colour}" stroke-width="2"${series.dashed ? ' stroke-dasharray="6 4"' : ''}/>${markers}</g>`;
    })
    .join('\n');
  const description = options.series
    .map(
      (series) =>
        `${series.name}: ${series.points.map((point) => `${xFormat(point.x)} -> ${point.y ?? 'n/a'}`).join(', ')}`,
    )
    .join('; ');
  const key = legend(options.series, height - 12);
  return frame(
    options.title,
    height + (key.rows - 1) * LEGEND_ROW,
    `${yAxis(ticks, yScale, plotWidth, options.yLabel, plotHeight)}${xAxis}\n${lines}\n${key.svg}`,
    description,
  );
}
