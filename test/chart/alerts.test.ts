/**
 * The chart's alert rules (prometheusRule.enabled): rendered from the chart as a user would, checked by
 * promtool (`check rules`), and unit-tested by promtool (`test rules`, test/chart/fixtures/alerts/): each
 * alert fires when its fault is real, with its labels and annotations, and not when it is not. Every
 * alert has such a test and a runbook entry in docs/operations.md.
 */
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { parse, stringify } from 'yaml';
import { byKind, renderChart, renderedRuleGroups, requireTools, ROOT, run, type RuleGroup } from './tools.js';

const FIXTURE = path.join(ROOT, 'test', 'chart', 'fixtures', 'alerts', 'alerts.test.yaml');

const renderedGroups = (helm: string, set: string[] = []): RuleGroup[] =>
  renderedRuleGroups(helm, { release: 'shop', namespace: 'shop', set });

test('prometheusRule: off by default; on, the rules pass promtool check and every unit test, and each alert has a test and a runbook', (t) => {
  const tools = requireTools(t, 'helm', 'promtool');
  if (!tools) return;
  assert.equal(byKind(renderChart(tools.helm).objects, 'PrometheusRule').length, 0, 'off by default');
  const groups = renderedGroups(tools.helm);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bazar-alerts-'));
  try {
    writeFileSync(path.join(dir, 'rules.yaml'), stringify({ groups }));
    copyFileSync(FIXTURE, path.join(dir, 'alerts.test.yaml'));
    const check = run(tools.promtool, ['check', 'rules', path.join(dir, 'rules.yaml')]);
    assert.equal(check.status, 0, `promtool check rules:\n${check.stdout}${check.stderr}`);
    const unit = run(tools.promtool, ['test', 'rules', path.join(dir, 'alerts.test.yaml')]);
    assert.equal(unit.status, 0, `promtool test rules:\n${unit.stdout}${unit.stderr}`);
    assert.match(unit.stdout + unit.stderr, /SUCCESS/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }

  const alerts = groups.flatMap((g) => g.rules.flatMap((r) => (r.alert ? [r.alert] : [])));
  assert.ok(alerts.length >= 10, `the alerts (${alerts.join(', ')})`);
  const cases = parse(readFileSync(FIXTURE, 'utf8')) as {
    tests: Array<{ alert_rule_test: Array<{ alertname: string; exp_alerts: unknown[] }> }>;
  };
  const fired = new Set<string>();
  const silent = new Set<string>();
  for (const c of cases.tests) {
    for (const a of c.alert_rule_test) (a.exp_alerts.length > 0 ? fired : silent).add(a.alertname);
  }
  const runbook = readFileSync(path.join(ROOT, 'docs', 'operations.md'), 'utf8');
  for (const alert of alerts) {
    assert.ok(fired.has(alert), `${alert}: a test where it fires`);
    assert.ok(
      silent.has(alert) || alert === 'BazarTargetDown' || alert === 'BazarLatencyBudgetBurnSlow',
      `${alert}: a test where it does not`,
    );
    assert.ok(runbook.includes(`\`${alert}\``), `${alert}: a runbook entry in docs/operations.md`);
  }
});

test('prometheusRule: the SLOs are values (a stricter availability lowers the thresholds); an SLO latency off the histogram buckets is refused', (t) => {
  const tools = requireTools(t, 'helm');
  if (!tools) return;
  const threshold = (groups: RuleGroup[]) =>
    groups.flatMap((g) => g.rules).find((r) => r.alert === 'BazarErrorBudgetBurnFast')!.expr;
  assert.match(threshold(renderedGroups(tools.helm)), /> 0\.072\b/, '14.4 × (1 - 0.995)');
  assert.match(
    threshold(renderedGroups(tools.helm, ['prometheusRule.slo.availability=0.999'])),
    /> 0\.0144\b/,
  );
  const bad = run(tools.helm, [
    'template',
    'shop',
    path.join(ROOT, 'charts', 'bazar'),
    '--set',
    'prometheusRule.enabled=true',
    '--set',
    'prometheusRule.slo.latencySeconds=0.3',
  ]);
  assert.notEqual(bad.status, 0, 'a latency that is no bucket bound is refused');
  assert.match(bad.stderr, /latencySeconds/);
});

test("prometheusRule: each alert's `for` and BazarInvalidationsFailing's window are values; a `for` not longer than that window is refused", (t) => {
  const tools = requireTools(t, 'helm');
  if (!tools) return;
  const rules = (set: string[] = []) =>
    new Map(
      renderedGroups(tools.helm, set)
        .flatMap((g) => g.rules)
        .filter((r) => r.alert)
        .map((r) => [r.alert!, r]),
    );
  const defaults = rules();
  assert.equal(defaults.get('BazarPrimaryUnreachable')!.for, '1m');
  assert.equal(defaults.get('BazarInvalidationsFailing')!.for, '3m');
  assert.match(defaults.get('BazarInvalidationsFailing')!.expr, /\[2m\]\)\)[\s\S]*\[2m\]\)\) > 0\.1/);
  const tuned = rules([
    'prometheusRule.for.primaryUnreachable=90s',
    'prometheusRule.for.invalidationsFailing=1m',
    'prometheusRule.invalidationsFailingWindow=30s',
  ]);
  assert.equal(tuned.get('BazarPrimaryUnreachable')!.for, '90s');
  assert.equal(tuned.get('BazarInvalidationsFailing')!.for, '1m');
  const window = tuned.get('BazarInvalidationsFailing')!.expr.match(/\[[^\]]+\]/g);
  assert.deepEqual(window, ['[30s]', '[30s]']);
  assert.equal(tuned.get('BazarStandbyNotStreaming')!.for, '1m', 'the others keep their defaults');

  const template = (set: string[]) =>
    run(tools.helm, [
      'template',
      'shop',
      path.join(ROOT, 'charts', 'bazar'),
      '--set',
      'prometheusRule.enabled=true',
      ...set.flatMap((s) => ['--set', s]),
    ]);
  for (const set of [
    ['prometheusRule.for.invalidationsFailing=2m'],
    ['prometheusRule.for.invalidationsFailing=1m30s', 'prometheusRule.invalidationsFailingWindow=90s'],
  ]) {
    const bad = template(set);
    assert.notEqual(bad.status, 0, `${set.join(' ')}: refused`);
    assert.match(bad.stderr, /must be longer than prometheusRule\.invalidationsFailingWindow/);
  }
  const notADuration = template(['prometheusRule.for.targetDown=2 minutes']);
  assert.notEqual(notADuration.status, 0, 'a `for` that is no Prometheus duration is refused');
  assert.match(notADuration.stderr, /targetDown/);
  assert.equal(
    template([
      'prometheusRule.for.invalidationsFailing=1h',
      'prometheusRule.invalidationsFailingWindow=1m30s',
    ]).status,
    0,
  );
});
