import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  cheLru,
  CountMinSketch,
  nextUses,
  simulateBelady,
  simulateLru,
  simulateTinyLfu,
} from './policies.js';
import { Rng } from '../random.js';
import { zipfProbabilities, zipfTrace } from './zipf.js';

const trace = (xs: number[]) => Int32Array.from(xs);
const keysOf = (t: Int32Array) => Math.max(...t) + 1;

// The textbook reference string (Silberschatz, Operating System Concepts, ch. 10): 3 frames, 20
// references; OPT faults 9 times, LRU 12 times.
const BOOK = trace([7, 0, 1, 2, 0, 3, 0, 4, 2, 3, 0, 3, 2, 1, 2, 0, 1, 7, 0, 1]);

test('LRU on hand traces', () => {
  const t = trace([0, 1, 0, 2, 1, 0]); // A B A C B A
  assert.equal(simulateLru(t, 3, 2, 0).hits, 1); // only the second A
  assert.equal(simulateLru(t, 3, 3, 0).hits, 3);
  assert.equal(simulateLru(t, 3, 1, 0).hits, 0);
  assert.equal(simulateLru(t, 3, 0, 0).hits, 0);
  assert.equal(simulateLru(BOOK, 8, 3, 0).hits, 20 - 12);
  // Counted from `warm` on only: of the 6, requests 3..5 (C B A) with capacity 3: B and A hit.
  const w = simulateLru(t, 3, 3, 3);
  assert.deepEqual([w.hits, w.requests], [2, 3]);
  assert.deepEqual(simulateLru(t, 3, 2, 0).state.oldestFirst(), [1, 0]);
});

test("Belady's MIN on hand traces: demand paging and with bypass", () => {
  assert.equal(simulateBelady(BOOK, nextUses(BOOK, 8), 8, 3, 0, { bypass: false }).hits, 20 - 9);
  // A B C A B C with 2 slots: demand paging keeps A, B (A hits); declining C keeps B for its reuse too.
  const abc = trace([0, 1, 2, 0, 1, 2]);
  assert.equal(simulateBelady(abc, nextUses(abc, 3), 3, 2, 0, { bypass: false }).hits, 2);
  assert.equal(simulateBelady(abc, nextUses(abc, 3), 3, 2, 0).hits, 2);
  const cyc = trace([0, 1, 2, 0, 1, 2, 0, 1, 2]);
  // A cycle one longer than the cache: LRU always evicts the next key asked for and never hits; MIN
  // hits 3 of the 6 re-requests, and 4 when it may decline a fill (the exhaustive search agrees below).
  assert.equal(simulateLru(cyc, 3, 2, 0).hits, 0);
  assert.equal(simulateBelady(cyc, nextUses(cyc, 3), 3, 2, 0, { bypass: false }).hits, 3);
  assert.equal(simulateBelady(cyc, nextUses(cyc, 3), 3, 2, 0).hits, 4);
});

/** The best any policy that may decline fills can do, by trying every choice (tiny traces only). */
function bruteOptimum(t: Int32Array, capacity: number): number {
  const best = (i: number, cache: number[]): number => {
    if (i === t.length) return 0;
    const k = t[i] as number;
    if (cache.includes(k)) return 1 + best(i + 1, cache);
    let b = best(i + 1, cache); // decline
    if (cache.length < capacity) b = Math.max(b, best(i + 1, [...cache, k]));
    else
      for (let j = 0; j < cache.length; j++) {
        b = Math.max(
          b,
          best(
            i + 1,
            cache.map((x, m) => (m === j ? k : x)),
          ),
        );
      }
    return b;
  };
  return best(0, []);
}

test('Belady with bypass equals the exhaustive optimum on random tiny traces', () => {
  const rng = new Rng(11);
  for (let round = 0; round < 60; round++) {
    const t = Int32Array.from({ length: 11 }, () => rng.below(5));
    const capacity = 1 + rng.below(3);
    const opt = simulateBelady(t, nextUses(t, 5), 5, capacity, 0).hits;
    assert.equal(opt, bruteOptimum(t, capacity), `trace ${[...t]}, capacity ${capacity}`);
    assert.ok(opt >= simulateLru(t, 5, capacity, 0).hits);
    assert.ok(opt >= simulateBelady(t, nextUses(t, 5), 5, capacity, 0, { bypass: false }).hits);
  }
});

test("Che's approximation matches the LRU simulation within 0.01 (Zipf, 2,000 books)", () => {
  for (const skew of [0.8, 0.99, 1.2]) {
    const t = zipfTrace({ books: 2000, skew, length: 300_000, seed: 9 });
    const p = zipfProbabilities(2000, skew);
    for (const capacity of [20, 100, 400]) {
      const sim = simulateLru(t.requests, 2000, capacity, 50_000).ratio;
      const che = cheLru(p, capacity).ratio;
      assert.ok(Math.abs(sim - che) < 0.01, `skew ${skew}, C ${capacity}: sim ${sim}, Che ${che}`);
    }
  }
  assert.equal(cheLru(zipfProbabilities(10, 1), 10).ratio, 1);
  assert.equal(cheLru(zipfProbabilities(10, 1), 0).ratio, 0);
});

test('the count-min sketch counts up to 15, never under, and halves with age', () => {
  const s = new CountMinSketch(1024);
  for (let i = 0; i < 5; i++) s.increment(3);
  assert.ok(s.estimate(3) >= 5);
  for (let i = 0; i < 20; i++) s.increment(4);
  assert.equal(s.estimate(4), 15);
  // Other keys, each once, until the sketch ages (after 10 x 1024 additions): every counter halves.
  let before3 = 0;
  let before4 = 0;
  for (let k = 1000; s.resets === 0 && k < 1_000_000; k++) {
    before3 = s.estimate(3);
    before4 = s.estimate(4);
    s.increment(k);
  }
  assert.equal(s.resets, 1);
  assert.ok(s.estimate(4) <= Math.floor((before4 + 1) / 2), `${s.estimate(4)} after ${before4}`);
  assert.ok(s.estimate(3) <= Math.floor((before3 + 1) / 2), `${s.estimate(3)} after ${before3}`);
  assert.ok(s.estimate(4) >= 7);
});

test('TinyLFU keeps a hot key through a scan that flushes an LRU', () => {
  // Keys 0-3 requested often, then a scan of 300 keys seen once, then 0 again: the scan flushes an LRU
  // of 100, while the filter keeps the scan out of the main part once it is full.
  const xs: number[] = [];
  for (let i = 0; i < 50; i++) xs.push(0, 1 + (i % 3));
  for (let k = 10; k < 310; k++) xs.push(k);
  xs.push(0);
  const t = trace(xs);
  const lastIndex = t.length - 1;
  assert.equal(simulateLru(t, keysOf(t), 100, lastIndex).hits, 0);
  assert.equal(simulateTinyLfu(t, keysOf(t), 100, lastIndex, { windowShare: 0.1 }).hits, 1);
  // And on Zipf it beats LRU at a small size.
  const z = zipfTrace({ books: 5000, skew: 0.8, length: 200_000, seed: 2 });
  const lru = simulateLru(z.requests, 5000, 50, 100_000).ratio;
  const tiny = simulateTinyLfu(z.requests, 5000, 50, 100_000).ratio;
  assert.ok(tiny > lru, `TinyLFU ${tiny} vs LRU ${lru}`);
});
