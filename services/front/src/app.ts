import { randomUUID } from 'node:crypto';
import Router from '@koa/router';
import type Koa from 'koa';
import type { Logger } from '../../shared/src/logger.js';
import type { Metrics } from '../../shared/src/metrics.js';
import type { PolicyStore } from '../../shared/src/policy.js';
import {
  boundObserver,
  createBaseApp,
  type Lifecycle,
  type AppContext,
  type FastPath,
} from '../../shared/src/server.js';
import { errorFromResponse, type Upstream, type UpstreamResponse } from '../../shared/src/http-client.js';
import { HttpError } from '../../shared/src/errors.js';
import { requireBearer } from '../../shared/src/auth.js';
import { readJsonBody, requireObject } from '../../shared/src/body.js';
import {
  normalizeTopic,
  parseBookId,
  parseIdempotencyKey,
  parseOrderId,
  parsePrice,
  parseQuantity,
} from '../../shared/src/validate.js';
import { sleep } from '../../shared/src/main-helpers.js';
import { FrontCache, type CacheEntry } from './cache.js';

export interface FrontDeps {
  podName: string;
  logger: Logger;
  metrics: Metrics;
  lifecycle: Lifecycle;
  policy: PolicyStore;
  cache: FrontCache;
  catalog: Upstream;
  order: Upstream;
  adminToken: () => string;
  internalToken: () => string;
  /** Enables /internal/test-hooks (deterministic race tests). Never on in production. */
  testHooks: boolean;
  readiness: () => Promise<Record<string, string>>;
  details?: () => Record<string, unknown>;
}

const JSON_TYPE = 'application/json; charset=utf-8';
/** A request carrying this Cache-Control bypasses the cache (and joins no in-flight read). */
const NO_CACHE = /no-cache|no-store/i;
const INFO_PREFIX = '/info/';
/** How many times a read is re-issued when it comes back older than the book's fence. */
const MAX_FENCED_REFETCHES = 3;

interface TestHooks {
  /** Delay (ms) applied once to the next fill of a book, after its upstream answer, before caching. */
  fillDelays: Map<number, number>;
}

