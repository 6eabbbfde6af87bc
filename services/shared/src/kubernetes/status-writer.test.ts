import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { describe, test } from 'node:test';
import type { Discovery, Endpoint } from '../discovery.js';
import { PolicyStore, type RuntimePolicy } from '../policy.js';
import { frontStatus, hitRatio, nextStatus, sameStatus, type OwnState } from './status-report.js';
import { StorePolicyStatusWriter, type StatusApi } from './status-writer.js';
import { applyTrackerFor, type FrontStatus, type StorePolicyObject } from './store-policy.js';
import { memoryLogger } from './test-fakes.js';

const policy: RuntimePolicy = {
  cacheMaxEntries: 100,
  cacheMaxBytes: 65_536,
  cacheTtlMs: 2000,
  loadBalancing: 'round-robin',
  consistencyMode: 'session',
  invalidationTimeoutMs: 1000,
};

function own(overrides: Partial<OwnState> = {}): OwnState {
  return {
    observedGeneration: 3,
    problems: [],
    unsynced: [],
    ready: true,
    policy,
    cache: { size: 4, maxEntries: 100, bytes: 3000, ttlMs: 2000, hits: 3, misses: 1 },
    endpoints: { catalog: 3, order: 1 },
    ...overrides,
  };
}

const at = (iso: string) => new Date(iso);

describe('status arithmetic', () => {
  test('a front reports Ready with its figures, or why not', () => {
    const now = at('2026-01-01T00:00:00Z');
    const ok = frontStatus(own(), 3, now);
    assert.equal(ok.ready, true);
    assert.equal(ok.reason, 'PolicyApplied');
    assert.deepEqual(ok.cache, { entries: 4, bytes: 3000, hits: 3, misses: 1, hitRatio: '0.75' });
    assert.equal(frontStatus(own({ problems: ['bad'] }), 3, now).reason, 'InvalidSpec');
    assert.equal(frontStatus(own({ unsynced: ['catalog'] }), 3, now).reason, 'DiscoveryNotSynced');
    assert.equal(frontStatus(own(), 4, now).reason, 'PolicyNotObserved');
    assert.equal(frontStatus(own({ ready: false }), 3, now).reason, 'NotReady');
    assert.equal(hitRatio(0, 0), 'n/a');
  });

  test('the aggregate sums live fronts, takes the lowest generation and drops stale entries', () => {
    const now = at('2026-01-01T00:01:00Z');
    const other: FrontStatus = {
      ...frontStatus(own({ observedGeneration: 2 }), 3, at('2026-01-01T00:00:50Z')),
    };
    const gone: FrontStatus = { ...frontStatus(own(), 3, at('2026-01-01T00:00:00Z')) };
    const { status, frontsPatch } = nextStatus({
      existing: { fronts: { 'front-b': other, 'front-z': gone } },
      podName: 'front-a',
      own: frontStatus(own(), 3, now),
      policy,
      endpoints: { catalog: 3, order: 1 },
      now,
      staleAfterMs: 30_000,
    });
    assert.deepEqual(Object.keys(status.fronts ?? {}).sort(), ['front-a', 'front-b']);
    assert.equal(frontsPatch['front-z'], null, 'the stale entry is deleted by the merge patch');
    assert.equal(frontsPatch['front-b'], undefined, 'another live front is left alone');
    assert.equal(status.observedGeneration, 2);
    assert.deepEqual(status.cache, {
      entries: 8,
      maxEntries: 100,
      bytes: 6000,
      maxBytes: 65_536,
      ttlMs: 2000,
      hits: 6,
      misses: 2,
      hitRatio: '0.75',
    });
    // front-b has not applied generation 3 yet: not Ready, and it says who and why.
    assert.equal(status.conditions?.[0]?.status, 'False');
    assert.equal(status.conditions?.[0]?.reason, 'PolicyNotObserved');
    assert.match(status.conditions?.[0]?.message ?? '', /^front-b: /);
  });

  test('lastTransitionTime moves only when Ready changes; timestamps alone are no change', () => {
    const t1 = at('2026-01-01T00:00:00Z');
    const t2 = at('2026-01-01T00:00:05Z');
    const input = { podName: 'front-a', policy, endpoints: { catalog: 3 }, staleAfterMs: 60_000 };
    const first = nextStatus({
      ...input,
      existing: undefined,
      own: frontStatus(own(), 3, t1),
      now: t1,
    }).status;
    const second = nextStatus({ ...input, existing: first, own: frontStatus(own(), 3, t2), now: t2 }).status;
    assert.equal(second.conditions?.[0]?.lastTransitionTime, t1.toISOString());
    assert.equal(sameStatus(first, second), true);
    const third = nextStatus({
      ...input,
      existing: second,
      own: frontStatus(own({ ready: false }), 3, t2),
      now: t2,
    }).status;
    assert.equal(third.conditions?.[0]?.lastTransitionTime, t2.toISOString());
    assert.equal(sameStatus(second, third), false);
  });
});

/** An API server for one object: resourceVersion preconditions and RFC 7386 merge patches. */
class FakeStatusApi implements StatusApi {
  object: StorePolicyObject = {
    metadata: { name: 'bazar', generation: 3, resourceVersion: '1' },
    status: {},
  };
  conflictsToInject = 0;
  patches = 0;
  conflicts = 0;

