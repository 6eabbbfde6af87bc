/** Unit tests of the bench's own helpers (the bench itself is run by `npm run bench`, not by npm test). */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { diff, parseHistogram, quantile } from './prom.js';
import { barChart, escapeXml, lineChart, niceTicks, stackedBarChart } from './svg.js';
import { percentile } from './stats.js';

const METRICS = `# HELP bazar_invalidation_fanout_seconds x
# TYPE bazar_invalidation_fanout_seconds histogram
bazar_invalidation_fanout_seconds_bucket{le="0.001",mode="strict",service="order",pod="o"} 10
bazar_invalidation_fanout_seconds_bucket{le="0.0025",mode="strict",service="order",pod="o"} 30
bazar_invalidation_fanout_seconds_bucket{le="+Inf",mode="strict",service="order",pod="o"} 40
bazar_invalidation_fanout_seconds_sum{mode="strict",service="order",pod="o"} 0.08
bazar_invalidation_fanout_seconds_count{mode="strict",service="order",pod="o"} 40
bazar_invalidation_fanout_seconds_bucket{le="0.001",mode="eventual",service="order",pod="o"} 5
bazar_invalidation_fanout_seconds_count{mode="eventual",service="order",pod="o"} 5
`;

describe('bench helpers', () => {
  it('reads a Prometheus histogram for one label set and interpolates quantiles', () => {
    const h = parseHistogram(METRICS, 'bazar_invalidation_fanout_seconds', { mode: 'strict' });
    assert.equal(h.count, 40);
    assert.deepEqual(
      h.buckets.map(([le]) => le),
      [0.001, 0.0025, Infinity],
    );
    // rank 20 lies halfway through the (0.001, 0.0025] bucket
    assert.ok(Math.abs(quantile(h, 0.5) - 0.00175) < 1e-9);
    assert.equal(quantile(h, 0.99), 0.0025); // in +Inf: the last finite bound
    const none = diff(h, h);
    assert.equal(none.count, 0);
    assert.ok(Number.isNaN(quantile(none, 0.5)));
  });

  it('percentiles by nearest rank', () => {
    const v = [5, 1, 4, 2, 3];
    assert.equal(percentile(v, 50), 3);
    assert.equal(percentile(v, 100), 5);
    assert.equal(percentile(v, 1), 1);
  });

  it('draws bar and line charts as self-contained SVG with escaped text', () => {
    const bars = barChart({
      title: 'a <b> & c',
      yLabel: 'req/s',
      categories: ['x', 'y'],
      series: [
        { name: 'p50', values: [1, 2] },
        { name: 'p99', values: [3, undefined] },
      ],
    });
    assert.match(bars, /^<svg xmlns="http:\/\/www.w3.org\/2000\/svg"/);
    assert.match(bars, /<\/svg>\n$/);
    assert.ok(bars.includes('a &lt;b&gt; &amp; c'));
    assert.equal((bars.match(/<title>/g) ?? []).length, 3, 'one bar per defined value');
    const line = lineChart({
      title: 't',
      xLabel: 'fronts',
      yLabel: 'ms',
      xs: [1, 2, 4],
      series: [{ name: 'p50', values: [0.5, 0.7, 1.1] }],
    });
    assert.equal((line.match(/<circle/g) ?? []).length, 3);
    assert.equal(escapeXml(`"'`), '&quot;&apos;');
    assert.deepEqual(niceTicks(9.5), [0, 2, 4, 6, 8, 10]);
  });

  it('draws reference lines and stacked bars with their totals', () => {
    const withRef = barChart({
      title: 't',
      yLabel: 'x',
      categories: ['a'],
      series: [{ name: 's', values: [0.3] }],
      refLines: [{ value: 1, label: 'the floor' }],
    });
    assert.ok(withRef.includes('stroke-dasharray'), 'a dashed line');
    assert.ok(withRef.includes('>the floor</text>'));
    const stacked = stackedBarChart({
      title: 'CPU',
      yLabel: 'µs',
      groupSize: 2,
      categories: ['p · floor', 'p · Bazar'],
      series: [
        { name: 'front', values: [100, 300] },
        { name: 'pg', values: [50, undefined] },
      ],
    });
    assert.equal((stacked.match(/<title>/g) ?? []).length, 3, 'one layer per defined value');
    assert.ok(stacked.includes('>150</text>') && stacked.includes('>300</text>'), 'totals above the bars');
  });
});
