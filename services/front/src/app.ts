import Router from '@koa/router';
import type Koa from 'koa';
import type { Logger } from '../../shared/src/logger.js';
import type { Metrics } from '../../shared/src/metrics.js';
import type { PolicyStore } from '../../shared/src/policy.js';
import { createBaseApp, fastPaths, type Lifecycle } from '../../shared/src/server.js';
import type { Upstream } from '../../shared/src/http-client.js';
import type { FrontCache } from './cache.js';
import { BookReader, infoFastPath, registerReads, SEARCH_ROUTE } from './reads.js';
import { purchaseFastPath, registerWrites } from './writes.js';
import { invalidateFastPath, registerInternal } from './internal.js';
import { registerOpenApi } from './openapi.js';
import type { FillDelay, FrontRoutes } from './routes.js';
import { strictQueryFor } from '../../shared/src/validate.js';
import { SEARCH_QUERY_PARAMS, type SearchPaging } from '../../shared/src/search-page.js';
import { registerLive, type LiveDeps } from './live/routes.js';

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
  /** The timeout of a price change or restock sent to the catalog (UPSTREAM_WRITE_TIMEOUT_MS). */
  writeTimeoutMs?: number;
  /** How long a read re-fetches a book whose answers keep falling behind its fence (UPSTREAM_TIMEOUT_MS). */
  readTimeoutMs?: number;
  /** Search page sizes (SEARCH_PAGE_SIZE, SEARCH_MAX_PAGE_SIZE); absent: the defaults. */
  search?: SearchPaging;
  /** Enables /internal/test-hooks (deterministic race tests). Never on in production. */
  testHooks: boolean;
  readiness: () => Promise<Record<string, string>>;
  details?: () => Record<string, unknown>;
  /** The live page (GET /live) and what it watches; absent: no live page. */
  live?: LiveDeps;
}

/**
 * What one listener of the front serves: everything (one port, the default), or, when the front has an
 * INTERNAL_PORT, the public API on one (every /internal/* path is then a 404 there) and /internal/* on
 * the other, which a NetworkPolicy can open to the store's own pods only.
 */
export type FrontSurface = 'all' | 'public' | 'internal';

/** The front's Koa app, not listening: reads and the cache, writes, internal routes, the hit fast path. */
export function createApp(deps: FrontDeps, surface: FrontSurface = 'all'): Koa {
  const router = new Router();
  const hooks = { fillDelays: new Map<number, FillDelay>() };
  const routes: FrontRoutes = { deps, hooks, books: new BookReader({ deps, hooks }) };
  const open = surface !== 'internal';
  const internal = surface !== 'public';
  // No route but search defines a query parameter: any other is refused before a route runs (a
  // fast-path cache hit never has one).
  router.use(strictQueryFor({ [SEARCH_ROUTE]: SEARCH_QUERY_PARAMS }));
  if (open) {
    registerReads(router, routes);
    registerWrites(router, routes);
    registerOpenApi(router, deps.search);
    if (deps.live) registerLive(router, deps, deps.live);
  }
  if (internal) registerInternal(router, routes);
  return createBaseApp({
    ...deps,
    frontName: deps.podName,
    router,
    fastPath: fastPaths(
      ...(deps.live ? [deps.live.feed.tap()] : []),
      ...(open ? [infoFastPath(routes), purchaseFastPath(deps)] : []),
      ...(internal ? [invalidateFastPath(deps)] : []),
    ),
  });
}
