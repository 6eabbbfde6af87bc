/**
 * The hit-ratio figure: for each skew a line chart (tools/bench/src/svg.ts's lineChart, reused as is)
 * of hit ratio against cache size on a log x axis, stacked into one SVG.
 */
import { escapeXml, lineChart, type Series } from '../svg.js';

export interface CurveSet {
  skew: number;
  /** Cache sizes, % of the catalogue. */
  sizesPct: number[];
  opt: number[];
  lru: number[];
  che: number[];
  /** The top C books by true popularity cached for good (an ideal LFU). */
  topC?: number[];
  tinyLfu?: Array<number | undefined>;
  front?: Array<number | undefined>;
}

/** "0.1 %", "2 %": a size's label. */
export function pctLabel(pct: number): string {
  return `${Number(pct.toPrecision(3))} %`;
}

/**
 * lineChart spaces its x values linearly and labels each with its value: it is given log10 of the
 * sizes, and the labels under the axis (its first `labels.length` centred grey texts, in order) are
 * then replaced by the sizes themselves.
 */
export function relabelXTicks(svg: string, labels: string[]): string {
  let i = 0;
  return svg.replace(/(<text [^>]*text-anchor="middle" fill="#555">)([^<]*)(<\/text>)/g, (all, a, _v, b) =>
    i < labels.length ? `${a}${escapeXml(labels[i++] as string)}${b}` : all,
  );
}

export function hitRatioChart(set: CurveSet, subtitle: string, width = 820, height = 430): string {
  const series: Series[] = [
    { name: 'OPT (Belady)', values: set.opt, color: 4 },
    { name: 'LRU simulated', values: set.lru, color: 0 },
    { name: 'LRU, Che', values: set.che, color: 7, dashed: true },
  ];
  if (set.topC) series.push({ name: 'ideal LFU (top C)', values: set.topC, color: 1, dashed: true });
  if (set.tinyLfu?.some((v) => v !== undefined)) {
    series.push({ name: 'W-TinyLFU simulated', values: set.tinyLfu, color: 6 });
  }
  if (set.front?.some((v) => v !== undefined)) {
    series.push({ name: 'front measured', values: set.front, color: 2 });
  }
  const svg = lineChart({
    title: `Hit ratio by cache size, Zipf s = ${set.skew}`,
    subtitle,
    yLabel: 'hit ratio',
    xLabel: 'cache size, % of the catalogue (log scale)',
    xs: set.sizesPct.map((p) => Math.log10(p)),
    series,
    width,
    height,
  });
  return relabelXTicks(svg, set.sizesPct.map(pctLabel));
}

/** The charts one above the other in one SVG (each a nested <svg> at its offset). */
export function stackCharts(charts: string[], width = 820, height = 430): string {
  const inner = charts.map((c, i) => c.replace(/^<svg /, `<svg x="0" y="${i * height}" `).replace(/\n$/, ''));
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height * charts.length}" viewBox="0 0 ${width} ${height * charts.length}">`,
    ...inner,
    '</svg>',
    '',
  ].join('\n');
}
