/**
 * k6 thresholds (https://grafana.com/docs/k6/latest/using-k6/thresholds/): the key is a metric name with
 * an optional tag filter (`http_req_duration{endpoint:info}`), each expression is
 * `<aggregation> <operator> <number>`, and the aggregation must suit the metric's type.
 */
import type { MetricType, Sample } from './protocol.js';

export interface ThresholdKey {
  metric: string;
  tags: Record<string, string>;
}

export interface ThresholdExpression {
  aggregation: string;
  /** For p(N). */
  percentile?: number;
  operator: '<' | '<=' | '>' | '>=' | '==' | '===' | '!=';
  value: number;
}

const KEY = /^([a-zA-Z_][a-zA-Z0-9_]*)(?:\{(.*)\})?$/;
const EXPR =
  /^\s*(avg|min|max|med|count|rate|value|p\((\d+(?:\.\d+)?)\))\s*(<=|>=|===|==|!=|<|>)\s*(-?\d+(?:\.\d+)?)\s*$/;

export const AGGREGATIONS: Record<MetricType, string[]> = {
  counter: ['count', 'rate'],
  gauge: ['value'],
  rate: ['rate'],
  trend: ['avg', 'min', 'max', 'med', 'p'],
};

export function parseThresholdKey(key: string): ThresholdKey {
  const m = KEY.exec(key);
  if (!m) throw new Error(`threshold "${key}": expected metric_name or metric_name{tag:value}`);
  const tags: Record<string, string> = {};
  if (m[2] !== undefined) {
    if (m[2].trim() === '') throw new Error(`threshold "${key}": empty tag filter`);
    for (const pair of m[2].split(',')) {
      const i = pair.indexOf(':');
      const name = i < 0 ? '' : pair.slice(0, i).trim();
      const value = i < 0 ? '' : pair.slice(i + 1).trim();
      if (name === '' || value === '')
        throw new Error(`threshold "${key}": tag filter "${pair}" is not tag:value`);
      tags[name] = value;
    }
  }
  return { metric: m[1] as string, tags };
}

export function parseThresholdExpression(expr: string): ThresholdExpression {
  const m = EXPR.exec(expr);
  if (!m)
    throw new Error(`"${expr}" is not "<aggregation> <operator> <number>" (e.g. "p(95)<200", "rate<0.01")`);
  const percentile = m[2] === undefined ? undefined : Number(m[2]);
  if (percentile !== undefined && (percentile < 0 || percentile > 100)) {
    throw new Error(`"${expr}": a percentile must be between 0 and 100`);
  }
  return {
    aggregation: percentile === undefined ? (m[1] as string) : 'p',
    ...(percentile === undefined ? {} : { percentile }),
    operator: m[3] as ThresholdExpression['operator'],
    value: Number(m[4]),
  };
}

export function matches(sample: Sample, key: ThresholdKey): boolean {
  if (sample.metric !== key.metric) return false;
  for (const [k, v] of Object.entries(key.tags)) if (sample.tags[k] !== v) return false;
  return true;
}

/** k6's percentile: linear interpolation between closest ranks. */
export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  if (sorted.length === 1) return sorted[0] as number;
  const rank = (p / 100) * (sorted.length - 1);
  const lo = Math.floor(rank);
  const hi = Math.ceil(rank);
  return (sorted[lo] as number) + ((sorted[hi] as number) - (sorted[lo] as number)) * (rank - lo);
}

export function aggregate(
  type: MetricType,
  values: number[],
  aggregation: string,
  pct: number | undefined,
  durationS: number,
): number {
  const n = values.length;
  switch (aggregation) {
    case 'count':
      return type === 'counter' ? values.reduce((a, b) => a + b, 0) : n;
    case 'rate':
      if (type === 'counter') return durationS > 0 ? values.reduce((a, b) => a + b, 0) / durationS : 0;
      return n === 0 ? 0 : values.filter((v) => v !== 0).length / n;
    case 'value':
      return n === 0 ? 0 : (values[n - 1] as number);
    case 'avg':
      return n === 0 ? 0 : values.reduce((a, b) => a + b, 0) / n;
    case 'min':
      return n === 0 ? 0 : Math.min(...values);
    case 'max':
      return n === 0 ? 0 : Math.max(...values);
    case 'med':
      return percentile(
        [...values].sort((a, b) => a - b),
        50,
      );
    case 'p':
      return percentile(
        [...values].sort((a, b) => a - b),
        pct ?? 0,
      );
    default:
      throw new Error(`unknown aggregation ${aggregation}`);
  }
}

export function compare(actual: number, op: ThresholdExpression['operator'], value: number): boolean {
  switch (op) {
    case '<':
      return actual < value;
    case '<=':
      return actual <= value;
    case '>':
      return actual > value;
    case '>=':
      return actual >= value;
    case '==':
    case '===':
      return actual === value;
    case '!=':
      return actual !== value;
  }
}
