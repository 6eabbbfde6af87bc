import Router from '@koa/router';
import type Koa from 'koa';
import type { Logger } from '../../shared/src/logger.js';
import type { Metrics } from '../../shared/src/metrics.js';
import type { PolicyStore } from '../../shared/src/policy.js';
import { createBaseApp, type Lifecycle, type AppContext } from '../../shared/src/server.js';
import { DATABASE_HEADER, type Database } from '../../shared/src/db/database.js';
import type { CommitGuard } from '../../shared/src/db/write-transaction.js';
import type { InvalidationPublisher } from '../../shared/src/invalidation.js';
import { writeBook, writesInFlightAnswer } from '../../shared/src/writer.js';
import type { PrimaryIdentity } from '../../shared/src/db/primary-identity.js';
import type { PrimaryWait } from '../../shared/src/db/primary-wait.js';
import { errorFromResponse, type Upstream, type UpstreamResponse } from '../../shared/src/http-client.js';
import { HttpError, notFound, conflict } from '../../shared/src/errors.js';
import { requireBearer } from '../../shared/src/auth.js';
import { readJsonBody, requireObject } from '../../shared/src/body.js';
import {
  normalizeTopic,
  parseBookId,
  parseIdempotencyKey,
  parseMinVersion,
  parsePrice,
  parseQuantity,
  strictQueryFor,
  originFront,
  ORIGIN_FRONT_HEADER,
} from '../../shared/src/validate.js';
import {
  DEFAULT_SEARCH_PAGING,
  parseSearchQuery,
  SEARCH_QUERY_PARAMS,
  searchQueryString,
  type SearchPaging,
} from '../../shared/src/search-page.js';
import { bookFastPath, bookHeaders, readBook, versionsAnswer } from './book-reads.js';
import {
  DuplicateKey,
  findRestock,
  restock,
  sameRestock,
  searchBooks,
  setPrice,
  type Book,
  type RestockOutcome,
} from './books.js';

export interface CatalogDeps {
  podName: string;
  role: 'origin' | 'replica';
  logger: Logger;
  metrics: Metrics;
  lifecycle: Lifecycle;
  policy: PolicyStore;
  /** Where reads go: the primary for the origin, a standby for replicas. */
  reads: Database;
  /** Origin only: commits writes and pushes invalidations to the fronts. */
  writer?: {
    guard: CommitGuard;
    publisher: InvalidationPublisher;
    primaryIdentity?: PrimaryIdentity;
    /** The bounded wait of a write for a writable primary (PRIMARY_WAIT_MS, writeBook). */
    primaryWait?: PrimaryWait;
  };
  /** Replica only: the origin, for writes and for reads the standby cannot serve yet. */
  origin?: Upstream;
  adminToken: () => string;
  internalToken: () => string;
  /** How long a replica waits for its standby to replay a required version before asking the origin. */
  replicaWaitMs: number;
  /** Replica only: the timeout of a write forwarded to the origin (UPSTREAM_WRITE_TIMEOUT_MS). */
  writeTimeoutMs?: number;
  /** Search page sizes (SEARCH_PAGE_SIZE, SEARCH_MAX_PAGE_SIZE); absent: the defaults. */
  search?: SearchPaging;
  readiness: () => Promise<Record<string, string>>;
  details?: () => Record<string, unknown> | Promise<Record<string, unknown>>;
}

const SEARCH_ROUTE = '/search/:topic';

