/**
 * The bench's output, as aligned text for the terminal and as Markdown for docs/performance.md (pure:
 * unit-tested). Four parts: Bazar against its floors (ratios from the same run), CPU per request by
 * process on each path, the detail table (everything else the bench measures), and the targets.
 */
import { formatRatio, type Comparison, type Target } from './compare.js';
import { byGroup, formatBreakdown, formatTierRatios, totalOf } from './cpu.js';
import { p } from './load.js';

export type { Target } from './compare.js';

export interface Row {
  /** A section heading row (no figures). */
  section?: string;
  name?: string;
  connections?: number | undefined;
  rps?: number | undefined;
  p50?: number;
  p99?: number;
  /** CPU microseconds per request (from /proc), where measured. */
  cpuUs?: number | undefined;
  errors?: number;
  note?: string;
}

export interface Meta {
  date: string;
  mode: string;
  fsync: unknown;
  /** What drove the load: wrk or autocannon (options.ts). */
  loadGenerator: string;
  durationS: number;
  machine: {
    cpus: number;
    cpuModel: string;
    memoryGiB: number;
    node: string;
    os: string;
    /** os.loadavg() when the run began and when it ended (1, 5, 15 minutes). */
    loadBefore: number[];
    loadAfter: number[];
    fdatasyncMs: number;
  };
}

export interface Report {
  meta: Meta;
  comparisons: Comparison[];
  rows: Row[];
  targets: Target[];
}

/** A table as columns of strings; `right` marks the columns aligned right (figures). */
export interface Table {
  head: string[];
  right: boolean[];
  rows: Array<string[] | { section: string }>;
}

export function num(v: number | undefined, digits: number): string {
  return v === undefined || !Number.isFinite(v) ? '–' : v.toFixed(digits);
}

