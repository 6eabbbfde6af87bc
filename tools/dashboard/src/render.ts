/**
 * The chart's Grafana dashboard drawn from a real Prometheus's answers, as a static HTML page: a
 * stand-in for Grafana (AGPL, not used here) made only to put the dashboard in a screenshot. It lays
 * the panels out on the dashboard's own 24-column grid (gridPos), draws a timeseries panel's series as
 * SVG lines and a stat panel's last values, with the panels' titles, legends and units. Pure: the
 * queries are run by cli.ts.
 */

export interface Panel {
  type: string;
  title: string;
  description?: string;
  gridPos: { h: number; w: number; x: number; y: number };
  targets?: Array<{ refId?: string; expr: string; legendFormat?: string }>;
  fieldConfig?: { defaults?: { unit?: string; min?: number; max?: number } };
}

export interface Dashboard {
  title: string;
  panels: Panel[];
}

/** One series of a panel: its legend and its [unix seconds, value] points. */
export interface Series {
  legend: string;
  points: Array<[number, number]>;
}

export interface PanelData {
  panel: Panel;
  series: Series[];
  /** What Prometheus answered instead of data, shown in the panel. */
  error?: string;
}

/** The dashboard's variables as Grafana fills them: $namespace, $__rate_interval, ${datasource}. */
export function fillVariables(expr: string, vars: { namespace: string; rateInterval: string }): string {
  return expr
    .replaceAll('$__rate_interval', vars.rateInterval)
    .replaceAll('${namespace}', vars.namespace)
    .replaceAll('$namespace', vars.namespace);
}

/** A legendFormat (`{{pod}} {{result}}`) filled from a series' labels; the labels themselves without one. */
export function legendOf(format: string | undefined, labels: Record<string, string>): string {
  if (format) return format.replace(/\{\{\s*(\w+)\s*\}\}/g, (_m, name: string) => labels[name] ?? '');
  const shown = Object.entries(labels).filter(([k]) => k !== '__name__');
  return shown.length ? `{${shown.map(([k, v]) => `${k}="${v}"`).join(', ')}}` : 'value';
}

/** A value in a panel's unit, short (the units the dashboard uses; others as plain numbers). */
export function formatValue(value: number, unit: string | undefined): string {
  if (!Number.isFinite(value)) return String(value);
  const n = (x: number, digits = 2) => Number(x.toPrecision(3)).toFixed(Math.max(0, digits));
  switch (unit) {
    case 's':
      return value < 1 ? `${n(value * 1000, value * 1000 < 10 ? 2 : 0)} ms` : `${n(value, 2)} s`;
    case 'percentunit':
      return `${n(value * 100, 1)} %`;
    case 'bytes':
      return value < 1024
        ? `${value.toFixed(0)} B`
        : value < 1048576
          ? `${n(value / 1024, 1)} KiB`
          : `${n(value / 1048576, 1)} MiB`;
    case 'reqps':
      return `${n(value, 1)} req/s`;
    case 'ops':
      return `${n(value, 2)} /s`;
    default:
      return Number.isInteger(value) ? String(value) : n(value, 2);
  }
}

const escape = (s: string) =>
  s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

const COLORS = ['#73bf69', '#f2cc0c', '#5794f2', '#ff780a', '#b877d9', '#f2495c', '#8ab8ff', '#fade2a'];
const ROW_PX = 34;

function timeseriesSvg(data: PanelData, width: number, height: number): string {
  const unit = data.panel.fieldConfig?.defaults?.unit;
  const all = data.series.flatMap((s) => s.points);
  if (all.length === 0) return `<div class="empty">No data</div>`;
  const t0 = Math.min(...all.map((p) => p[0]));
  const t1 = Math.max(...all.map((p) => p[0]));
  const lo = Math.min(0, ...all.map((p) => p[1]));
  const hi = Math.max(...all.map((p) => p[1]), lo + 1e-9);
  const left = 64;
  const x = (t: number) => left + ((t - t0) / Math.max(1, t1 - t0)) * (width - left - 8);
  const y = (v: number) => 6 + (1 - (v - lo) / (hi - lo)) * (height - 24);
  const grid = [0, 0.5, 1]
    .map((f) => lo + f * (hi - lo))
    .map(
      (v) =>
        `<line x1="${left}" x2="${width - 8}" y1="${y(v)}" y2="${y(v)}" class="grid"/>` +
        `<text x="${left - 6}" y="${y(v) + 4}" class="axis" text-anchor="end">${escape(formatValue(v, unit))}</text>`,
    )
    .join('');
  const minutes = (t1 - t0) / 60;
  const axis =
    `<text x="${left}" y="${height - 4}" class="axis">${minutes.toFixed(1)} min ago</text>` +
    `<text x="${width - 8}" y="${height - 4}" class="axis" text-anchor="end">now</text>`;
  const lines = data.series
    .map((s, i) => {
      const d = s.points.map(([t, v]) => `${x(t).toFixed(1)},${y(v).toFixed(1)}`).join(' ');
      return `<polyline points="${d}" fill="none" stroke="${COLORS[i % COLORS.length]}" stroke-width="1.6"/>`;
    })
    .join('');
  return `<svg width="${width}" height="${height}" viewBox="0 0 ${width} ${height}">${grid}${axis}${lines}</svg>`;
}

