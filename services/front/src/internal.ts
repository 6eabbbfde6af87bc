import type Router from '@koa/router';
import { HttpError } from '../../shared/src/errors.js';
import type { IncomingMessage } from 'node:http';
import { checkBearer, requireBearer } from '../../shared/src/auth.js';
import { answerKoa, offKoa, type FastPath, type OffKoaAnswer } from '../../shared/src/server.js';
import { readJsonBody, requireObject } from '../../shared/src/body.js';
import { JSON_TYPE, type FillDelay, type FrontRoutes } from './routes.js';
import type { FrontDeps } from './app.js';

const MAX_INVALIDATIONS = 1000;

const INVALIDATE_PATH = '/internal/invalidate';

/** POST /internal/invalidate, for the Koa route and the fast path alike: fence and drop the books. */
async function invalidateAnswer(deps: FrontDeps, req: IncomingMessage): Promise<OffKoaAnswer> {
  checkBearer('internal', req.headers.authorization, deps.internalToken());
  const items = parseInvalidations(await readJsonBody(req));
  for (const { bookId, version } of items) deps.cache.invalidate(bookId, version);
  return {
    status: 200,
    headers: ['Content-Type', JSON_TYPE],
    body: Buffer.from(`{"invalidated":${items.length}}`),
  };
}

/** POST /internal/invalidate before Koa: every write pushes one to every front. */
export function invalidateFastPath(deps: FrontDeps): FastPath {
  const answer = offKoa(deps);
  return (req, res) => {
    if (req.method !== 'POST' || req.url !== INVALIDATE_PATH) return false;
    answer(req, res, INVALIDATE_PATH, () => invalidateAnswer(deps, req));
    return true;
  };
}

/** What only the store's own processes call (internal token): invalidations, cache stats, test hooks. */
export function registerInternal(router: Router, routes: FrontRoutes): void {
  const { deps, hooks } = routes;
  const { cache } = deps;
  const internal = requireBearer('internal', deps.internalToken);

  router.post(INVALIDATE_PATH, async (ctx) => {
    answerKoa(ctx, await invalidateAnswer(deps, ctx.req));
  });

  router.get('/internal/cache', internal, (ctx) => {
    ctx.body = cache.stats();
  });

  if (deps.testHooks) {
    router.post('/internal/test-hooks', internal, async (ctx) => {
      const { fillDelay, fencing } = parseTestHooks(await readJsonBody(ctx.req));
      if (fillDelay) hooks.fillDelays.set(fillDelay.bookId, { ms: fillDelay.ms, times: fillDelay.times });
      if (fencing !== undefined) cache.fencing = fencing;
      ctx.body = { ok: true };
    });
  }
}

/** The test hooks' body, checked whole before anything is applied. */
function parseTestHooks(body: unknown): { fillDelay?: FillDelay & { bookId: number }; fencing?: boolean } {
  const object = requireObject(body, ['fillDelay', 'fencing']);
  const out: { fillDelay?: FillDelay & { bookId: number }; fencing?: boolean } = {};
  if (object.fillDelay !== undefined) {
    const { bookId, ms, times = 1 } = requireObject(object.fillDelay, ['bookId', 'ms', 'times']);
    if (
      !isPositiveInteger(bookId) ||
      !Number.isSafeInteger(ms) ||
      (ms as number) < 0 ||
      (ms as number) > 60_000 ||
      !isPositiveInteger(times) ||
      (times as number) > 1000
    ) {
      throw new HttpError(
        400,
        'invalid_body',
        'fillDelay needs a positive integer bookId, ms in 0-60000 and optional times in 1-1000',
      );
    }
    out.fillDelay = { bookId: bookId as number, ms: ms as number, times: times as number };
  }
  if (object.fencing !== undefined) {
    if (typeof object.fencing !== 'boolean')
      throw new HttpError(400, 'invalid_body', 'fencing must be a boolean');
    out.fencing = object.fencing;
  }
  return out;
}

const isPositiveInteger = (value: unknown): boolean => Number.isSafeInteger(value) && (value as number) >= 1;

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
  if (object.origin !== undefined && (typeof object.origin !== 'string' || object.origin.length > 253)) {
    throw new HttpError(400, 'invalid_body', 'origin must be a string of at most 253 characters');
  }
  return items.map((item: unknown) => {
    const { bookId, version } = requireObject(item, ['bookId', 'version']);
    if (!isPositiveInteger(bookId) || !isPositiveInteger(version)) {
      throw new HttpError(
        400,
        'invalid_body',
        'each invalidation needs a positive integer bookId and version',
      );
    }
    return { bookId: bookId as number, version: version as number };
  });
}
