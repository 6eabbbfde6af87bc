import type Router from '@koa/router';
import { digitsAfter, offKoa, rawHeader, type AppContext, type FastPath } from '../../shared/src/server.js';
import { boundObserver } from '../../shared/src/metrics.js';
import { errorFromResponse } from '../../shared/src/http-client.js';
import { HttpError } from '../../shared/src/errors.js';
import { normalizeTopic, parseBookId } from '../../shared/src/validate.js';
import { sleep } from '../../shared/src/main-helpers.js';
import { FrontCache, type CacheEntry } from './cache.js';
import { servedBy } from './relay.js';
import { JSON_TYPE, type FrontRoutes } from './routes.js';

/** A request carrying this Cache-Control bypasses the cache (and joins no in-flight read). */
const NO_CACHE = /no-cache|no-store/i;
const INFO_PREFIX = '/info/';
const INFO_ROUTE = '/info/:id';
/**
 * At most this many upstream reads for one request whose answers keep coming back older than the
 * book's fence (each time a write landed during the flight): a hot book under a stream of writes.
 */
const MAX_FENCED_FETCHES = 32;
/** How long a fenced read keeps re-fetching when no FrontDeps.readTimeoutMs is given. */
const DEFAULT_READ_TIMEOUT_MS = 2000;

/** A book as this front serves it: from the cache (hit) or from a catalog pod (miss). */
interface BookRead {
  entry: CacheEntry;
  hit: boolean;
}

/**
 * GET /info/:id behind the cache: a hit, or one upstream read shared with concurrent misses, fenced so
 * that nothing an acknowledged write has superseded is ever served or cached (the stale-set race).
 * One instance per app; both the Koa route and the fast path use it.
 */
export class BookReader {
  /** Coalesces concurrent misses for the same book into one upstream read. */
  readonly #inflight = new Map<number, Promise<CacheEntry>>();

  constructor(private readonly routes: Pick<FrontRoutes, 'deps' | 'hooks'>) {}

  async read(id: number, bypass: boolean): Promise<BookRead> {
    const { cache, policy } = this.routes.deps;
    if (!bypass) {
      const hit = cache.get(FrontCache.bookKey(id));
      if (hit) return { entry: hit, hit: true };
    }
    const fencing = policy.current.consistencyMode !== 'eventual' && cache.fencing;
    // Re-fetching is bounded in time, not only in count: under a stream of writes to one book each
    // flight may be overtaken, and a slow path (a standby away, reads sent to the origin) makes that
    // likelier. Serving the overtaken answer could return a version older than a write acknowledged
    // meanwhile (DESIGN.md §4.2), so the read refuses instead once its time is spent.
    const deadline = Date.now() + (this.routes.deps.readTimeoutMs ?? DEFAULT_READ_TIMEOUT_MS);
    for (let attempt = 0; attempt < MAX_FENCED_FETCHES; attempt++) {
      const entry = await this.#readThrough(id, cache.fence(id), attempt === 0 && !bypass, attempt === 0);
      await this.#testFillDelay(id);
      // An invalidation may have raised the fence while this read was in flight: never serve or cache
      // what an acknowledged write has superseded.
      if (fencing && entry.version < cache.fence(id)) {
        if (Date.now() >= deadline) break;
        continue;
      }
      cache.offerBook(id, entry);
      return { entry, hit: false };
    }
    throw new HttpError(503, 'stale_read_refused', 'no catalog endpoint could serve the current version');
  }

  /**
   * One upstream read of a book: `join` shares a read already in flight, `share` lets later misses
   * join this one. A cache-bypassing read goes upstream itself but may still be joined.
   */
  #readThrough(id: number, fence: number, join: boolean, share: boolean): Promise<CacheEntry> {
    const pending = join ? this.#inflight.get(id) : undefined;
    if (pending) return pending;
    const read = this.#fetch(id, fence);
    if (share) {
      this.#inflight.set(id, read);
      void read.finally(() => this.#inflight.delete(id)).catch(() => undefined);
    }
    return read;
  }

