import Router from '@koa/router';
import type Koa from 'koa';
import type { Logger } from '../../shared/src/logger.js';
import type { Metrics } from '../../shared/src/metrics.js';
import type { PolicyStore } from '../../shared/src/policy.js';
import { createBaseApp, fastPaths, type Lifecycle } from '../../shared/src/server.js';
import type { Upstream } from '../../shared/src/http-client.js';
import type { FrontCache } from './cache.js';
import { BookReader, infoFastPath, registerReads } from './reads.js';
import { purchaseFastPath, registerWrites } from './writes.js';
import { invalidateFastPath, registerInternal } from './internal.js';
import { registerOpenApi } from './openapi.js';
import type { FrontRoutes } from './routes.js';
import { strictQuery } from '../../shared/src/validate.js';

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

/** The front's Koa app, not listening: reads and the cache, writes, internal routes, the hit fast path. */
export function createApp(deps: FrontDeps): Koa {
  const router = new Router();
  const hooks = { fillDelays: new Map<number, number>() };
  const routes: FrontRoutes = { deps, hooks, books: new BookReader({ deps, hooks }) };
  // No route defines a query parameter: refused before any route runs (a cache hit never has one).
  router.use(strictQuery);
  registerReads(router, routes);
  registerWrites(router, routes);
  registerInternal(router, routes);
  registerOpenApi(router);
  return createBaseApp({
    ...deps,
    router,
    fastPath: fastPaths(infoFastPath(routes), purchaseFastPath(deps), invalidateFastPath(deps)),
  });
}
