import { LRUCache } from 'lru-cache';
import { DEFAULT_CACHE_MAX_BYTES } from '../../shared/src/policy.js';

/** A cached answer: the serialised body (served as is on a hit) and the book version it shows. */
export interface CacheEntry {
  body: Buffer;
  version: number;
  servedBy: string;
  /** The PostgreSQL server it was read from (the catalog's X-Database), shown on the miss that fetched it. */
  database?: string;
}

export interface CacheStats {
  size: number;
  maxEntries: number;
  /** What the entries count for against `maxBytes` (cacheEntrySize of each), now. */
  bytes: number;
  maxBytes: number;
  ttlMs: number;
  hits: number;
  misses: number;
  evictions: number;
  invalidations: number;
  rejectedFills: number;
  /** Fills not kept because the one entry counts for more than maxBytes (nothing else was evicted for it). */
  oversized: number;
  /** Writes announced before their commit (strict mode). */
  prepares: number;
  /** Announcements that expired before their writer settled them. */
  expiredPrepares: number;
  /** The highest PostgreSQL timeline the catalog origin has reported (0: none yet). */
  timeline: number;
  /** Times every fence and entry was dropped because a failover may have lost writes (noteTimeline). */
  timelineResets: number;
}

const BOOK_PREFIX = 'book:';

/**
 * What one entry costs beyond its body's and its key's bytes: the entry object and its strings
 * (servedBy, database), the body's own ArrayBuffer and Buffer view (see ownBody), the key string,
 * lru-cache's key map slot, and the book's fence (a second LRU entry: every book a front serves is
 * fenced). Measured, not guessed: tools/bench/src/cache-memory.ts fills a real FrontCache with the
 * catalog's /info answers of seeded books (bodies of 119 bytes on average) the way a miss does, and
 * fits heap + ArrayBuffer growth against N = 5,000 … 80,000 after gc (Node 20, x64): about 600 bytes
 * per book (R² 1.0000), about 475 beyond body and key (430 without the fence), rounded up here. Not counted:
 * lru-cache's per-slot arrays, about 49 bytes per maxEntries allocated up front whatever is cached,
 * and what the allocator and V8's pages add (RSS grows about 1.4x the heap figure per book).
 */
export const CACHE_ENTRY_OVERHEAD_BYTES = 512;

/** What an entry counts for against the byte bound: its body, its key and the fixed overhead. */
export function cacheEntrySize(key: string, entry: CacheEntry): number {
  return entry.body.byteLength + key.length + CACHE_ENTRY_OVERHEAD_BYTES;
}

/**
 * The body as the cache keeps it: in memory of its own. A small Buffer (Buffer.from of a copy, under
 * 4 KiB) is a view into an 8 KiB pool shared with whatever else was allocated there, and a cached view
 * would keep the whole pool alive: then the bytes counted would not be the bytes held.
 */
function ownBody(entry: CacheEntry): CacheEntry {
  const { body } = entry;
  if (body.byteOffset === 0 && body.buffer.byteLength === body.byteLength) return entry;
  const own = Buffer.allocUnsafeSlow(body.byteLength);
  body.copy(own);
  return { ...entry, body: own };
}

/** One book as the live page shows a front's cache (describeBooks). */
export interface BookView {
  bookId: number;
  /** The lowest version this front will serve of it (0: none known). */
  fence: number;
  /** A write of it has been announced and not settled: nothing of it is cached meanwhile. */
  writing: boolean;
  cached?: { version: number; servedBy: string; database?: string; ttlLeftMs: number };
}

