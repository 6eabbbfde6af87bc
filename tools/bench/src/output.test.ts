/** What `--docs` writes into docs/perf/ (output.ts), and what it leaves to the other benches. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { END, START, writeResults } from './output.js';
import type { Report } from './report.js';

const report: Report = {
  meta: {
    date: '2026-12-07T10:00:00.000Z',
    mode: 'full',
    fsync: 'on',
    loadGenerator: 'wrk',
    durationS: 1,
    machine: {
      cpus: 2,
      cpuModel: 'Test CPU',
      memoryGiB: 8,
      node: 'v20.0.0',
      os: 'Linux 6',
      loadBefore: [1, 1, 1],
      loadAfter: [1, 1, 1],
      fdatasyncMs: 0.1,
    },
  },
  comparisons: [],
  rows: [],
  targets: [],
};

describe('bench --docs output', () => {
  it("removes only the figures its own last run drew and no longer draws, never other benches'", async () => {
    const root = mkdtempSync(path.join(os.tmpdir(), 'bazar-bench-output-'));
    try {
      const perf = path.join(root, 'docs', 'perf');
      mkdirSync(perf, { recursive: true });
      writeFileSync(path.join(root, 'docs', 'performance.md'), `# P\n\n${START}\nold\n${END}\n`);
      writeFileSync(
        path.join(perf, 'results.json'),
        JSON.stringify({ figures: ['kept.svg', 'dropped.svg'] }),
      );
      for (const f of ['kept.svg', 'dropped.svg', 'hit-ratio.svg', 'fanout-scale.svg']) {
        writeFileSync(path.join(perf, f), '<svg/>');
      }
      await writeResults({
        root,
        outDir: perf,
        docs: true,
        report,
        figures: { 'kept.svg': '<svg>new</svg>' },
      });
      assert.equal(readFileSync(path.join(perf, 'kept.svg'), 'utf8'), '<svg>new</svg>');
      assert.equal(existsSync(path.join(perf, 'dropped.svg')), false);
      assert.equal(existsSync(path.join(perf, 'hit-ratio.svg')), true);
      assert.equal(existsSync(path.join(perf, 'fanout-scale.svg')), true);
      const written = JSON.parse(readFileSync(path.join(perf, 'results.json'), 'utf8')) as {
        figures: string[];
      };
      assert.deepEqual(written.figures, ['kept.svg']);
      assert.match(readFileSync(path.join(root, 'docs', 'performance.md'), 'utf8'), /perf\/kept\.svg/);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
