/**
 * Hit ratios of cache policies on a trace of keys 0..keys-1, each counted over the requests from
 * `warm` on (the ones before only fill the cache): the offline optimum (Belady's MIN), an exact LRU,
 * and W-TinyLFU's admission in front of an LRU. And LRU's theoretical curve for independent Zipf
 * requests (Che's approximation).
 */

export interface Counted {
  hits: number;
  /** Requests counted (from `warm` on). */
  requests: number;
  ratio: number;
}

function counted(hits: number, requests: number): Counted {
  return { hits, requests, ratio: requests > 0 ? hits / requests : 0 };
}

/** Index of each request's next request for the same key; `trace.length` when there is none. */
export function nextUses(trace: Int32Array, keys: number): Int32Array {
  const never = trace.length;
  const last = new Int32Array(keys).fill(never);
  const next = new Int32Array(trace.length);
  for (let i = trace.length - 1; i >= 0; i--) {
    const k = trace[i] as number;
    next[i] = last[k] as number;
    last[k] = i;
  }
  return next;
}

/**
 * A doubly-linked recency list over keys 0..keys-1 in typed arrays: O(1) touch, insert and evict.
 * Several lists may share one `Links` (a key is in at most one of them).
 */
export class Links {
  readonly prev: Int32Array;
  readonly next: Int32Array;
  constructor(keys: number) {
    this.prev = new Int32Array(keys);
    this.next = new Int32Array(keys);
  }
}

export class RecencyList {
  /** Most recently used (-1: empty). */
  head = -1;
  /** Least recently used (-1: empty). */
  tail = -1;
  size = 0;

  constructor(private readonly links: Links) {}

  pushFront(k: number): void {
    const { prev, next } = this.links;
    prev[k] = -1;
    next[k] = this.head;
    if (this.head >= 0) prev[this.head] = k;
    else this.tail = k;
    this.head = k;
    this.size++;
  }

  remove(k: number): void {
    const { prev, next } = this.links;
    const p = prev[k] as number;
    const n = next[k] as number;
    if (p >= 0) next[p] = n;
    else this.head = n;
    if (n >= 0) prev[n] = p;
    else this.tail = p;
    this.size--;
  }

  touch(k: number): void {
    if (this.head === k) return;
    this.remove(k);
    this.pushFront(k);
  }

  /** Removes and returns the least recently used key. */
  popBack(): number {
    const k = this.tail;
    this.remove(k);
    return k;
  }

  /** Keys from the least to the most recently used. */
  oldestFirst(): number[] {
    const out: number[] = [];
    for (let k = this.tail; k >= 0; k = this.links.prev[k] as number) out.push(k);
    return out;
  }
}

/** An exact LRU of `capacity` entries over the trace up to `end` (default: all of it). */
export function simulateLru(
  trace: Int32Array,
  keys: number,
  capacity: number,
  warm: number,
  end = trace.length,
): Counted & { state: RecencyList } {
  const inCache = new Uint8Array(keys);
  const list = new RecencyList(new Links(keys));
  let hits = 0;
  for (let i = 0; i < end; i++) {
    const k = trace[i] as number;
    if (inCache[k]) {
      if (i >= warm) hits++;
      list.touch(k);
      continue;
    }
    if (capacity <= 0) continue;
    if (list.size >= capacity) inCache[list.popBack()] = 0;
    list.pushFront(k);
    inCache[k] = 1;
  }
  return { ...counted(hits, Math.max(0, end - warm)), state: list };
}

/**
 * Belady's MIN, the offline optimum: on a miss with the cache full, evict the entry whose next use is
 * furthest away. With `bypass` (the default) the requested key competes too, and is not cached at all
 * when its own next use is the furthest (a cache that may decline a fill, as the front's may): the
 * optimum over all policies. Without, every miss is cached (demand paging). Cached keys sit in an
 * indexed max-heap by next use: O(M log C).
 */
