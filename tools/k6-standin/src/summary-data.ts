/**
 * The end-of-test summary data k6 hands to handleSummary()
 * (https://grafana.com/docs/k6/latest/results-output/end-of-test/custom-summary/), built from the
 * stand-in's samples: metrics with their values and threshold verdicts, the group/check tree, options
 * and state.
 */
import { createHash } from 'node:crypto';
import type { CheckResult, MetricInfo, Sample } from './protocol.js';
import { aggregate, compare, matches, parseThresholdExpression, parseThresholdKey } from './thresholds.js';

export interface ThresholdResult {
  key: string;
  expression: string;
  ok: boolean;
  actual: number;
  samples: number;
}

const DEFAULT_TREND_STATS = ['avg', 'min', 'med', 'max', 'p(90)', 'p(95)'];

function thresholdExpressions(value: unknown): string[] {
  const list = Array.isArray(value) ? value : [value];
  return list.map((t) => (typeof t === 'string' ? t : String((t as { threshold?: unknown }).threshold)));
}

/** Evaluates every threshold of `options` on the samples (unknown metrics are a validation error, not here). */
export function evaluateThresholds(
  options: Record<string, unknown>,
  metrics: Record<string, MetricInfo>,
  samples: Sample[],
  durationS: number,
): ThresholdResult[] {
  const results: ThresholdResult[] = [];
  const thresholds = (options.thresholds ?? {}) as Record<string, unknown>;
  for (const [key, value] of Object.entries(thresholds)) {
    const parsedKey = parseThresholdKey(key);
    const metric = metrics[parsedKey.metric];
    if (!metric) continue;
    const values = samples.filter((s) => matches(s, parsedKey)).map((s) => s.value);
    for (const expression of thresholdExpressions(value)) {
      const e = parseThresholdExpression(expression);
      const actual = aggregate(metric.type, values, e.aggregation, e.percentile, durationS);
      results.push({
        key,
        expression,
        ok: compare(actual, e.operator, e.value),
        actual,
        samples: values.length,
      });
    }
  }
  return results;
}

function trendValues(values: number[], stats: string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const stat of stats) {
    const p = /^p\((\d+(?:\.\d+)?)\)$/.exec(stat);
    if (p) out[stat] = aggregate('trend', values, 'p', Number(p[1]), 0);
    else if (stat === 'count') out[stat] = values.length;
    else out[stat] = aggregate('trend', values, stat, undefined, 0);
  }
  return out;
}

function metricValues(info: MetricInfo, values: number[], durationS: number, trendStats: string[]) {
  switch (info.type) {
    case 'counter': {
      const count = values.reduce((a, b) => a + b, 0);
      return { count, rate: durationS > 0 ? count / durationS : 0 };
    }
    case 'gauge':
      return { value: values.at(-1) ?? 0, min: Math.min(...values), max: Math.max(...values) };
    case 'rate': {
      const passes = values.filter((v) => v !== 0).length;
      return {
        rate: values.length === 0 ? 0 : passes / values.length,
        passes,
        fails: values.length - passes,
      };
    }
    case 'trend':
      return trendValues(values, trendStats);
  }
}

interface Group {
  name: string;
  path: string;
  id: string;
  groups: Group[];
  checks: Array<{ name: string; path: string; id: string; passes: number; fails: number }>;
}

const id = (path: string) => createHash('md5').update(path).digest('hex');

function groupTree(checks: CheckResult[]): Group {
  const root: Group = { name: '', path: '', id: id(''), groups: [], checks: [] };
  const byPath = new Map<string, Group>([['', root]]);
  const ensure = (path: string): Group => {
    const existing = byPath.get(path);
    if (existing) return existing;
    const cut = path.lastIndexOf('::');
    const parent = ensure(path.slice(0, cut));
    const group: Group = { name: path.slice(cut + 2), path, id: id(path), groups: [], checks: [] };
    parent.groups.push(group);
    byPath.set(path, group);
    return group;
  };
  for (const c of checks) {
    const path = `${c.group}::${c.name}`;
    ensure(c.group).checks.push({ name: c.name, path, id: id(path), passes: c.passes, fails: c.fails });
  }
  return root;
}

export function buildSummaryData(input: {
  options: Record<string, unknown>;
  metrics: Record<string, MetricInfo>;
  samples: Sample[];
  checks: CheckResult[];
  testRunDurationMs: number;
}): Record<string, unknown> {
  const { options, metrics, samples } = input;
  const durationS = input.testRunDurationMs / 1000;
  const trendStats = Array.isArray(options.summaryTrendStats)
    ? (options.summaryTrendStats as string[])
    : DEFAULT_TREND_STATS;
  const out: Record<string, unknown> = {};
  const byMetric = new Map<string, number[]>();
  for (const s of samples) {
    let list = byMetric.get(s.metric);
    if (!list) byMetric.set(s.metric, (list = []));
    list.push(s.value);
  }
  for (const [name, values] of byMetric) {
    const info = metrics[name];
    if (!info) continue;
    out[name] = {
      type: info.type,
      contains: info.contains,
      values: metricValues(info, values, durationS, trendStats),
    };
  }
  const verdicts = evaluateThresholds(options, metrics, samples, durationS);
  for (const v of verdicts) {
    const parsed = parseThresholdKey(v.key);
    const info = metrics[parsed.metric];
    if (!info) continue;
    type Entry = { thresholds?: Record<string, { ok: boolean }> };
    let entry = out[v.key] as Entry | undefined;
    if (!entry) {
      const values = samples.filter((s) => matches(s, parsed)).map((s) => s.value);
      const made = {
        type: info.type,
        contains: info.contains,
        values: metricValues(info, values, durationS, trendStats),
      };
      out[v.key] = made;
      entry = made as Entry;
    }
    const verdicts = (entry.thresholds ??= {});
    verdicts[v.expression] = { ok: v.ok };
  }
  return {
    root_group: groupTree(input.checks),
    options: { summaryTrendStats: trendStats, summaryTimeUnit: '', noColor: false },
    state: { isStdOutTTY: false, isStdErrTTY: false, testRunDurationMs: input.testRunDurationMs },
    metrics: out,
  };
}
