/**
 * Checks a script's exported `options` against k6's documented shapes
 * (https://grafana.com/docs/k6/latest/using-k6/k6-options/reference/,
 * https://grafana.com/docs/k6/latest/using-k6/scenarios/executors/,
 * https://grafana.com/docs/k6/latest/using-k6/thresholds/). Stricter than k6 where k6 would only warn:
 * an unknown key is an error here, because it is almost always a typo that silently changes a test.
 */
import { AGGREGATIONS, parseThresholdExpression, parseThresholdKey } from './thresholds.js';
import type { MetricInfo } from './protocol.js';

const TOP_LEVEL = new Set([
  'scenarios',
  'thresholds',
  'summaryTrendStats',
  'summaryTimeUnit',
  'setupTimeout',
  'teardownTimeout',
  'discardResponseBodies',
  'noConnectionReuse',
  'noVUConnectionReuse',
  'userAgent',
  'tags',
  'insecureSkipTLSVerify',
  'httpDebug',
  'batch',
  'batchPerHost',
  'maxRedirects',
  'minIterationDuration',
  'noCookiesReset',
  'throw',
  'systemTags',
  'dns',
  'hosts',
  'blacklistIPs',
  'blockHostnames',
  'rps',
  'noSetup',
  'noTeardown',
  'cloud',
  // Shortcuts that k6 turns into a single scenario; not to be mixed with `scenarios`.
  'vus',
  'duration',
  'iterations',
  'stages',
]);
const SHORTCUTS = ['vus', 'duration', 'iterations', 'stages'];

const COMMON = ['executor', 'startTime', 'gracefulStop', 'exec', 'env', 'tags'];

interface Field {
  kind: 'int' | 'duration' | 'stages' | 'rateStages';
  required?: boolean;
  min?: number;
}

/** Each executor's own fields. */
export const EXECUTORS: Record<string, Record<string, Field>> = {
  'shared-iterations': {
    vus: { kind: 'int', min: 1 },
    iterations: { kind: 'int', min: 1 },
    maxDuration: { kind: 'duration' },
  },
  'per-vu-iterations': {
    vus: { kind: 'int', min: 1 },
    iterations: { kind: 'int', min: 1 },
    maxDuration: { kind: 'duration' },
  },
  'constant-vus': {
    vus: { kind: 'int', min: 1 },
    duration: { kind: 'duration', required: true },
  },
  'ramping-vus': {
    startVUs: { kind: 'int', min: 0 },
    stages: { kind: 'stages', required: true },
    gracefulRampDown: { kind: 'duration' },
  },
  'constant-arrival-rate': {
    rate: { kind: 'int', required: true, min: 1 },
    timeUnit: { kind: 'duration' },
    duration: { kind: 'duration', required: true },
    preAllocatedVUs: { kind: 'int', required: true, min: 0 },
    maxVUs: { kind: 'int', min: 0 },
  },
  'ramping-arrival-rate': {
    startRate: { kind: 'int', min: 0 },
    timeUnit: { kind: 'duration' },
    preAllocatedVUs: { kind: 'int', required: true, min: 0 },
    maxVUs: { kind: 'int', min: 0 },
    stages: { kind: 'rateStages', required: true },
  },
  'externally-controlled': {
    vus: { kind: 'int', min: 0 },
    maxVUs: { kind: 'int', min: 0 },
    duration: { kind: 'duration', required: true },
  },
};

/** Scenario names k6 accepts. */
const SCENARIO_NAME = /^[0-9A-Za-z_-]+$/;
const DURATION = /^(\d+(\.\d+)?(h|m|s|ms|us|µs|ns))+$/;
const TREND_STAT = /^(avg|min|med|max|count|p\(\d+(\.\d+)?\))$/;

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isDuration(v: unknown): boolean {
  return (
    (typeof v === 'string' && DURATION.test(v)) || (typeof v === 'number' && Number.isFinite(v) && v >= 0)
  );
}

