/** Ratios against the floor and the targets of issue 11, computed from one run (compare.ts). */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { compare, formatRatio, ratios, targets, THRESHOLDS, type Comparison } from './compare.js';
import type { LoadResult } from './load.js';
import { Samples } from './stats.js';

/** A run of `requests` over one second, every latency `ms`. */
function runOf(rps: number, ms: number, cpu?: number, non2xx = 0): LoadResult {
  const latencies = new Samples();
  for (let i = 0; i < 10; i++) latencies.push(ms);
  return {
    requests: rps,
    seconds: 1,
    rps,
    latencies,
    errors: 0,
    timeouts: 0,
    non2xx,
    ...(cpu !== undefined ? { cpuUsPerRequest: cpu, cpu: new Map([['front-0', cpu]]) } : {}),
  };
}

const rounds = (...runs: LoadResult[]) => ({ runs, pooled: runs[0]! });

function comparison(key: string, floor: [number, number], bazar: [number, number]): Comparison {
  return compare(key, key, 10, 'chain', rounds(runOf(...floor)), rounds(runOf(...bazar)));
}

describe('bench: Bazar against its floor', () => {
  it('computes throughput, p50 and CPU ratios, pooled and per round', () => {
    const r = ratios(
      { rps: 2000, p50: 4, p99: 10, cpuUs: 250, errors: 0 },
      { rps: 600, p50: 14, p99: 30, cpuUs: 900, errors: 0 },
      [
        {
          floor: { rps: 2000, p50: 4, p99: 0, cpuUs: 1, errors: 0 },
          bazar: { rps: 500, p50: 16, p99: 0, cpuUs: 1, errors: 0 },
        },
        {
          floor: { rps: 1000, p50: 5, p99: 0, cpuUs: 1, errors: 0 },
          bazar: { rps: 700, p50: 10, p99: 0, cpuUs: 1, errors: 0 },
        },
      ],
    );
    assert.equal(r.rps, 0.3);
    assert.equal(r.p50, 3.5);
    assert.equal(r.cpu, 3.6);
    assert.deepEqual(r.roundRps, [0.25, 0.7]);
    assert.deepEqual(r.roundP50, [4, 2]);
    assert.equal(
      ratios(
        { rps: 0, p50: 0, p99: 0, cpuUs: undefined, errors: 0 },
        { rps: 1, p50: 1, p99: 1, cpuUs: 5, errors: 0 },
      ).cpu,
      undefined,
    );
  });

  it('pairs round i of Bazar with round i of the floor', () => {
    const c = compare(
      'uncached/10',
      'uncached read',
      10,
      'chain',
      rounds(runOf(1000, 4, 200), runOf(500, 8, 200)),
      rounds(runOf(400, 10, 800), runOf(250, 16, 800)),
    );
    assert.deepEqual(c.ratios.roundRps, [0.4, 0.5]);
    assert.deepEqual(c.ratios.roundP50, [2.5, 2]);
    assert.equal(c.ratios.cpu, 4);
  });

  it('formats a ratio with the spread of its rounds', () => {
    assert.equal(formatRatio(0.3), '0.30x');
    assert.equal(formatRatio(0.3, [0.28, 0.35, 0.31]), '0.30x (0.28–0.35)');
    assert.equal(formatRatio(NaN), '–');
  });

  it('marks each target MET or MISSED from the ratios, and MISSED when not measured', () => {
    const byKey = new Map<string, Comparison>([
      ['uncached/10', comparison('uncached/10', [2000, 4], [1000, 8])], // 0.5x req/s, p50 2x: both met
      ['purchase strict/1', comparison('purchase strict/1', [400, 2.4], [100, 9.6])], // p50 4x: missed
      ['purchase strict/10', comparison('purchase strict/10', [900, 11], [460, 22])], // 0.51x: met
      ['cached/50', comparison('cached/50', [30000, 1.2], [26000, 1.5])], // 0.87x: missed
    ]);
    const t = targets(byKey, 0);
    assert.deepEqual(
      t.map((x) => x.ok),
      [true, true, false, true, false, true],
    );
    assert.match(t[0]!.name, new RegExp(`≥ ${THRESHOLDS.uncachedRps}x`));
    assert.equal(t[0]!.value, '0.50x: 1000/s vs 2000/s');
    assert.equal(t[2]!.value, '4.00x: 9.60 ms vs 2.40 ms');
    assert.deepEqual(
      targets(new Map(), 3).map((x) => [x.ok, x.value]),
      [
        [false, 'not measured'],
        [false, 'not measured'],
        [false, 'not measured'],
        [false, 'not measured'],
        [false, 'not measured'],
        [false, '3'],
      ],
    );
  });
});
