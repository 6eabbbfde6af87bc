import assert from 'node:assert/strict';
import { test } from 'node:test';
import { hitRatioChart, pctLabel, stackCharts } from './plot.js';

const set = {
  skew: 0.99,
  sizesPct: [0.1, 1, 10],
  opt: [0.5, 0.7, 0.9],
  lru: [0.3, 0.5, 0.7],
  che: [0.31, 0.5, 0.7],
  tinyLfu: [0.4, 0.6, undefined],
  front: [undefined, 0.5, undefined],
};

test('the chart labels the log x axis with the sizes and draws every series', () => {
  const svg = hitRatioChart(set, 'a subtitle');
  for (const label of ['0.1 %', '1 %', '10 %']) assert.ok(svg.includes(`>${label}</text>`), label);
  assert.ok(!svg.includes('>-1</text>'), 'a log10 value left as a label');
  for (const name of ['OPT (Belady)', 'LRU simulated', 'LRU, Che', 'W-TinyLFU simulated', 'front measured'])
    assert.ok(svg.includes(name), name);
  assert.equal(pctLabel(0.2), '0.2 %');
});

test('charts stack into one SVG, each at its offset', () => {
  const one = hitRatioChart(set, 's', 800, 400);
  const both = stackCharts([one, one], 800, 400);
  assert.ok(both.startsWith('<svg xmlns="http://www.w3.org/2000/svg" width="800" height="800"'));
  assert.ok(both.includes('<svg x="0" y="400" xmlns'));
  assert.equal((both.match(/<svg /g) ?? []).length, 3);
  assert.ok(both.trimEnd().endsWith('</svg>'));
});