export interface ValidationContext {
  /** Exported names → typeof (for `exec`). */
  exports: Record<string, string>;
  /** Every metric the script can produce: k6's built-ins and the custom ones it declared. */
  metrics: Record<string, MetricInfo>;
}

/** Returns every problem found; an empty list means the options are well-formed. */
export function validateOptions(options: unknown, ctx: ValidationContext): string[] {
  const errors: string[] = [];
  if (!isObject(options)) return ['options must be an object'];
  for (const key of Object.keys(options)) {
    if (!TOP_LEVEL.has(key)) errors.push(`options.${key} is not a k6 option`);
  }
  if (options.scenarios !== undefined) {
    const mixed = SHORTCUTS.filter((k) => options[k] !== undefined);
    if (mixed.length > 0)
      errors.push(`options.${mixed.join(', ')} must not be combined with options.scenarios`);
    errors.push(...validateScenarios(options.scenarios, ctx));
  }
  if (options.thresholds !== undefined) errors.push(...validateThresholds(options.thresholds, ctx));
  if (options.summaryTrendStats !== undefined) {
    const stats = options.summaryTrendStats;
    if (!Array.isArray(stats) || stats.some((s) => typeof s !== 'string' || !TREND_STAT.test(s))) {
      errors.push('options.summaryTrendStats must list avg, min, med, max, count or p(N)');
    }
  }
  for (const key of ['setupTimeout', 'teardownTimeout', 'minIterationDuration', 'duration']) {
    if (options[key] !== undefined && !isDuration(options[key]))
      errors.push(`options.${key} must be a duration`);
  }
  for (const key of ['discardResponseBodies', 'noConnectionReuse', 'insecureSkipTLSVerify', 'throw']) {
    if (options[key] !== undefined && typeof options[key] !== 'boolean')
      errors.push(`options.${key} must be a boolean`);
  }
  if (options.tags !== undefined && !stringMap(options.tags))
    errors.push('options.tags must map names to strings');
  return errors;
}

function stringMap(v: unknown): boolean {
  return isObject(v) && Object.values(v).every((x) => typeof x === 'string');
}

function validateScenarios(scenarios: unknown, ctx: ValidationContext): string[] {
  const errors: string[] = [];
  if (!isObject(scenarios) || Object.keys(scenarios).length === 0) {
    return ['options.scenarios must be an object with at least one scenario'];
  }
  for (const [name, raw] of Object.entries(scenarios)) {
    const where = `scenario "${name}"`;
    if (!SCENARIO_NAME.test(name)) errors.push(`${where}: names may use letters, digits, _ and - only`);
    if (!isObject(raw)) {
      errors.push(`${where} must be an object`);
      continue;
    }
    const executor = raw.executor;
    const fields = typeof executor === 'string' ? EXECUTORS[executor] : undefined;
    if (!fields) {
      errors.push(
        `${where}: executor ${JSON.stringify(executor)} is not one of ${Object.keys(EXECUTORS).join(', ')}`,
      );
      continue;
    }
    for (const key of Object.keys(raw)) {
      if (!COMMON.includes(key) && !(key in fields))
        errors.push(`${where}: "${key}" is not an option of ${executor}`);
    }
    for (const [key, field] of Object.entries(fields)) {
      const value = raw[key];
      if (value === undefined) {
        if (field.required) errors.push(`${where}: ${executor} needs "${key}"`);
        continue;
      }
      errors.push(...validateField(`${where}: ${key}`, value, field));
    }
    for (const key of ['startTime', 'gracefulStop']) {
      if (raw[key] !== undefined && !isDuration(raw[key])) errors.push(`${where}: ${key} must be a duration`);
    }
    const exec = raw.exec === undefined ? 'default' : raw.exec;
    if (typeof exec !== 'string') errors.push(`${where}: exec must be the name of an exported function`);
    else if (ctx.exports[exec] !== 'function') {
      errors.push(`${where}: exec "${exec}" is not an exported function of the script`);
    }
    if (raw.env !== undefined && !stringMap(raw.env)) errors.push(`${where}: env must map names to strings`);
    if (raw.tags !== undefined && !stringMap(raw.tags))
      errors.push(`${where}: tags must map names to strings`);
    if (executor === 'constant-arrival-rate' || executor === 'ramping-arrival-rate') {
      const pre = raw.preAllocatedVUs as number;
      if (typeof raw.maxVUs === 'number' && typeof pre === 'number' && raw.maxVUs < pre) {
        errors.push(`${where}: maxVUs must be at least preAllocatedVUs`);
      }
    }
  }
  return errors;
}

