// helm lint --strict and helm template over the CI values matrix, and the values schema: it rejects
// typos, is closed (additionalProperties: false) everywhere we own the structure, accepts values.yaml
// and every CI values file, and every value is documented in docs/deploy.md.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Ajv } from 'ajv';
import { CHART, ROOT, ciValuesFiles, readYamlFile, requireTools, run, runOk } from './tools.js';

const schema = JSON.parse(readFileSync(path.join(CHART, 'values.schema.json'), 'utf8')) as JsonSchema;
const values = readYamlFile<Record<string, unknown>>(path.join(CHART, 'values.yaml'));

interface JsonSchema {
  type?: string | string[];
  properties?: Record<string, JsonSchema>;
  additionalProperties?: boolean | JsonSchema;
  items?: JsonSchema;
  anyOf?: JsonSchema[];
  $comment?: string;
  [key: string]: unknown;
}

test('the CI values matrix has the expected scenarios', () => {
  const names = ciValuesFiles().map((f) => path.basename(f));
  for (const expected of [
    'default-values.yaml',
    'external-db-values.yaml',
    'ha-values.yaml',
    'minimal-values.yaml',
    'ingress-hpa-monitoring-values.yaml',
    'existing-secret-values.yaml',
    'debug-values.yaml',
    'patroni-values.yaml',
  ]) {
    assert.ok(names.includes(expected), `charts/bazar/ci/${expected} is missing`);
  }
});

test('helm lint --strict passes for the defaults and every CI values file', (t) => {
  const tools = requireTools(t, 'helm');
  if (!tools) return;
  const out = runOk(tools.helm, ['lint', '--strict', CHART]);
  assert.match(out, /1 chart\(s\) linted, 0 chart\(s\) failed/);
  for (const file of ciValuesFiles()) {
    const res = run(tools.helm, ['lint', '--strict', CHART, '--values', file]);
    assert.equal(res.status, 0, `helm lint --strict -f ${path.basename(file)}:\n${res.stdout}${res.stderr}`);
    assert.doesNotMatch(res.stdout, /\[(WARNING|ERROR)\]/, `${path.basename(file)}:\n${res.stdout}`);
  }
});

test('helm template renders every CI values file', (t) => {
  const tools = requireTools(t, 'helm');
  if (!tools) return;
  for (const file of ciValuesFiles()) {
    const out = runOk(tools.helm, ['template', 'bazar', CHART, '--namespace', 'shop', '--values', file]);
    assert.match(out, /kind: Deployment/, path.basename(file));
  }
});

test('the schema rejects typos, unknown keys and out-of-range values', (t) => {
  const tools = requireTools(t, 'helm');
  if (!tools) return;
  const bad: Array<[string, RegExp]> = [
    ['front.replica=3', /additional properties 'replica' not allowed/],
    ['catalog.origin.resource.limits.cpu=1', /additional properties 'resource' not allowed/],
    ['postgresql.standby.enable=false', /additional properties 'enable' not allowed/],
    ['storePolicy.consistencyMode=strong', /consistencyMode/],
    ['storePolicy.cache.ttlMs=10', /ttlMs/],
    ['auth.adminToken=short', /adminToken/],
    ['front.service.type=Ingress', /type/],
    ['config.logLevel=verbose', /logLevel/],
    ['postgresql.engine=cnpg', /engine/],
    ['postgresql.patroni.tll=30', /additional properties 'tll' not allowed/],
    ['postgresql.patroni.ttl=10', /ttl/],
    ['postgresql.patroni.instances=0', /instances/],
  ];
  for (const [set, message] of bad) {
    const res = run(tools.helm, ['template', 'bazar', CHART, '--set', set]);
    assert.notEqual(res.status, 0, `--set ${set} should be refused`);
    assert.match(res.stderr, message, `--set ${set}: ${res.stderr}`);
  }
});

test('templates refuse inconsistent values with a clear message', (t) => {
  const tools = requireTools(t, 'helm');
  if (!tools) return;
  const cases: Array<[string[], RegExp]> = [
    [['postgresql.external.enabled=true', 'postgresql.external.primaryHost=db'], /auth.databasePassword/],
    [['postgresql.external.enabled=true', 'auth.databasePassword=x'], /primaryHost is required/],
    [
      ['config.terminationGracePeriodSeconds=10'],
      /must exceed config.shutdownDelayMs \+ config.drainTimeoutMs/,
    ],
    [['serviceAccount.create=false'], /serviceAccount.name is required/],
    // 20000 + 15000 (Patroni's loop_wait + 5 s) + 2 * 1000 + 1000 = 38000: a front would cut a write
    // served after its wait.
    [
      ['order.primaryWaitMs=20000', 'config.upstreamWriteTimeoutMs=16000'],
      /config.upstreamWriteTimeoutMs \(16000 ms\) must exceed the larger primaryWaitMs \+ syncCommitTimeoutMs plus twice storePolicy.invalidationTimeoutMs plus 1000 ms .* \(38000 ms\)/,
    ],
    [
      ['catalog.primaryWaitMs=0', 'order.primaryWaitMs=0', 'config.upstreamWriteTimeoutMs=3000'],
      /must exceed the larger primaryWaitMs \+ syncCommitTimeoutMs plus storePolicy.invalidationTimeoutMs \(16000 ms\)/,
    ],
    [
      [
        'front.autoscaling.enabled=true',
        'front.autoscaling.minReplicas=5',
        'front.autoscaling.maxReplicas=2',
      ],
      /maxReplicas/,
    ],
  ];
  for (const [sets, message] of cases) {
    const res = run(tools.helm, ['template', 'bazar', CHART, ...sets.flatMap((s) => ['--set', s])]);
    assert.notEqual(res.status, 0, `${sets.join(' ')} should be refused`);
    assert.match(res.stderr, message, `${sets.join(' ')}: ${res.stderr}`);
  }
});

