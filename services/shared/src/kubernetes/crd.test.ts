/**
 * The CRD's schema must refuse exactly what the services refuse: its bounds and enums are checked
 * against POLICY_LIMITS and the policy enums, and its names against the constants the code uses.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, test } from 'node:test';
import { loadYaml, type V1CustomResourceDefinition, type V1JSONSchemaProps } from '@kubernetes/client-node';
import {
  CONSISTENCY_MODES,
  DEFAULT_CACHE_MAX_BYTES,
  LOAD_BALANCING_POLICIES,
  POLICY_LIMITS,
} from '../policy.js';
import { STORE_POLICY } from './store-policy.js';

function repoRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!existsSync(path.join(dir, 'charts', 'bazar', 'crds'))) {
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error('charts/bazar/crds not found above this file');
    dir = parent;
  }
  return dir;
}

/** loadYaml deserializes into the client's model, where `default`/`enum` are `_default`/`_enum`. */
const crd = loadYaml<V1CustomResourceDefinition>(
  readFileSync(path.join(repoRoot(), 'charts', 'bazar', 'crds', 'storepolicies.yaml'), 'utf8'),
);
const version = crd.spec.versions.find((v) => v.name === STORE_POLICY.version);

function prop(schema: V1JSONSchemaProps | undefined, ...keys: string[]): V1JSONSchemaProps {
  let current = schema;
  for (const key of keys) current = current?.properties?.[key];
  if (!current) throw new Error(`no schema at ${keys.join('.')}`);
  return current;
}

describe('StorePolicy CRD', () => {
  const root = version?.schema?.openAPIV3Schema;
  const spec = prop(root, 'spec');

  test('names what the code watches', () => {
    assert.equal(crd.metadata?.name, `${STORE_POLICY.plural}.${STORE_POLICY.group}`);
    assert.equal(crd.spec.group, STORE_POLICY.group);
    assert.equal(crd.spec.names.kind, STORE_POLICY.kind);
    assert.equal(crd.spec.names.plural, STORE_POLICY.plural);
    assert.deepEqual(crd.spec.names.shortNames, ['sp']);
    assert.equal(crd.spec.scope, 'Namespaced');
    assert.ok(version?.served && version.storage);
    assert.deepEqual(version?.subresources?.status, {});
  });

  test('integer bounds are POLICY_LIMITS', () => {
    const bounds: Array<[V1JSONSchemaProps, { min: number; max: number }]> = [
      [prop(spec, 'cache', 'maxEntries'), POLICY_LIMITS.cacheMaxEntries],
      [prop(spec, 'cache', 'maxBytes'), POLICY_LIMITS.cacheMaxBytes],
      [prop(spec, 'cache', 'ttlMs'), POLICY_LIMITS.cacheTtlMs],
      [prop(spec, 'invalidationTimeoutMs'), POLICY_LIMITS.invalidationTimeoutMs],
    ];
    for (const [schema, { min, max }] of bounds) {
      assert.equal(schema.type, 'integer');
      assert.equal(schema.minimum, min);
      assert.equal(schema.maximum, max);
      assert.equal(typeof schema._default, 'number', 'has a default');
    }
  });

  test("maxBytes' default is the services' own", () => {
    assert.equal(prop(spec, 'cache', 'maxBytes')._default, DEFAULT_CACHE_MAX_BYTES);
  });

  test('enums are the policy enums, with defaults', () => {
    assert.deepEqual(prop(spec, 'consistencyMode')._enum, [...CONSISTENCY_MODES]);
    assert.deepEqual(prop(spec, 'loadBalancing')._enum, [...LOAD_BALANCING_POLICIES]);
    assert.equal(prop(spec, 'consistencyMode')._default, 'strict');
    assert.equal(prop(spec, 'loadBalancing')._default, 'round-robin');
  });

  test('kubectl get shows Mode, TTL, Entries, Hit ratio, Ready, Primary, Timeline, Age', () => {
    const columns = (version?.additionalPrinterColumns ?? []).filter((c) => !c.priority).map((c) => c.name);
    assert.deepEqual(columns, ['Mode', 'TTL', 'Entries', 'Hit ratio', 'Ready', 'Primary', 'Timeline', 'Age']);
  });
});
