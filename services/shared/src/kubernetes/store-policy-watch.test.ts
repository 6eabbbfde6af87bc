import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { PolicyStore, type RuntimePolicy } from '../policy.js';
import { StorePolicyWatch } from './store-policy-watch.js';
import {
  applyTrackerFor,
  specToPolicy,
  type StorePolicyObject,
  type StorePolicySpec,
} from './store-policy.js';
import { FakeApiServer, memoryLogger, testMetrics, until } from './test-fakes.js';

const initial: RuntimePolicy = {
  cacheMaxEntries: 10_000,
  cacheMaxBytes: 33_554_432,
  cacheTtlMs: 60_000,
  loadBalancing: 'round-robin',
  consistencyMode: 'strict',
  invalidationTimeoutMs: 1000,
};

function resource(generation: number, spec: StorePolicySpec, uid = 'uid-1'): StorePolicyObject {
  return {
    apiVersion: 'bazar.dev/v1alpha1',
    kind: 'StorePolicy',
    metadata: { name: 'bazar', namespace: 'ns', uid, generation },
    spec,
  };
}

describe('specToPolicy', () => {
  test('maps the spec onto the runtime policy', () => {
    assert.deepEqual(
      specToPolicy({
        cache: { maxEntries: 5, maxBytes: 4096, ttlMs: 1000 },
        loadBalancing: 'random',
        consistencyMode: 'session',
        invalidationTimeoutMs: 50,
      }),
      {
        change: {
          cacheMaxEntries: 5,
          cacheMaxBytes: 4096,
          cacheTtlMs: 1000,
          loadBalancing: 'random',
          consistencyMode: 'session',
          invalidationTimeoutMs: 50,
        },
        problems: [],
      },
    );
    assert.deepEqual(specToPolicy(undefined), { change: {}, problems: [] });
    assert.deepEqual(specToPolicy({ cache: { ttlMs: 500 } }), { change: { cacheTtlMs: 500 }, problems: [] });
  });

  test('reports wrong types instead of passing them on', () => {
    const { problems } = specToPolicy({ cache: { maxEntries: '5', maxBytes: '1Mi' }, consistencyMode: 3 });
    assert.deepEqual(problems, [
      'spec.cache.maxEntries must be a number',
      'spec.cache.maxBytes must be a number',
      'spec.consistencyMode must be a string',
    ]);
    assert.deepEqual(specToPolicy('x').problems, ['spec must be an object']);
  });
});

describe('StorePolicyWatch', () => {
  async function start(server: FakeApiServer<StorePolicyObject>) {
    const policy = new PolicyStore(initial);
    const { logger, records } = memoryLogger();
    const metrics = testMetrics();
    const watch = new StorePolicyWatch({
      name: 'bazar',
      namespace: 'ns',
      policy,
      logger,
      metrics,
      timings: { backoffMaxMs: 40, idleRestartMs: 60_000, syncGraceMs: 60_000 },
      source: server.source(),
    });
    await watch.begin(1000);
    /** bazar_store_policy_{observed,applied}_generation as a scrape shows them. */
    const generations = async () => {
      const read = async (name: string) =>
        (await metrics.registry.getSingleMetric(name)?.get())?.values[0]?.value;
      return {
        observed: await read('bazar_store_policy_observed_generation'),
        applied: await read('bazar_store_policy_applied_generation'),
      };
    };
    return { policy, watch, records, tracker: applyTrackerFor(policy), generations };
  }

  test('applies the spec at start and every new generation live', async () => {
    const server = new FakeApiServer<StorePolicyObject>();
    server.put(resource(1, { cache: { maxEntries: 100, ttlMs: 2000 }, consistencyMode: 'session' }));
    const { policy, watch, tracker } = await start(server);
    try {
      assert.equal(watch.synced(), true);
      assert.equal(policy.current.cacheMaxEntries, 100);
      assert.equal(policy.current.consistencyMode, 'session');
      assert.equal(tracker.state.observedGeneration, 1);
      server.put(resource(2, { cache: { maxEntries: 100, ttlMs: 500 }, consistencyMode: 'eventual' }));
      await until(() => policy.current.cacheTtlMs === 500, 1000, 'generation 2');
      assert.equal(policy.current.consistencyMode, 'eventual');
      assert.match(policy.source, /generation 2/);
      assert.deepEqual(tracker.state.problems, []);
    } finally {
      await watch.close();
    }
  });

  test('an invalid spec leaves the last good policy in force, logged and recorded', async () => {
    const server = new FakeApiServer<StorePolicyObject>();
    server.put(resource(1, { cache: { ttlMs: 2000 } }));
    const { policy, watch, tracker, records, generations } = await start(server);
    try {
      assert.deepEqual(await generations(), { observed: 1, applied: 1 });
      server.put(resource(2, { cache: { ttlMs: 5 }, consistencyMode: 'bogus' }));
      await until(() => tracker.state.observedGeneration === 2, 1000, 'generation 2 to be seen');
      // The refused generation is seen, not applied: the metrics say which is in force.
      assert.deepEqual(await generations(), { observed: 2, applied: 1 });
      assert.equal(policy.current.cacheTtlMs, 2000);
      assert.equal(policy.current.consistencyMode, 'strict');
      assert.equal(tracker.state.problems.length, 2);
      assert.ok(
        records.some(
          (r) => r.msg === 'StorePolicy refused; the last good policy stays in force' && r.level === 50,
        ),
      );
      server.put(resource(3, { cache: { ttlMs: 3000 } }));
      await until(() => policy.current.cacheTtlMs === 3000, 1000, 'generation 3');
      assert.deepEqual(tracker.state.problems, []);
      assert.deepEqual(await generations(), { observed: 3, applied: 3 });
    } finally {
      await watch.close();
    }
  });

  test('a status-only update (same generation) is not re-applied', async () => {
    const server = new FakeApiServer<StorePolicyObject>();
    server.put(resource(1, { cache: { ttlMs: 2000 } }));
    const { watch, tracker } = await start(server);
    let changes = 0;
    tracker.on('change', () => changes++);
    try {
      server.put({ ...resource(1, { cache: { ttlMs: 2000 } }), status: { consistencyMode: 'strict' } });
      await new Promise((r) => setTimeout(r, 30));
      assert.equal(changes, 0);
    } finally {
      await watch.close();
    }
  });

  test('deletion keeps the last good policy; a re-created resource applies again', async () => {
    const server = new FakeApiServer<StorePolicyObject>();
    server.put(resource(4, { cache: { ttlMs: 2000 } }));
    const { policy, watch, tracker, records } = await start(server);
    try {
      server.remove('bazar');
      await until(() => !tracker.state.present, 1000, 'deletion to be seen');
      assert.equal(policy.current.cacheTtlMs, 2000);
      assert.equal(watch.synced(), true);
      assert.ok(records.some((r) => r.msg === 'StorePolicy deleted; the last good policy stays in force'));
      // A new object starts again at generation 1 (another uid): it must be applied.
      server.put(resource(1, { cache: { ttlMs: 900 } }, 'uid-2'));
      await until(() => policy.current.cacheTtlMs === 900, 1000, 're-created policy');
    } finally {
      await watch.close();
    }
  });

  test('an absent resource is synced (confirmed absent) and the environment policy stays', async () => {
    const server = new FakeApiServer<StorePolicyObject>();
    const { policy, watch, records } = await start(server);
    try {
      assert.equal(watch.synced(), true);
      assert.deepEqual(policy.current, initial);
      assert.ok(records.some((r) => r.msg === 'StorePolicy not found; the current policy stays in force'));
    } finally {
      await watch.close();
    }
  });
});