  async get(): Promise<StorePolicyObject | undefined> {
    return structuredClone(this.object);
  }

  async patch(body: object): Promise<void> {
    const { metadata, status } = body as { metadata: { resourceVersion?: string }; status: object };
    if (this.conflictsToInject > 0) {
      // Someone else wrote in between.
      this.conflictsToInject--;
      this.bump();
    }
    if (metadata.resourceVersion !== this.object.metadata?.resourceVersion) {
      this.conflicts++;
      throw Object.assign(new Error('Conflict'), { code: 409 });
    }
    this.patches++;
    this.object.status = merge(this.object.status ?? {}, status) as StorePolicyObject['status'];
    this.bump();
  }

  bump(): void {
    const meta = this.object.metadata ?? {};
    meta.resourceVersion = String(Number(meta.resourceVersion) + 1);
  }
}

function merge(target: unknown, patch: unknown): unknown {
  if (typeof patch !== 'object' || patch === null || Array.isArray(patch)) return patch;
  const out: Record<string, unknown> =
    typeof target === 'object' && target !== null && !Array.isArray(target) ? { ...target } : {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete out[key];
    else out[key] = merge(out[key], value);
  }
  return out;
}

class StubDiscovery extends EventEmitter<{ change: [readonly Endpoint[]] }> implements Discovery {
  constructor(
    readonly service: string,
    private readonly count: number,
  ) {
    super();
  }
  endpoints(): readonly Endpoint[] {
    return Array.from({ length: this.count }, (_, i) => ({
      name: `${this.service}-${i}`,
      url: `http://10.0.0.${i}:8080`,
    }));
  }
  synced(): boolean {
    return true;
  }
  async close(): Promise<void> {}
}

function writer(api: FakeStatusApi, podName: string, store: PolicyStore) {
  const { logger, records } = memoryLogger();
  const w = new StorePolicyStatusWriter({
    name: 'bazar',
    podName,
    logger,
    policy: store,
    cache: { stats: () => ({ size: 2, maxEntries: 100, ttlMs: 2000, hits: 5, misses: 5 }) },
    discoveries: { catalog: new StubDiscovery('catalog', 3), order: new StubDiscovery('order', 1) },
    ready: async () => true,
    api,
    intervalMs: 60_000,
    random: () => 0,
  });
  return { w, records };
}

describe('StorePolicyStatusWriter', () => {
  test('two fronts share the object: each keeps its own entry and the aggregate covers both', async () => {
    const api = new FakeStatusApi();
    const store = new PolicyStore(policy);
    applyTrackerFor(store).set({ present: true, uid: 'u', observedGeneration: 3, problems: [] });
    const a = writer(api, 'front-a', store).w;
    const b = writer(api, 'front-b', store).w;
    await a.flush();
    await b.flush();
    const status = api.object.status;
    assert.deepEqual(Object.keys(status?.fronts ?? {}).sort(), ['front-a', 'front-b']);
    assert.equal(status?.cache?.entries, 4);
    assert.equal(status?.cache?.hitRatio, '0.50');
    assert.equal(status?.observedGeneration, 3);
    assert.equal(status?.consistencyMode, 'session');
    assert.deepEqual(status?.endpoints, { catalog: 3, order: 1 });
    assert.equal(status?.conditions?.[0]?.status, 'True');
    // Nothing new and the heartbeat is recent: no write.
    const patches = api.patches;
    await a.flush();
    assert.equal(api.patches, patches);
    // A goodbye removes the entry and recomputes the aggregate.
    await a.close();
    assert.deepEqual(Object.keys(api.object.status?.fronts ?? {}), ['front-b']);
    assert.equal(api.object.status?.cache?.entries, 2);
    await b.close();
  });

  test('a resourceVersion conflict is re-read and retried, never overwriting', async () => {
    const api = new FakeStatusApi();
    const store = new PolicyStore(policy);
    applyTrackerFor(store).set({ present: true, observedGeneration: 3, problems: [] });
    const { w } = writer(api, 'front-a', store);
    api.conflictsToInject = 2;
    await w.flush();
    assert.equal(api.conflicts, 2);
    assert.equal(api.patches, 1);
    assert.ok(api.object.status?.fronts?.['front-a']);
    await w.close();
  });

  test('an invalid spec is reported as Ready=False InvalidSpec with the problems', async () => {
    const api = new FakeStatusApi();
    const store = new PolicyStore(policy);
    applyTrackerFor(store).set({
      present: true,
      observedGeneration: 3,
      problems: ['cacheTtlMs must be an integer in [100, 86400000]'],
    });
    const { w } = writer(api, 'front-a', store);
    await w.flush();
    const ready = api.object.status?.conditions?.[0];
    assert.equal(ready?.status, 'False');
    assert.equal(ready?.reason, 'InvalidSpec');
    assert.match(ready?.message ?? '', /cacheTtlMs must be/);
    await w.close();
  });

  test('a missing resource is logged once and nothing is written', async () => {
    const api = new FakeStatusApi();
    api.get = async () => undefined;
    const store = new PolicyStore(policy);
    const { w, records } = writer(api, 'front-a', store);
    await w.flush();
    await w.flush();
    assert.equal(api.patches, 0);
    assert.equal(records.filter((r) => r.msg.startsWith('StorePolicy not found')).length, 1);
    await w.close();
  });
});
