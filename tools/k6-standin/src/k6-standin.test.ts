/**
 * The k6 stand-in: proves load-tests/ without the k6 binary (AGPL, not installed here). Every script
 * must load as the ES module k6 loads, its options must match k6's documented shapes, and one
 * iteration of each scenario's exec function must pass every check against a real local store, using
 * only the k6 APIs the stand-in provides. A wrong path, method, body or check must fail.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { cp, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startTestStack, type TestStack } from '../../../test/api/harness.js';
import { runK6Script, type RunResult } from './runner.js';
import { validateOptions } from './options.js';
import { BUILTIN_METRICS } from './runtime.js';
import type { MetricInfo } from './protocol.js';

const LOAD_TESTS = fileURLToPath(new URL('../../../../load-tests/', import.meta.url));
const SCRIPT = path.join(LOAD_TESTS, 'bazar.js');
const SCENARIOS = ['smoke', 'browse', 'purchase-storm', 'mixed', 'soak'];

function explain(r: RunResult): string {
  return `\n  ${r.failures.join('\n  ')}${r.console.length ? `\nconsole:\n  ${r.console.join('\n  ')}` : ''}`;
}

/** Copies load-tests/ to a temporary directory with one exact edit (which must match exactly once). */
async function mutated(file: string, from: string, to: string): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'bazar-k6-mutant-'));
  await cp(LOAD_TESTS, dir, { recursive: true });
  const target = path.join(dir, file);
  const source = await readFile(target, 'utf8');
  assert.equal(source.split(from).length - 1, 1, `"${from}" must occur exactly once in ${file}`);
  await writeFile(target, source.replace(from, to));
  return dir;
}

const builtins: Record<string, MetricInfo> = Object.fromEntries(
  Object.entries(BUILTIN_METRICS).map(([k, v]) => [k, { ...v, builtin: true }]),
);

describe('k6 stand-in: load-tests scripts load as k6 ES modules with well-formed options', () => {
  it('k6 stand-in: every .js entry script in load-tests/ parses as an ES module with valid options', async () => {
    const entries = (await readdir(LOAD_TESTS)).filter((f) => f.endsWith('.js'));
    assert.ok(entries.includes('bazar.js'));
    for (const entry of entries) {
      const r = await runK6Script({ script: path.join(LOAD_TESTS, entry), action: 'inspect' });
      assert.deepEqual(r.failures, [], `${entry}:${explain(r)}`);
    }
  });

  for (const scenario of [...SCENARIOS, 'all']) {
    it(`k6 stand-in: SCENARIO=${scenario} yields k6-valid scenarios, executors and thresholds`, async () => {
      const r = await runK6Script({ script: SCRIPT, action: 'inspect', env: { SCENARIO: scenario } });
      assert.deepEqual(r.failures, [], explain(r));
      const scenarios = (r.options as { scenarios: Record<string, { exec: string }> }).scenarios;
      assert.deepEqual(Object.keys(scenarios), scenario === 'all' ? SCENARIOS : [scenario]);
      for (const s of Object.values(scenarios)) assert.equal(r.exports[s.exec], 'function');
      assert.equal(r.exports.setup, 'function');
      assert.equal(r.exports.handleSummary, 'function');
      const thresholds = Object.keys((r.options as { thresholds: object }).thresholds);
      assert.ok(thresholds.includes('checks') && thresholds.includes('http_req_failed'));
      assert.ok(
        thresholds.some((t) => t.startsWith('http_req_duration{endpoint:')),
        'per-endpoint SLOs',
      );
    });
  }

  it('k6 stand-in: the default scenario is smoke, and an unknown SCENARIO fails at init', async () => {
    const dflt = await runK6Script({ script: SCRIPT, action: 'inspect' });
    assert.deepEqual(Object.keys((dflt.options as { scenarios: object }).scenarios), ['smoke']);
    const bad = await runK6Script({ script: SCRIPT, action: 'inspect', env: { SCENARIO: 'stampede' } });
    assert.match(bad.failures.join('\n'), /init: .*unknown SCENARIO "stampede"/);
  });
});