function legend(data: PanelData): string {
  const unit = data.panel.fieldConfig?.defaults?.unit;
  return `<div class="legend">${data.series
    .slice(0, 8)
    .map((s, i) => {
      const last = s.points.at(-1)?.[1];
      return `<span><i style="background:${COLORS[i % COLORS.length]}"></i>${escape(s.legend)}${
        last === undefined ? '' : ` <b>${escape(formatValue(last, unit))}</b>`
      }</span>`;
    })
    .join('')}${data.series.length > 8 ? `<span>+${data.series.length - 8} more</span>` : ''}</div>`;
}

function statBody(data: PanelData): string {
  const unit = data.panel.fieldConfig?.defaults?.unit;
  if (data.series.length === 0) return `<div class="empty">No data</div>`;
  return `<div class="stats">${data.series
    .map((s) => {
      const last = s.points.at(-1)?.[1];
      return `<div class="stat"><div class="value">${escape(last === undefined ? '–' : formatValue(last, unit))}</div><div class="label">${escape(s.legend)}</div></div>`;
    })
    .join('')}</div>`;
}

/** The whole page; `columnPx` is the width of one of the grid's 24 columns. */
export function dashboardHtml(dashboard: Dashboard, data: PanelData[], note: string, columnPx = 64): string {
  const byPanel = new Map(data.map((d) => [d.panel, d]));
  const cells = dashboard.panels
    .map((panel) => {
      const { x, y, w, h } = panel.gridPos;
      const style = `left:${x * columnPx}px;top:${y * ROW_PX}px;width:${w * columnPx - 8}px;height:${h * ROW_PX - 8}px`;
      if (panel.type === 'row') return `<div class="row" style="${style}">${escape(panel.title)}</div>`;
      const d = byPanel.get(panel) ?? { panel, series: [] };
      const body = d.error
        ? `<div class="empty">${escape(d.error)}</div>`
        : panel.type === 'stat'
          ? statBody(d)
          : timeseriesSvg(d, w * columnPx - 24, h * ROW_PX - 74) + legend(d);
      return `<div class="panel" style="${style}"><div class="title" title="${escape(panel.description ?? '')}">${escape(panel.title)}</div>${body}</div>`;
    })
    .join('\n');
  const height = Math.max(...dashboard.panels.map((p) => (p.gridPos.y + p.gridPos.h) * ROW_PX)) + 60;
  return `<!doctype html>
<html><head><meta charset="utf-8"><title>${escape(dashboard.title)}</title><style>
body{margin:0;background:#111217;color:#ccccdc;font:13px/1.3 system-ui,sans-serif}
header{padding:10px 12px 0;font-size:16px}header small{display:block;color:#8e8e9e;font-size:12px;margin-top:2px}
main{position:relative;margin:10px 12px;height:${height}px}
.panel{position:absolute;background:#181b1f;border:1px solid #2c3235;border-radius:3px;padding:6px 8px;box-sizing:border-box;overflow:hidden}
.row{position:absolute;font-weight:600;font-size:14px;padding-top:8px}
.title{font-weight:600;margin-bottom:4px;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
.grid{stroke:#2c3235}.axis{fill:#8e8e9e;font-size:10px}
.legend{font-size:11px;display:flex;flex-wrap:wrap;gap:2px 10px}.legend i{display:inline-block;width:10px;height:3px;margin-right:4px;vertical-align:middle}
.stats{display:flex;gap:16px;align-items:center;height:calc(100% - 24px)}.stat .value{font-size:26px;color:#73bf69;font-weight:600}.stat .label{color:#8e8e9e;font-size:11px}
.empty{color:#8e8e9e;padding:16px}
</style></head><body><header>${escape(dashboard.title)}<small>${escape(note)}</small></header><main>
${cells}
</main></body></html>`;
}
