/** The load generators side by side (generators.ts): what the CPU figures say about a run. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { compare } from './compare.js';
import { coresBusy, cpuBoundRatio, renderGenerators } from './generators.js';
import type { LoadResult } from './load.js';
import { Samples } from './stats.js';

function runOf(rps: number, cpuUs: number | undefined, generatorUs?: number): LoadResult {
  const latencies = new Samples();
  latencies.push(2);
  return {
    requests: rps,
    seconds: 1,
    rps,
    latencies,
    errors: 0,
    timeouts: 0,
    non2xx: 0,
    ...(cpuUs !== undefined ? { cpuUsPerRequest: cpuUs } : {}),
    ...(generatorUs !== undefined ? { generatorCpuUsPerRequest: generatorUs } : {}),
  };
}

describe('load generators side by side', () => {
  it('counts the cores the servers and the generator kept busy together', () => {
    assert.equal(coresBusy(runOf(4000, 450, 50)), 2);
    assert.equal(coresBusy(runOf(1000, 500)), 0.5);
    assert.equal(coresBusy(runOf(1000, undefined, 50)), undefined);
  });

  it('predicts the ratio a CPU-bound machine gives, the generator included on both sides', () => {
    // Servers 400 against 1,000 µs: 0.4x alone; a generator of 300 µs a request moves it to 0.54x.
    assert.equal(cpuBoundRatio(runOf(1, 400, 0), runOf(1, 1000, 0)), 0.4);
    assert.equal(cpuBoundRatio(runOf(1, 400, 300), runOf(1, 1000, 300))!.toFixed(2), '0.54');
    assert.equal(cpuBoundRatio(runOf(1, undefined), runOf(1, 1000)), undefined);
  });

  it('renders one row per path and generator', () => {
    const c = compare(
      'uncached/10',
      'uncached read',
      10,
      'read chain',
      { runs: [runOf(4000, 450, 25)], pooled: runOf(4000, 450, 25) },
      { runs: [runOf(1600, 1200, 30)], pooled: runOf(1600, 1200, 30) },
    );
    const text = renderGenerators([{ generator: 'wrk', comparison: c }], { rounds: 1, seconds: 5 });
    const row = text.split('\n').find((l) => l.startsWith('| uncached read, 10 | wrk |'));
    assert.ok(row, text);
    assert.match(row, /\| 4000 \| 1600 \| 0\.40x/);
    assert.match(row, /\| 25 · 30 \| 1\.90 · 1\.97 \| 0\.39x \|$/);
  });
});