describe('k6 stand-in: the option validator knows k6 shapes', () => {
  const ctx = { exports: { default: 'function', browse: 'function' }, metrics: builtins };
  const valid = {
    scenarios: { browse: { executor: 'constant-vus', exec: 'browse', vus: 5, duration: '30s' } },
    thresholds: { http_req_failed: ['rate<0.01'], 'http_req_duration{endpoint:info}': ['p(99)<100'] },
  };

  it('k6 stand-in: accepts a well-formed options object', () => {
    assert.deepEqual(validateOptions(valid, ctx), []);
  });

  const cases: Array<[string, unknown, RegExp]> = [
    [
      'unknown executor',
      { scenarios: { a: { executor: 'constant-vu', duration: '1s' } } },
      /executor "constant-vu"/,
    ],
    ['missing duration', { scenarios: { a: { executor: 'constant-vus', vus: 1 } } }, /needs "duration"/],
    ['bad duration', { scenarios: { a: { executor: 'constant-vus', duration: '30 seconds' } } }, /duration/],
    [
      'option of another executor',
      { scenarios: { a: { executor: 'constant-vus', duration: '1s', rate: 5 } } },
      /"rate" is not an option of constant-vus/,
    ],
    [
      'arrival rate without preAllocatedVUs',
      { scenarios: { a: { executor: 'constant-arrival-rate', rate: 5, duration: '1s' } } },
      /needs "preAllocatedVUs"/,
    ],
    [
      'bad scenario name',
      { scenarios: { 'a b': { executor: 'constant-vus', duration: '1s' } } },
      /names may use/,
    ],
    [
      'exec not exported',
      { scenarios: { a: { executor: 'constant-vus', duration: '1s', exec: 'nope' } } },
      /exec "nope"/,
    ],
    [
      'stages without target',
      { scenarios: { a: { executor: 'ramping-vus', stages: [{ duration: '1s' }] } } },
      /target/,
    ],
    ['unknown top-level option', { scenario: {} }, /options.scenario is not a k6 option/],
    ['shortcut mixed with scenarios', { ...valid, vus: 3 }, /must not be combined/],
    ['threshold on an unknown metric', { thresholds: { http_req_durations: ['p(95)<1'] } }, /no metric/],
    ['percentile on a rate', { thresholds: { http_req_failed: ['p(95)<0.01'] } }, /does not apply to a rate/],
    ['malformed expression', { thresholds: { http_req_duration: ['p95 < 200'] } }, /aggregation/],
    ['malformed tag filter', { thresholds: { 'http_req_duration{endpoint}': ['p(95)<1'] } }, /tag:value/],
    [
      'bad threshold object',
      { thresholds: { checks: [{ threshold: 'rate>0.9', abortOnFail: 'yes' }] } },
      /abortOnFail/,
    ],
  ];
  for (const [name, options, pattern] of cases) {
    it(`k6 stand-in: rejects ${name}`, () => {
      assert.match(validateOptions(options, ctx).join('\n'), pattern);
    });
  }
});