export function simulateBelady(
  trace: Int32Array,
  next: Int32Array,
  keys: number,
  capacity: number,
  warm: number,
  opts: { bypass?: boolean } = {},
): Counted {
  const bypass = opts.bypass ?? true;
  const never = trace.length;
  const heap = new Int32Array(Math.max(1, capacity)); // keys
  const pos = new Int32Array(keys).fill(-1); // key → heap slot, -1: not cached
  const due = new Int32Array(keys); // key → its next use
  let size = 0;
  const swap = (a: number, b: number): void => {
    const ka = heap[a] as number;
    const kb = heap[b] as number;
    heap[a] = kb;
    heap[b] = ka;
    pos[kb] = a;
    pos[ka] = b;
  };
  const up = (i: number): void => {
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if ((due[heap[parent] as number] as number) >= (due[heap[i] as number] as number)) return;
      swap(i, parent);
      i = parent;
    }
  };
  const down = (i: number): void => {
    for (;;) {
      const l = 2 * i + 1;
      if (l >= size) return;
      const r = l + 1;
      let big = l;
      if (r < size && (due[heap[r] as number] as number) > (due[heap[l] as number] as number)) big = r;
      if ((due[heap[big] as number] as number) <= (due[heap[i] as number] as number)) return;
      swap(i, big);
      i = big;
    }
  };
  let hits = 0;
  for (let i = 0; i < trace.length; i++) {
    const k = trace[i] as number;
    const nu = next[i] as number;
    const slot = pos[k] as number;
    if (slot >= 0) {
      if (i >= warm) hits++;
      due[k] = nu; // later than before (it was i): moves towards the top
      up(slot);
      continue;
    }
    if (capacity <= 0 || (bypass && nu === never)) continue;
    if (size >= capacity) {
      const top = heap[0] as number;
      if (bypass && (due[top] as number) <= nu) continue;
      // Evict the furthest: the new key takes its slot, then sinks to its place.
      pos[top] = -1;
      heap[0] = k;
      pos[k] = 0;
      due[k] = nu;
      down(0);
      continue;
    }
    heap[size] = k;
    pos[k] = size;
    due[k] = nu;
    size++;
    up(size - 1);
  }
  return counted(hits, Math.max(0, trace.length - warm));
}

/**
 * LRU's hit ratio under independent requests with probabilities `p` (Che, Tung and Wang 2002): the
 * characteristic time T solves Σ (1 − e^(−p_i T)) = C, found by bisection; the hit ratio is then
 * Σ p_i (1 − e^(−p_i T)).
 */
export function cheLru(p: Float64Array, capacity: number): { ratio: number; characteristicTime: number } {
  const n = p.length;
  if (capacity <= 0) return { ratio: 0, characteristicTime: 0 };
  if (capacity >= n) return { ratio: 1, characteristicTime: Infinity };
  const occupancy = (t: number): number => {
    let sum = 0;
    for (let i = 0; i < n; i++) sum += 1 - Math.exp(-(p[i] as number) * t);
    return sum;
  };
  let lo = 0;
  let hi = capacity;
  while (occupancy(hi) < capacity) hi *= 2;
  // Bisection until T is known to one part in 10^9.
  while (hi - lo > 1e-9 * hi) {
    const mid = (lo + hi) / 2;
    if (occupancy(mid) < capacity) lo = mid;
    else hi = mid;
  }
  const t = (lo + hi) / 2;
  let ratio = 0;
  for (let i = 0; i < n; i++) ratio += (p[i] as number) * (1 - Math.exp(-(p[i] as number) * t));
  return { ratio, characteristicTime: t };
}

/**
 * A count-min sketch of 4-bit counters (depth 4, width a power of two ≥ the cache's size), aged as
 * TinyLFU ages it: after `sampleSize` increments (10 × the cache's size) every counter is halved.
 */
export class CountMinSketch {
  readonly #table: Uint8Array;
  readonly #mask: number;
  readonly #width: number;
  readonly sampleSize: number;
  #additions = 0;
  /** Times the counters were halved. */
  resets = 0;