  async #fetch(id: number, minVersion: number): Promise<CacheEntry> {
    const { catalog, policy } = this.routes.deps;
    const fenced = policy.current.consistencyMode !== 'eventual' && minVersion > 0;
    const res = await catalog.request({
      method: 'GET',
      path: `/books/${id}`,
      ...(fenced ? { headers: { 'x-min-version': String(minVersion) } } : {}),
      retry: 'idempotent',
    });
    if (res.status !== 200) throw errorFromResponse(res);
    // The catalog's bytes are served and cached as they are (a copy: a slice would pin the socket's
    // read buffer for the entry's lifetime); only the version is read from them.
    const book = res.body as { version: number };
    return { body: Buffer.from(res.raw), version: book.version, servedBy: servedBy(res) };
  }

  async #testFillDelay(id: number): Promise<void> {
    const { deps, hooks } = this.routes;
    const delay = deps.testHooks ? hooks.fillDelays.get(id) : undefined;
    if (delay === undefined) return;
    if (--delay.times <= 0) hooks.fillDelays.delete(id);
    await sleep(delay.ms);
  }
}

/** The reads and the cache in front of them: GET /info/:id and GET /search/:topic (Koa routes). */
export function registerReads(router: Router, routes: FrontRoutes): void {
  const { deps } = routes;
  const { cache } = deps;

  const serve = (ctx: AppContext, { entry, hit }: BookRead) => {
    ctx.set('X-Cache', hit ? 'hit' : 'miss');
    ctx.set('X-Front', deps.podName);
    if (!hit) ctx.set('X-Served-By', entry.servedBy);
    ctx.set('Content-Type', JSON_TYPE);
    ctx.body = entry.body;
  };

  const bypassCache = (ctx: AppContext) => NO_CACHE.test(ctx.get('Cache-Control'));

  // What the fast path leaves to Koa: HEAD, and ids it cannot take (parseBookId answers those).
  router.get(INFO_ROUTE, async (ctx) => {
    serve(ctx, await routes.books.read(parseBookId(ctx.params.id), bypassCache(ctx)));
  });

  router.get('/search/:topic', async (ctx) => {
    const topic = normalizeTopic(ctx.params.topic);
    const key = FrontCache.searchKey(topic);
    if (!bypassCache(ctx)) {
      const hit = cache.get(key);
      if (hit) return serve(ctx, { entry: hit, hit: true });
    }
    const res = await deps.catalog.request({
      method: 'GET',
      path: `/search/${encodeURIComponent(topic)}`,
      retry: 'idempotent',
    });
    if (res.status !== 200) throw errorFromResponse(res);
    const entry = { body: Buffer.from(res.raw), version: 0, servedBy: servedBy(res) };
    cache.offer(key, entry);
    serve(ctx, { entry, hit: false });
  });
}

/**
 * GET /info/:id, the hottest request, answered before Koa with the same status, headers, body and
 * metrics as the Koa route: a cache hit at once, a miss (or a cache bypass) off Koa through the
 * BookReader. Anything else (HEAD, a query string, an id that is not digits) goes to Koa.
 */
export function infoFastPath(routes: FrontRoutes): FastPath {
  const { deps } = routes;
  const { cache } = deps;
  const observeHit = boundObserver(deps.metrics.httpDuration, {
    method: 'GET',
    route: INFO_ROUTE,
    status: '200',
  });
  const answer = offKoa(deps);
  return (req, res) => {
    if (req.method !== 'GET') return false;
    const idText = digitsAfter(req.url, INFO_PREFIX);
    if (idText === undefined) return false;
    const cacheControl = rawHeader(req, 'cache-control');
    const bypass = cacheControl !== undefined && NO_CACHE.test(cacheControl);
    const start = process.hrtime.bigint();
    const entry = bypass ? undefined : cache.get(FrontCache.bookKey(Number(idText)));
    if (entry) {
      res.writeHead(200, [
        'X-Served-By',
        deps.podName,
        'X-Cache',
        'hit',
        'X-Front',
        deps.podName,
        'Content-Type',
        JSON_TYPE,
        'Content-Length',
        String(entry.body.length),
      ]);
      res.end(entry.body);
      observeHit(Number(process.hrtime.bigint() - start) / 1e9);
      return true;
    }
    req.resume();
    answer(req, res, INFO_ROUTE, async () => {
      const read = await routes.books.read(parseBookId(idText), bypass);
      return {
        status: 200,
        headers: [
          'X-Served-By',
          read.hit ? deps.podName : read.entry.servedBy,
          'X-Cache',
          read.hit ? 'hit' : 'miss',
          'X-Front',
          deps.podName,
          'Content-Type',
          JSON_TYPE,
        ],
        body: read.entry.body,
      };
    });
    return true;
  };
}
