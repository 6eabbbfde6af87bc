import assert from 'node:assert/strict';
import { afterEach, describe, test } from 'node:test';
import { KubeConfig, type V1EndpointSlice } from '@kubernetes/client-node';
import { Backoff } from './backoff.js';
import { BoundedWatch, watchBounds, type WatchBounds } from './bounded-watch.js';
import { EndpointSliceDiscovery } from './endpoint-slice-discovery.js';
import { kubeMetrics } from './kube-metrics.js';
import { ResilientInformer, type ResilientInformerOptions } from './resilient-informer.js';
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

  test('a cap bounds one delay while the step keeps growing', () => {
    const b = new Backoff({ initialMs: 100, maxMs: 1000, random: () => 1 });
    assert.deepEqual([b.next(150), b.next(150), b.next(150), b.next(150)], [100, 150, 150, 150]);
    assert.equal(b.next(), 1000, 'the step grew meanwhile');
  });
});

describe('watchBounds', () => {
  test('the default watchdog (5 min) is capped at 30 s; each watch ends after 10 s, answers within 5 s', () => {
    assert.deepEqual(watchBounds(300_000), {
      stallMs: 30_000,
      timeoutSeconds: 10,
      responseTimeoutMs: 5_000,
      listTimeoutMs: 10_000,
    });
  });

  test('shorter watchdogs shorten the watches, and a healthy watch can never look stalled', () => {
    for (const idle of [1_000, 2_500, 7_000, 20_000, 29_999, 45_000]) {
      const b = watchBounds(idle);
      assert.ok(b.stallMs <= Math.max(idle, 3_000) && b.stallMs <= 30_000, `stall ${b.stallMs} for ${idle}`);
      assert.ok(b.timeoutSeconds >= 1);
      assert.ok(
        b.timeoutSeconds * 1000 + b.responseTimeoutMs < b.stallMs,
        `a watch ends (${b.timeoutSeconds} s + ${b.responseTimeoutMs} ms) before the watchdog (${b.stallMs} ms) for ${idle}`,
      );
      assert.ok(b.listTimeoutMs < b.stallMs, `a list ends before the watchdog for ${idle}`);
    }
    assert.equal(watchBounds(20_000).timeoutSeconds, 6);
  });
});

describe('BoundedWatch', () => {
  test('a request that cannot even be built reaches done() instead of rejecting', async () => {
    const errors: unknown[] = [];
    // No cluster configured: the library's own watch() would throw.
    const watch = new BoundedWatch(new KubeConfig(), { timeoutSeconds: 1, responseTimeoutMs: 1000 });
    await watch.watch(
      '/api/v1/pods',
      {},
      () => undefined,
      (err) => errors.push(err),
    );
    assert.equal(errors.length, 1);
    assert.match(String(errors[0]), /No currently active cluster/);
  });

  test('after close() every watch fails at once', async () => {
    const errors: unknown[] = [];
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: 'c', server: 'http://127.0.0.1:9', skipTLSVerify: true }],
      users: [{ name: 'u' }],
      contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
      currentContext: 'x',
    });
    const watch = new BoundedWatch(kc, { timeoutSeconds: 1, responseTimeoutMs: 1000 });
    watch.close();
    await watch.watch(
      '/api/v1/pods',
      {},
      () => undefined,
      (err: unknown) => errors.push(err),
    );
    assert.match(String(errors[0]), /watch closed/);
  });
});

