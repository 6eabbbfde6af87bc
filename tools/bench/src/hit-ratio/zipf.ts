/**
 * A Zipf workload over a catalogue, drawn with the bench's seeded Rng (../random.ts): an exact Zipf
 * sampler (inverse CDF over the precomputed cumulative weights, binary search) and a seeded
 * permutation that puts the ranks onto book indexes, so the hot books are spread over the catalogue
 * instead of being its lowest ids.
 */

import { Rng } from '../random.js';

/** The probabilities of ranks 1..n under Zipf(s): p_k = k^-s / H(n, s). Index 0 is rank 1. */
export function zipfProbabilities(n: number, s: number): Float64Array {
  const p = new Float64Array(n);
  let total = 0;
  for (let k = 0; k < n; k++) total += p[k] = (k + 1) ** -s;
  for (let k = 0; k < n; k++) p[k] = (p[k] as number) / total;
  return p;
}

/** Inverse-CDF sampler: rank index (0 = the most popular) of the smallest cumulative weight ≥ u. */
export class ZipfSampler {
  readonly cdf: Float64Array;

  constructor(
    readonly n: number,
    readonly s: number,
  ) {
    const p = zipfProbabilities(n, s);
    this.cdf = new Float64Array(n);
    let sum = 0;
    for (let k = 0; k < n; k++) this.cdf[k] = sum += p[k] as number;
    this.cdf[n - 1] = 1; // no rounding gap at the top
  }

  /** The rank index for a uniform u in (0, 1). */
  rankOf(u: number): number {
    const cdf = this.cdf;
    let lo = 0;
    let hi = this.n - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((cdf[mid] as number) >= u) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  }

  sample(rng: Rng): number {
    return this.rankOf(rng.next());
  }
}

/** A seeded permutation of 0..n-1 (Fisher–Yates): rank index → book index. */
export function permutation(n: number, rng: Rng): Int32Array {
  const perm = new Int32Array(n);
  for (let i = 0; i < n; i++) perm[i] = i;
  for (let i = n - 1; i > 0; i--) {
    const j = rng.below(i + 1);
    const t = perm[i] as number;
    perm[i] = perm[j] as number;
    perm[j] = t;
  }
  return perm;
}

export interface Trace {
  books: number;
  skew: number;
  seed: number;
  /** Book index (0..books-1) of each request; the store's id is index + firstId. */
  requests: Int32Array;
  /** Rank index → book index. */
  perm: Int32Array;
}

/**
 * `length` requests over `books` books, Zipf(skew) by rank, ranks shuffled onto book indexes. The
 * permutation and the samples come from separate streams of the seed, so a longer trace of the same
 * seed starts with the same requests over the same books.
 */
export function zipfTrace(opts: { books: number; skew: number; length: number; seed: number }): Trace {
  const sampler = new ZipfSampler(opts.books, opts.skew);
  const perm = permutation(opts.books, new Rng(opts.seed * 2 + 1));
  const rng = new Rng(opts.seed * 2);
  const requests = new Int32Array(opts.length);
  for (let i = 0; i < opts.length; i++) requests[i] = perm[sampler.sample(rng)] as number;
  return { books: opts.books, skew: opts.skew, seed: opts.seed, requests, perm };
}
