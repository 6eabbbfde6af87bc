import { LRUCache } from 'lru-cache';

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
  ttlMs: number;
  hits: number;
  misses: number;
  evictions: number;
  invalidations: number;
  rejectedFills: number;
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
 * The front's read cache, bounded by entry count and TTL, with per-book *fences* and *pending writes*.
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
  #ttlMs: number;
  readonly #stats = {
    hits: 0,
    misses: 0,
    evictions: 0,
    invalidations: 0,
    rejectedFills: 0,
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

  constructor(opts: { maxEntries: number; ttlMs: number; maxFences?: number }) {
    this.#maxEntries = opts.maxEntries;
    this.#ttlMs = opts.ttlMs;
    this.#entries = this.#create(opts.maxEntries, opts.ttlMs);
    this.#fences = new LRUCache({ max: opts.maxFences ?? 100_000 });
    this.#unsettled = new LRUCache({ max: opts.maxFences ?? 100_000 });
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

  /**
   * One page of a search: the topic (normalised), the id its cursor continues after (0: the first
   * page; the cursor is a function of the two) and its size, so pages of different sizes or positions
   * never stand for one another. The topic comes last: it may hold any character but controls.
   */
  static searchKey(topic: string, page: { limit: number; after: number }): string {
    return `search:${page.limit}:${page.after}:${topic}`;
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
      ttlMs: this.#ttlMs,
      timeline: this.#timeline,
      ...this.#stats,
    };
  }
}
