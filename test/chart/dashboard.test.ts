/**
 * The Grafana dashboard (charts/bazar/dashboards/bazar.json): shipped by the chart as a ConfigMap for
 * Grafana's sidecar when dashboard.enabled, the same bytes as docs/grafana-dashboard.json, every panel
 * complete, and every query valid PromQL (promtool parses it as a rule's expression, with Grafana's
 * variables filled in). That the queries name only metrics the services export is checked against a
 * running store by test/api/metrics-doc.test.ts.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { stringify } from 'yaml';
import { byKind, renderChart, requireTools, ROOT, run } from './tools.js';

interface Panel {
  type: string;
  title: string;
  description?: string;
  datasource?: { uid: string };
  targets?: Array<{ expr: string; legendFormat?: string }>;
}

const FILE = path.join(ROOT, 'charts', 'bazar', 'dashboards', 'bazar.json');
const dashboard = () => JSON.parse(readFileSync(FILE, 'utf8')) as { uid: string; panels: Panel[] };

test('dashboard: off by default; on, a ConfigMap with the sidecar label holding the dashboard; docs/ has the same bytes', (t) => {
  const tools = requireTools(t, 'helm');
  if (!tools) return;
  assert.equal(
    byKind(renderChart(tools.helm).objects, 'ConfigMap').filter((c) => c.metadata.name.endsWith('-dashboard'))
      .length,
    0,
  );
  const on = renderChart(tools.helm, { release: 'shop', namespace: 'shop', set: ['dashboard.enabled=true'] });
  const [cm] = byKind(on.objects, 'ConfigMap').filter((c) => c.metadata.name === 'shop-bazar-dashboard');
  assert.ok(cm, 'the dashboard ConfigMap');
  assert.equal(cm.metadata.labels?.['grafana_dashboard'], '1');
  const data = (cm as unknown as { data: Record<string, string> }).data;
  assert.deepEqual(JSON.parse(data['bazar.json']!), dashboard());
  assert.equal(
    readFileSync(path.join(ROOT, 'docs', 'grafana-dashboard.json'), 'utf8'),
    readFileSync(FILE, 'utf8'),
  );
});

test('dashboard: every panel has a title, a description and the datasource variable; every query is valid PromQL', (t) => {
  const tools = requireTools(t, 'promtool');
  if (!tools) return;
  const panels = dashboard().panels.filter((p) => p.type !== 'row');
  assert.ok(panels.length >= 12, `${panels.length} panels`);
  const rules: Array<{ record: string; expr: string }> = [];
  for (const p of panels) {
    assert.ok(p.title && p.description, `${p.title}: a title and a description`);
    assert.equal(p.datasource?.uid, '${datasource}', `${p.title}: the datasource variable`);
    assert.ok((p.targets ?? []).length > 0, `${p.title}: a query`);
    for (const [i, target] of (p.targets ?? []).entries()) {
      const expr = target.expr.replaceAll('$namespace', 'shop').replaceAll('$__rate_interval', '1m');
      assert.ok(!expr.includes('$'), `${p.title}: only $namespace and $__rate_interval are used`);
      rules.push({ record: `dashboard:panel_${rules.length}_${i}`, expr });
    }
  }
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bazar-dashboard-'));
  try {
    const file = path.join(dir, 'panels.yaml');
    writeFileSync(file, stringify({ groups: [{ name: 'dashboard', rules }] }));
    const check = run(tools.promtool, ['check', 'rules', file]);
    assert.equal(
      check.status,
      0,
      `promtool check rules (each panel query as a rule):\n${check.stdout}${check.stderr}`,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
