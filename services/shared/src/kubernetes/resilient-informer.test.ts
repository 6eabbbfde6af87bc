import assert from 'node:assert/strict';
import { afterEach, describe, test } from 'node:test';
import { KubeConfig, type V1EndpointSlice } from '@kubernetes/client-node';
import { Backoff } from './backoff.js';
import { SafeWatch } from './client.js';
import { EndpointSliceDiscovery } from './endpoint-slice-discovery.js';
import { kubeMetrics } from './kube-metrics.js';
import { ResilientInformer } from './resilient-informer.js';
import { FakeApiServer, memoryLogger, testMetrics, until } from './test-fakes.js';
import type { Endpoint } from '../discovery.js';

const timings = { backoffMaxMs: 40, idleRestartMs: 60_000, syncGraceMs: 60_000 };

function slice(name: string, pods: Array<[string, string, boolean?]>): V1EndpointSlice {
  return {
    addressType: 'IPv4',
    metadata: { name, labels: { 'kubernetes.io/service-name': 'bazar-catalog' } },
    ports: [{ name: 'http', port: 8080 }],
    endpoints: pods.map(([pod, ip, ready]) => ({
      addresses: [ip],
      targetRef: { kind: 'Pod', name: pod },
      conditions: { ready: ready ?? true },
    })),
  };
}

describe('Backoff', () => {
  test('grows exponentially to the ceiling, with jitter in [step/2, step], and resets', () => {
    const low = new Backoff({ initialMs: 100, maxMs: 1000, random: () => 0 });
    assert.deepEqual(
      [low.next(), low.next(), low.next(), low.next(), low.next(), low.next()],
      [50, 100, 200, 400, 500, 500],
    );
    low.reset();
    assert.equal(low.next(), 50);
    const high = new Backoff({ initialMs: 100, maxMs: 1000, random: () => 1 });
    assert.deepEqual(
      [high.next(), high.next(), high.next(), high.next(), high.next()],
      [100, 200, 400, 800, 1000],
    );
  });
});

describe('SafeWatch', () => {
  test('a request that cannot even be built reaches done() instead of rejecting', async () => {
    const errors: unknown[] = [];
    const watch = new SafeWatch(new KubeConfig()); // No cluster configured: the library throws.
    await watch.watch(
      '/api/v1/pods',
      {},
      () => undefined,
      (err) => errors.push(err),
    );
    assert.equal(errors.length, 1);
    assert.match(String(errors[0]), /No currently active cluster/);
  });
});

