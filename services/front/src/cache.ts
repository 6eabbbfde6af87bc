import { LRUCache } from 'lru-cache';

/** A cached answer: the serialised body (served as is on a hit) and the book version it shows. */
export interface CacheEntry {
  body: Buffer;
  version: number;
  servedBy: string;
}

export interface CacheStats {
  size: number;
  maxEntries: number;
  ttlMs: number;
  hits: number;
  misses: number;
  evictions: number;
  invalidations: number;
  rejectedFills: number;
}

const BOOK_PREFIX = 'book:';

/**
 * The front's read cache, bounded by entry count and TTL, with per-book *fences*.
 *
 * An invalidation for (book, v) raises the book's fence to v and drops any entry older than v. A fill
 * is accepted only if its version is at least the fence and not older than what is cached, so a read
 * that raced with a write cannot put the pre-write value back after the invalidation (the stale-set
 * race). Fences outlive entries (a separate, larger LRU) because they matter most when nothing is
 * cached.
 *
 * A front that is shutting down retires its cache: writers stop pushing invalidations to a pod the
 * moment its EndpointSlice says it is terminating, while clients with a connection to it may still be
 * answered for the shutdown delay, so from then on it serves only fresh (fenced) reads.
 */
export class FrontCache {
  #entries: LRUCache<string, CacheEntry>;
  readonly #fences: LRUCache<number, number>;
  #maxEntries: number;
  #ttlMs: number;
  readonly #stats = { hits: 0, misses: 0, evictions: 0, invalidations: 0, rejectedFills: 0 };
  /** Test hook only: with fencing off, the stale-set race is allowed to happen. */
  fencing = true;
  /** Retired (the front is shutting down): nothing is served from or stored in the cache. */
  #retired = false;

  constructor(opts: { maxEntries: number; ttlMs: number; maxFences?: number }) {
    this.#maxEntries = opts.maxEntries;
    this.#ttlMs = opts.ttlMs;
    this.#entries = this.#create(opts.maxEntries, opts.ttlMs);
    this.#fences = new LRUCache({ max: opts.maxFences ?? 100_000 });
  }

  #create(max: number, ttl: number): LRUCache<string, CacheEntry> {
    return new LRUCache<string, CacheEntry>({
      max,
      ttl,
      // Count capacity evictions only; deletes and overwrites are ours.
      disposeAfter: (_value, _key, reason) => {
        if (reason === 'evict') this.#stats.evictions++;
      },
    });
  }

  static bookKey(id: number): string {
    return `${BOOK_PREFIX}${id}`;
  }

  static searchKey(topic: string): string {
    return `search:${topic}`;
  }

  get(key: string): CacheEntry | undefined {
    const entry = this.#retired ? undefined : this.#entries.get(key);
    if (entry) this.#stats.hits++;
    else this.#stats.misses++;
    return entry;
  }

  /** The minimum version any answer about this book must have. */
  fence(bookId: number): number {
    return this.#fences.get(bookId) ?? 0;
  }

  invalidate(bookId: number, version: number): void {
    this.#stats.invalidations++;
    if (version > this.fence(bookId)) this.#fences.set(bookId, version);
    const key = FrontCache.bookKey(bookId);
    const cached = this.#entries.peek(key);
    if (cached && cached.version < version) this.#entries.delete(key);
  }

  /** Offers a fill; returns false when it is older than the fence or the cached entry. */
  offerBook(bookId: number, entry: CacheEntry): boolean {
    const key = FrontCache.bookKey(bookId);
    if (this.#retired) return false;
    if (this.fencing) {
      const cached = this.#entries.peek(key);
      if (entry.version < this.fence(bookId) || (cached && cached.version > entry.version)) {
        this.#stats.rejectedFills++;
        return false;
      }
    }
    this.#entries.set(key, entry);
    return true;
  }

  /** [book id, cached version] of every book entry (the reconciler's question to the catalog). */
  cachedBooks(): Array<[number, number]> {
    const out: Array<[number, number]> = [];
    for (const [key, entry] of this.#entries.entries()) {
      if (key.startsWith(BOOK_PREFIX)) out.push([Number(key.slice(BOOK_PREFIX.length)), entry.version]);
    }
    return out;
  }

  offer(key: string, entry: CacheEntry): void {
    if (!this.#retired) this.#entries.set(key, entry);
  }

  /**
   * Stops serving and storing entries for good (a shutting-down front, which invalidations no longer
   * reach); fences are still raised by whatever invalidations do arrive, and still fence reads.
   */
  retire(): void {
    this.#retired = true;
    this.#entries.clear();
  }

  /** Applies a new size or TTL live; entries are kept (the newest first) up to the new size. */
  reconfigure(maxEntries: number, ttlMs: number): void {
    if (maxEntries === this.#maxEntries && ttlMs === this.#ttlMs) return;
    const next = this.#create(maxEntries, ttlMs);
    // entries() walks most-recently-used first; insert in reverse so recency order survives.
    for (const [key, value] of [...this.#entries.entries()].reverse()) {
      const remaining = this.#entries.getRemainingTTL(key);
      next.set(key, value, { ttl: Math.min(remaining, ttlMs) });
    }
    this.#entries = next;
    this.#maxEntries = maxEntries;
    this.#ttlMs = ttlMs;
  }

  clear(): void {
    this.#entries.clear();
  }

  stats(): CacheStats {
    return { size: this.#entries.size, maxEntries: this.#maxEntries, ttlMs: this.#ttlMs, ...this.#stats };
  }
}
