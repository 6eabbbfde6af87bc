/** The bench's tables as text and Markdown, and the docs section it rewrites (report.ts, output.ts). */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { compare } from './compare.js';
import type { LoadResult } from './load.js';
import { replaceSection, START, END } from './output.js';
import {
  cpuLines,
  cpuTable,
  markdownTable,
  renderMarkdown,
  renderText,
  textTable,
  type Report,
} from './report.js';
import { Samples } from './stats.js';

function runOf(rps: number, ms: number, cpu: Record<string, number>): LoadResult {
  const latencies = new Samples();
  latencies.push(ms);
  const map = new Map(Object.entries(cpu));
  const total = [...map.values()].reduce((a, v) => a + v, 0);
  return {
    requests: rps,
    seconds: 1,
    rps,
    latencies,
    errors: 0,
    timeouts: 0,
    non2xx: 0,
    cpu: map,
    cpuUsPerRequest: total,
  };
}

const uncached = compare(
  'uncached/10',
  'uncached read',
  10,
  'chain',
  { runs: [], pooled: runOf(2000, 4, { 'chain-front-0': 120, 'chain-catalog': 80, 'pg standby': 40 }) },
  {
    runs: [],
    pooled: runOf(600, 14, { 'front-0': 480, 'front-1': 0.1, 'catalog-origin-0': 130, 'pg standby': 40 }),
  },
);

const report: Report = {
  meta: {
    date: '2026-12-01T10:00:00.000Z',
    mode: 'quick',
    fsync: 'on',
    loadGenerator: 'wrk',
    durationS: 150,
    machine: {
      cpus: 2,
      cpuModel: 'Test CPU',
      memoryGiB: 8,
      node: 'v20.0.0',
      os: 'Linux 6',
      loadBefore: [1, 2, 3],
      loadAfter: [4.5, 5, 6],
      fdatasyncMs: 0.2,
    },
  },
  comparisons: [uncached],
  rows: [
    { section: 'Something else' },
    { name: 'a | b', connections: 1, p50: 1.234, p99: 2, errors: 0, note: 'n' },
  ],
  targets: [
    { name: 'uncached read, 10 conns: ≥ 0.5x', value: '0.30x', ok: false },
    { name: 'zero errors', value: '0', ok: true },
  ],
};

describe('bench: report', () => {
  it('aligns text tables: figures right, names left, sections as their own lines', () => {
    const lines = textTable({
      head: ['name', 'n'],
      right: [false, true],
      rows: [['a', '1'], { section: 'S' }, ['longer', '100']],
    });
    assert.deepEqual(lines, ['name      n', '------  ---', 'a         1', '-- S', 'longer  100']);
  });

  it('escapes pipes in Markdown and pads section rows to the width of the table', () => {
    const md = markdownTable({
      head: ['a', 'b'],
      right: [false, true],
      rows: [['x|y', '1'], { section: 'S' }],
    });
    assert.deepEqual(md, ['| a | b |', '| --- | ---: |', '| x\\|y | 1 |', '| **S** | |']);
  });

  it('prints the ratios, the CPU by process, the load before and after and MET / MISSED', () => {
    const text = renderText(report);
    assert.match(
      text,
      /load average \(1 \/ 5 \/ 15 min\) on 2 CPUs: before 1\.00 \/ 2\.00 \/ 3\.00, after 4\.50/,
    );
    assert.match(text, /uncached read\s+10\s+chain\s+2000\s+600\s+0\.30x\s+4\.00\s+14\.00\s+3\.50x/);
    assert.match(text, /floor {2}front 120 · catalog 80 · pg standby 40 · total 240 µs\/req {3}\[chain\]/);
    assert.match(
      text,
      /Bazar {2}front 480 · catalog origin 130 · pg standby 40 · total 650 µs\/req \(2\.71x\)/,
    );
    assert.match(text, /MISSED uncached read, 10 conns: ≥ 0\.5x: 0\.30x/);
    assert.match(text, /MET {4}zero errors: 0/);
    assert.deepEqual(cpuLines([]), []);
  });

  it('puts the same in Markdown, with one CPU column per process group', () => {
    const t = cpuTable([uncached]);
    assert.deepEqual(t.head, [
      'path',
      'conns',
      'system',
      'front',
      'catalog',
      'catalog origin',
      'pg standby',
      'total',
    ]);
    assert.deepEqual(t.rows[1], ['uncached read', '10', 'Bazar', '480', '–', '130', '40', '650']);
    const md = renderMarkdown(report, ['perf/vs-floor.svg']);
    assert.match(md, /\| a \\\| b \|/);
    assert.match(md, /\| uncached read, 10 conns: ≥ 0\.5x \| 0\.30x \| \*\*missed\*\* \|/);
    assert.match(md, /!\[vs-floor\]\(perf\/vs-floor\.svg\)/);
  });

  it('replaces only what lies between the markers', () => {
    const doc = `# T\n\nintro\n\n${START}\nold\n${END}\n\nafter\n`;
    assert.equal(replaceSection(doc, 'new'), `# T\n\nintro\n\n${START}\nnew\n${END}\n\nafter\n`);
    assert.throws(() => replaceSection('# no markers', 'x'), /no <!-- bench:results:start -->/);
  });
});
