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
import { DATABASE_HEADER, type Database } from '../../shared/src/db/database.js';
import { writeBook, writesInFlightAnswer, type Writer } from '../../shared/src/writer.js';
import { readJsonBody, requireObject } from '../../shared/src/body.js';
import { requireBearer } from '../../shared/src/auth.js';
import { badRequest } from '../../shared/src/errors.js';
import { sleep } from '../../shared/src/main-helpers.js';
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
  /** Commits on the primary and tells the fronts (writeBook); waits for a primary (PRIMARY_WAIT_MS). */
  writer: Pick<Writer, 'guard' | 'publisher'> & Partial<Pick<Writer, 'primaryWait'>>;
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
 * with the fronts told as writeBook says (before the commit in strict mode, after it otherwise).
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
  const origin = originFront(req.headers[ORIGIN_FRONT_HEADER]);
  let replayed = false;
  // Also on a replay the fronts hear of the version: the first attempt may have committed and died
  // before invalidating.
  const { result: purchase, fanout } = await writeBook(
    deps.writer,
    bookId,
    origin,
    async () => {
      const hold = holdBeforeCommit.get(deps);
      if (hold !== undefined) await sleep(hold);
      let outcome;
      try {
        outcome = await deps.writer.guard.statement((client) => purchaseInOneStatement(client, bookId, key));
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
      replayed = outcome.replayed;
      return outcome.purchase;
    },
    { keyed: key !== undefined },
  );
  const headers = ['X-Invalidated', `${fanout.acknowledged}/${fanout.fronts}`, 'Content-Type', JSON_TYPE];
  if (replayed) headers.push('Idempotent-Replayed', 'true');
  return { status: 200, headers, body: Buffer.from(JSON.stringify(purchase)) };
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
/** Test hook: each purchase waits this long after the fronts were told and before it commits (ms). */
const holdBeforeCommit = new WeakMap<OrderDeps, number>();

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
      const { crashAfterCommit: crash, holdBeforeCommitMs: hold } = requireObject(
        await readJsonBody(ctx.req),
        ['crashAfterCommit', 'holdBeforeCommitMs'],
      );
      if (crash !== undefined && typeof crash !== 'boolean')
        throw badRequest('invalid_body', 'crashAfterCommit must be a boolean');
      if (
        hold !== undefined &&
        (!Number.isSafeInteger(hold) || (hold as number) < 0 || (hold as number) > 60_000)
      )
        throw badRequest('invalid_body', 'holdBeforeCommitMs must be an integer in 0-60000');
      if (crash === true) crashAfterCommit.add(deps);
      else if (crash === false) crashAfterCommit.delete(deps);
      if (hold === 0) holdBeforeCommit.delete(deps);
      else if (hold !== undefined) holdBeforeCommit.set(deps, hold as number);
      ctx.body = { ok: true };
    });
  }

  router.post('/internal/writes', requireBearer('internal', deps.internalToken), async (ctx) => {
    ctx.body = await writesInFlightAnswer(deps.writer.publisher, await readJsonBody(ctx.req));
  });

  router.get('/orders/:orderId', async (ctx) => {
    const { order, database } = await lookupOrder(deps, parseOrderId(ctx.params.orderId));
    ctx.set(DATABASE_HEADER, database);
    ctx.body = order;
  });

  return createBaseApp({ ...deps, router, fastPath: purchaseFastPath(deps) });
}
