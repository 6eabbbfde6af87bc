import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { FrontCache, type CacheEntry } from './cache.js';

const entry = (version: number): CacheEntry => ({
  body: Buffer.from(`{"v":${version}}`),
  version,
  servedBy: 'test',
});

describe('FrontCache', () => {
  it('serves what was offered and counts hits and misses', () => {
    const cache = new FrontCache({ maxEntries: 10, ttlMs: 60_000 });
    assert.equal(cache.get(FrontCache.bookKey(1)), undefined);
    assert.ok(cache.offerBook(1, entry(3)));
    assert.equal(cache.get(FrontCache.bookKey(1))?.version, 3);
    assert.deepEqual([cache.stats().hits, cache.stats().misses], [1, 1]);
  });

  it('a retired cache (a front shutting down) serves and stores nothing, but still fences', () => {
    const cache = new FrontCache({ maxEntries: 10, ttlMs: 60_000 });
    cache.offerBook(1, entry(3));
    cache.offer(FrontCache.searchKey('x'), entry(0));
    cache.retire();
    assert.equal(cache.get(FrontCache.bookKey(1)), undefined, 'nothing served once retired');
    assert.equal(cache.get(FrontCache.searchKey('x')), undefined);
    assert.equal(cache.offerBook(1, entry(4)), false, 'nor stored');
    cache.offer(FrontCache.searchKey('y'), entry(0));
    assert.equal(cache.stats().size, 0);
    cache.invalidate(1, 5);
    assert.equal(cache.fence(1), 5, 'invalidations that still arrive raise the fence');
  });

  it('an invalidation drops older entries and fences out older fills (the stale-set race)', () => {
    const cache = new FrontCache({ maxEntries: 10, ttlMs: 60_000 });
    cache.offerBook(1, entry(1));
    cache.invalidate(1, 2);
    assert.equal(cache.get(FrontCache.bookKey(1)), undefined);
    assert.equal(cache.fence(1), 2);
    // A read that started before the write comes back with version 1: refused.
    assert.equal(cache.offerBook(1, entry(1)), false);
    assert.equal(cache.get(FrontCache.bookKey(1)), undefined);
    assert.equal(cache.stats().rejectedFills, 1);
    assert.ok(cache.offerBook(1, entry(2)));
  });

  it('keeps an entry at least as new as the invalidation, and never lowers a fence', () => {
    const cache = new FrontCache({ maxEntries: 10, ttlMs: 60_000 });
    cache.offerBook(1, entry(5));
    cache.invalidate(1, 4);
    assert.equal(cache.get(FrontCache.bookKey(1))?.version, 5);
    cache.invalidate(1, 7);
    cache.invalidate(1, 6);
    assert.equal(cache.fence(1), 7);
  });

  it('never replaces a newer entry with an older fill', () => {
    const cache = new FrontCache({ maxEntries: 10, ttlMs: 60_000 });
    cache.offerBook(1, entry(4));
    assert.equal(cache.offerBook(1, entry(3)), false);
    assert.equal(cache.get(FrontCache.bookKey(1))?.version, 4);
  });

  it('is bounded by count (evictions counted) and by TTL', async () => {
    const cache = new FrontCache({ maxEntries: 2, ttlMs: 100 });
    for (const id of [1, 2, 3]) cache.offerBook(id, entry(1));
    assert.equal(cache.stats().size, 2);
    assert.equal(cache.stats().evictions, 1);
    assert.equal(cache.get(FrontCache.bookKey(1)), undefined, 'least recently used went first');
    await new Promise((r) => setTimeout(r, 150));
    assert.equal(cache.get(FrontCache.bookKey(3)), undefined, 'expired after the TTL');
  });

  it('reconfigure applies a new size and TTL live, keeping the most recent entries', () => {
    const cache = new FrontCache({ maxEntries: 10, ttlMs: 60_000 });
    for (const id of [1, 2, 3, 4]) cache.offerBook(id, entry(1));
    cache.get(FrontCache.bookKey(1)); // 1 becomes the most recent
    cache.reconfigure(2, 30_000);
    const stats = cache.stats();
    assert.deepEqual([stats.maxEntries, stats.ttlMs, stats.size], [2, 30_000, 2]);
    assert.ok(cache.get(FrontCache.bookKey(1)), 'the most recently used entry survived');
    assert.ok(cache.get(FrontCache.bookKey(4)));
    assert.equal(cache.get(FrontCache.bookKey(2)), undefined);
  });
});
