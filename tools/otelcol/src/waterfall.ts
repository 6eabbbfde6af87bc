/**
 * A trace as a terminal waterfall, so that the hops of one request (the front's server span, its call to
 * an order pod, that pod's span and its PostgreSQL statements, the invalidations it pushes) can be read
 * without a tracing UI. Pure: the spans come from readSpans (collector.ts), the text goes to the caller.
 *
 *   trace 79fdc463ee6ba46c1a0c7b1bf197ea0b  9 spans  47.31 ms
 *                                                              0                    47.31 ms
 *   POST /purchase/:id                 front-0         SERVER  ██████████████████████         35.62 ms    200
 *     POST /purchase/2                 front-0         CLIENT     ██████████████████          28.98 ms
 *       POST /purchase/:id             order-origin-0  SERVER        ████████████             18.88 ms    200
 *         POST /internal/prepare       order-origin-0  CLIENT         ███████                  9.57 ms
 *           POST /internal/prepare     front-1         SERVER             ██                   2.70 ms    200
 *         SET                          order-origin-0  CLIENT                ▏                 0.45 ms    SET …
 *         WITH                         order-origin-0  CLIENT                ████              5.03 ms    WITH …
 *         POST /internal/invalidate    order-origin-0  CLIENT                     ██████████  16.31 ms
 *           POST /internal/invalidate  front-1         SERVER                            ██    1.57 ms    200
 */
import type { ExportedSpan } from './collector.js';

/** One trace in a file of spans, as listTraces sums it up. */
export interface TraceSummary {
  traceId: string;
  /** The span without a parent (the earliest, should there be several); undefined until it is received. */
  root: ExportedSpan | undefined;
  /** How many of the trace's spans were received. */
  spans: number;
  /** The earliest start among its spans, in nanoseconds since the epoch. */
  startNs: bigint;
  /** From the earliest start to the latest end among its spans. */
  durationMs: number;
  /** `bazar.request_id` of the root, or else of the earliest server span that has one. */
  requestId: string | undefined;
}

export interface RenderOptions {
  /**
   * The width of the waterfall's columns (name, instance, kind, bar, duration): the bar takes what the
   * others leave, at least MIN_BAR characters. A span's note (status code, statement) follows them.
   * Default 100.
   */
  width?: number;
}

/** The narrowest bar area, whatever the width asked for. */
export const MIN_BAR = 20;
/** Span names (with their indentation) longer than this are cut. */
const NAME_MAX = 44;
/** Statement text (and error messages) longer than this are cut. */
const STATEMENT_MAX = 60;
const ORPHAN = '(parent not received)';

/** Nanoseconds from OTLP/JSON's decimal string; 0 for anything else. */
function nanos(value: string): bigint {
  try {
    return BigInt(value);
  } catch {
    return 0n;
  }
}

function startOf(span: ExportedSpan): bigint {
  return nanos(span.startTimeUnixNano);
}

/** A span's end, never before its start. */
function endOf(span: ExportedSpan): bigint {
  const start = startOf(span);
  const end = nanos(span.endTimeUnixNano);
  return end > start ? end : start;
}

function byStart(a: ExportedSpan, b: ExportedSpan): number {
  const d = startOf(a) - startOf(b);
  return d < 0n ? -1 : d > 0n ? 1 : 0;
}

function msBetween(from: bigint, to: bigint): number {
  return Number(to - from) / 1e6;
}

function extent(spans: readonly ExportedSpan[]): { startNs: bigint; endNs: bigint } {
  let startNs: bigint | undefined;
  let endNs: bigint | undefined;
  for (const s of spans) {
    const start = startOf(s);
    const end = endOf(s);
    if (startNs === undefined || start < startNs) startNs = start;
    if (endNs === undefined || end > endNs) endNs = end;
  }
  return { startNs: startNs ?? 0n, endNs: endNs ?? 0n };
}

function requestIdAttribute(span: ExportedSpan | undefined): string | undefined {
  const value = span?.attributes['bazar.request_id'];
  return typeof value === 'string' || typeof value === 'number' ? String(value) : undefined;
}