export function textTable(t: Table): string[] {
  const body = t.rows.filter((r): r is string[] => Array.isArray(r));
  const widths = t.head.map((h, i) => Math.max(h.length, ...body.map((c) => (c[i] ?? '').length)));
  const line = (c: string[]) =>
    c
      .map((s, i) => (t.right[i] ? s.padStart(widths[i] ?? 0) : s.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  const out = [line(t.head), line(widths.map((w) => '-'.repeat(w)))];
  for (const r of t.rows) out.push(Array.isArray(r) ? line(r) : `-- ${r.section}`);
  return out;
}

const esc = (s: string) => s.replace(/\|/g, '\\|');

export function markdownTable(t: Table): string[] {
  const out = [
    `| ${t.head.map(esc).join(' | ')} |`,
    `| ${t.right.map((r) => (r ? '---:' : '---')).join(' | ')} |`,
  ];
  for (const r of t.rows) {
    if (Array.isArray(r)) out.push(`| ${r.map(esc).join(' | ')} |`);
    else out.push(`| **${esc(r.section)}** |${' |'.repeat(t.head.length - 1)}`);
  }
  return out;
}

/**
 * The cells every comparison table shows, in this order: requests/s of the floor and of Bazar and their
 * ratio, then p50 of each and their ratio.
 */
export function throughputAndLatencyCells(c: Comparison): string[] {
  return [
    num(c.floor.rps, 0),
    num(c.bazar.rps, 0),
    formatRatio(c.ratios.rps, c.ratios.roundRps),
    num(p(c.floor, 50), 2),
    num(p(c.bazar, 50), 2),
    formatRatio(c.ratios.p50, c.ratios.roundP50),
  ];
}

/** Bazar against its floors: one line per path and concurrency. */
export function comparisonTable(comparisons: Comparison[]): Table {
  return {
    head: [
      'path',
      'conns',
      'floor',
      'floor req/s',
      'Bazar req/s',
      'req/s ratio',
      'floor p50 ms',
      'Bazar p50 ms',
      'p50 ratio',
      'Bazar p99 ms',
      'floor CPU µs/req',
      'Bazar CPU µs/req',
      'CPU ratio',
      'errors',
    ],
    right: [false, true, false, true, true, true, true, true, true, true, true, true, true, true],
    rows: comparisons.map((c) => [
      c.path,
      String(c.connections),
      c.floorName,
      ...throughputAndLatencyCells(c),
      num(p(c.bazar, 99), 2),
      num(c.floor.cpuUsPerRequest, 0),
      num(c.bazar.cpuUsPerRequest, 0),
      c.ratios.cpu === undefined ? '–' : `${c.ratios.cpu.toFixed(2)}x`,
      String(
        c.bazar.errors +
          c.bazar.timeouts +
          c.bazar.non2xx +
          c.floor.errors +
          c.floor.timeouts +
          c.floor.non2xx,
      ),
    ]),
  };
}

/** CPU per request by process group, floor and Bazar, for every comparison. */
export function cpuLines(comparisons: Comparison[]): string[] {
  const out: string[] = [];
  for (const c of comparisons) {
    if (!c.floor.cpu && !c.bazar.cpu) continue;
    const ratio = c.ratios.cpu === undefined ? '' : ` (${c.ratios.cpu.toFixed(2)}x)`;
    out.push(`${c.path}, ${c.connections} conn${c.connections > 1 ? 's' : ''}`);
    out.push(`  floor  ${formatBreakdown(c.floor.cpu)}   [${c.floorName}]`);
    out.push(`  Bazar  ${formatBreakdown(c.bazar.cpu)}${ratio}`);
    const tiers = formatTierRatios(c.floor.cpu, c.bazar.cpu);
    if (tiers && c.floorName !== 'bare node:http') out.push(`  Bazar / floor by tier: ${tiers}`);
    const floorGen = c.floor.generatorCpuUsPerRequest;
    const bazarGen = c.bazar.generatorCpuUsPerRequest;
    if (floorGen !== undefined || bazarGen !== undefined)
      out.push(`  the load generator itself: floor ${num(floorGen, 0)} · Bazar ${num(bazarGen, 0)} µs/req`);
  }
  return out;
}

/** The same as a Markdown table: one row per path and side, one column per process group. */
export function cpuTable(comparisons: Comparison[]): Table {
  const measuredSides = comparisons.flatMap((c) => [
    { c, side: 'floor', cpu: c.floor.cpu },
    { c, side: 'Bazar', cpu: c.bazar.cpu },
  ]);
  const groups: string[] = [];
  for (const s of measuredSides) {
    for (const g of byGroup(s.cpu ?? new Map()))
      if (g.us >= 0.5 && !groups.includes(g.group)) groups.push(g.group);
  }
  const order = byGroup(new Map(groups.map((g) => [g, 0]))).map((g) => g.group);
  return {
    head: ['path', 'conns', 'system', ...order, 'total'],
    right: [false, true, false, ...order.map(() => true), true],
    rows: measuredSides
      .filter((s) => s.cpu)
      .map((s) => {
        const sums = new Map(byGroup(s.cpu!).map((g) => [g.group, g.us]));
        return [
          s.c.path,
          String(s.c.connections),
          s.side === 'floor' ? s.c.floorName : 'Bazar',
          ...order.map((g) => num(sums.get(g), 0)),
          num(totalOf(s.cpu), 0),
        ];
      }),
  };
}

function detailTable(rows: Row[]): Table {
  return {
    head: ['scenario', 'conns', 'req/s', 'p50 ms', 'p99 ms', 'CPU µs/req', 'errors', 'notes'],
    right: [false, true, true, true, true, true, true, false],
    rows: rows.map((r) =>
      r.section
        ? { section: r.section }
        : [
            r.name ?? '',
            r.connections === undefined ? '' : String(r.connections),
            r.rps === undefined ? '' : num(r.rps, 0),
            num(r.p50, 2),
            num(r.p99, 2),
            r.cpuUs === undefined ? '' : num(r.cpuUs, 1),
            r.errors === undefined ? '' : String(r.errors),
            r.note ?? '',
          ],
    ),
  };
}

const loads = (l: number[]) => l.map((v) => v.toFixed(2)).join(' / ');

export function machineLine(meta: Meta): string {
  const m = meta.machine;
  return (
    `${m.cpus} CPUs (${m.cpuModel}), ${m.memoryGiB} GiB RAM, Node ${m.node}, ${m.os}; ` +
    `disk fdatasync (8 KiB) p50 ${m.fdatasyncMs} ms`
  );
}

export function loadLine(meta: Meta): string {
  const m = meta.machine;
  return `load average (1 / 5 / 15 min) on ${m.cpus} CPUs: before ${loads(m.loadBefore)}, after ${loads(m.loadAfter)}`;
}

/** What each floor does (the names in the comparison table). */
export const FLOORS: Array<[string, string]> = [
  [
    'bare node:http',
    'one node:http process answering every request with the same JSON bytes: the ceiling for a Node front',
  ],
  [
    'read chain',
    'chain front → chain catalog → SELECT on the standby → answer (node:http + pg, one process per hop)',
  ],
  [
    'chain, remote_apply',
    "chain front → chain order → one autocommit UPDATE … RETURNING at synchronous_commit = remote_apply → POST /invalidate to every chain front, awaited → answer (strict's floor)",
  ],
  ['chain, local', "the same at synchronous_commit = local (session's floor)"],
  ['chain, local, push not awaited', "the same, answering before the pushes complete (eventual's floor)"],
];

const COMPARE_TITLE =
  'Bazar against its floor: same run, same Postgres pair, rounds interleaved (ratio = Bazar / floor)';
const CPU_TITLE =
  'CPU per request by process (µs, from /proc; Postgres = postmaster + all its children; shared pair)';

export function renderText(report: Report): string {
  const { meta } = report;
  const out = [
    `Bazar bench (${meta.mode}, fsync ${String(meta.fsync)}, load from ${meta.loadGenerator}), ${meta.date}, ${meta.durationS} s`,
    machineLine(meta),
    loadLine(meta),
    '',
    COMPARE_TITLE,
    ...textTable(comparisonTable(report.comparisons)),
    'Floors (every chain has as many fronts as the stack it is compared with, on the same Postgres pair):',
    ...FLOORS.map(([name, what]) => `  ${name}: ${what}`),
    '',
    CPU_TITLE,
    ...cpuLines(report.comparisons),
    '',
    ...textTable(detailTable(report.rows)),
    '',
    `Targets (issue 11), from this run's ratios (${loadLine(meta)}):`,
  ];
  for (const t of report.targets) out.push(`  ${t.ok ? 'MET   ' : 'MISSED'} ${t.name}: ${t.value}`);
  return out.join('\n') + '\n';
}

export function renderMarkdown(report: Report, figures: string[]): string {
  const { meta } = report;
  const out = [
    `_Generated by \`npm run bench -- --docs\` (${meta.mode} run, Postgres fsync ${String(meta.fsync)}, load from ${meta.loadGenerator}) on ` +
      `${meta.date.slice(0, 10)} in ${meta.durationS} s._`,
    '',
    `Machine: ${machineLine(meta)}; ${loadLine(meta)}.`,
    '',
    `**${COMPARE_TITLE}.**`,
    '',
    ...markdownTable(comparisonTable(report.comparisons)),
    '',
    'Floors (every chain has as many fronts as the stack it is compared with, on the same Postgres pair):',
    '',
    ...FLOORS.map(([name, what]) => `- **${name}**: ${what}`),
    '',
    '| target | this run | |',
    '| --- | ---: | --- |',
    ...report.targets.map((t) => `| ${esc(t.name)} | ${esc(t.value)} | ${t.ok ? 'met' : '**missed**'} |`),
    '',
    `**${CPU_TITLE}.**`,
    '',
    ...markdownTable(cpuTable(report.comparisons)),
    '',
    '**Everything else the bench measures.**',
    '',
    ...markdownTable(detailTable(report.rows)),
    '',
  ];
  for (const f of figures) out.push(`![${f.replace(/^perf\/|\.svg$/g, '')}](${f})`, '');
  return out.join('\n');
}
