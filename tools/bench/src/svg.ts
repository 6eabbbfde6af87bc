/**
 * A tiny SVG plotter for the bench's figures: grouped bar charts and line charts with axes, ticks,
 * value labels and a legend. Plain strings, no dependencies; the output is deterministic for the same
 * numbers, so regenerated figures diff cleanly.
 */

export interface Series {
  name: string;
  values: Array<number | undefined>;
  /** Palette index (default: the series' position), so that related series can share a colour. */
  color?: number;
  /** Line charts: a dashed line (e.g. a floor beside the system measured against it). */
  dashed?: boolean;
}

const colorOf = (s: Series, i: number) => PALETTE[(s.color ?? i) % PALETTE.length];

interface Frame {
  title: string;
  subtitle?: string;
  yLabel: string;
  width?: number;
  height?: number;
}

const PALETTE = ['#4269d0', '#efb118', '#ff725c', '#6cc5b0', '#3ca951', '#ff8ab7', '#a463f2', '#97bbf5'];
const FONT = 'font-family="system-ui, -apple-system, Segoe UI, Helvetica, Arial, sans-serif"';

export function escapeXml(s: string): string {
  return s.replace(
    /[<>&"']/g,
    (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&apos;' })[c] as string,
  );
}

/** Round tick step: 1, 2 or 5 × 10^k, about `count` ticks up to `max`. */
export function niceTicks(max: number, count = 5): number[] {
  if (!(max > 0) || !Number.isFinite(max)) return [0, 1];
  const raw = max / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  const ticks: number[] = [];
  for (let v = 0; v <= max + step * 0.999; v += step) ticks.push(Number(v.toPrecision(12)));
  return ticks;
}

export function fmt(v: number): string {
  if (!Number.isFinite(v)) return '–';
  const a = Math.abs(v);
  if (a >= 10_000) return `${(v / 1000).toFixed(a >= 100_000 ? 0 : 1)}k`;
  if (a >= 100 || Number.isInteger(v)) return v.toFixed(0);
  if (a >= 10) return v.toFixed(1);
  if (a >= 1) return v.toFixed(2);
  return v.toPrecision(2);
}

function text(x: number, y: number, s: string, attrs = ''): string {
  return `<text x="${x.toFixed(1)}" y="${y.toFixed(1)}" ${attrs}>${escapeXml(s)}</text>`;
}

/** Splits a label into lines of at most `max` characters at spaces. */
function wrap(label: string, max: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of label.split(' ')) {
    if (line && (line + ' ' + word).length > max) {
      lines.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  if (line) lines.push(line);
  return lines;
}

function open(f: Frame, w: number, h: number): string[] {
  const out = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}" ${FONT} font-size="12">`,
    `<rect width="${w}" height="${h}" fill="#ffffff"/>`,
    text(16, 24, f.title, 'font-size="16" font-weight="600" fill="#111"'),
  ];
  if (f.subtitle) out.push(text(16, 42, f.subtitle, 'font-size="11" fill="#555"'));
  return out;
}

function legend(series: Series[], x: number, y: number): string[] {
  const out: string[] = [];
  let cx = x;
  series.forEach((s, i) => {
    out.push(
      s.dashed
        ? `<line x1="${cx}" x2="${cx + 10}" y1="${y - 4}" y2="${y - 4}" stroke="${colorOf(s, i)}" stroke-width="2" stroke-dasharray="3 2"/>`
        : `<rect x="${cx}" y="${y - 9}" width="10" height="10" fill="${colorOf(s, i)}"/>`,
    );
    out.push(text(cx + 14, y, s.name, 'fill="#333"'));
    cx += 24 + s.name.length * 6.5;
  });
  return out;
}

function yAxis(
  out: string[],
  ticks: number[],
  left: number,
  right: number,
  top: number,
  bottom: number,
  yLabel: string,
) {
  const max = ticks[ticks.length - 1] as number;
  for (const t of ticks) {
    const y = bottom - ((bottom - top) * t) / max;
    out.push(`<line x1="${left}" x2="${right}" y1="${y.toFixed(1)}" y2="${y.toFixed(1)}" stroke="#e5e5e5"/>`);
    out.push(text(left - 6, y + 4, fmt(t), 'text-anchor="end" fill="#555"'));
  }
  out.push(`<line x1="${left}" x2="${left}" y1="${top}" y2="${bottom}" stroke="#999"/>`);
  out.push(`<line x1="${left}" x2="${right}" y1="${bottom}" y2="${bottom}" stroke="#999"/>`);
  const mid = (top + bottom) / 2;
  out.push(
    text(14, mid, yLabel, `transform="rotate(-90 14 ${mid.toFixed(1)})" text-anchor="middle" fill="#333"`),
  );
}

/** A dashed horizontal line across the plot at `value`, labelled in the margin to its right. */
export interface RefLine {
  value: number;
  label: string;
}

function refLines(
  out: string[],
  lines: RefLine[],
  max: number,
  left: number,
  right: number,
  top: number,
  bottom: number,
) {
  for (const r of lines) {
    if (!(r.value <= max)) continue;
    const y = bottom - ((bottom - top) * r.value) / max;
    out.push(
      `<line x1="${left}" x2="${right}" y1="${y.toFixed(1)}" y2="${y.toFixed(1)}" stroke="#d62728" stroke-dasharray="5 4"/>`,
    );
    wrap(r.label, 24).forEach((line, i) => {
      out.push(text(right + 6, y + 3 + i * 11, line, 'font-size="10" fill="#d62728"'));
    });
  }
}

/** The width of the margin that holds the reference lines' labels. */
const REF_MARGIN = 150;

function categoryLabels(
  out: string[],
  categories: string[],
  x: (i: number) => number,
  width: number,
  bottom: number,
) {
  categories.forEach((cat, ci) => {
    wrap(cat, Math.max(8, Math.floor(width / 6.5))).forEach((line, li) => {
      out.push(text(x(ci), bottom + 16 + li * 13, line, 'text-anchor="middle" fill="#333"'));
    });
  });
}

export function barChart(
  f: Frame & { categories: string[]; series: Series[]; refLines?: RefLine[] },
): string {
  const w = f.width ?? 760;
  const h = f.height ?? 420;
  const left = 70;
  const right = w - 20 - (f.refLines?.length ? REF_MARGIN : 0);
  const top = f.subtitle ? 76 : 60;
  const bottom = h - 70;
  const values = f.series.flatMap((s) =>
    s.values.filter((v): v is number => v !== undefined && Number.isFinite(v)),
  );
  const ticks = niceTicks(Math.max(...values, ...(f.refLines ?? []).map((r) => r.value), 0) * 1.08);
  const max = ticks[ticks.length - 1] as number;
  const out = open(f, w, h);
  out.push(...legend(f.series, left, top - 14));
  yAxis(out, ticks, left, right, top, bottom, f.yLabel);
  refLines(out, f.refLines ?? [], max, left, right, top, bottom);
  const groupW = (right - left) / f.categories.length;
  const barW = Math.min(48, (groupW * 0.8) / f.series.length);
  f.categories.forEach((cat, ci) => {
    const gx = left + groupW * ci + (groupW - barW * f.series.length) / 2;
    f.series.forEach((s, si) => {
      const v = s.values[ci];
      if (v === undefined || !Number.isFinite(v)) return;
      const bh = ((bottom - top) * v) / max;
      const x = gx + barW * si;
      out.push(
        `<rect x="${x.toFixed(1)}" y="${(bottom - bh).toFixed(1)}" width="${(barW - 2).toFixed(1)}" height="${bh.toFixed(1)}" fill="${PALETTE[si % PALETTE.length]}"><title>${escapeXml(`${cat} · ${s.name}: ${fmt(v)}`)}</title></rect>`,
      );
      out.push(
        text(x + (barW - 2) / 2, bottom - bh - 4, fmt(v), 'text-anchor="middle" font-size="10" fill="#333"'),
      );
    });
  });
  categoryLabels(out, f.categories, (ci) => left + groupW * ci + groupW / 2, groupW, bottom);
  out.push('</svg>');
  return out.join('\n') + '\n';
}

/**
 * Stacked bars: one bar per category, each series a layer of it (values[i] belongs to category i), the
 * bar's total written above it. `groupSize` leaves a gap after every that many bars (pairs: 2), and
 * `groupLabels` names each group under the bars' own (short) labels.
 */
export function stackedBarChart(
  f: Frame & { categories: string[]; series: Series[]; groupSize?: number; groupLabels?: string[] },
): string {
  const w = f.width ?? 760;
  const h = f.height ?? 440;
  const left = 70;
  const right = w - 20;
  const top = f.subtitle ? 76 : 60;
  const bottom = h - 84;
  const totals = f.categories.map((_, ci) =>
    f.series.reduce((a, s) => a + (Number.isFinite(s.values[ci]) ? (s.values[ci] as number) : 0), 0),
  );
  const ticks = niceTicks(Math.max(...totals, 0) * 1.08);
  const max = ticks[ticks.length - 1] as number;
  const out = open(f, w, h);
  out.push(...legend(f.series, left, top - 14));
  yAxis(out, ticks, left, right, top, bottom, f.yLabel);
  const group = f.groupSize ?? 1;
  const gaps = Math.max(0, Math.ceil(f.categories.length / group) - 1);
  const slot = (right - left) / (f.categories.length + gaps * 0.6);
  const xOf = (ci: number) => left + slot * (ci + Math.floor(ci / group) * 0.6);
  const barW = Math.min(44, slot * 0.8);
  f.categories.forEach((cat, ci) => {
    const x = xOf(ci) + (slot - barW) / 2;
    let y = bottom;
    f.series.forEach((s, si) => {
      const v = s.values[ci];
      if (v === undefined || !Number.isFinite(v) || v <= 0) return;
      const bh = ((bottom - top) * v) / max;
      y -= bh;
      out.push(
        `<rect x="${x.toFixed(1)}" y="${y.toFixed(1)}" width="${barW.toFixed(1)}" height="${bh.toFixed(1)}" fill="${PALETTE[si % PALETTE.length]}"><title>${escapeXml(`${cat} · ${s.name}: ${fmt(v)}`)}</title></rect>`,
      );
    });
    out.push(
      text(x + barW / 2, y - 4, fmt(totals[ci] as number), 'text-anchor="middle" font-size="10" fill="#333"'),
    );
  });
  f.categories.forEach((cat, ci) => {
    out.push(text(xOf(ci) + slot / 2, bottom + 14, cat, 'text-anchor="middle" font-size="10" fill="#555"'));
  });
  (f.groupLabels ?? []).forEach((label, gi) => {
    const first = gi * group;
    const last = Math.min(f.categories.length, first + group) - 1;
    const mid = (xOf(first) + xOf(last) + slot) / 2;
    wrap(label, Math.max(8, Math.floor((slot * (last - first + 1)) / 6.5))).forEach((line, li) => {
      out.push(text(mid, bottom + 32 + li * 13, line, 'text-anchor="middle" fill="#333"'));
    });
  });
  out.push('</svg>');
  return out.join('\n') + '\n';
}

export function lineChart(f: Frame & { xLabel: string; xs: number[]; series: Series[] }): string {
  const w = f.width ?? 760;
  const h = f.height ?? 400;
  const left = 70;
  const right = w - 30;
  const top = f.subtitle ? 76 : 60;
  const bottom = h - 56;
  const values = f.series.flatMap((s) =>
    s.values.filter((v): v is number => v !== undefined && Number.isFinite(v)),
  );
  const ticks = niceTicks(Math.max(...values, 0) * 1.1);
  const max = ticks[ticks.length - 1] as number;
  const xMin = Math.min(...f.xs);
  const xMax = Math.max(...f.xs);
  const xAt = (x: number) =>
    xMax === xMin ? (left + right) / 2 : left + 20 + ((right - left - 40) * (x - xMin)) / (xMax - xMin);
  const yAt = (v: number) => bottom - ((bottom - top) * v) / max;
  const out = open(f, w, h);
  out.push(...legend(f.series, left, top - 14));
  yAxis(out, ticks, left, right, top, bottom, f.yLabel);
  for (const x of f.xs) out.push(text(xAt(x), bottom + 16, fmt(x), 'text-anchor="middle" fill="#555"'));
  out.push(text((left + right) / 2, bottom + 36, f.xLabel, 'text-anchor="middle" fill="#333"'));
  f.series.forEach((s, si) => {
    const color = colorOf(s, si);
    const pts = f.xs
      .map((x, i) => [x, s.values[i]] as const)
      .filter((pt): pt is readonly [number, number] => pt[1] !== undefined && Number.isFinite(pt[1]));
    if (pts.length > 1) {
      const d = pts
        .map(([x, v], i) => `${i === 0 ? 'M' : 'L'}${xAt(x).toFixed(1)},${yAt(v).toFixed(1)}`)
        .join(' ');
      const dash = s.dashed ? ' stroke-dasharray="6 4"' : '';
      out.push(`<path d="${d}" fill="none" stroke="${color}" stroke-width="2"${dash}/>`);
    }
    for (const [x, v] of pts) {
      out.push(`<circle cx="${xAt(x).toFixed(1)}" cy="${yAt(v).toFixed(1)}" r="3.5" fill="${color}"/>`);
      out.push(text(xAt(x) + 6, yAt(v) - 6, fmt(v), 'font-size="10" fill="#333"'));
    }
  });
  out.push('</svg>');
  return out.join('\n') + '\n';
}