describe('k6 stand-in: only k6 APIs are available to a script', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'bazar-k6-env-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const cases: Array<[string, string, RegExp]> = [
    [
      'a Node built-in',
      `import fs from 'node:fs';\nexport default function () {}`,
      /not a module k6 can load/,
    ],
    ['an npm package', `import got from 'got';\nexport default function () {}`, /not a module k6 can load/],
    [
      'a k6 module the stand-in lacks',
      `import ws from 'k6/ws';\nexport default function () {}`,
      /does not provide "k6\/ws"/,
    ],
    [
      'a Node global',
      `export const x = Buffer.from('a');\nexport default function () {}`,
      /Buffer is not defined/,
    ],
    [
      'an API k6/http lacks',
      `import { batch } from 'k6/http';\nexport default function () {}`,
      /does not provide an export named 'batch'/,
    ],
    [
      'metrics declared outside the init context',
      `import { Trend } from 'k6/metrics';\nexport default function () { new Trend('late'); }`,
      /must be called in the init context/,
    ],
  ];
  for (const [name, source, pattern] of cases) {
    it(`k6 stand-in: a script using ${name} fails`, async () => {
      const file = path.join(dir, `${name.replace(/\W+/g, '-')}.js`);
      await writeFile(file, source);
      const r = await runK6Script({ script: file, action: 'run', env: {} });
      assert.match(r.failures.join('\n'), pattern);
    });
  }

  it('k6 stand-in: SharedArray is read-only and array-like only, as in k6', async () => {
    const file = path.join(dir, 'shared.js');
    await writeFile(
      file,
      [
        `import { SharedArray } from 'k6/data';`,
        `import { check } from 'k6';`,
        `const a = new SharedArray('a', () => [{ n: 1 }, { n: 2 }]);`,
        `export default function () {`,
        `  let sum = 0; for (const x of a) sum += x.n;`,
        `  check(a, { 'length and index': (v) => v.length === 2 && v[1].n === 2, 'for-of': () => sum === 3,`,
        `    'no map': (v) => v.map === undefined });`,
        `  a[0].n = 5;`,
        `}`,
      ].join('\n'),
    );
    const r = await runK6Script({ script: file, action: 'run', env: {} });
    assert.deepEqual(
      r.checks.map((c) => [c.name, c.fails]),
      [
        ['length and index', 0],
        ['for-of', 0],
        ['no map', 0],
      ],
    );
    assert.match(r.failures.join('\n'), /iteration: .*read.only|iteration: TypeError/);
  });
});

