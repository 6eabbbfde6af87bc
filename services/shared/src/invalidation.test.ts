import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { InvalidationPublisher } from './invalidation.js';
import { StaticDiscovery } from './discovery.js';
import { createHttpClient } from './http-client.js';
import { createLogger } from './logger.js';
import { createMetrics } from './metrics.js';
import { PolicyStore, type ConsistencyMode } from './policy.js';

/** A front on loopback that records the invalidations (and announcements) pushed to it. */
async function front(name: string) {
  const pushes: unknown[] = [];
  const paths: string[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      pushes.push(JSON.parse(Buffer.concat(chunks).toString()));
      paths.push(req.url ?? '');
      res.end('{"invalidated":1}');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { name, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, pushes, paths, server };
}

describe('InvalidationPublisher (real HTTP fronts on loopback)', () => {
  let fronts: Awaited<ReturnType<typeof front>>[];
  before(async () => {
    fronts = await Promise.all(['front-0', 'front-1', 'front-2'].map(front));
  });
  after(() => fronts.forEach((f) => f.server.close()));

  const publisher = (mode: ConsistencyMode = 'strict') =>
    new InvalidationPublisher({
      fronts: new StaticDiscovery('front', fronts),
      http: createHttpClient({ timeoutMs: 1000 }),
      internalToken: () => 'internal-token-for-tests',
      policy: new PolicyStore({
        cacheMaxEntries: 10,
        cacheMaxBytes: 65_536,
        cacheTtlMs: 1000,
        loadBalancing: 'round-robin',
        consistencyMode: mode,
        invalidationTimeoutMs: 500,
      }),
      logger: createLogger({ name: 'test', level: 'silent' }),
      metrics: createMetrics({ service: 'test', podName: 'test', defaultMetrics: false }),
      podName: 'order-0',
      writeBudgetMs: () => 1000,
    });
  const counts = () => fronts.map((f) => f.pushes.length);

  it('pushes to every front and waits for each', async () => {
    const before = counts();
    const result = await publisher().publish([{ bookId: 1, version: 2 }]);
    assert.deepEqual(result, { fronts: 3, acknowledged: 3, failed: [] });
    assert.deepEqual(
      counts().map((n, i) => n - before[i]!),
      [1, 1, 1],
    );
  });

  it('skips the front the write came through (it fences itself) and counts it as acknowledged', async () => {
    const before = counts();
    const result = await publisher().publish([{ bookId: 1, version: 3 }], 'front-1');
    assert.deepEqual(result, { fronts: 3, acknowledged: 3, failed: [] });
    assert.deepEqual(
      counts().map((n, i) => n - before[i]!),
      [1, 0, 1],
    );
  });

  it('an origin that is no known front changes nothing: every front is pushed', async () => {
    const before = counts();
    const result = await publisher().publish([{ bookId: 1, version: 4 }], 'front-9');
    assert.deepEqual(result, { fronts: 3, acknowledged: 3, failed: [] });
    assert.deepEqual(
      counts().map((n, i) => n - before[i]!),
      [1, 1, 1],
    );
  });

  it('announces a write before its commit and settles it after, under one write id', async () => {
    const p = publisher();
    const announcement = await p.prepare([7], 'front-0');
    assert.deepEqual(announcement.fanout, { fronts: 3, acknowledged: 3, failed: [] });
    assert.equal(announcement.ttlMs, 500 + 1000, 'the invalidation timeout + the write budget');
    for (const f of fronts.slice(1)) {
      assert.equal(f.paths.at(-1), '/internal/prepare');
      assert.deepEqual(f.pushes.at(-1), {
        bookIds: [7],
        writeId: announcement.writeId,
        ttlMs: 1500,
        origin: 'order-0',
      });
    }
    assert.notEqual(fronts[0]!.paths.at(-1), '/internal/prepare', 'the front the write came through');
    await p.settle(announcement, [{ bookId: 7, version: 9 }], 'front-0');
    for (const f of fronts.slice(1)) {
      assert.equal(f.paths.at(-1), '/internal/invalidate');
      assert.deepEqual(f.pushes.at(-1), {
        items: [{ bookId: 7, version: 9 }],
        writeId: announcement.writeId,
        origin: 'order-0',
      });
    }
  });

  it('tells a starting front how long its announced writes may still take, and whether it knows that front', async () => {
    const p = publisher();
    assert.deepEqual(p.writesInFlight('front-2'), { settleWithinMs: 0, knowsFront: true });
    assert.equal(p.writesInFlight('front-9').knowsFront, false);
    const announcement = await p.prepare([1]);
    const during = p.writesInFlight('front-2').settleWithinMs;
    assert.ok(during > 0 && during <= 1500, `settle within ${during} ms`);
    await p.settle(announcement, [{ bookId: 1 }]);
    assert.equal(p.writesInFlight('front-2').settleWithinMs, 0, 'settled: nothing in flight');
  });
});
