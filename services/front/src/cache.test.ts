import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { FrontCache, type CacheEntry } from './cache.js';

const entry = (version: number): CacheEntry => ({
  body: Buffer.from(`{"v":${version}}`),
  version,
  servedBy: 'test',
});
const FIRST_PAGE = { limit: 20, after: 0 };

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
});
