import type Router from '@koa/router';
import {
  digitsAfter,
  logAccess,
  rawHeader,
  type AppContext,
  type FastPath,
} from '../../shared/src/server.js';
import { requestIdFrom } from '../../shared/src/request-context.js';
import { boundObserver } from '../../shared/src/metrics.js';
import { errorFromResponse } from '../../shared/src/http-client.js';
import { HttpError } from '../../shared/src/errors.js';
import { normalizeTopic, parseBookId, parseMinVersion } from '../../shared/src/validate.js';
import { sleep } from '../../shared/src/main-helpers.js';
import { DEFAULT_SEARCH_PAGING, parseSearchQuery, searchQueryString } from '../../shared/src/search-page.js';
import { FrontCache, type CacheEntry } from './cache.js';
import { databaseOf, servedBy } from './relay.js';
import { noteAnswer, tracingOn } from '../../shared/src/tracing.js';
import { frontOffKoa, JSON_TYPE, type FrontRoutes } from './routes.js';

/** A request carrying this Cache-Control bypasses the cache (and joins no in-flight read). */
const NO_CACHE = /no-cache|no-store/i;
const INFO_PREFIX = '/info/';
const INFO_ROUTE = '/info/:id';
export const SEARCH_ROUTE = '/search/:topic';
/**
 * At most this many upstream reads for one request whose answers keep coming back older than the
 * read's bar (a catalog pod that could not yet show the version the read must return).
 */
const MAX_FENCED_FETCHES = 32;
/** How long a fenced read keeps re-fetching when no FrontDeps.readTimeoutMs is given. */
const DEFAULT_READ_TIMEOUT_MS = 2000;
/**
 * 503 answers a read asks again after, within its budget, and the pause before it does. write_in_flight:
 * a write of the book waits for its standby (the origin itself already waited REPLICA_WAIT_MS).
 * primary_unavailable, standby_unavailable: every catalog pod asked had no database to read, the
 * moment of a failover or a switchover when the replicas' Service is empty and the old primary gone
 * (a replica whose standby is down asks the origin). The catalog pods probe a lost server every 200 ms.
 */
const TRANSIENT_READ_ERRORS: ReadonlyMap<string, number> = new Map([
  ['write_in_flight', 20],
  ['primary_unavailable', 100],
  ['standby_unavailable', 100],
]);

/** One upstream answer: the entry, and whether it is the primary's settled truth (X-Bazar-Settled). */
interface Fetched {
  entry: CacheEntry;
  settled: boolean;
  /** The primary's PostgreSQL timeline, when the catalog origin gave it (X-Bazar-Timeline). */
  timeline?: number;
}

/** A book as this front serves it: from the cache (hit) or from a catalog pod (miss). */
interface BookRead {
  entry: CacheEntry;
  hit: boolean;
}

/**
 * GET /info/:id behind the cache: a hit, or an upstream read, fenced so that nothing an acknowledged
 * write has superseded is ever served or cached (the stale-set race), and so that this front never
 * serves a version older than one it served before (docs/guarantees.md). One instance per app; both
 * the Koa route and the fast path use it.
 */
export class BookReader {
  /** Coalesces concurrent misses for the same book into one upstream read (not in strict mode). */
  readonly #inflight = new Map<number, Promise<Fetched>>();

  constructor(private readonly routes: Pick<FrontRoutes, 'deps' | 'hooks'>) {}