describe('ResilientInformer', () => {
  const closers: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const close of closers.splice(0)) await close();
  });

  /** Small bounds so that deadlines and the watchdog play out in milliseconds. */
  const fast: Partial<WatchBounds> = { stallMs: 60_000, listTimeoutMs: 5_000 };

  function make(
    server: FakeApiServer<V1EndpointSlice>,
    overrides: Partial<typeof timings> & Partial<ResilientInformerOptions<V1EndpointSlice>> = {},
  ) {
    const { logger, records } = memoryLogger();
    const metrics = testMetrics();
    const informer = new ResilientInformer<V1EndpointSlice>({
      watchName: 'endpointslices/test',
      ...server.source(),
      logger,
      metrics: kubeMetrics(metrics),
      backoffInitialMs: 5,
      unreachableBackoffMaxMs: 20,
      ...timings,
      bounds: fast,
      ...overrides,
    });
    closers.push(() => informer.close());
    return { informer, records, metrics };
  }

  /** The delays of the restarts scheduled so far (from the debug log). */
  const delays = (records: Array<Record<string, unknown>>) =>
    records.filter((r) => r.msg === 'Kubernetes watch restart scheduled').map((r) => r.delayMs as number);

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

  test('a watch that neither answers nor fails is replaced by a fresh informer (a full relist)', async () => {
    const server = new FakeApiServer<V1EndpointSlice>();
    server.put(slice('a', [['p1', '10.0.0.1']]));
    const { informer, metrics } = make(server, { bounds: { stallMs: 80 } });
    informer.start();
    await informer.waitForSync(1000);
    // Simulate the silent stall: the watch stays "open" but delivers nothing, and never fails.
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
  test('a list that never answers is aborted at its deadline, counted as a timeout, and retried', async () => {
    const server = new FakeApiServer<V1EndpointSlice>();
    server.put(slice('a', [['p1', '10.0.0.1']]));
    server.hang = true;
    const { informer, metrics } = make(server, { bounds: { listTimeoutMs: 40 } });
    informer.start();
    await until(() => server.abortedLists >= 2, 2000, 'two lists aborted at their deadline');
    assert.equal(informer.synced(), false);
    assert.match(await metrics.registry.metrics(), /reason="timeout"[^}]*\} [1-9]/);
    server.hang = false;
    assert.equal(await informer.waitForSync(2000), true, 'the next list answers');
  });

  test('a watch request that never answers (start() never settles) is ended by the watchdog', async () => {
    const server = new FakeApiServer<V1EndpointSlice>();
    server.put(slice('a', [['p1', '10.0.0.1']]));
    const { informer, metrics, records } = make(server, { bounds: { stallMs: 100, listTimeoutMs: 40 } });
    informer.start();
    await informer.waitForSync(1000);
    server.hang = true;
    server.breakWatches(); // The resumed watch then waits for a response that never comes.
    await until(
      () => records.some((r) => r.msg.startsWith('Kubernetes watch stalled')),
      2000,
      'the watchdog',
    );
    server.hang = false;
    server.put(slice('b', [['p2', '10.0.0.2']]));
    await until(() => informer.objects().length === 2, 2000, 'a fresh informer to list');
    assert.match(await metrics.registry.metrics(), /reason="watchdog"[^}]*\} [1-9]/);
    assert.equal(server.informers[0]?.stopped, true, 'the stuck informer was stopped');
    assert.equal(informer.synced(), true);
  });

  test('a replaced informer cannot leave a list or a watch behind', async () => {
    const server = new FakeApiServer<V1EndpointSlice>();
    server.put(slice('a', [['p1', '10.0.0.1']]));
    server.hang = true;
    const { informer } = make(server, { bounds: { stallMs: 60, listTimeoutMs: 10_000 } });
    informer.start();
    // No answer and no failure: the watchdog replaces the informer, whose list is then aborted.
    await until(() => server.abortedLists >= 1, 2000, 'the replaced informer to see its list aborted');
    server.hang = false;
    // Polled: only the (unref'd) watchdog is left to move things on, which would let the test's loop end.
    await until(() => informer.synced(), 2000, 'a later informer to list');
    await new Promise((r) => setTimeout(r, 30));
    assert.ok(server.informers.length >= 2);
    assert.equal(server.watchers.size, 1, 'one watch open: the current informer');
    assert.ok(server.watchers.has(server.informers.at(-1) as never), 'and it is the current one');
    for (const old of server.informers.slice(0, -1)) assert.equal(old.stopped, true);
  });

  test('without answers, retries wait at most the short ceiling; the first answer starts the backoff over, answered failures back off fully and relist', async () => {
    const server = new FakeApiServer<V1EndpointSlice>();
    server.put(slice('a', [['p1', '10.0.0.1']]));
    const { informer, records } = make(server, {
      backoffInitialMs: 10,
      backoffMaxMs: 10_000,
      unreachableBackoffMaxMs: 20,
      random: () => 1,
    });
    informer.start();
    await informer.waitForSync(1000);
    server.down = true;
    server.breakWatches();
    await until(() => delays(records).length >= 5, 2000, 'five restarts while unreachable');
    assert.deepEqual(delays(records).slice(0, 5), [10, 20, 20, 20, 20], 'capped while nothing answers');
    // The API server is back, refusing for a moment (as when it starts: 403 until RBAC is loaded).
    const before = delays(records).length;
    const informers = server.informers.length;
    server.refuse = 500;
    server.down = false;
    await until(() => delays(records).length >= before + 4, 3000, 'four restarts after answers');
    assert.deepEqual(
      delays(records).slice(before, before + 4),
      [10, 20, 40, 80],
      'from the first step, growing',
    );
    assert.ok(server.informers.length > informers, 'an answered failure restarts with a fresh list');
    server.refuse = undefined;
    server.put(slice('b', [['p2', '10.0.0.2']]));
    await until(() => informer.objects().length === 2, 3000, 'recovery');
    const recovered = records.find((r) => r.msg === 'Kubernetes watch recovered');
    assert.ok(recovered && (recovered.failures as number) >= 9 && (recovered.downMs as number) > 0);
  });

  test('after an outage without answers, the first answer starts the backoff over (a 429 right after a relist waits little)', async () => {
    const server = new FakeApiServer<V1EndpointSlice>();
    server.put(slice('a', [['p1', '10.0.0.1']]));
    const { informer, records } = make(server, {
      backoffInitialMs: 10,
      backoffMaxMs: 10_000,
      unreachableBackoffMaxMs: 20,
      random: () => 1,
    });
    informer.start();
    await informer.waitForSync(1000);
    server.down = true;
    server.breakWatches();
    await until(() => delays(records).length >= 6, 2000, 'six restarts while unreachable');
    server.down = false;
    await until(() => records.some((r) => r.msg === 'Kubernetes watch recovered'), 2000, 'an answer');
    const before = delays(records).length;
    // Answered, then refused at once (as a starting API server's watch cache does with 429).
    server.breakWatches(Object.assign(new Error('Too Many Requests'), { statusCode: 429 }));
    await until(() => delays(records).length > before, 1000, 'the restart');
    assert.equal(delays(records)[before], 10, 'from the first step, not from where the outage left it');
  });

  test('a failure while a restart is already due is covered by it: one restart, a relist if either asked for one', async () => {
    const server = new FakeApiServer<V1EndpointSlice>();
    server.put(slice('a', [['p1', '10.0.0.1']]));
    const { informer, records, metrics } = make(server, {
      backoffInitialMs: 100,
      unreachableBackoffMaxMs: 100,
    });
    informer.start();
    await informer.waitForSync(1000);
    const first = server.informers[0];
    assert.ok(first);
    first.fail(Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' })); // Resume, after a delay.
    first.fail(Object.assign(new Error('Internal Server Error'), { statusCode: 500 })); // Asks for a relist.
    assert.equal(delays(records).length, 1, 'one restart scheduled');
    await until(() => server.informers.length === 2, 2000, 'the restart, with a fresh informer');
    await until(() => informer.synced() && server.watchers.size === 1, 2000, 'the fresh informer watching');
    assert.match(await metrics.registry.metrics(), /reason="error"[^}]*\} 1\n/);
  });

  test('a 401/403 first warns (an API server that is starting refuses for a moment), and reports the silence', async () => {
    const server = new FakeApiServer<V1EndpointSlice>();
    server.put(slice('a', [['p1', '10.0.0.1']]));
    const { informer, records, metrics } = make(server);
    informer.start();
    await informer.waitForSync(1000);
    assert.match(
      await metrics.registry.metrics(),
      /bazar_kubernetes_watch_silence_seconds\{watch="endpointslices\/test"[^}]*\} 0(\.\d+)?\n/,
    );
    server.refuse = 403;
    server.breakWatches(Object.assign(new Error('Forbidden'), { statusCode: 403 }));
    await until(() => records.some((r) => r.status === 403), 1000, 'the refusal logged');
    const logged = records.find((r) => r.status === 403);
    assert.equal(logged?.level, 40, 'a warning, not an error, at first');
    assert.match(String(logged?.msg), /refused.*if it persists, check the ServiceAccount token/);
    server.refuse = undefined;
    await until(() => records.some((r) => r.msg === 'Kubernetes watch recovered'), 2000, 'recovery');
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
