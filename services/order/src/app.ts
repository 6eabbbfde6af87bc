import Router from '@koa/router';
import type Koa from 'koa';
import type { Logger } from '../../shared/src/logger.js';
import type { Metrics } from '../../shared/src/metrics.js';
import type { PolicyStore } from '../../shared/src/policy.js';
import type { IncomingMessage } from 'node:http';
import {
  answerKoa,
  createBaseApp,
  digitsAfter,
  offKoa,
  type AppContext,
  type FastPath,
  type Lifecycle,
  type OffKoaAnswer,
} from '../../shared/src/server.js';
import type { Database } from '../../shared/src/db/database.js';
import type { CommitGuard } from '../../shared/src/db/write-transaction.js';
import type { InvalidationPublisher } from '../../shared/src/invalidation.js';
import { readJsonBody, requireObject } from '../../shared/src/body.js';
import { requireBearer } from '../../shared/src/auth.js';
import { badRequest } from '../../shared/src/errors.js';
import {
  ORIGIN_FRONT_HEADER,
  originFront,
  parseBookId,
  parseIdempotencyKey,
  parseOrderId,
  strictQuery,
} from '../../shared/src/validate.js';
import { DuplicateKey, checkSameBook, findByKey, lookupOrder, purchaseInOneStatement } from './orders.js';
import type { Counter } from 'prom-client';

export interface OrderDeps {
  podName: string;
  logger: Logger;
  metrics: Metrics;
  lifecycle: Lifecycle;
  policy: PolicyStore;
  primary: Database;
  /** A hot standby (DATABASE_REPLICA_URL): order lookups read it first, so they survive the primary. */
  standby?: Database;
  guard: CommitGuard;
  publisher: InvalidationPublisher;
  purchases: Counter<'result'>;
  internalToken: () => string;
  /**
   * Enables /internal/test-hooks: the fault tests make a pod die right after a purchase commits and
   * before it pushes the invalidation. Never on in production.
   */
  testHooks: boolean;
  readiness: () => Promise<Record<string, string>>;
  details?: () => Record<string, unknown>;
}

/**
 * POST|PUT /purchase/:id, for the Koa route and the fast path alike: one statement on the primary,
 * then the invalidation pushed to every front and awaited, then the answer.
 */
async function purchaseAnswer(
  deps: OrderDeps,
  idParam: string | undefined,
  req: IncomingMessage,
): Promise<OffKoaAnswer> {
  const bookId = parseBookId(idParam);
  const key = parseIdempotencyKey(req.headers['idempotency-key']);
  // A purchase takes no body; one that is sent must be small, well-formed and an empty object.
  const body = await readJsonBody(req);
  if (body !== undefined) requireObject(body, []);
  let outcome;
  try {
    outcome = await deps.guard.statement((client) => purchaseInOneStatement(client, bookId, key));
  } catch (err) {
    if (!(err instanceof DuplicateKey) || key === undefined) {
      deps.purchases.inc({ result: (err as { code?: string }).code ?? 'error' });
      throw err;
    }
    // A concurrent request with the same key won the race and has committed: return its result.
    const previous = await findByKey(deps.primary, key);
    if (!previous) throw err;
    outcome = { purchase: checkSameBook(previous, bookId), replayed: true };
  }
  deps.purchases.inc({ result: outcome.replayed ? 'replayed' : 'ok' });
  if (crashAfterCommit.has(deps)) process.kill(process.pid, 'SIGKILL');
  // Also on a replay: the first attempt may have committed and died before invalidating.
  const fanout = await deps.publisher.publish(
    [{ bookId, version: outcome.purchase.version }],
    originFront(req.headers[ORIGIN_FRONT_HEADER]),
  );
  const headers = ['X-Invalidated', `${fanout.acknowledged}/${fanout.fronts}`, 'Content-Type', JSON_TYPE];
  if (outcome.replayed) headers.push('Idempotent-Replayed', 'true');
  return { status: 200, headers, body: Buffer.from(JSON.stringify(outcome.purchase)) };
}

/** POST|PUT /purchase/:id before Koa (no query string, an id of digits); the rest goes to Koa. */
function purchaseFastPath(deps: OrderDeps): FastPath {
  const answer = offKoa(deps);
  return (req, res) => {
    if (req.method !== 'POST' && req.method !== 'PUT') return false;
    const id = digitsAfter(req.url, '/purchase/');
    if (id === undefined) return false;
    answer(req, res, '/purchase/:id', () => purchaseAnswer(deps, id, req));
    return true;
  };
}

const JSON_TYPE = 'application/json; charset=utf-8';

/** The apps armed (by the test hook) to die between a purchase's COMMIT and its invalidation push. */
const crashAfterCommit = new WeakSet<OrderDeps>();

export function createApp(deps: OrderDeps): Koa {
  const router = new Router();
  // No route defines a query parameter: a request with one is refused before it does anything.
  router.use(strictQuery);
  const purchase = async (ctx: AppContext) => {
    answerKoa(ctx, await purchaseAnswer(deps, ctx.params.id, ctx.req));
  };
  router.post('/purchase/:id', purchase);
  router.put('/purchase/:id', purchase);

  if (deps.testHooks) {
    router.post('/internal/test-hooks', requireBearer('internal', deps.internalToken), async (ctx) => {
      const { crashAfterCommit: crash } = requireObject(await readJsonBody(ctx.req), ['crashAfterCommit']);
      if (typeof crash !== 'boolean') throw badRequest('invalid_body', 'crashAfterCommit must be a boolean');
      if (crash) crashAfterCommit.add(deps);
      else crashAfterCommit.delete(deps);
      ctx.body = { ok: true };
    });
  }

  router.get('/orders/:orderId', async (ctx) => {
    ctx.body = await lookupOrder(deps, parseOrderId(ctx.params.orderId));
  });

  return createBaseApp({ ...deps, router, fastPath: purchaseFastPath(deps) });
}