describe('k6 stand-in: scenarios run against a local store', () => {
  let store: TestStack;
  let summaryDir: string;
  const env = () => ({
    BASE_URL: store.front(),
    ADMIN_TOKEN: store.stack.adminToken,
    SUMMARY_DIR: summaryDir,
  });
  /** Threshold key → samples seen across every run (a key that never gets one has a typo in it). */
  const thresholdSamples = new Map<string, number>();

  before(async () => {
    store = await startTestStack({ fronts: 1, catalogReplicas: 1, orderReplicas: 0 });
    summaryDir = await mkdtemp(path.join(os.tmpdir(), 'bazar-k6-summary-'));
  });
  after(async () => {
    await store?.stop();
    if (summaryDir) await rm(summaryDir, { recursive: true, force: true });
  });

  for (const scenario of SCENARIOS) {
    it(`k6 stand-in: one iteration of ${scenario} passes every check, with summary JSON and text`, async () => {
      const r = await runK6Script({ script: SCRIPT, action: 'run', env: { ...env(), SCENARIO: scenario } });
      assert.deepEqual(r.failures, [], explain(r));
      assert.ok(r.requests.filter((q) => q.phase === 'iteration').length > 0, 'the iteration made requests');
      assert.ok(
        r.checks.some((c) => !c.group.startsWith('::setup')),
        'the iteration ran checks',
      );
      for (const t of r.thresholds)
        thresholdSamples.set(t.key, (thresholdSamples.get(t.key) ?? 0) + t.samples);
      const json = r.written.find((f) => f.endsWith(`bazar-${scenario}-summary.json`));
      const text = r.written.find((f) => f.endsWith(`bazar-${scenario}-summary.txt`));
      assert.ok(json && text, `handleSummary wrote ${r.written.join(', ')}`);
      const data = JSON.parse(await readFile(json, 'utf8')) as { metrics: Record<string, unknown> };
      assert.ok(data.metrics.http_reqs && data.metrics.checks, 'summary JSON has k6 metrics');
      assert.match(await readFile(text, 'utf8'), /http_req_duration\{endpoint:/);
      assert.equal(r.summaryOutputs?.stdout, await readFile(text, 'utf8'));
    });
  }

  it('k6 stand-in: mixed takes its purchase branch and checks read-your-writes (seeded)', async () => {
    const r = await runK6Script({
      script: SCRIPT,
      action: 'run',
      env: { ...env(), SCENARIO: 'mixed' },
      iterations: 30,
      seed: 6,
    });
    assert.deepEqual(r.failures, [], explain(r));
    const endpoints = new Set(r.requests.filter((q) => q.phase === 'iteration').map((q) => q.tags.endpoint));
    assert.ok(
      endpoints.has('purchase') && endpoints.has('info') && endpoints.has('search'),
      [...endpoints].join(),
    );
    assert.ok(r.samples.some((s) => s.metric === 'bazar_read_your_writes'));
    for (const t of r.thresholds) thresholdSamples.set(t.key, (thresholdSamples.get(t.key) ?? 0) + t.samples);
  });

  it('k6 stand-in: every threshold filters on metrics and tags that some scenario produces', () => {
    assert.ok(thresholdSamples.size > 0);
    const empty = [...thresholdSamples].filter(([, n]) => n === 0).map(([k]) => k);
    assert.deepEqual(empty, []);
  });

  it('k6 stand-in: setup() fails fast when the store is unreachable', async () => {
    const started = Date.now();
    const r = await runK6Script({
      script: SCRIPT,
      action: 'run',
      env: { ...env(), BASE_URL: 'http://127.0.0.1:9', SCENARIO: 'browse' },
    });
    assert.match(r.failures.join('\n'), /setup: .*not reachable at http:\/\/127\.0\.0\.1:9/);
    assert.equal(r.requests.filter((q) => q.phase === 'iteration').length, 0, 'no VU ran');
    assert.ok(Date.now() - started < 10_000);
  });

  it('k6 stand-in: setup() refuses a restocking scenario without ADMIN_TOKEN', async () => {
    const r = await runK6Script({
      script: SCRIPT,
      action: 'run',
      env: { ...env(), ADMIN_TOKEN: '', SCENARIO: 'purchase-storm' },
    });
    assert.match(r.failures.join('\n'), /setup: .*set ADMIN_TOKEN/);
  });

  // Negative tests: a broken script must fail the stand-in, not pass quietly.
  const mutants: Array<[string, string, string, string, RegExp]> = [
    [
      'a wrong path',
      'lib/api.js',
      '`${BASE_URL}/info/${id}`',
      '`${BASE_URL}/infos/${id}`',
      /check failed: .*info: status 200[\s\S]*unexpected response: GET .*\/infos\/\d+ → 404/,
    ],
    [
      'a wrong method',
      'lib/api.js',
      'const res = http.post(\n    `${BASE_URL}/purchase/${id}`,',
      'const res = http.del(\n    `${BASE_URL}/purchase/${id}`,',
      /check failed: .*purchase: 200, or 409 out_of_stock[\s\S]*unexpected response: DELETE .*\/purchase\/\d+ → 405/,
    ],
    [
      'a wrong body',
      'lib/api.js',
      'JSON.stringify({ quantity: quantity })',
      'JSON.stringify({ qty: quantity })',
      /check failed: .*restock: status 200[\s\S]*unexpected response: POST .*\/books\/\d+\/restock → 400/,
    ],
    [
      'a wrong check',
      'lib/api.js',
      'body.orderId === orderId',
      'body.orderId === String(bookId)',
      /check failed: smoke: purchase › order: the order asked for/,
    ],
  ];
  for (const [name, file, from, to, pattern] of mutants) {
    it(`k6 stand-in: ${name} in a script fails the run`, async () => {
      const dir = await mutated(file, from, to);
      try {
        const r = await runK6Script({
          script: path.join(dir, 'bazar.js'),
          action: 'run',
          env: { ...env(), SCENARIO: 'smoke' },
        });
        assert.ok(r.failures.length > 0, 'the broken script must fail');
        assert.match(r.failures.join('\n'), pattern);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });
  }
});