export function createApp(deps: FrontDeps): Koa {
  const router = new Router();
  const { cache, policy } = deps;
  const admin = requireBearer('admin', deps.adminToken);
  const internal = requireBearer('internal', deps.internalToken);
  const hooks: TestHooks = { fillDelays: new Map() };
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
    const book = res.body as { version: number };
    return { body: Buffer.from(JSON.stringify(book)), version: book.version, servedBy: servedBy(res) };
  };

  /** Requests the fast path already looked up and missed: the route must not look (and count) again. */
  const missedOnFastPath = new WeakSet<object>();

  router.get('/info/:id', async (ctx) => {
    const id = parseBookId(ctx.params.id);
    const bypass = bypassCache(ctx);
    if (!bypass && !missedOnFastPath.has(ctx.req)) {
      const hit = cache.get(FrontCache.bookKey(id));
      if (hit) return serve(ctx, hit, true);
    }
    const fencing = policy.current.consistencyMode !== 'eventual' && cache.fencing;
    for (let attempt = 0; ; attempt++) {
      const fence = cache.fence(id);
      // A cache-bypassing read goes upstream itself rather than sharing a read already in flight.
      let pending = attempt === 0 && !bypass ? inflight.get(id) : undefined;
      if (!pending) {
        pending = fetchBook(id, fence);
        if (attempt === 0) {
          inflight.set(id, pending);
          void pending.finally(() => inflight.delete(id)).catch(() => undefined);
        }
      }
      const entry = await pending;
      const delay = deps.testHooks ? hooks.fillDelays.get(id) : undefined;
      if (delay !== undefined) {
        hooks.fillDelays.delete(id);
        await sleep(delay);
      }
      // An invalidation may have raised the fence while this read was in flight: never serve or cache
      // what an acknowledged write has superseded.
      if (fencing && entry.version < cache.fence(id)) {
        if (attempt + 1 >= MAX_FENCED_REFETCHES) {
          throw new HttpError(
            503,
            'stale_read_refused',
            'no catalog endpoint could serve the current version',
          );
        }
        continue;
      }
      cache.offerBook(id, entry);
      return serve(ctx, entry, false);
    }
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
    const entry = { body: Buffer.from(JSON.stringify(res.body)), version: 0, servedBy: servedBy(res) };
    cache.offer(key, entry);
    serve(ctx, entry, false);
  });

  const purchase = async (ctx: AppContext) => {
    const id = parseBookId(ctx.params.id);
    // Every purchase carries a key, the client's or ours, so retrying it on another order pod after a
    // timeout or a dropped connection can never buy twice.
    const key = parseIdempotencyKey(ctx.get('Idempotency-Key') || undefined) ?? `front:${randomUUID()}`;
    const body = await readJsonBody(ctx.req);
    if (body !== undefined) requireObject(body, []);
    const res = await deps.order.request({
      method: 'POST',
      path: `/purchase/${id}`,
      headers: { 'idempotency-key': key },
      retry: 'idempotent',
    });
    relayWrite(ctx, res, id);
  };
  router.post('/purchase/:id', purchase);
  router.put('/purchase/:id', purchase);

  router.get('/orders/:orderId', async (ctx) => {
    const orderId = parseOrderId(ctx.params.orderId);
    const res = await deps.order.request({ method: 'GET', path: `/orders/${orderId}`, retry: 'idempotent' });
    relay(ctx, res);
  });

  router.patch('/books/:id', admin, async (ctx) => {
    const id = parseBookId(ctx.params.id);
    const body = requireObject(await readJsonBody(ctx.req), ['price']);
    if (!('price' in body)) throw new HttpError(400, 'invalid_body', 'field "price" is required');
    const price = parsePrice(body.price);
    const res = await deps.catalog.request({
      method: 'PATCH',
      path: `/books/${id}`,
      headers: { authorization: ctx.get('Authorization') },
      json: { price },
      // Setting a price is idempotent.
      retry: 'idempotent',
    });
    relayWrite(ctx, res, id);
  });

  router.post('/books/:id/restock', admin, async (ctx) => {
    const id = parseBookId(ctx.params.id);
    const body = requireObject(await readJsonBody(ctx.req), ['quantity']);
    if (!('quantity' in body)) throw new HttpError(400, 'invalid_body', 'field "quantity" is required');
    const quantity = parseQuantity(body.quantity);
    const res = await deps.catalog.request({
      method: 'POST',
      path: `/books/${id}/restock`,
      headers: { authorization: ctx.get('Authorization') },
      json: { quantity },
      retry: 'connect-only',
    });
    relayWrite(ctx, res, id);
  });

  router.post('/internal/invalidate', internal, async (ctx) => {
    const items = parseInvalidations(await readJsonBody(ctx.req));
    for (const { bookId, version } of items) cache.invalidate(bookId, version);
    ctx.body = { invalidated: items.length };
  });

  router.get('/internal/cache', internal, (ctx) => {
    ctx.body = cache.stats();
  });

  if (deps.testHooks) {
    router.post('/internal/test-hooks', internal, async (ctx) => {
      const body = requireObject(await readJsonBody(ctx.req), ['fillDelay', 'fencing']);
      if (body.fillDelay !== undefined) {
        const { bookId, ms } = body.fillDelay as { bookId: number; ms: number };
        hooks.fillDelays.set(bookId, ms);
      }
      if (typeof body.fencing === 'boolean') cache.fencing = body.fencing;
      ctx.body = { ok: true };
    });
  }

  /** Relays a write's answer and makes this front's own cache honour it at once. */
  const relayWrite = (ctx: AppContext, res: UpstreamResponse, bookId: number) => {
    if (res.status === 200) {
      const version = (res.body as { version?: unknown }).version;
      if (typeof version === 'number') cache.invalidate(bookId, version);
      const invalidated = res.headers['x-invalidated'];
      if (typeof invalidated === 'string') ctx.set('X-Invalidated', invalidated);
      const replayed = res.headers['idempotent-replayed'];
      if (typeof replayed === 'string') ctx.set('Idempotent-Replayed', replayed);
    }
    relay(ctx, res);
  };

  // GET /info/:id cache hits, the hottest request, answered before Koa with the same status, headers,
  // body and metrics as the route above; anything else (a miss, a bypass, a malformed id) goes to Koa.
  const observeHit = boundObserver(deps.metrics.httpDuration, {
    method: 'GET',
    route: '/info/:id',
    status: '200',
  });
  const fastPath: FastPath = (req, res) => {
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

  return createBaseApp({ ...deps, router, fastPath });
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

function servedBy(res: UpstreamResponse): string {
  const header = res.headers['x-served-by'];
  return typeof header === 'string' ? header : res.endpoint.name;
}

function relay(ctx: AppContext, res: UpstreamResponse): void {
  ctx.set('X-Served-By', servedBy(res));
  if (res.status >= 400) throw errorFromResponse(res);
  ctx.status = res.status;
  ctx.body = res.body;
}

const MAX_INVALIDATIONS = 1000;

function parseInvalidations(body: unknown): Array<{ bookId: number; version: number }> {
  const object = requireObject(body, ['items', 'origin']);
  const items = object.items;
  if (!Array.isArray(items) || items.length === 0 || items.length > MAX_INVALIDATIONS) {
    throw new HttpError(
      400,
      'invalid_body',
      `items must be an array of 1-${MAX_INVALIDATIONS} invalidations`,
    );
  }
  return items.map((item: unknown) => {
    const { bookId, version } = (item ?? {}) as { bookId?: unknown; version?: unknown };
    if (
      !Number.isSafeInteger(bookId) ||
      (bookId as number) < 1 ||
      !Number.isSafeInteger(version) ||
      (version as number) < 1
    ) {
      throw new HttpError(
        400,
        'invalid_body',
        'each invalidation needs a positive integer bookId and version',
      );
    }
    return { bookId: bookId as number, version: version as number };
  });
}
