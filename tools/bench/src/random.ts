/**
 * The bench's seeded random numbers: one generator for every scenario that draws requests (the bench
 * at scale's random books and pages, the hit-ratio tool's Zipf traces), deterministic for a seed.
 */

/** xoshiro128** (Blackman and Vigna), seeded through splitmix32: deterministic for a given seed. */
export class Rng {
  #s0: number;
  #s1: number;
  #s2: number;
  #s3: number;

  constructor(seed: number) {
    let x = seed >>> 0;
    const split = (): number => {
      x = (x + 0x9e3779b9) >>> 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.#s0 = split();
    this.#s1 = split();
    this.#s2 = split();
    this.#s3 = split();
  }

  /** A uniform 32-bit unsigned integer. */
  nextU32(): number {
    const result = Math.imul(rotl(Math.imul(this.#s1, 5) >>> 0, 7), 9) >>> 0;
    const t = (this.#s1 << 9) >>> 0;
    this.#s2 = (this.#s2 ^ this.#s0) >>> 0;
    this.#s3 = (this.#s3 ^ this.#s1) >>> 0;
    this.#s1 = (this.#s1 ^ this.#s2) >>> 0;
    this.#s0 = (this.#s0 ^ this.#s3) >>> 0;
    this.#s2 = (this.#s2 ^ t) >>> 0;
    this.#s3 = rotl(this.#s3, 11);
    return result;
  }

  /** Uniform in (0, 1), never 0 nor 1. */
  next(): number {
    return (this.nextU32() + 0.5) / 4294967296;
  }

  /** Uniform integer in [0, n), n ≤ 2^32 (the small modulo bias is below 2^-12 for n ≤ 2^20). */
  below(n: number): number {
    return Math.floor(this.next() * n);
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

/** Floats in (0, 1) from a generator seeded with `seed`, as a plain function. */
export function seededRandom(seed: number): () => number {
  const rng = new Rng(seed);
  return () => rng.next();
}
