import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { CACHE_ENTRY_OVERHEAD_BYTES, FrontCache, cacheEntrySize, type CacheEntry } from './cache.js';

const entry = (version: number): CacheEntry => ({
  body: Buffer.from(`{"v":${version}}`),
  version,
  servedBy: 'test',
});
const FIRST_PAGE = { limit: 20, after: 0 };

/** An entry whose body is `bodyBytes` long (JSON-ish filler). */
const sized = (version: number, bodyBytes: number): CacheEntry => ({
  body: Buffer.alloc(bodyBytes, 'x'),
  version,
  servedBy: 'test',
});

/** A small deterministic generator (mulberry32), so a failing fill sequence can be replayed. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

describe('FrontCache', () => {
  it('serves what was offered and counts hits and misses', () => {
    const cache = new FrontCache({ maxEntries: 10, ttlMs: 60_000 });
    assert.equal(cache.get(FrontCache.bookKey(1)), undefined);
    assert.ok(cache.offerBook(1, entry(3)));
    assert.equal(cache.get(FrontCache.bookKey(1))?.version, 3);
    assert.deepEqual([cache.stats().hits, cache.stats().misses], [1, 1]);
  });

  it('a failover in a mode that may lose writes drops every fence and entry; without loss they stay', () => {
    const cache = new FrontCache({ maxEntries: 10, ttlMs: 60_000 });
    assert.equal(cache.noteTimeline(1, true), false, 'timeline 1: no promotion ever');
    cache.offerBook(1, entry(10));
    cache.raiseFence(1, 10);
    cache.raiseFence(2, 7);
    // Strict: only the synchronous standby is promoted; what the front fenced on survived.
    assert.equal(cache.noteTimeline(2, false), false);
    assert.equal(cache.fence(1), 10);
    assert.equal(cache.get(FrontCache.bookKey(1))?.version, 10);
    assert.equal(cache.noteTimeline(2, true), false, 'a timeline already seen is no new promotion');
    // Session: version 10 may be gone from the new primary, whose book 1 is then at 9 for good.
    assert.equal(cache.noteTimeline(3, true), true);
    assert.deepEqual([cache.fence(1), cache.fence(2)], [0, 0]);
    assert.equal(cache.get(FrontCache.bookKey(1)), undefined);
    assert.ok(cache.offerBook(1, entry(9)), "the new primary's version is cached again");
    assert.deepEqual([cache.stats().timeline, cache.stats().timelineResets], [3, 1]);
    assert.equal(cache.noteTimeline(2, true), false, 'an older timeline (a lagging origin) changes nothing');
    assert.equal(cache.get(FrontCache.bookKey(1))?.version, 9);
  });

  it('a front whose first report is past timeline 1 drops what it fenced before it (maybe on the old one)', () => {
    const cache = new FrontCache({ maxEntries: 10, ttlMs: 60_000 });
    cache.raiseFence(1, 10);
    assert.equal(cache.noteTimeline(2, true), true);
    assert.equal(cache.fence(1), 0);
  });

  it('a retired cache (a front shutting down) serves and stores nothing, but still fences', () => {
    const cache = new FrontCache({ maxEntries: 10, ttlMs: 60_000 });
    cache.offerBook(1, entry(3));
    cache.offer(FrontCache.searchKey('x', FIRST_PAGE), entry(0));
    cache.retire();
    assert.equal(cache.get(FrontCache.bookKey(1)), undefined, 'nothing served once retired');
    assert.equal(cache.get(FrontCache.searchKey('x', FIRST_PAGE)), undefined);
    assert.equal(cache.offerBook(1, entry(4)), false, 'nor stored');
    cache.offer(FrontCache.searchKey('y', FIRST_PAGE), entry(0));
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

  it('an announced write drops the entry and blocks fills until it is settled', () => {
    const cache = new FrontCache({ maxEntries: 10, ttlMs: 60_000 });
    cache.offerBook(1, entry(3));
    cache.prepare(1, 'w1', 60_000);
    assert.equal(cache.get(FrontCache.bookKey(1)), undefined, 'the cached copy is gone before the commit');
    assert.equal(
      cache.offerBook(1, entry(3)),
      false,
      'the old version is not cached while the write is in flight',
    );
    assert.equal(cache.offerBook(1, entry(4)), false, 'nor any other: the front does not know which is new');
    cache.settle(1, 'w1', 4);
    assert.equal(cache.fence(1), 4, 'settled with the committed version: fenced');
    assert.equal(cache.offerBook(1, entry(3)), false);
    assert.ok(cache.offerBook(1, entry(4)));
    assert.equal(cache.get(FrontCache.bookKey(1))?.version, 4);
  });

  it('a write settled as not done lets the book be cached again; two writes in flight need both settled', () => {
    const cache = new FrontCache({ maxEntries: 10, ttlMs: 60_000 });
    cache.prepare(1, 'a', 60_000);
    cache.prepare(1, 'b', 60_000);
    cache.settle(1, 'a');
    assert.equal(cache.offerBook(1, entry(2)), false, 'b is still in flight');
    cache.settle(1, 'b');
    assert.ok(cache.offerBook(1, entry(2)), 'nothing in flight: cached');
    assert.equal(cache.fence(1), 0, 'a write that did not happen raises no fence');
  });

  it('an announcement that expires unsettled refuses fills from reads that began before it expired', async () => {
    const cache = new FrontCache({ maxEntries: 10, ttlMs: 60_000 });
    const before = performance.now();
    cache.prepare(1, 'lost', 30);
    assert.equal(cache.writing(1), true);
    await new Promise((r) => setTimeout(r, 60));
    assert.equal(cache.writing(1), false, 'expired');
    assert.equal(cache.offerBook(1, entry(2), before), false, 'that read may have seen the pre-write row');
    assert.ok(
      cache.offerBook(1, entry(2), performance.now()),
      'a read that began after the expiry is cached',
    );
    assert.equal(cache.stats().expiredPrepares, 1);
  });

  it('fills wait for the start-up hold: reads that began before it ends are not cached', () => {
    const cache = new FrontCache({ maxEntries: 10, ttlMs: 60_000 });
    cache.holdFillsUntil(Number.POSITIVE_INFINITY);
    assert.equal(cache.holdingFills(), true);
    assert.equal(cache.offerBook(1, entry(1)), false);
    const until = performance.now() + 1000;
    cache.holdFillsUntil(until);
    assert.equal(cache.offerBook(1, entry(1), until - 1), false);
    assert.ok(cache.offerBook(1, entry(1), until + 1));
  });

  it('raiseFence: a front never serves older than it served', () => {
    const cache = new FrontCache({ maxEntries: 10, ttlMs: 60_000 });
    cache.offerBook(1, entry(2));
    cache.raiseFence(1, 5);
    assert.equal(cache.get(FrontCache.bookKey(1)), undefined, 'an older cached copy goes with it');
    cache.raiseFence(1, 3);
    assert.equal(cache.fence(1), 5);
    assert.equal(cache.offerBook(1, entry(4)), false);
  });

  it('search pages are keyed by topic, position and size: no two pages stand for one another', () => {
    const cache = new FrontCache({ maxEntries: 10, ttlMs: 60_000 });
    const keys = [
      FrontCache.searchKey('a', { limit: 2, after: 0 }),
      FrontCache.searchKey('a', { limit: 2, after: 5 }),
      FrontCache.searchKey('a', { limit: 3, after: 5 }),
      FrontCache.searchKey('b', { limit: 2, after: 5 }),
      // A topic that looks like the rest of another key does not meet it.
      FrontCache.searchKey('5:a', { limit: 2, after: 0 }),
      FrontCache.searchKey('a', { limit: 25, after: 0 }),
    ];
    assert.equal(new Set(keys).size, keys.length);
    keys.forEach((key, i) => cache.offer(key, entry(i)));
    keys.forEach((key, i) => assert.equal(cache.get(key)?.version, i));
    // Invalidations are of books: they leave search pages alone (a page has no price or stock).
    cache.invalidate(5, 9);
    assert.equal(cache.get(keys[1]!)?.version, 1);
  });

  describe('bounded in bytes', () => {
    it('an entry counts for its body, its key and the fixed overhead', () => {
      const key = FrontCache.bookKey(12);
      assert.equal(cacheEntrySize(key, sized(1, 100)), 100 + key.length + CACHE_ENTRY_OVERHEAD_BYTES);
      const cache = new FrontCache({ maxEntries: 10, ttlMs: 60_000, maxBytes: 65_536 });
      cache.offerBook(12, sized(1, 100));
      assert.deepEqual(
        [cache.stats().bytes, cache.stats().maxBytes],
        [cacheEntrySize(key, sized(1, 100)), 65_536],
      );
    });

    it('never holds more than the bound under fills of varying sizes, and evicts no more than it must', () => {
      const maxBytes = 20_000;
      const cache = new FrontCache({ maxEntries: 1000, ttlMs: 60_000, maxBytes });
      const next = random(23);
      const offered = new Map<string, CacheEntry>();
      let largest = 0;
      let evicted = 0;
      for (let i = 0; i < 2000; i++) {
        // Bodies from 1 byte to 4 KiB, books and search pages, with ids that repeat (replacements).
        const e = sized(1 + Math.floor(next() * 3), 1 + Math.floor(next() ** 3 * 4096));
        const id = 1 + Math.floor(next() * 60);
        const key = next() < 0.7 ? FrontCache.bookKey(id) : FrontCache.searchKey(`t${id}`, FIRST_PAGE);
        if (key.startsWith('book:')) {
          cache.invalidate(id, 0); // no fence in the way: any version may replace any other here
          if (!cache.offerBook(id, { ...e, version: (cache.fence(id) || 0) + e.version })) continue;
        } else cache.offer(key, e);
        offered.set(key, e);
        largest = Math.max(largest, cacheEntrySize(key, e));
        const { bytes, size, evictions } = cache.stats();
        assert.ok(bytes <= maxBytes, `fill ${i}: ${bytes} bytes cached, bound ${maxBytes}`);
        assert.ok(size > 0, `fill ${i}: an entry within the bound is kept`);
        // LRU eviction frees only what the newcomer needs: what stays is within one entry of the bound.
        if (evictions > evicted)
          assert.ok(bytes > maxBytes - largest, `fill ${i}: ${bytes} bytes cached, evicted more than needed`);
        evicted = evictions;
      }
      // The figure is what the entries really count for, not a running sum that drifted.
      let counted = 0;
      for (const [key, e] of offered) {
        const cached = cache.get(key);
        if (cached) counted += cacheEntrySize(key, cached);
        if (cached) assert.equal(cached.body.byteLength, e.body.byteLength);
      }
      assert.equal(counted, cache.stats().bytes);
      assert.ok(cache.stats().evictions > 0, 'the bound was reached');
    });

    it('a single entry larger than the bound is not cached, drops its older copy, and evicts nothing else', () => {
      const cache = new FrontCache({ maxEntries: 100, ttlMs: 60_000, maxBytes: 10_000 });
      for (const id of [1, 2, 3, 4, 5]) cache.offerBook(id, sized(1, 500));
      const before = cache.stats();
      assert.equal(before.size, 5);
      const huge = sized(2, 10_000);
      assert.ok(cache.offerBook(3, huge), 'the fill is accepted (the fences allow it) ...');
      assert.equal(cache.get(FrontCache.bookKey(3)), undefined, '... but not kept, nor its older copy');
      cache.offer(FrontCache.searchKey('big', FIRST_PAGE), sized(0, 20_000));
      assert.equal(cache.get(FrontCache.searchKey('big', FIRST_PAGE)), undefined);
      for (const id of [1, 2, 4, 5]) assert.ok(cache.get(FrontCache.bookKey(id)), `book ${id} stayed`);
      const after = cache.stats();
      assert.deepEqual([after.size, after.evictions, after.oversized], [4, 0, 2]);
      assert.equal(after.bytes, before.bytes - cacheEntrySize(FrontCache.bookKey(3), sized(1, 500)));
    });

    it('a smaller bound applied live shrinks the cache to it, keeping the most recently used', () => {
      const cache = new FrontCache({ maxEntries: 100, ttlMs: 60_000, maxBytes: 100_000 });
      // Ids of two digits: every entry counts for the same.
      const size = cacheEntrySize(FrontCache.bookKey(10), sized(1, 1000));
      for (let id = 10; id < 30; id++) cache.offerBook(id, sized(1, 1000));
      assert.equal(cache.stats().bytes, 20 * size);
      cache.get(FrontCache.bookKey(10)); // 10 becomes the most recent
      cache.reconfigure(100, 60_000, 5 * size);
      const stats = cache.stats();
      assert.deepEqual([stats.maxBytes, stats.size, stats.bytes], [5 * size, 5, 5 * size]);
      assert.equal(stats.evictions, 15, 'what went is counted as evicted');
      for (const id of [10, 26, 27, 28, 29]) assert.ok(cache.get(FrontCache.bookKey(id)), `book ${id} kept`);
      assert.equal(cache.get(FrontCache.bookKey(25)), undefined);
      // The new bound holds for the fills that follow; a larger one lets the cache grow again.
      cache.offerBook(30, sized(1, 1000));
      assert.deepEqual([cache.stats().size, cache.stats().bytes], [5, 5 * size]);
      cache.reconfigure(100, 60_000, 100_000);
      for (let id = 31; id <= 35; id++) cache.offerBook(id, sized(1, 1000));
      assert.equal(cache.stats().bytes, 10 * size);
    });

    it('a smaller bound drops an entry that alone no longer fits, whatever its recency', () => {
      const cache = new FrontCache({ maxEntries: 100, ttlMs: 60_000, maxBytes: 100_000 });
      cache.offerBook(1, sized(1, 100));
      cache.offerBook(2, sized(1, 8000));
      cache.reconfigure(100, 60_000, 4096);
      assert.ok(cache.get(FrontCache.bookKey(1)));
      assert.equal(cache.get(FrontCache.bookKey(2)), undefined);
      assert.equal(cache.stats().size, 1);
    });

    it('keeps a small body in memory of its own, not a view that pins a shared pool', () => {
      const pooled = Buffer.from('{"id":1}'); // a view into Buffer's 8 KiB pool
      assert.ok(pooled.buffer.byteLength > pooled.byteLength, 'the test body is pooled');
      const cache = new FrontCache({ maxEntries: 10, ttlMs: 60_000 });
      cache.offerBook(1, { body: pooled, version: 1, servedBy: 'test' });
      const cached = cache.get(FrontCache.bookKey(1))!;
      assert.equal(cached.body.buffer.byteLength, pooled.byteLength);
      assert.deepEqual(cached.body, pooled);
    });
  });
});
