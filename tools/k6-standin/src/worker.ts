/**
 * Runs one k6 script in a worker thread: registers the module hooks, hides the Node globals k6 does not
 * have, imports the script (its init context), then (action "run") calls setup(), the scenario's exec
 * function for the planned iterations, teardown() and handleSummary(), and reports everything back.
 */
import { register } from 'node:module';
import { performance } from 'node:perf_hooks';
import { workerData, parentPort } from 'node:worker_threads';
import { buildSummaryData } from './summary-data.js';
import type { Phase, WorkerPlan, WorkerReport } from './protocol.js';
import { runtime } from './runtime.js';
import { setResponseCallback, expectedStatuses } from './k6/http.js';

const plan = workerData as WorkerPlan;
const here = new URL('.', import.meta.url).href;
const modules: Record<string, string> = {
  k6: new URL('./k6/k6.js', import.meta.url).href,
  'k6/http': new URL('./k6/http.js', import.meta.url).href,
  'k6/metrics': new URL('./k6/metrics.js', import.meta.url).href,
  'k6/data': new URL('./k6/data.js', import.meta.url).href,
};
register(new URL('./hooks.js', import.meta.url), {
  data: { modules, scriptRootUrl: plan.scriptRootUrl, standinRootUrl: here },
});
// The same module instances the script will get (the hooks map to these URLs).
await Promise.all(Object.values(modules).map((url) => import(url)));

const report: WorkerReport = {
  options: undefined,
  exports: {},
  metrics: {},
  errors: [],
  checks: [],
  requests: [],
  samples: [],
  sleptSeconds: 0,
  console: [],
  testRunDurationMs: 0,
};

function message(err: unknown): string {
  return err instanceof Error ? `${err.name}: ${err.message}` : String(err);
}

// console, as k6 has it, but captured for the report.
for (const level of ['log', 'info', 'warn', 'error', 'debug'] as const) {
  console[level] = (...args: unknown[]) => {
    report.console.push(
      `${level}: ${args.map((a) => (typeof a === 'string' ? a : JSON.stringify(a))).join(' ')}`,
    );
  };
}

// k6's globals.
const env: Record<string, string> = { ...plan.env };
Object.defineProperty(globalThis, '__ENV', { value: env, configurable: true });
Object.defineProperty(globalThis, '__VU', { get: () => runtime.vu, configurable: true });
Object.defineProperty(globalThis, '__ITER', { get: () => runtime.iter, configurable: true });

// Node globals a k6 script cannot use: touching one fails the way it would on k6.
const NOT_IN_K6 = [
  'process',
  'Buffer',
  'global',
  'fetch',
  'Headers',
  'Request',
  'Response',
  'FormData',
  'Blob',
  'URL',
  'URLSearchParams',
  'TextEncoder',
  'TextDecoder',
  'structuredClone',
  'setImmediate',
  'clearImmediate',
  'queueMicrotask',
  'performance',
  'navigator',
  'atob',
  'btoa',
  'WebAssembly',
  'SharedArrayBuffer',
  'Atomics',
];
for (const name of NOT_IN_K6) {
  Object.defineProperty(globalThis, name, {
    configurable: true,
    get() {
      throw new ReferenceError(`${name} is not defined (k6 has no ${name} global)`);
    },
  });
}

