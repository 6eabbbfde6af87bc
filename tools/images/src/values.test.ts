import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { Ajv } from 'ajv';
import { parse } from 'yaml';
import { selectRecipes } from './index.js';
import { REPO_ROOT } from './paths.js';
import type { Recipe } from './recipes.js';
import type { ImageRecord } from './types.js';
import { chartImageValues, chartValuesYaml, helmSetArgs, splitRef } from './values.js';

const KEY = 'a'.repeat(64);
const records: ImageRecord[] = [
  { name: 'pause', ref: 'localhost/bazar-standin/pause:3.10', archive: '/c/pause.tar', key: KEY },
  {
    name: 'node-standin',
    ref: 'localhost/bazar-standin/node:20-bookworm-slim',
    archive: '/c/n.tar',
    key: KEY,
  },
  { name: 'front', ref: `docker.io/library/bazar-front:${KEY}`, archive: '/c/f.tar', key: KEY },
  { name: 'catalog', ref: `docker.io/library/bazar-catalog:${KEY}`, archive: '/c/c.tar', key: KEY },
  { name: 'order', ref: `docker.io/library/bazar-order:${KEY}`, archive: '/c/o.tar', key: KEY },
  { name: 'postgres-standin', ref: 'localhost/bazar-standin/postgres:18', archive: '/c/p.tar', key: KEY },
  { name: 'curl-standin', ref: 'localhost/bazar-standin/curl:8.11.1', archive: '/c/u.tar', key: KEY },
  {
    name: 'postgres-patroni',
    ref: `docker.io/library/bazar-postgres-patroni:${KEY}`,
    archive: '/c/pp.tar',
    key: KEY,
  },
  { name: 'coredns', ref: 'localhost/bazar-local/coredns:v1.15.0', archive: '/c/d.tar', key: KEY },
];

test('references split the way the chart joins them', () => {
  assert.deepEqual(splitRef('docker.io/library/bazar-front:t1'), {
    registry: '',
    repository: 'bazar-front',
    tag: 't1',
  });
  assert.deepEqual(splitRef('docker.io/curlimages/curl:8.11.1'), {
    registry: '',
    repository: 'curlimages/curl',
    tag: '8.11.1',
  });
  assert.deepEqual(splitRef('localhost/bazar-standin/postgres:18'), {
    registry: 'localhost',
    repository: 'bazar-standin/postgres',
    tag: '18',
  });
  assert.deepEqual(splitRef('registry.local:5000/x/y:1'), {
    registry: 'registry.local:5000',
    repository: 'x/y',
    tag: '1',
  });
  assert.throws(() => splitRef('localhost:5000/x'), /no tag/);
  assert.throws(() => splitRef('x@sha256:abc'), /digests/);
});

test('chart values: services by repository and tag, third-party images by registry/repository/tag', () => {
  assert.deepEqual(chartImageValues(records), {
    'catalog.image.repository': 'bazar-catalog',
    'catalog.image.tag': KEY,
    'front.image.repository': 'bazar-front',
    'front.image.tag': KEY,
    'image.pullPolicy': 'IfNotPresent',
    'order.image.repository': 'bazar-order',
    'order.image.tag': KEY,
    'postgresql.image.pullPolicy': 'IfNotPresent',
    'postgresql.image.registry': 'localhost',
    'postgresql.image.repository': 'bazar-standin/postgres',
    'postgresql.image.tag': '18',
    'postgresql.patroni.image.pullPolicy': 'IfNotPresent',
    'postgresql.patroni.image.registry': '',
    'postgresql.patroni.image.repository': 'bazar-postgres-patroni',
    'postgresql.patroni.image.tag': KEY,
    'tests.image.pullPolicy': 'IfNotPresent',
    'tests.image.registry': 'localhost',
    'tests.image.repository': 'bazar-standin/curl',
    'tests.image.tag': '8.11.1',
  });
  assert.deepEqual(helmSetArgs({ 'postgresql.image.tag': '18' }), [
    '--set-string',
    'postgresql.image.tag=18',
  ]);
  assert.deepEqual(chartImageValues([records[0]!]), {}, 'the cluster images are no chart values');
});

function merge(base: unknown, over: unknown): unknown {
  if (typeof base !== 'object' || base === null || Array.isArray(base)) return over;
  const out: Record<string, unknown> = { ...(base as Record<string, unknown>) };
  for (const [k, v] of Object.entries(over as Record<string, unknown>)) out[k] = merge(out[k], v);
  return out;
}

test("the values file keeps tags strings and passes the chart's values.schema.json", () => {
  const chart = path.join(REPO_ROOT, 'charts', 'bazar');
  const text = chartValuesYaml(chartImageValues(records));
  const values = parse(text) as { postgresql: { image: { tag: unknown } } };
  assert.equal(values.postgresql.image.tag, '18');
  const defaults: unknown = parse(readFileSync(path.join(chart, 'values.yaml'), 'utf8'));
  const schema = JSON.parse(readFileSync(path.join(chart, 'values.schema.json'), 'utf8')) as object;
  const validate = new Ajv({ strict: false, allErrors: true }).compile(schema);
  assert.ok(validate(merge(defaults, values)), JSON.stringify(validate.errors));
});

function fake(name: string, deps: string[] = []): Recipe {
  return { name, deps, inputs: async () => ({}), ref: () => `x/${name}:1`, build: async () => undefined };
}

test('selecting images brings what they are built on, in build order', () => {
  const all = [
    fake('pause'),
    fake('node-standin'),
    fake('front', ['node-standin']),
    fake('busybox'),
    fake('lpp', ['busybox']),
  ];
  assert.deepEqual(
    selectRecipes(all, ['lpp', 'front']).map((r) => r.name),
    ['node-standin', 'front', 'busybox', 'lpp'],
  );
  assert.deepEqual(
    selectRecipes(all).map((r) => r.name),
    all.map((r) => r.name),
  );
  assert.throws(() => selectRecipes(all, ['nope']), /unknown image "nope"/);
});
