import type Router from '@koa/router';
import { HttpError } from '../../shared/src/errors.js';
import { requireBearer } from '../../shared/src/auth.js';
import { readJsonBody, requireObject } from '../../shared/src/body.js';
import type { FrontRoutes } from './routes.js';

const MAX_INVALIDATIONS = 1000;

/** What only the store's own processes call (internal token): invalidations, cache stats, test hooks. */
export function registerInternal(router: Router, routes: FrontRoutes): void {
  const { deps, hooks } = routes;
  const { cache } = deps;
  const internal = requireBearer('internal', deps.internalToken);

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
}

export function parseInvalidations(body: unknown): Array<{ bookId: number; version: number }> {
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