describe('ResilientInformer', () => {
  const closers: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const close of closers.splice(0)) await close();
  });

  function make(server: FakeApiServer<V1EndpointSlice>, overrides: Partial<typeof timings> = {}) {
    const { logger, records } = memoryLogger();
    const metrics = testMetrics();
    const informer = new ResilientInformer<V1EndpointSlice>({
      watchName: 'endpointslices/test',
      ...server.source(),
      logger,
      metrics: kubeMetrics(metrics),
      backoffInitialMs: 5,
      ...timings,
      ...overrides,
    });
    closers.push(() => informer.close());
    return { informer, records, metrics };
  }

  test('is not synced before the first list; emits the full list once listed', async () => {
    const server = new FakeApiServer<V1EndpointSlice>();
    server.put(slice('a', [['p1', '10.0.0.1']]));
    server.put(slice('b', [['p2', '10.0.0.2']]));
    const { informer } = make(server);
    const seen: number[] = [];
    informer.on('change', (objects) => seen.push(objects.length));
    assert.equal(informer.synced(), false);
    informer.start();
    assert.equal(await informer.waitForSync(1000), true);
    assert.equal(informer.synced(), true);
    // The two add callbacks of the list are coalesced into one change.
    assert.deepEqual(seen, [2]);
  });

  test('restarts after a watch error with backoff, keeps the last objects, and counts the restart', async () => {
    const server = new FakeApiServer<V1EndpointSlice>();
    server.put(slice('a', [['p1', '10.0.0.1']]));
    const { informer, metrics, records } = make(server);
    informer.start();
    await informer.waitForSync(1000);
    server.down = true;
    server.breakWatches();
    await new Promise((r) => setTimeout(r, 60));
    assert.equal(informer.objects().length, 1, 'last known objects are kept while the API is down');
    assert.equal(informer.synced(), true, 'within the grace period');
    server.down = false;
    server.put(slice('b', [['p2', '10.0.0.2']])); // Made while the watch was broken.
    await until(() => informer.objects().length === 2, 2000, 'the watch to resume');
    const text = await metrics.registry.metrics();
    assert.match(
      text,
      /bazar_kubernetes_watch_restarts_total\{watch="endpointslices\/test",reason="error"[^}]*\} [1-9]/,
    );
    assert.ok(records.some((r) => r.msg === 'Kubernetes watch recovered'));
    assert.equal(server.informers.length, 1, 'an error restart resumes the same informer');
  });

  test('reports not synced once the API has been lost longer than the grace period, and recovers', async () => {
    const server = new FakeApiServer<V1EndpointSlice>();
    const { informer, metrics } = make(server, { syncGraceMs: 30 });
    informer.start();
    await informer.waitForSync(1000);
    server.down = true;
    server.breakWatches();
    await until(() => !informer.synced(), 1000, 'synced() to turn false');
    assert.match(
      await metrics.registry.metrics(),
      /bazar_kubernetes_watch_synced\{watch="endpointslices\/test"[^}]*\} 0/,
    );
    server.down = false;
    await until(() => informer.synced(), 2000, 'synced() to come back');
  });

  test('a watch that goes quiet is replaced by a fresh informer (a full relist)', async () => {
    const server = new FakeApiServer<V1EndpointSlice>();
    server.put(slice('a', [['p1', '10.0.0.1']]));
    const { informer, metrics } = make(server, { idleRestartMs: 80 });
    informer.start();
    await informer.waitForSync(1000);
    // Simulate the silent stall: the watch stays "open" but delivers nothing.
    server.watchers.clear();
    server.objects.set('b', slice('b', [['p2', '10.0.0.2']]));
    await until(() => informer.objects().length === 2, 2000, 'the watchdog to relist');
    assert.ok(server.informers.length >= 2, 'a new informer was built');
    assert.equal(server.informers[0]?.stopped, true, 'the stalled one was stopped');
    assert.match(await metrics.registry.metrics(), /reason="watchdog"[^}]*\} [1-9]/);
  });

  test('a first list that fails is retried; synced only once it succeeds', async () => {
    const server = new FakeApiServer<V1EndpointSlice>();
    server.down = true;
    const { informer } = make(server);
    informer.start();
    assert.equal(await informer.waitForSync(80), false);
    assert.ok(server.lists >= 2, 'the list was retried');
    server.down = false;
    assert.equal(await informer.waitForSync(1000), true);
  });

  test('close stops the informer and settles waiters', async () => {
    const server = new FakeApiServer<V1EndpointSlice>();
    server.down = true;
    const { informer } = make(server);
    informer.start();
    const waiting = informer.waitForSync(5000);
    await informer.close();
    assert.equal(await waiting, false);
    const lists = server.lists;
    await new Promise((r) => setTimeout(r, 60));
    assert.equal(server.lists, lists, 'no restart after close');
  });
});

describe('EndpointSliceDiscovery', () => {
  test('follows scale up, scale down and readiness, emitting only on a real change', async () => {
    const server = new FakeApiServer<V1EndpointSlice>();
    server.put(slice('catalog-a', [['catalog-1', '10.0.0.1']]));
    const { logger } = memoryLogger();
    const metrics = testMetrics();
    const discovery = new EndpointSliceDiscovery({
      service: 'catalog',
      kubernetesService: 'bazar-catalog',
      portName: 'http',
      logger,
      metrics,
      timings,
      source: server.source(),
    });
    const changes: Array<readonly Endpoint[]> = [];
    discovery.on('change', (eps) => changes.push(eps));
    await discovery.begin(1000);
    try {
      assert.equal(discovery.synced(), true);
      assert.deepEqual(discovery.endpoints(), [{ name: 'catalog-1', url: 'http://10.0.0.1:8080' }]);

      server.put(
        slice('catalog-b', [
          ['catalog-2', '10.0.0.2'],
          ['catalog-3', '10.0.0.3', false],
        ]),
      );
      await until(() => discovery.endpoints().length === 2, 1000, 'scale up');
      assert.deepEqual(
        discovery.endpoints().map((e) => e.name),
        ['catalog-1', 'catalog-2'],
      );
      const before = changes.length;
      // A slice update that changes nothing routable (labels, an unready pod) emits nothing.
      server.put(
        slice('catalog-b', [
          ['catalog-2', '10.0.0.2'],
          ['catalog-4', '10.0.0.4', false],
        ]),
      );
      await new Promise((r) => setTimeout(r, 20));
      assert.equal(changes.length, before);

      server.remove('catalog-a');
      await until(() => discovery.endpoints().length === 1, 1000, 'scale down');
      assert.equal(discovery.endpoints()[0]?.name, 'catalog-2');
      assert.match(
        await metrics.registry.metrics(),
        /bazar_kubernetes_endpoints\{target="catalog",kubernetes_service="bazar-catalog"[^}]*\} 1/,
      );

      server.down = true;
      server.breakWatches();
      await new Promise((r) => setTimeout(r, 30));
      assert.equal(discovery.endpoints().length, 1, 'the pool survives an API outage');
    } finally {
      await discovery.close();
    }
  });
});
