import type Router from '@koa/router';
import type { AppContext, FastPath } from '../../shared/src/server.js';
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
/** How many times a read is re-issued when it comes back older than the book's fence. */
const MAX_FENCED_REFETCHES = 3;

/** The reads and the cache in front of them: GET /info/:id and GET /search/:topic. */
export function registerReads(router: Router, routes: FrontRoutes): void {
  const { deps, hooks, missedOnFastPath } = routes;
  const { cache, policy } = deps;
  /** Coalesces concurrent misses for the same book into one upstream read. */
  const inflight = new Map<number, Promise<CacheEntry>>();

  const serve = (ctx: AppContext, entry: CacheEntry, hit: boolean) => {
    ctx.set('X-Cache', hit ? 'hit' : 'miss');
    ctx.set('X-Front', deps.podName);
    if (!hit) ctx.set('X-Served-By', entry.servedBy);
    ctx.set('Content-Type', JSON_TYPE);
    ctx.body = entry.body;
  };

  const bypassCache = (ctx: AppContext) => NO_CACHE.test(ctx.get('Cache-Control'));

  const fetchBook = async (id: number, minVersion: number): Promise<CacheEntry> => {
    const fenced = policy.current.consistencyMode !== 'eventual' && minVersion > 0;
    const res = await deps.catalog.request({
      method: 'GET',
      path: `/books/${id}`,
      headers: fenced ? { 'x-min-version': String(minVersion) } : {},
      retry: 'idempotent',
    });
    if (res.status !== 200) throw errorFromResponse(res);
    // The catalog's bytes are served and cached as they are (a copy: a slice would pin the socket's
    // read buffer for the entry's lifetime); only the version is read from them.
    const book = res.body as { version: number };
    return { body: Buffer.from(res.raw), version: book.version, servedBy: servedBy(res) };
  };

  /**
   * One upstream read of a book: `join` shares a read already in flight, `share` lets later misses
   * join this one. A cache-bypassing read goes upstream itself but may still be joined.
   */
  const readThrough = (id: number, fence: number, join: boolean, share: boolean): Promise<CacheEntry> => {
    const pending = join ? inflight.get(id) : undefined;
    if (pending) return pending;
    const read = fetchBook(id, fence);
    if (share) {
      inflight.set(id, read);
      void read.finally(() => inflight.delete(id)).catch(() => undefined);
    }
    return read;
  };

  const testFillDelay = async (id: number) => {
    const delay = deps.testHooks ? hooks.fillDelays.get(id) : undefined;
    if (delay === undefined) return;
    hooks.fillDelays.delete(id);
    await sleep(delay);
  };

  router.get('/info/:id', async (ctx) => {
    const id = parseBookId(ctx.params.id);
    const bypass = bypassCache(ctx);
    if (!bypass && !missedOnFastPath.has(ctx.req)) {
      const hit = cache.get(FrontCache.bookKey(id));
      if (hit) return serve(ctx, hit, true);
    }
    const fencing = policy.current.consistencyMode !== 'eventual' && cache.fencing;
    for (let attempt = 0; attempt < MAX_FENCED_REFETCHES; attempt++) {
      const entry = await readThrough(id, cache.fence(id), attempt === 0 && !bypass, attempt === 0);
      await testFillDelay(id);
      // An invalidation may have raised the fence while this read was in flight: never serve or cache
      // what an acknowledged write has superseded.
      if (fencing && entry.version < cache.fence(id)) continue;
      cache.offerBook(id, entry);
      return serve(ctx, entry, false);
    }
    throw new HttpError(503, 'stale_read_refused', 'no catalog endpoint could serve the current version');
  });

  router.get('/search/:topic', async (ctx) => {
    const topic = normalizeTopic(ctx.params.topic);
    const key = FrontCache.searchKey(topic);
    if (!bypassCache(ctx)) {
      const hit = cache.get(key);
      if (hit) return serve(ctx, hit, true);
    }
    const res = await deps.catalog.request({
      method: 'GET',
      path: `/search/${encodeURIComponent(topic)}`,
      retry: 'idempotent',
    });
    if (res.status !== 200) throw errorFromResponse(res);
    const entry = { body: Buffer.from(res.raw), version: 0, servedBy: servedBy(res) };
    cache.offer(key, entry);
    serve(ctx, entry, false);
  });
}

/**
 * GET /info/:id cache hits, the hottest request, answered before Koa with the same status, headers,
 * body and metrics as the route; anything else (a miss, a bypass, a malformed id) goes to Koa.
 */
export function infoHitFastPath(routes: FrontRoutes): FastPath {
  const { deps, missedOnFastPath } = routes;
  const { cache } = deps;
  const observeHit = boundObserver(deps.metrics.httpDuration, {
    method: 'GET',
    route: '/info/:id',
    status: '200',
  });
  return (req, res) => {
    const url = req.url;
    if (req.method !== 'GET' || url === undefined || !url.startsWith(INFO_PREFIX)) return false;
    if (!isDigits(url, INFO_PREFIX.length)) return false;
    const cacheControl = req.headers['cache-control'];
    if (cacheControl !== undefined && NO_CACHE.test(cacheControl)) return false;
    const start = process.hrtime.bigint();
    const entry = cache.get(FrontCache.bookKey(Number(url.slice(INFO_PREFIX.length))));
    if (!entry) {
      missedOnFastPath.add(req);
      return false;
    }
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
  };
}

/** True when `s` from `from` on is 1-40 ASCII digits (what parseBookId accepts, zero aside). */
function isDigits(s: string, from: number): boolean {
  const n = s.length - from;
  if (n < 1 || n > 40) return false;
  for (let i = from; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 48 || c > 57) return false;
  }
  return true;
}
