import type Router from '@koa/router';
import { HttpError } from '../../shared/src/errors.js';
import type { IncomingMessage } from 'node:http';
import { checkBearer, requireBearer } from '../../shared/src/auth.js';
import { answerKoa, type FastPath, type OffKoaAnswer } from '../../shared/src/server.js';
import { readJsonBody, requireObject } from '../../shared/src/body.js';
import { frontOffKoa, JSON_TYPE, type FillDelay, type FrontRoutes } from './routes.js';
import type { FrontDeps } from './app.js';

const MAX_INVALIDATIONS = 1000;

const INVALIDATE_PATH = '/internal/invalidate';
const PREPARE_PATH = '/internal/prepare';
/** The longest a writer may announce a write for (its invalidation timeout, statement and commit). */
const MAX_PREPARE_TTL_MS = 600_000;

/**
 * POST /internal/invalidate, for the Koa route and the fast path alike: fence and drop the books. With
 * a `writeId` it also settles that announced write (an item without a version: it did not happen).
 */
async function invalidateAnswer(deps: FrontDeps, req: IncomingMessage): Promise<OffKoaAnswer> {
  checkBearer('internal', req.headers.authorization, deps.internalToken());
  const body = await readJsonBody(req);
  const { items, writeId } = parseInvalidations(body);
  const from = (body as { origin?: unknown }).origin as string | undefined;
  deps.logger.debug({ from, items, writeId }, 'invalidation received');
  deps.live?.feed.invalidation({
    kind: 'invalidate',
    books: items,
    ...(from ? { from } : {}),
    ...(writeId ? { writeId } : {}),
  });
  for (const { bookId, version } of items) {
    if (writeId !== undefined) deps.cache.settle(bookId, writeId, version);
    else if (version !== undefined) deps.cache.invalidate(bookId, version);
  }
  return {
    status: 200,
    headers: ['Content-Type', JSON_TYPE],
    body: Buffer.from(`{"invalidated":${items.length}}`),
  };
}

/**
 * POST /internal/prepare `{"bookIds":[…],"writeId":"…","ttlMs":N}`: a strict writer announces a write
 * before it commits; this front drops those books and caches nothing of them until it is settled.
 */
async function prepareAnswer(deps: FrontDeps, req: IncomingMessage): Promise<OffKoaAnswer> {
  checkBearer('internal', req.headers.authorization, deps.internalToken());
  const body = await readJsonBody(req);
  const { bookIds, writeId, ttlMs } = parsePrepare(body);
  const from = (body as { origin?: unknown }).origin as string | undefined;
  deps.logger.debug({ from, bookIds, writeId, ttlMs }, 'write announced');
  deps.live?.feed.invalidation({
    kind: 'announce',
    books: bookIds.map((bookId) => ({ bookId })),
    writeId,
    ...(from ? { from } : {}),
  });
  for (const bookId of bookIds) deps.cache.prepare(bookId, writeId, ttlMs);
  return {
    status: 200,
    headers: ['Content-Type', JSON_TYPE],
    body: Buffer.from(`{"prepared":${bookIds.length}}`),
  };
}

/** POST /internal/invalidate and /internal/prepare before Koa: every write sends one to every front. */
export function invalidateFastPath(deps: FrontDeps): FastPath {
  const answer = frontOffKoa(deps);
  return (req, res) => {
    if (req.method !== 'POST') return false;
    if (req.url === INVALIDATE_PATH) answer(req, res, INVALIDATE_PATH, () => invalidateAnswer(deps, req));
    else if (req.url === PREPARE_PATH) answer(req, res, PREPARE_PATH, () => prepareAnswer(deps, req));
    else return false;
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
  router.post(PREPARE_PATH, async (ctx) => {
    answerKoa(ctx, await prepareAnswer(deps, ctx.req));
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

/** A writer's id for one write: what its prepare and its invalidation share. */
function parseWriteId(value: unknown): string {
  if (typeof value !== 'string' || !/^[\x21-\x7e]{1,100}$/.test(value)) {
    throw new HttpError(400, 'invalid_body', 'writeId must be 1-100 printable ASCII characters');
  }
  return value;
}

function parseOrigin(value: unknown): void {
  if (value !== undefined && (typeof value !== 'string' || value.length > 253)) {
    throw new HttpError(400, 'invalid_body', 'origin must be a string of at most 253 characters');
  }
}

export function parsePrepare(body: unknown): { bookIds: number[]; writeId: string; ttlMs: number } {
  const object = requireObject(body, ['bookIds', 'writeId', 'ttlMs', 'origin']);
  const { bookIds, ttlMs } = object;
  if (
    !Array.isArray(bookIds) ||
    bookIds.length === 0 ||
    bookIds.length > MAX_INVALIDATIONS ||
    !bookIds.every(isPositiveInteger)
  ) {
    throw new HttpError(400, 'invalid_body', `bookIds must be an array of 1-${MAX_INVALIDATIONS} book ids`);
  }
  if (!isPositiveInteger(ttlMs) || (ttlMs as number) > MAX_PREPARE_TTL_MS) {
    throw new HttpError(400, 'invalid_body', `ttlMs must be an integer in 1-${MAX_PREPARE_TTL_MS}`);
  }
  parseOrigin(object.origin);
  return { bookIds: bookIds as number[], writeId: parseWriteId(object.writeId), ttlMs: ttlMs as number };
}

export function parseInvalidations(body: unknown): {
  items: Array<{ bookId: number; version?: number }>;
  writeId?: string;
} {
  const object = requireObject(body, ['items', 'origin', 'writeId']);
  const items = object.items;
  if (!Array.isArray(items) || items.length === 0 || items.length > MAX_INVALIDATIONS) {
    throw new HttpError(
      400,
      'invalid_body',
      `items must be an array of 1-${MAX_INVALIDATIONS} invalidations`,
    );
  }
  parseOrigin(object.origin);
  const writeId = object.writeId === undefined ? undefined : parseWriteId(object.writeId);
  return {
    ...(writeId !== undefined ? { writeId } : {}),
    items: items.map((item: unknown) => {
      const { bookId, version } = requireObject(item, ['bookId', 'version']);
      // Without a version an item only settles an announced write that did not happen.
      if (
        !isPositiveInteger(bookId) ||
        (version !== undefined || writeId === undefined ? !isPositiveInteger(version) : false)
      ) {
        throw new HttpError(
          400,
          'invalid_body',
          'each invalidation needs a positive integer bookId and version (a version may be left out only with a writeId)',
        );
      }
      return version === undefined
        ? { bookId: bookId as number }
        : { bookId: bookId as number, version: version as number };
    }),
  };
}