/**
 * The front's read cache, bounded by entry count, by bytes (cacheEntrySize: body, key and a measured
 * per-entry overhead, through lru-cache's maxSize, so it never holds more) and by TTL, with per-book
 * *fences* and *pending writes*.
 *
 * An invalidation for (book, v) raises the book's fence to v and drops any entry older than v. A fill
 * is accepted only if its version is at least the fence and not older than what is cached, so a read
 * that raced with a write cannot put the pre-write value back after the invalidation (the stale-set
 * race). Fences outlive entries (a separate, larger LRU) because they matter most when nothing is
 * cached. The front also raises a book's fence to every version it serves, so it never answers with
 * a version older than one it already gave (docs/guarantees.md).
 *
 * In `strict` mode a writer announces a write to every front *before* it commits (`prepare`): the
 * book's entry is dropped and nothing is cached for that book until the writer settles the write
 * (its invalidation, after the commit) or the announcement expires. That is what keeps a cached copy
 * from being served once the new version is visible anywhere (PostgreSQL shows a remote_apply commit
 * on the standby before the primary). A fill from a read that began before an announcement expired
 * unsettled, or before the front knew which writes were in flight when it started (`holdFillsUntil`),
 * is refused: that write may have committed after the read.
 *
 * A front that is shutting down retires its cache: writers stop pushing invalidations to a pod the
 * moment its EndpointSlice says it is terminating, while clients with a connection to it may still be
 * answered for the shutdown delay, so from then on it serves only fresh (fenced) reads.
 */