/** One entry per trace id, newest first (by the earliest start among its spans). */
export function listTraces(spans: readonly ExportedSpan[]): TraceSummary[] {
  const byTrace = new Map<string, ExportedSpan[]>();
  for (const s of spans) {
    const group = byTrace.get(s.traceId);
    if (group === undefined) byTrace.set(s.traceId, [s]);
    else group.push(s);
  }
  const list: TraceSummary[] = [];
  for (const [traceId, group] of byTrace) {
    const sorted = [...group].sort(byStart);
    const root = sorted.find((s) => s.parentSpanId === '');
    const { startNs, endNs } = extent(group);
    const requestId =
      requestIdAttribute(root) ??
      sorted
        .filter((s) => s.kind === 'SERVER')
        .map(requestIdAttribute)
        .find((id) => id !== undefined);
    list.push({
      traceId,
      root,
      spans: group.length,
      startNs,
      durationMs: msBetween(startNs, endNs),
      requestId,
    });
  }
  return list.sort((a, b) =>
    a.startNs > b.startNs ? -1 : a.startNs < b.startNs ? 1 : a.traceId.localeCompare(b.traceId),
  );
}

/** Milliseconds with 2 decimals, 1 from 100 ms on. */
export function formatMs(ms: number): string {
  return ms.toFixed(ms < 100 ? 2 : 1);
}

/** Whitespace (newlines included) made single spaces; cut with an ellipsis past `max` characters. */
export function oneLine(text: string, max: number): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length <= max ? flat : `${flat.slice(0, max - 1)}…`;
}

interface Row {
  span: ExportedSpan;
  depth: number;
  orphan: boolean;
}

/**
 * Depth-first, children by start time. A span whose parent is not among `spans` is a root, an orphan
 * unless it has no parent at all; spans only reachable through a cycle (corrupt input) are shown as
 * orphans too, each span once.
 */
function treeOrder(spans: readonly ExportedSpan[]): Row[] {
  const ids = new Set(spans.map((s) => s.spanId));
  const children = new Map<string, ExportedSpan[]>();
  const roots: ExportedSpan[] = [];
  for (const s of spans) {
    if (s.parentSpanId !== '' && s.parentSpanId !== s.spanId && ids.has(s.parentSpanId)) {
      const siblings = children.get(s.parentSpanId);
      if (siblings === undefined) children.set(s.parentSpanId, [s]);
      else siblings.push(s);
    } else {
      roots.push(s);
    }
  }
  const rows: Row[] = [];
  const seen = new Set<ExportedSpan>();
  const visit = (span: ExportedSpan, depth: number, orphan: boolean): void => {
    if (seen.has(span)) return;
    seen.add(span);
    rows.push({ span, depth, orphan });
    for (const child of (children.get(span.spanId) ?? []).sort(byStart)) visit(child, depth + 1, false);
  };
  for (const r of roots.sort(byStart)) visit(r, 0, r.parentSpanId !== '');
  for (const s of [...spans].sort(byStart)) visit(s, 0, true);
  return rows;
}

/**
 * The span's place on a time axis `width` characters wide that runs from `t0` for `total` ns: blanks up
 * to its start, then `█` for its duration, or a single `▏` (its start) when it lasts under half a
 * character. Always at least one character, always `width` characters in all.
 */
function bar(span: ExportedSpan, t0: bigint, total: bigint, width: number): string {
  const scale = width / Number(total > 0n ? total : 1n);
  const from = Number(startOf(span) - t0) * scale;
  const length = Number(endOf(span) - startOf(span)) * scale;
  const first = Math.min(width - 1, Math.max(0, Math.floor(from)));
  const last = Math.min(width, Math.max(first + 1, Math.round(from + length)));
  const body = length < 0.5 ? '▏' : '█'.repeat(last - first);
  return ' '.repeat(first) + body + ' '.repeat(width - first - body.length);
}

/** What a span's line ends with: status code and cache for a server span, the statement for a query. */
function note(span: ExportedSpan, orphan: boolean): string {
  const parts: string[] = [];
  const a = span.attributes;
  if (span.kind === 'SERVER' && a['http.response.status_code'] !== undefined) {
    parts.push(String(a['http.response.status_code']));
    if (a['bazar.cache'] !== undefined) parts.push(`cache ${String(a['bazar.cache'])}`);
    if (a['bazar.aborted'] === true) parts.push('aborted');
  }
  if (a['db.system.name'] === 'postgresql' && typeof a['db.query.text'] === 'string') {
    parts.push(oneLine(a['db.query.text'], STATEMENT_MAX));
  }
  if (span.status.code === 'ERROR' && span.status.message !== '') {
    parts.push(`(${oneLine(span.status.message, STATEMENT_MAX)})`);
  }
  if (orphan) parts.push(ORPHAN);
  return parts.join('  ');
}

