import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Rng } from '../random.js';
import { permutation, ZipfSampler, zipfProbabilities, zipfTrace } from './zipf.js';

test('the PRNG is deterministic for a seed, and uniform enough', () => {
  const a = new Rng(7);
  const b = new Rng(7);
  const c = new Rng(8);
  const xs = Array.from({ length: 5 }, () => a.nextU32());
  assert.deepEqual(
    xs,
    Array.from({ length: 5 }, () => b.nextU32()),
  );
  assert.notDeepEqual(
    xs,
    Array.from({ length: 5 }, () => c.nextU32()),
  );
  // 10 buckets of 100,000 draws: each within 5 standard deviations of 10,000.
  const buckets = new Array<number>(10).fill(0);
  const r = new Rng(1);
  for (let i = 0; i < 100_000; i++) buckets[Math.floor(r.next() * 10)]!++;
  for (const n of buckets) assert.ok(Math.abs(n - 10_000) < 5 * Math.sqrt(100_000 * 0.1 * 0.9), `${n}`);
});

test('the inverse CDF maps u onto the rank whose cumulative weight first reaches it', () => {
  const z = new ZipfSampler(4, 1);
  // weights 1, 1/2, 1/3, 1/4 over 25/12: cumulative 0.48, 0.72, 0.88, 1
  assert.equal(z.rankOf(0.000001), 0);
  assert.equal(z.rankOf(0.47), 0);
  assert.equal(z.rankOf(0.49), 1);
  assert.equal(z.rankOf(0.73), 2);
  assert.equal(z.rankOf(0.999999), 3);
  const p = zipfProbabilities(4, 1);
  assert.ok(Math.abs((p[0] as number) - 12 / 25) < 1e-12);
  assert.ok(Math.abs((p[3] as number) - 3 / 25) < 1e-12);
});

// Tolerance: every one of the top 20 ranks' empirical frequency within 4 standard deviations of its
// probability (binomial: sqrt(p(1 − p)/n)), on seed 42, 200,000 samples over 10,000 books.
for (const skew of [0.8, 0.99, 1.2]) {
  test(`Zipf(${skew}): the top ranks' frequencies match the theory (4 sigma, seed 42)`, () => {
    const n = 200_000;
    const z = new ZipfSampler(10_000, skew);
    const p = zipfProbabilities(10_000, skew);
    const counts = new Int32Array(10_000);
    const rng = new Rng(42);
    for (let i = 0; i < n; i++) counts[z.sample(rng)]!++;
    for (let k = 0; k < 20; k++) {
      const pk = p[k] as number;
      const sigma = Math.sqrt((pk * (1 - pk)) / n);
      const freq = (counts[k] as number) / n;
      assert.ok(Math.abs(freq - pk) <= 4 * sigma, `rank ${k + 1}: ${freq} vs ${pk} (sigma ${sigma})`);
    }
  });
}

test('the permutation is one, and the trace puts the hottest rank on its permuted book', () => {
  const perm = permutation(1000, new Rng(3));
  assert.deepEqual(
    [...perm].sort((a, b) => a - b),
    Array.from({ length: 1000 }, (_, i) => i),
  );
  assert.notDeepEqual([...perm.slice(0, 10)], [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  const t = zipfTrace({ books: 1000, skew: 0.99, length: 20_000, seed: 5 });
  const counts = new Map<number, number>();
  for (const b of t.requests) counts.set(b, (counts.get(b) ?? 0) + 1);
  const hottest = [...counts].sort((a, b) => b[1] - a[1])[0]![0];
  assert.equal(hottest, t.perm[0]);
  // The same seed, a longer trace: the same first requests.
  const longer = zipfTrace({ books: 1000, skew: 0.99, length: 30_000, seed: 5 });
  assert.deepEqual(longer.requests.subarray(0, 20_000), t.requests);
});