test('values.schema.json is closed: every object we own has additionalProperties', () => {
  const open: string[] = [];
  const walk = (s: JsonSchema, at: string) => {
    const isObject = s.type === 'object' || (Array.isArray(s.type) && s.type.includes('object'));
    if (isObject && s.additionalProperties === undefined && !s.$comment?.startsWith('passthrough'))
      open.push(at);
    if (s.additionalProperties === true) open.push(`${at} (additionalProperties: true)`);
    for (const [k, v] of Object.entries(s.properties ?? {})) walk(v, `${at}.${k}`);
    if (typeof s.additionalProperties === 'object') walk(s.additionalProperties, `${at}.*`);
    if (s.items) walk(s.items, `${at}[]`);
    for (const [i, v] of (s.anyOf ?? []).entries()) walk(v, `${at}|${i}`);
  };
  walk(schema, '$');
  assert.equal(schema.additionalProperties, false);
  assert.deepEqual(open, [], `objects without additionalProperties: ${open.join(', ')}`);
});

test('values.yaml and every CI values file satisfy the schema (ajv, independent of helm)', () => {
  const ajv = new Ajv({ strict: false, allErrors: true });
  const validate = ajv.compile(schema);
  assert.ok(validate(values), `values.yaml: ${ajv.errorsText(validate.errors)}`);
  for (const file of ciValuesFiles()) {
    const overrides = readYamlFile<Record<string, unknown>>(file);
    // helm coalesces the overrides onto values.yaml; a null removes a default.
    const merged = coalesce(structuredClone(values), overrides);
    assert.ok(validate(merged), `${path.basename(file)}: ${ajv.errorsText(validate.errors)}`);
  }
});

function coalesce(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  for (const [k, v] of Object.entries(over ?? {})) {
    const b = base[k];
    if (v && typeof v === 'object' && !Array.isArray(v) && b && typeof b === 'object' && !Array.isArray(b)) {
      coalesce(b as Record<string, unknown>, v as Record<string, unknown>);
    } else {
      base[k] = v;
    }
  }
  return base;
}

/** Leaf paths of values.yaml: scalars, lists and empty maps (maps of user entries). */
function leafPaths(o: Record<string, unknown>, prefix = ''): string[] {
  return Object.entries(o).flatMap(([k, v]) => {
    const p = prefix ? `${prefix}.${k}` : k;
    if (v && typeof v === 'object' && !Array.isArray(v) && Object.keys(v).length > 0) {
      return leafPaths(v as Record<string, unknown>, p);
    }
    return [p];
  });
}

test('docs/deploy.md documents every value', () => {
  const docs = readFileSync(path.join(ROOT, 'docs', 'deploy.md'), 'utf8');
  // Settings shared by several blocks are documented once, under a placeholder:
  //   <workload> = front | catalog.origin | catalog.replica | order.origin | order.replica
  //   <service>  = front | catalog | order          <node> = postgresql.primary | postgresql.standby
  const variants = (p: string) => [
    p,
    p.replace(/^(front|catalog\.origin|catalog\.replica|order\.origin|order\.replica)\./, '<workload>.'),
    p.replace(/^(front|catalog|order)\.image\./, '<service>.image.'),
    p.replace(/^postgresql\.(primary|standby)\./, '<node>.'),
  ];
  const prefixes = (p: string) => p.split('.').map((_, i, parts) => parts.slice(0, i + 1).join('.'));
  // A path counts as documented when it, or a prefix of two segments or more, is in the docs.
  const documented = (p: string) =>
    variants(p).some((v) =>
      prefixes(v)
        .filter((q) => q.includes('.') || q === p)
        .some((q) => docs.includes(`\`${q}\``)),
    );
  const missing = leafPaths(values).filter((p) => !documented(p));
  assert.deepEqual(missing, [], `values not in the docs/deploy.md table: ${missing.join(', ')}`);
});

test('the chart-managed Secret is generated once and kept across upgrades (lookup + keep)', () => {
  const tpl = readFileSync(path.join(CHART, 'templates', 'secret.yaml'), 'utf8');
  assert.match(tpl, /lookup "v1" "Secret"/, 'the Secret template must read the live Secret with lookup');
  assert.match(tpl, /helm\.sh\/resource-policy: keep/, 'the Secret must survive helm uninstall');
  assert.match(tpl, /randAlphaNum 32/, 'missing values are generated');
  // The real install/upgrade/uninstall cycle runs against a local API server in chart-apiserver.test.
});