function cut(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

/**
 * The spans of one trace as a waterfall: a header (`trace <id>  <n> spans  <duration> ms`), a time
 * axis, then one line per span in tree order, indented by depth: name, service.instance, kind, its bar
 * on the trace's time axis, its duration, `✘` for an ERROR status, and a note (see `note`).
 */
export function renderTrace(spans: readonly ExportedSpan[], opts: RenderOptions = {}): string {
  const width = opts.width ?? 100;
  const first = spans[0];
  if (first === undefined) return 'no spans\n';
  const { startNs, endNs } = extent(spans);
  const total = endNs - startNs;
  const rows = treeOrder(spans).map(({ span, depth, orphan }) => ({
    label: cut(`${'  '.repeat(depth)}${span.name}`, NAME_MAX),
    instance: span.serviceInstance ?? span.serviceName ?? '?',
    kind: span.kind === 'UNSPECIFIED' ? '-' : span.kind,
    duration: `${formatMs(msBetween(startOf(span), endOf(span)))} ms`,
    error: span.status.code === 'ERROR',
    note: note(span, orphan),
    span,
  }));
  const widest = (pick: (r: (typeof rows)[number]) => string): number =>
    Math.max(...rows.map((r) => pick(r).length));
  const nameW = widest((r) => r.label);
  const instanceW = widest((r) => r.instance);
  const kindW = widest((r) => r.kind);
  const durationW = widest((r) => r.duration);
  const gap = '  ';
  const barCol = nameW + instanceW + kindW + 3 * gap.length;
  const barW = Math.max(MIN_BAR, width - barCol - gap.length - durationW - 2);

  const requestId = listTraces(spans)[0]?.requestId;
  const header =
    `trace ${first.traceId}  ${spans.length} span${spans.length === 1 ? '' : 's'}  ` +
    `${formatMs(msBetween(startNs, endNs))} ms${requestId === undefined ? '' : `  request ${requestId}`}`;
  const end = `${formatMs(msBetween(startNs, endNs))} ms`;
  const axis = `${' '.repeat(barCol)}0${end.padStart(barW - 1)}`;
  const lines = rows.map((r) =>
    [
      r.label.padEnd(nameW),
      r.instance.padEnd(instanceW),
      r.kind.padEnd(kindW),
      bar(r.span, startNs, total, barW),
      `${r.duration.padStart(durationW)} ${r.error ? '✘' : ' '}`,
      r.note,
    ]
      .join(gap)
      .trimEnd(),
  );
  return `${[header, axis, ...lines].join('\n')}\n`;
}

/** HH:MM:SS.mmm, local time. */
function clock(ns: bigint): string {
  const d = new Date(Number(ns / 1_000_000n));
  const two = (n: number) => String(n).padStart(2, '0');
  return `${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}.${String(d.getMilliseconds()).padStart(3, '0')}`;
}

/** The first characters of a trace id that the list shows (the CLI takes any prefix of 6 or more). */
export const LISTED_ID_LENGTH = 16;

/**
 * A table of the first `limit` traces of `list` (listTraces' order: newest first): start time, trace id
 * (its first LISTED_ID_LENGTH characters), root span's name and service.instance, spans, duration and
 * request id.
 */
export function renderList(list: readonly TraceSummary[], limit: number): string {
  const shown = list.slice(0, Math.max(0, limit));
  if (shown.length === 0) return 'no traces\n';
  const table = [
    ['time', 'trace', 'root', 'service', 'spans', 'ms', 'request'],
    ...shown.map((t) => [
      clock(t.startNs),
      t.traceId.slice(0, LISTED_ID_LENGTH),
      cut(t.root?.name ?? '(root not received)', 32),
      t.root?.serviceInstance ?? t.root?.serviceName ?? '-',
      String(t.spans),
      formatMs(t.durationMs),
      t.requestId ?? '-',
    ]),
  ];
  const widths = table[0]!.map((_, i) => Math.max(...table.map((row) => row[i]!.length)));
  const numeric = new Set([4, 5]);
  const lines = table.map((row) =>
    row
      .map((cell, i) => (numeric.has(i) ? cell.padStart(widths[i]!) : cell.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd(),
  );
  return `${lines.join('\n')}\n`;
}