export function createApp(deps: CatalogDeps): Koa {
  const router = new Router();
  // No route but search defines a query parameter: a request with another is refused before it does anything.
  router.use(strictQueryFor({ [SEARCH_ROUTE]: SEARCH_QUERY_PARAMS }));
  const admin = requireBearer('admin', deps.adminToken);
  const internal = requireBearer('internal', deps.internalToken);

  router.post('/internal/writes', internal, async (ctx) => {
    ctx.body = await writesInFlightAnswer(deps.writer?.publisher, await readJsonBody(ctx.req));
  });

  router.post('/internal/versions', internal, async (ctx) => {
    ctx.body = { versions: await versionsAnswer(deps, await readJsonBody(ctx.req)) };
  });

  router.get('/books/:id', async (ctx) => {
    const id = parseBookId(ctx.params.id);
    const book = await readBook(deps, id, parseMinVersion(ctx.get('X-Min-Version') || undefined));
    const headers = bookHeaders(book);
    for (let i = 0; i + 1 < headers.length; i += 2) ctx.set(headers[i]!, headers[i + 1]!);
    ctx.body = book.body;
  });

  router.get(SEARCH_ROUTE, async (ctx) => {
    const topic = normalizeTopic(ctx.params.topic);
    const page = parseSearchQuery(ctx.querystring, topic, deps.search ?? DEFAULT_SEARCH_PAGING);
    try {
      ctx.body = await searchBooks(deps.reads, topic, page);
      ctx.set(DATABASE_HEADER, deps.reads.label);
    } catch (err) {
      if (!(err instanceof HttpError && err.status === 503 && deps.origin)) throw err;
      const path = `${ctx.path}?${searchQueryString(topic, page)}`;
      relay(ctx, await deps.origin.request({ method: 'GET', path, retry: 'idempotent' }));
    }
  });

  router.patch('/books/:id', admin, async (ctx) => {
    const id = parseBookId(ctx.params.id);
    const body = requireObject(await readJsonBody(ctx.req), ['price']);
    if (!('price' in body)) throw new HttpError(400, 'invalid_body', 'field "price" is required');
    const price = parsePrice(body.price);
    await write(deps, ctx, id, { price }, undefined, (writer) =>
      writer.guard.run((client) => setPrice(client, id, price)).then((book) => book ?? missing(id)),
    );
  });

  router.post('/books/:id/restock', admin, async (ctx) => {
    const id = parseBookId(ctx.params.id);
    const key = parseIdempotencyKey(ctx.headers['idempotency-key']);
    const body = requireObject(await readJsonBody(ctx.req), ['quantity']);
    if (!('quantity' in body)) throw new HttpError(400, 'invalid_body', 'field "quantity" is required');
    const quantity = parseQuantity(body.quantity);
    await write(deps, ctx, id, { quantity }, key, async (writer) => {
      let outcome: RestockOutcome;
      try {
        outcome = await writer.guard.run((client) => restock(client, id, quantity, key));
      } catch (err) {
        if (!(err instanceof DuplicateKey) || key === undefined) throw err;
        // A concurrent restock with the same key won the race and has committed: return its result.
        const previous = await findRestock(deps.reads, key);
        if (!previous) {
          throw new HttpError(503, 'commit_outcome_unknown', 'retry with the same Idempotency-Key');
        }
        outcome = { book: sameRestock(previous, id, quantity), replayed: true };
      }
      if (outcome === 'overflow') throw conflict('stock_overflow', 'stock would exceed 2147483647');
      if (!outcome) return missing(id);
      if (outcome.replayed) ctx.set('Idempotent-Replayed', 'true');
      return outcome.book;
    });
  });

  return createBaseApp({ ...deps, router, fastPath: bookFastPath(deps) });
}

function missing(id: number): never {
  throw notFound('book_not_found', `no book with id ${id}`);
}

function copyServedBy(ctx: AppContext, res: UpstreamResponse): void {
  const servedBy = res.headers['x-served-by'];
  if (typeof servedBy === 'string') ctx.set('X-Served-By', servedBy);
}

/** Copies an upstream answer (status, body, who served it) to this response; errors keep their body. */
function relay(ctx: AppContext, res: UpstreamResponse): void {
  copyServedBy(ctx, res);
  const database = res.headers[DATABASE_HEADER.toLowerCase()];
  if (typeof database === 'string') ctx.set(DATABASE_HEADER, database);
  if (res.status >= 400) throw errorFromResponse(res);
  ctx.status = res.status;
  ctx.body = res.body;
}

/**
 * Origin: commit and tell the fronts (writeBook), then answer. Replica: forward to the
 * origin with the caller's credentials (and idempotency key: a keyed write may be resent to another
 * origin endpoint, an unkeyed one only when it provably never left).
 */
async function write(
  deps: CatalogDeps,
  ctx: AppContext,
  bookId: number,
  json: Record<string, unknown>,
  idempotencyKey: string | undefined,
  commit: (writer: NonNullable<CatalogDeps['writer']>) => Promise<Book>,
): Promise<void> {
  if (deps.writer) {
    const writer = deps.writer;
    // Also on a replay the fronts hear of the version: the first attempt may have committed and died
    // before invalidating.
    const { result: book, fanout } = await writeBook(
      writer,
      bookId,
      originFront(ctx.headers[ORIGIN_FRONT_HEADER]),
      () => commit(writer),
      { keyed: idempotencyKey !== undefined },
    );
    ctx.set('X-Invalidated', `${fanout.acknowledged}/${fanout.fronts}`);
    ctx.body = book;
    return;
  }
  if (!deps.origin) throw new HttpError(500, 'internal_error', 'catalog has neither writer nor origin');
  const headers: Record<string, string> = { authorization: ctx.get('Authorization') };
  if (idempotencyKey !== undefined) headers['idempotency-key'] = idempotencyKey;
  const front = originFront(ctx.headers[ORIGIN_FRONT_HEADER]);
  if (front !== undefined) headers[ORIGIN_FRONT_HEADER] = front;
  const res = await deps.origin.request({
    method: ctx.method as 'PATCH' | 'POST',
    path: ctx.path,
    headers,
    json,
    retry: idempotencyKey !== undefined ? 'idempotent' : 'connect-only',
    ...(deps.writeTimeoutMs !== undefined ? { timeoutMs: deps.writeTimeoutMs } : {}),
  });
  for (const header of ['X-Invalidated', 'Idempotent-Replayed']) {
    const value = res.headers[header.toLowerCase()];
    if (typeof value === 'string') ctx.set(header, value);
  }
  relay(ctx, res);
}
