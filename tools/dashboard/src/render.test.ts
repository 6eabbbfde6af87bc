import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { dashboardHtml, fillVariables, formatValue, legendOf, type Dashboard } from './render.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../..');

describe('the dashboard drawn for its screenshot', () => {
  it("fills Grafana's variables the way Grafana does", () => {
    assert.equal(
      fillVariables('rate(x{namespace="$namespace"}[$__rate_interval]) / y{namespace="${namespace}"}', {
        namespace: 'shop',
        rateInterval: '30s',
      }),
      'rate(x{namespace="shop"}[30s]) / y{namespace="shop"}',
    );
  });

  it('legends from legendFormat, else the labels', () => {
    assert.equal(
      legendOf('{{front}} {{result}}', { front: 'front-0', result: 'timeout' }),
      'front-0 timeout',
    );
    assert.equal(legendOf(undefined, { __name__: 'up', pod: 'a' }), '{pod="a"}');
    assert.equal(legendOf(undefined, {}), 'value');
  });

  it('values in the units the dashboard uses', () => {
    assert.equal(formatValue(0.0042, 's'), '4.20 ms');
    assert.equal(formatValue(2.5, 's'), '2.50 s');
    assert.equal(formatValue(0.875, 'percentunit'), '87.5 %');
    assert.equal(formatValue(3 * 1048576, 'bytes'), '3.0 MiB');
    assert.equal(formatValue(7, 'short'), '7');
  });

  it("draws every panel of the chart's dashboard where its gridPos puts it, and escapes what it shows", () => {
    const dashboard = JSON.parse(
      readFileSync(path.join(ROOT, 'charts/bazar/dashboards/bazar.json'), 'utf8'),
    ) as Dashboard;
    const [stat, series] = [
      dashboard.panels.find((p) => p.type === 'stat')!,
      dashboard.panels.find((p) => p.type === 'timeseries')!,
    ];
    const html = dashboardHtml(
      dashboard,
      [
        { panel: stat, series: [{ legend: '<strict>', points: [[1, 0]] }] },
        {
          panel: series,
          series: [
            {
              legend: 'front',
              points: [
                [0, 1],
                [60, 2],
              ],
            },
          ],
        },
      ],
      'a note',
    );
    for (const p of dashboard.panels)
      assert.ok(html.includes(`>${p.title.replaceAll('&', '&amp;')}<`), p.title);
    assert.equal(
      (html.match(/class="panel"/g) ?? []).length,
      dashboard.panels.filter((p) => p.type !== 'row').length,
    );
    assert.ok(html.includes('&lt;strict&gt;') && !html.includes('<strict>'));
    assert.ok(html.includes('<polyline'), 'a timeseries with data is drawn');
    assert.ok(html.includes('No data'), 'panels without data say so');
  });
});