  /**
   * `minVersion`: the client's own bar (its session's X-Min-Version): the answer shows at least it.
   */
  async read(id: number, bypass: boolean, minVersion = 0): Promise<BookRead> {
    const { cache, policy } = this.routes.deps;
    if (!bypass) {
      const hit = cache.get(FrontCache.bookKey(id));
      if (hit && hit.version >= minVersion) return { entry: hit, hit: true };
    }
    const mode = policy.current.consistencyMode;
    const fencing = mode !== 'eventual' && cache.fencing;
    // The bar is fixed when the read begins: any answer at least this new is at least as new as every
    // write acknowledged (and every version this front served) before the read began. Judging a
    // re-fetch against the fence at its arrival instead would let a stream of writes starve the read.
    let fence = fencing ? cache.fence(id) : 0;
    let bar = Math.max(fence, minVersion);
    const startedAt = performance.now();
    // A strict read must not take an answer fetched before it began: joining a flight already under
    // way could return what the database showed before another front's read completed with a newer
    // version. Other modes coalesce concurrent misses.
    const mayJoin = !bypass && mode !== 'strict';
    const deadline = Date.now() + (this.routes.deps.readTimeoutMs ?? DEFAULT_READ_TIMEOUT_MS);
    let transient: HttpError | undefined;
    for (let attempt = 0; attempt < MAX_FENCED_FETCHES; attempt++) {
      let fetched: Fetched;
      try {
        fetched = await this.#readThrough(
          id,
          bar,
          attempt === 0 && mayJoin,
          attempt === 0 && mode !== 'strict',
        );
      } catch (err) {
        // A write of this book waits for its standby's confirmation and every catalog pod asked had
        // to go through the origin (a standby going away): the write ends within
        // SYNC_COMMIT_TIMEOUT_MS (confirmed, or degraded to a local commit). Or no database could be
        // read for a moment (a failover). Ask again within the read's budget rather than fail a read
        // of a store that is only degrading; past the budget the 503 is the answer.
        const pause = err instanceof HttpError ? TRANSIENT_READ_ERRORS.get(err.code) : undefined;
        if (pause !== undefined && Date.now() + pause < deadline) {
          transient = err as HttpError;
          await sleep(pause);
          continue;
        }
        throw err;
      }
      transient = undefined;
      const { entry, settled, timeline } = fetched;
      if (timeline !== undefined && cache.noteTimeline(timeline, mode !== 'strict')) {
        this.routes.deps.logger.warn(
          { timeline, mode },
          'the primary changed timeline (a failover) in a mode that may lose writes: fences and cache dropped',
        );
        fence = fencing ? cache.fence(id) : 0;
        bar = Math.max(fence, minVersion);
      }
      await this.#testFillDelay(id);
      if (entry.version < bar) {
        // The primary's own answer, no write of the book in flight: the client asked for a version
        // that does not exist (yet); nothing to wait for.
        if (settled && entry.version >= fence) {
          throw new HttpError(
            412,
            'unknown_version',
            `X-Min-Version ${minVersion} is newer than book ${id}'s current version ${entry.version}`,
          );
        }
        if (Date.now() >= deadline) break;
        continue;
      }
      if (fencing) cache.raiseFence(id, entry.version);
      cache.offerBook(id, entry, startedAt);
      return { entry, hit: false };
    }
    if (transient) throw transient;
    throw new HttpError(503, 'stale_read_refused', 'no catalog endpoint could serve the current version');
  }

  /**
   * One upstream read of a book: `join` shares a read already in flight, `share` lets later misses
   * join this one. A cache-bypassing read goes upstream itself but may still be joined.
   */
  #readThrough(id: number, fence: number, join: boolean, share: boolean): Promise<Fetched> {
    const pending = join ? this.#inflight.get(id) : undefined;
    if (pending) return pending;
    const read = this.#fetch(id, fence);
    if (share) {
      this.#inflight.set(id, read);
      void read.finally(() => this.#inflight.delete(id)).catch(() => undefined);
    }
    return read;
  }

  async #fetch(id: number, minVersion: number): Promise<Fetched> {
    const { catalog } = this.routes.deps;
    const res = await catalog.request({
      method: 'GET',
      path: `/books/${id}`,
      ...(minVersion > 0 ? { headers: { 'x-min-version': String(minVersion) } } : {}),
      retry: 'idempotent',
    });
    if (res.status !== 200) throw errorFromResponse(res);
    // The catalog's bytes are served and cached as they are (a copy: a slice would pin the socket's
    // read buffer for the entry's lifetime); only the version is read from them.
    const book = res.body as { version: number };
    const timeline = Number(res.headers['x-bazar-timeline']);
    return {
      entry: {
        body: Buffer.from(res.raw),
        version: book.version,
        servedBy: servedBy(res),
        ...databaseOf(res),
      },
      settled: res.headers['x-bazar-settled'] === '1',
      ...(Number.isSafeInteger(timeline) && timeline > 0 ? { timeline } : {}),
    };
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
    if (!hit) ctx.set('X-Served-By', entry.servedBy);
    if (!hit && entry.database) ctx.set('X-Database', entry.database);
    ctx.set('Content-Type', JSON_TYPE);
    ctx.body = entry.body;
  };

  const bypassCache = (ctx: AppContext) => NO_CACHE.test(ctx.get('Cache-Control'));

  // What the fast path leaves to Koa: HEAD, and ids it cannot take (parseBookId answers those).
  router.get(INFO_ROUTE, async (ctx) => {
    const id = parseBookId(ctx.params.id);
    const minVersion = parseMinVersion(ctx.get('X-Min-Version') || undefined);
    serve(ctx, await routes.books.read(id, bypassCache(ctx), minVersion));
  });

  // A page of a topic (search-page.ts), validated here before anything is asked, cached by topic, position
  // and size. Cached pages are never invalidated, and need not be: a page holds ids and titles, which no
  // write of the API changes (price, stock and version are not on it); only books added outside the API
  // (a seed, SQL) can make one incomplete, for at most the cache TTL (docs/guarantees.md, Search).
  router.get(SEARCH_ROUTE, async (ctx) => {
    const topic = normalizeTopic(ctx.params.topic);
    const page = parseSearchQuery(ctx.querystring, topic, deps.search ?? DEFAULT_SEARCH_PAGING);
    const key = FrontCache.searchKey(topic, page);
    if (!bypassCache(ctx)) {
      const hit = cache.get(key);
      if (hit) return serve(ctx, { entry: hit, hit: true });
    }
    const res = await deps.catalog.request({
      method: 'GET',
      path: `/search/${encodeURIComponent(topic)}?${searchQueryString(topic, page)}`,
      retry: 'idempotent',
    });
    if (res.status !== 200) throw errorFromResponse(res);
    const entry = {
      body: Buffer.from(res.raw),
      version: 0,
      servedBy: servedBy(res),
      ...databaseOf(res),
    };
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
  // Hits are answered here, outside offKoa: at debug they are logged here too.
  const followRequests = deps.logger.isLevelEnabled('debug');
  const observeHit = boundObserver(deps.metrics.httpDuration, {
    method: 'GET',
    route: INFO_ROUTE,
    status: '200',
  });
  const answer = frontOffKoa(deps);
  return (req, res) => {
    if (req.method !== 'GET') return false;
    const idText = digitsAfter(req.url, INFO_PREFIX);
    if (idText === undefined) return false;
    const cacheControl = rawHeader(req, 'cache-control');
    const minVersion = rawHeader(req, 'x-min-version');
    const bypass = cacheControl !== undefined && NO_CACHE.test(cacheControl);
    const start = process.hrtime.bigint();
    const entry =
      bypass || minVersion !== undefined ? undefined : cache.getHit(FrontCache.bookKey(Number(idText)));
    if (entry) {
      if (tracingOn()) noteAnswer(res, INFO_ROUTE, undefined, 'hit');
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
      if (followRequests)
        logAccess(deps.logger, req, 200, start, requestIdFrom(req.headers['x-request-id']), 'hit');
      return true;
    }
    req.resume();
    answer(req, res, INFO_ROUTE, async () => {
      const id = parseBookId(idText);
      const read = await routes.books.read(id, bypass, parseMinVersion(minVersion));
      return {
        status: 200,
        headers: [
          'X-Served-By',
          read.hit ? deps.podName : read.entry.servedBy,
          'X-Cache',
          read.hit ? 'hit' : 'miss',
          ...(!read.hit && read.entry.database ? ['X-Database', read.entry.database] : []),
          'Content-Type',
          JSON_TYPE,
        ],
        body: read.entry.body,
      };
    });
    return true;
  };
}