  constructor(capacity: number) {
    let width = 16;
    while (width < capacity) width *= 2;
    this.#width = width;
    this.#mask = width - 1;
    this.#table = new Uint8Array(width * 4);
    this.sampleSize = 10 * Math.max(1, capacity);
  }

  /**
   * The key's two hashes (murmur3's finaliser with two seeds); row i's counter is at h1 + i·h2
   * (Kirsch and Mitzenmacher's double hashing: two hashes for the four rows).
   */
  #h1 = 0;
  #h2 = 0;
  #hash(key: number): void {
    let h = Math.imul(key ^ 0x2545f491, 0x9e3779b1);
    h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
    this.#h1 = h ^ (h >>> 13);
    let g = Math.imul(key ^ 0x7f4a7c15, 0xc2b2ae35);
    g = Math.imul(g ^ (g >>> 16), 0x27d4eb2f);
    this.#h2 = (g ^ (g >>> 15)) | 1;
  }

  increment(key: number): void {
    const t = this.#table;
    this.#hash(key);
    let added = false;
    for (let row = 0, h = this.#h1; row < 4; row++, h = (h + this.#h2) | 0) {
      const s = row * this.#width + (h & this.#mask);
      const v = t[s] as number;
      if (v < 15) {
        t[s] = v + 1;
        added = true;
      }
    }
    if (added && ++this.#additions >= this.sampleSize) this.#age();
  }

  estimate(key: number): number {
    const t = this.#table;
    this.#hash(key);
    let min = 15;
    for (let row = 0, h = this.#h1; row < 4; row++, h = (h + this.#h2) | 0) {
      min = Math.min(min, t[row * this.#width + (h & this.#mask)] as number);
    }
    return min;
  }

  #age(): void {
    const t = this.#table;
    for (let i = 0; i < t.length; i++) t[i] = (t[i] as number) >> 1;
    this.#additions = Math.floor(this.#additions / 2);
    this.resets++;
  }
}

/**
 * W-TinyLFU's admission in front of an LRU (Einziger, Friedman and Manes 2017): every request counts
 * in the sketch; a miss enters a small window LRU (`windowShare` of the capacity, at least 1); the
 * window's evicted entry joins the main LRU only if the sketch says it is more frequent than the main
 * LRU's own eviction candidate, which otherwise stays. No doorkeeper; the main part is one LRU (not
 * Caffeine's segmented one).
 */
export function simulateTinyLfu(
  trace: Int32Array,
  keys: number,
  capacity: number,
  warm: number,
  opts: { windowShare?: number } = {},
): Counted & { admitted: number; rejected: number } {
  const windowSize = Math.max(1, Math.round(capacity * (opts.windowShare ?? 0.01)));
  const mainSize = capacity - windowSize;
  if (mainSize <= 0) return { ...simulateLru(trace, keys, capacity, warm), admitted: 0, rejected: 0 };
  const links = new Links(keys);
  const window = new RecencyList(links);
  const main = new RecencyList(links);
  const where = new Uint8Array(keys); // 0 none, 1 window, 2 main
  const sketch = new CountMinSketch(capacity);
  let hits = 0;
  let admitted = 0;
  let rejected = 0;
  for (let i = 0; i < trace.length; i++) {
    const k = trace[i] as number;
    sketch.increment(k);
    const at = where[k];
    if (at === 1) {
      window.touch(k);
      if (i >= warm) hits++;
      continue;
    }
    if (at === 2) {
      main.touch(k);
      if (i >= warm) hits++;
      continue;
    }
    window.pushFront(k);
    where[k] = 1;
    if (window.size <= windowSize) continue;
    const candidate = window.popBack();
    if (main.size < mainSize) {
      main.pushFront(candidate);
      where[candidate] = 2;
      continue;
    }
    const victim = main.tail;
    if (sketch.estimate(candidate) > sketch.estimate(victim)) {
      main.remove(victim);
      where[victim] = 0;
      main.pushFront(candidate);
      where[candidate] = 2;
      admitted++;
    } else {
      where[candidate] = 0;
      rejected++;
    }
  }
  return { ...counted(hits, Math.max(0, trace.length - warm)), admitted, rejected };
}