export class FrontCache {
  #entries: LRUCache<string, CacheEntry>;
  readonly #fences: LRUCache<number, number>;
  #maxEntries: number;
  #maxBytes: number;
  #ttlMs: number;
  readonly #stats = {
    hits: 0,
    misses: 0,
    evictions: 0,
    invalidations: 0,
    rejectedFills: 0,
    oversized: 0,
    prepares: 0,
    expiredPrepares: 0,
    timelineResets: 0,
  };
  #timeline = 0;
  /** Test hook only: with fencing off, the stale-set race is allowed to happen. */
  fencing = true;
  /** Retired (the front is shutting down): nothing is served from or stored in the cache. */
  #retired = false;
  /** Book id → announced writes not settled yet (write id → when the announcement expires). */
  readonly #pending = new Map<number, Map<string, number>>();
  /** Book id → the latest expiry of an announcement that was never settled (performance.now()). */
  readonly #unsettled: LRUCache<number, number>;
  /** No fill from a read that began before this (performance.now()): writes in flight at start. */
  #holdUntil = 0;

  constructor(opts: { maxEntries: number; ttlMs: number; maxBytes?: number; maxFences?: number }) {
    this.#maxEntries = opts.maxEntries;
    this.#maxBytes = opts.maxBytes ?? DEFAULT_CACHE_MAX_BYTES;
    this.#ttlMs = opts.ttlMs;
    this.#entries = this.#create(opts.maxEntries, opts.ttlMs, this.#maxBytes);
    this.#fences = new LRUCache({ max: opts.maxFences ?? 100_000 });
    this.#unsettled = new LRUCache({ max: opts.maxFences ?? 100_000 });
  }

  #create(max: number, ttl: number, maxSize: number): LRUCache<string, CacheEntry> {
    return new LRUCache<string, CacheEntry>({
      max,
      ttl,
      // Before each insertion lru-cache evicts the least recently used entries until the new one fits;
      // an entry larger than maxSize on its own is not stored (and evicts nothing): see #set.
      maxSize,
      sizeCalculation: (entry, key) => cacheEntrySize(key, entry),
      // Count capacity evictions only; deletes and overwrites are ours.
      disposeAfter: (_value, _key, reason) => {
        if (reason === 'evict') this.#stats.evictions++;
      },
    });
  }

  static bookKey(id: number): string {
    return `${BOOK_PREFIX}${id}`;
  }

  /**
   * One page of a search: the topic (normalised), the id its cursor continues after (0: the first
   * page; the cursor is a function of the two) and its size, so pages of different sizes or positions
   * never stand for one another. The topic comes last: it may hold any character but controls.
   */
  static searchKey(topic: string, page: { limit: number; after: number }): string {
    return `search:${page.limit}:${page.after}:${topic}`;
  }

  /** The entry, counted as a hit or a miss. */
  get(key: string): CacheEntry | undefined {
    const entry = this.getHit(key);
    if (!entry) this.#stats.misses++;
    return entry;
  }

  /**
   * The entry, counted as a hit; a miss is not counted, for a look whose misses go on to a read that
   * counts them (the /info fast path hands its misses to the BookReader: counted twice, a miss made
   * the hit ratio read low, about 0.39 for a true 0.56).
   */
  getHit(key: string): CacheEntry | undefined {
    const entry = this.#retired ? undefined : this.#entries.get(key);
    if (entry) this.#stats.hits++;
    return entry;
  }

  /** The minimum version any answer about this book must have. */
  fence(bookId: number): number {
    return this.#fences.get(bookId) ?? 0;
  }

  invalidate(bookId: number, version: number): void {
    this.#stats.invalidations++;
    this.raiseFence(bookId, version);
  }

  /**
   * No answer about this book older than `version` from now on (an invalidation, or a version this
   * front served): the fence rises and an older cached copy goes.
   */
  raiseFence(bookId: number, version: number): void {
    if (version <= this.fence(bookId)) return;
    this.#fences.set(bookId, version);
    const key = FrontCache.bookKey(bookId);
    const cached = this.#entries.peek(key);
    if (cached && cached.version < version) this.#entries.delete(key);
  }

  /**
   * A write to this book is about to commit (strict mode): drop its entry and cache nothing for it
   * until `settle(bookId, writeId)` or `ttlMs` from now, whichever comes first.
   */
  prepare(bookId: number, writeId: string, ttlMs: number): void {
    this.#stats.prepares++;
    let writes = this.#pending.get(bookId);
    if (!writes) this.#pending.set(bookId, (writes = new Map()));
    writes.set(writeId, performance.now() + ttlMs);
    this.#entries.delete(FrontCache.bookKey(bookId));
  }

  /** The write announced as `writeId` is over: committed at `version`, or (no version) not done. */
  settle(bookId: number, writeId: string, version?: number): void {
    const writes = this.#pending.get(bookId);
    if (writes?.delete(writeId) && writes.size === 0) this.#pending.delete(bookId);
    if (version !== undefined) this.invalidate(bookId, version);
  }

  /** Whether an announced write to this book is still unsettled (expired announcements are dropped). */
  writing(bookId: number): boolean {
    const writes = this.#pending.get(bookId);
    if (!writes) return false;
    const now = performance.now();
    for (const [writeId, expires] of writes) {
      if (expires > now) continue;
      writes.delete(writeId);
      this.#stats.expiredPrepares++;
      if (expires > (this.#unsettled.get(bookId) ?? 0)) this.#unsettled.set(bookId, expires);
    }
    if (writes.size > 0) return true;
    this.#pending.delete(bookId);
    return false;
  }

  /** Refuse fills from reads that began before `until` (performance.now()): see the class comment. */
  holdFillsUntil(until: number): void {
    this.#holdUntil = until;
  }

  /** Whether fills are held for writes that were in flight when this front started. */
  holdingFills(): boolean {
    return this.#holdUntil > performance.now();
  }

  /**
   * Offers a fill from a read that began at `readStartedAt` (performance.now()); returns false when it
   * is older than the fence or the cached entry, when a write to the book is announced and unsettled,
   * or when the read began before an unsettled announcement expired (or before the start-up hold).
   */
  offerBook(bookId: number, entry: CacheEntry, readStartedAt = performance.now()): boolean {
    const key = FrontCache.bookKey(bookId);
    if (this.#retired) return false;
    if (this.fencing) {
      const cached = this.#entries.peek(key);
      if (
        entry.version < this.fence(bookId) ||
        (cached && cached.version > entry.version) ||
        this.writing(bookId) ||
        readStartedAt <= this.#holdUntil ||
        readStartedAt <= (this.#unsettled.get(bookId) ?? 0)
      ) {
        this.#stats.rejectedFills++;
        return false;
      }
    }
    this.#set(key, entry);
    return true;
  }

  /**
   * Stores an entry, unless it counts for more than the whole byte bound: then it is not kept, and an
   * older copy under its key goes too (the key's newest answer could not be cached: dropping what is
   * there is always safe), while every other entry stays.
   */
  #set(key: string, entry: CacheEntry): void {
    const size = cacheEntrySize(key, entry);
    if (size > this.#maxBytes) {
      this.#stats.oversized++;
      this.#entries.delete(key);
      return;
    }
    this.#entries.set(key, ownBody(entry), { size });
  }

  /** [book id, cached version] of every book entry (the reconciler's question to the catalog). */
  cachedBooks(): Array<[number, number]> {
    const out: Array<[number, number]> = [];
    for (const [key, entry] of this.#entries.entries()) {
      if (key.startsWith(BOOK_PREFIX)) out.push([Number(key.slice(BOOK_PREFIX.length)), entry.version]);
    }
    return out;
  }

  /**
   * The books this front knows about, for the live page: each cached book (its version, who served it,
   * from which database, how long it has left) and each book with a fence or an announced write, the
   * lowest ids first, at most `limit`. Reads nothing into the LRU order or the hit counts.
   */
  describeBooks(limit = 100): BookView[] {
    const views = new Map<number, BookView>();
    const view = (bookId: number): BookView => {
      let v = views.get(bookId);
      if (!v)
        views.set(bookId, (v = { bookId, fence: this.fence(bookId), writing: this.#pending.has(bookId) }));
      return v;
    };
    for (const [key, entry] of this.#entries.entries()) {
      if (!key.startsWith(BOOK_PREFIX)) continue;
      const v = view(Number(key.slice(BOOK_PREFIX.length)));
      v.cached = {
        version: entry.version,
        servedBy: entry.servedBy,
        ...(entry.database ? { database: entry.database } : {}),
        ttlLeftMs: Math.max(0, Math.round(this.#entries.getRemainingTTL(key))),
      };
    }
    for (const [bookId] of this.#fences.entries()) view(bookId);
    for (const bookId of this.#pending.keys()) view(bookId);
    return [...views.values()].sort((a, b) => a.bookId - b.bookId).slice(0, limit);
  }

  offer(key: string, entry: CacheEntry): void {
    if (!this.#retired) this.#set(key, entry);
  }

  /**
   * Stops serving and storing entries for good (a shutting-down front, which invalidations no longer
   * reach); fences are still raised by whatever invalidations do arrive, and still fence reads.
   */
  retire(): void {
    this.#retired = true;
    this.#entries.clear();
  }

  /**
   * Applies a new size, byte bound or TTL live; entries are kept, the most recently used first, up to
   * the new bounds (the least recently used ones go, counted as evictions; an entry larger than a
   * smaller byte bound on its own goes whatever its recency).
   */
  reconfigure(maxEntries: number, ttlMs: number, maxBytes = this.#maxBytes): void {
    if (maxEntries === this.#maxEntries && ttlMs === this.#ttlMs && maxBytes === this.#maxBytes) return;
    const next = this.#create(maxEntries, ttlMs, maxBytes);
    // entries() walks most-recently-used first; insert in reverse so recency order survives.
    for (const [key, value] of [...this.#entries.entries()].reverse()) {
      if (cacheEntrySize(key, value) > maxBytes) continue;
      const remaining = this.#entries.getRemainingTTL(key);
      next.set(key, value, { ttl: Math.min(remaining, ttlMs) });
    }
    this.#entries = next;
    this.#maxEntries = maxEntries;
    this.#maxBytes = maxBytes;
    this.#ttlMs = ttlMs;
  }

  clear(): void {
    this.#entries.clear();
  }

  /**
   * The catalog origin reported its primary's PostgreSQL timeline. A higher one than before means a
   * promotion (failover or switchover). When `lossy` (asynchronous replication: the session and
   * eventual modes), the promoted server may lack the last writes, so a fence or a cached entry may
   * name a version it never had: a fence above the book's current version would refuse its every
   * read forever. Every fence and entry goes then; the versions written from now on are above every
   * earlier one (bazar_next_version), so nothing older than a new write can come back. Without loss
   * (strict: Patroni promotes only the synchronous standby, which applied every acknowledged write)
   * they stay. A first report of timeline 1 is no promotion; a first report above 1 is treated as
   * one, since the fences this front raised before it may come from the old timeline.
   * Returns true when it reset.
   */
  noteTimeline(timeline: number, lossy: boolean): boolean {
    if (timeline <= this.#timeline) return false;
    this.#timeline = timeline;
    if (!lossy || timeline === 1) return false;
    this.#stats.timelineResets++;
    this.#fences.clear();
    this.#unsettled.clear();
    this.#entries.clear();
    return true;
  }

  stats(): CacheStats {
    return {
      size: this.#entries.size,
      maxEntries: this.#maxEntries,
      bytes: this.#entries.calculatedSize,
      maxBytes: this.#maxBytes,
      ttlMs: this.#ttlMs,
      timeline: this.#timeline,
      ...this.#stats,
    };
  }
}