if (plan.seed !== undefined) {
  // mulberry32: small, deterministic, good enough to pin the branches a script takes.
  let a = plan.seed >>> 0;
  Math.random = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

runtime.connect(plan.httpPort, plan.signal);
runtime.sleepCapMs = plan.sleepCapMs;

function fail(phase: Phase, err: unknown): void {
  report.errors.push({ phase, message: message(err) });
}

const started = performance.now();
let ns: Record<string, unknown> | undefined;
try {
  ns = (await import(plan.scriptUrl)) as Record<string, unknown>;
  for (const [k, v] of Object.entries(ns)) report.exports[k] = typeof v;
  // k6 reads options as JSON: functions, undefined and the like do not survive.
  report.options = ns.options === undefined ? {} : JSON.parse(JSON.stringify(ns.options));
  const opts = (report.options ?? {}) as Record<string, unknown>;
  runtime.discardResponseBodies = opts.discardResponseBodies === true;
} catch (err) {
  fail('init', err);
}

type Fn = (data?: unknown) => unknown;
const fn = (name: string): Fn | undefined =>
  typeof ns?.[name] === 'function' ? (ns[name] as Fn) : undefined;

if (ns && plan.action === 'run' && report.errors.length === 0) {
  const scenarios =
    (report.options as { scenarios?: Record<string, Record<string, unknown>> }).scenarios ?? {};
  const name = plan.scenario ?? Object.keys(scenarios)[0] ?? 'default';
  const scenario = scenarios[name] ?? {};
  const execName = typeof scenario.exec === 'string' ? scenario.exec : 'default';
  let data: unknown;
  const setup = fn('setup');
  if (setup) {
    runtime.phase = 'setup';
    runtime.groupPath = '::setup';
    try {
      const out = setup();
      // k6 hands setup's result to every VU as JSON.
      data = out === undefined ? undefined : JSON.parse(JSON.stringify(out));
      report.setupData = data;
    } catch (err) {
      fail('setup', err);
    }
    runtime.groupPath = '';
  }
  const exec = fn(execName);
  if (report.errors.length === 0) {
    if (!exec) {
      fail('iteration', new Error(`scenario ${name}: exec "${execName}" is not an exported function`));
    } else {
      runtime.phase = 'iteration';
      runtime.vu = 1;
      runtime.scenario = name;
      runtime.scenarioTags = Object.fromEntries(
        Object.entries((scenario.tags ?? {}) as Record<string, unknown>).map(([k, v]) => [k, String(v)]),
      );
      Object.assign(env, (scenario.env ?? {}) as Record<string, string>);
      for (let i = 0; i < plan.iterations; i++) {
        runtime.iter = i;
        const t0 = performance.now();
        try {
          const result = exec(data);
          if (result instanceof Promise) await result;
          runtime.addSample('iterations', 1, runtime.baseTags());
        } catch (err) {
          fail('iteration', err);
          break;
        } finally {
          runtime.addSample('iteration_duration', performance.now() - t0, runtime.baseTags());
          runtime.groupPath = '';
        }
      }
      runtime.scenario = '';
      runtime.scenarioTags = {};
    }
  }
  const teardown = fn('teardown');
  if (teardown) {
    runtime.phase = 'teardown';
    runtime.vu = 0;
    runtime.groupPath = '::teardown';
    try {
      teardown(data);
    } catch (err) {
      fail('teardown', err);
    }
    runtime.groupPath = '';
  }
  report.testRunDurationMs = performance.now() - started;
  const handleSummary = fn('handleSummary');
  if (handleSummary) {
    runtime.phase = 'summary';
    try {
      const summary = buildSummaryData({
        options: report.options as Record<string, unknown>,
        metrics: Object.fromEntries(runtime.metrics),
        samples: runtime.samples,
        checks: [...runtime.checks.values()],
        testRunDurationMs: report.testRunDurationMs,
      });
      const out = handleSummary(summary);
      if (typeof out !== 'object' || out === null || Array.isArray(out)) {
        throw new Error('handleSummary() must return an object of output name → content');
      }
      report.summaryOutputs = {};
      for (const [k, v] of Object.entries(out as Record<string, unknown>)) {
        if (typeof v !== 'string') throw new Error(`handleSummary(): output "${k}" is not a string`);
        report.summaryOutputs[k] = v;
      }
    } catch (err) {
      fail('summary', err);
    }
  }
}

// Restore the response callback default for tidiness (the worker ends here anyway).
setResponseCallback(expectedStatuses({ min: 200, max: 399 }));
report.metrics = Object.fromEntries(runtime.metrics);
report.checks = [...runtime.checks.values()];
report.requests = runtime.requests;
report.samples = runtime.samples;
report.sleptSeconds = runtime.sleptSeconds;
parentPort?.postMessage(report);
