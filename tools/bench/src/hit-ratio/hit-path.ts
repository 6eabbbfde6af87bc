/**
 * What an admission filter would add to the front's hit path: lru-cache's get() alone against get()
 * plus a count-min sketch increment (what W-TinyLFU does on every request), in this process, rounds
 * alternating (get, get + sketch, get, …) so that drift hits both alike. A measurement, not a test.
 */
import { LRUCache } from 'lru-cache';
import { CountMinSketch } from './policies.js';

export interface HitPathCost {
  capacity: number;
  ttlMs: number;
  opsPerRound: number;
  rounds: number;
  /** Median over the rounds, ns per operation. */
  getNs: number;
  getPlusSketchNs: number;
  /** getPlusSketchNs / getNs, and the range of the paired rounds' own ratios. */
  ratio: number;
  ratioRange: [number, number];
  /** What the sketch adds, ns per request. */
  addedNs: number;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
};

/**
 * `ids`: the books looked up, in order (all of them cached first, so every get() is a hit), as the
 * front keys them (`book:<id>`) and with the cache options the front gives lru-cache (max, ttl).
 */
export function measureHitPath(opts: {
  ids: Int32Array;
  capacity: number;
  ttlMs: number;
  rounds: number;
  opsPerRound: number;
}): HitPathCost {
  const cache = new LRUCache<string, { body: Buffer; version: number }>({
    max: opts.capacity,
    ttl: opts.ttlMs,
  });
  const keys = Array.from(opts.ids, (id) => `book:${id}`);
  const body = Buffer.from('{}');
  for (const k of keys) cache.set(k, { body, version: 1 });
  const sketch = new CountMinSketch(opts.capacity);
  const n = keys.length;
  let sink = 0;
  const plain = (): number => {
    const t0 = process.hrtime.bigint();
    for (let i = 0, j = 0; i < opts.opsPerRound; i++, j = j + 1 === n ? 0 : j + 1) {
      const e = cache.get(keys[j] as string);
      if (e) sink += e.version;
    }
    return Number(process.hrtime.bigint() - t0) / opts.opsPerRound;
  };
  const withSketch = (): number => {
    const t0 = process.hrtime.bigint();
    for (let i = 0, j = 0; i < opts.opsPerRound; i++, j = j + 1 === n ? 0 : j + 1) {
      const e = cache.get(keys[j] as string);
      sketch.increment(opts.ids[j] as number);
      if (e) sink += e.version;
    }
    return Number(process.hrtime.bigint() - t0) / opts.opsPerRound;
  };
  // Warm both paths up (JIT) before the rounds that count.
  plain();
  withSketch();
  const a: number[] = [];
  const b: number[] = [];
  for (let r = 0; r < opts.rounds; r++) {
    // Alternate which goes first, too.
    if (r % 2 === 0) {
      a.push(plain());
      b.push(withSketch());
    } else {
      b.push(withSketch());
      a.push(plain());
    }
  }
  if (sink === -1) console.log(sink); // keeps the lookups' results alive
  const ratios = a.map((x, i) => (b[i] as number) / x);
  const getNs = median(a);
  const getPlusSketchNs = median(b);
  return {
    capacity: opts.capacity,
    ttlMs: opts.ttlMs,
    opsPerRound: opts.opsPerRound,
    rounds: opts.rounds,
    getNs,
    getPlusSketchNs,
    ratio: getPlusSketchNs / getNs,
    ratioRange: [Math.min(...ratios), Math.max(...ratios)],
    addedNs: getPlusSketchNs - getNs,
  };
}