function validateField(where: string, value: unknown, field: Field): string[] {
  switch (field.kind) {
    case 'int':
      return Number.isInteger(value) && (value as number) >= (field.min ?? 0)
        ? []
        : [`${where} must be an integer ≥ ${field.min ?? 0}`];
    case 'duration':
      return isDuration(value) ? [] : [`${where} must be a duration such as "30s" or "1m30s"`];
    case 'stages':
    case 'rateStages': {
      if (!Array.isArray(value) || value.length === 0)
        return [`${where} must be a non-empty array of stages`];
      const errors: string[] = [];
      value.forEach((stage: unknown, i) => {
        if (!isObject(stage)) {
          errors.push(`${where}[${i}] must be {duration, target}`);
          return;
        }
        for (const key of Object.keys(stage)) {
          if (key !== 'duration' && key !== 'target')
            errors.push(`${where}[${i}].${key} is not a stage field`);
        }
        if (!isDuration(stage.duration)) errors.push(`${where}[${i}].duration must be a duration`);
        if (!Number.isInteger(stage.target) || (stage.target as number) < 0) {
          errors.push(`${where}[${i}].target must be an integer ≥ 0`);
        }
      });
      return errors;
    }
  }
}

function validateThresholds(thresholds: unknown, ctx: ValidationContext): string[] {
  const errors: string[] = [];
  if (!isObject(thresholds)) return ['options.thresholds must be an object'];
  for (const [key, raw] of Object.entries(thresholds)) {
    let metricName: string;
    try {
      metricName = parseThresholdKey(key).metric;
    } catch (err) {
      errors.push((err as Error).message);
      continue;
    }
    const metric = ctx.metrics[metricName];
    if (!metric) {
      errors.push(
        `threshold "${key}": no metric "${metricName}" (neither built in nor declared by the script)`,
      );
      continue;
    }
    const list = Array.isArray(raw) ? raw : [raw];
    if (list.length === 0) errors.push(`threshold "${key}": no expressions`);
    for (const item of list) {
      let expr: unknown = item;
      if (isObject(item)) {
        for (const k of Object.keys(item)) {
          if (!['threshold', 'abortOnFail', 'delayAbortEval'].includes(k)) {
            errors.push(`threshold "${key}": "${k}" is not a threshold field`);
          }
        }
        if (item.abortOnFail !== undefined && typeof item.abortOnFail !== 'boolean') {
          errors.push(`threshold "${key}": abortOnFail must be a boolean`);
        }
        if (item.delayAbortEval !== undefined && !isDuration(item.delayAbortEval)) {
          errors.push(`threshold "${key}": delayAbortEval must be a duration`);
        }
        expr = item.threshold;
      }
      if (typeof expr !== 'string') {
        errors.push(
          `threshold "${key}": each entry must be a string or {threshold, abortOnFail, delayAbortEval}`,
        );
        continue;
      }
      try {
        const parsed = parseThresholdExpression(expr);
        if (!AGGREGATIONS[metric.type].includes(parsed.aggregation)) {
          const allowed = AGGREGATIONS[metric.type].map((a) => (a === 'p' ? 'p(N)' : a)).join(', ');
          errors.push(`threshold "${key}": "${expr}" does not apply to a ${metric.type} (use ${allowed})`);
        }
      } catch (err) {
        errors.push(`threshold "${key}": ${(err as Error).message}`);
      }
    }
  }
  return errors;
}
