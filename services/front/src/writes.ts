import { randomUUID } from 'node:crypto';
import type Router from '@koa/router';
import type { IncomingMessage } from 'node:http';
import {
  answerKoa,
  digitsAfter,
  type AppContext,
  type FastPath,
  type OffKoaAnswer,
} from '../../shared/src/server.js';
import type { UpstreamResponse } from '../../shared/src/http-client.js';
import { HttpError } from '../../shared/src/errors.js';
import { requireBearer } from '../../shared/src/auth.js';
import { readJsonBody, requireObject } from '../../shared/src/body.js';
import {
  parseBookId,
  parseIdempotencyKey,
  parseOrderId,
  parsePrice,
  parseQuantity,
  ORIGIN_FRONT_HEADER,
} from '../../shared/src/validate.js';
import { relay, relayedError, servedBy } from './relay.js';
import { frontOffKoa, JSON_TYPE, type FrontRoutes } from './routes.js';
import type { FrontDeps } from './app.js';

const PURCHASE_PREFIX = '/purchase/';
/** The life of this front's own announcement of a write when no write timeout is configured. */
const DEFAULT_WRITE_TIMEOUT_MS = 5000;

/**
 * A write through this front, which the writer does not announce to it (it sends no push to the front
 * a write came through): in strict mode the front announces it to its own cache before forwarding it,
 * and settles it with the answer: the new version, or (a 4xx: nothing was written) none. Without an
 * answer the outcome is unknown and the announcement expires after the write timeout.
 */
function announceHere(deps: FrontDeps, bookId: number): (res: UpstreamResponse) => void {
  if (deps.policy.current.consistencyMode !== 'strict') {
    return (res) => {
      const version = res.status === 200 ? (res.body as { version?: unknown }).version : undefined;
      if (typeof version === 'number') deps.cache.invalidate(bookId, version);
    };
  }
  const writeId = `here:${randomUUID()}`;
  deps.cache.prepare(bookId, writeId, deps.writeTimeoutMs ?? DEFAULT_WRITE_TIMEOUT_MS);
  return (res) => {
    if (res.status >= 500) return;
    const version = res.status === 200 ? (res.body as { version?: unknown }).version : undefined;
    deps.cache.settle(bookId, writeId, typeof version === 'number' ? version : undefined);
  };
}

/**
 * POST|PUT /purchase/:id, for the Koa route and the fast path alike: forwarded to an order pod under
 * an idempotency key, the order pod's answer relayed as it is, this front's own cache fenced at once.
 */
export async function purchaseAnswer(
  deps: FrontDeps,
  idParam: string | undefined,
  req: IncomingMessage,
): Promise<OffKoaAnswer> {
  const id = parseBookId(idParam);
  // Every purchase carries a key, the client's or ours, so retrying it on another order pod after a
  // timeout or a dropped connection can never buy twice.
  const key = parseIdempotencyKey(req.headers['idempotency-key']) ?? `front:${randomUUID()}`;
  const body = await readJsonBody(req);
  if (body !== undefined) requireObject(body, []);
  const settle = announceHere(deps, id);
  // Sent to the next order pod on a 503, but not on a primary_unavailable that says its pod already
  // waited PRIMARY_WAIT_MS for a primary (X-Bazar-Primary-Waited-Ms): every order pod waits for the
  // same primary, so the next would only wait as long again, past this front's write timeout (a 504
  // where the truth is "nothing was written"). Such an answer is relayed as the write's final one
  // (Upstream, http-client.ts); a pod that answered at once (no wait configured) is still passed over.
  const res = await deps.order.request({
    method: 'POST',
    path: `/purchase/${id}`,
    // The order pod need not push this write to us: we fence our own cache with its answer below.
    headers: { 'idempotency-key': key, [ORIGIN_FRONT_HEADER]: deps.podName },
    retry: 'idempotent',
  });
  settle(res);
  if (res.status >= 400) throw relayedError(res);
  const headers = ['X-Served-By', servedBy(res), 'Content-Type', JSON_TYPE];
  if (res.status === 200) {
    for (const name of ['X-Invalidated', 'Idempotent-Replayed']) {
      const value = res.headers[name.toLowerCase()];
      if (typeof value === 'string') headers.push(name, value);
    }
  }
  return { status: res.status, headers, body: Buffer.from(res.raw) };
}

/** POST|PUT /purchase/:id before Koa (no query string, an id of digits); the rest goes to Koa. */
export function purchaseFastPath(deps: FrontDeps): FastPath {
  const answer = frontOffKoa(deps);
  return (req, res) => {
    if (req.method !== 'POST' && req.method !== 'PUT') return false;
    const id = digitsAfter(req.url, PURCHASE_PREFIX);
    if (id === undefined) return false;
    answer(req, res, '/purchase/:id', () => purchaseAnswer(deps, id, req));
    return true;
  };
}

/** Purchases, order lookups and the admin writes, forwarded to the order and catalog services. */
export function registerWrites(router: Router, routes: FrontRoutes): void {
  const { deps } = routes;
  const admin = requireBearer('admin', deps.adminToken);

  /** Relays a write's answer; `settle` makes this front's own cache honour it at once. */
  const relayWrite = (ctx: AppContext, res: UpstreamResponse, settle: (res: UpstreamResponse) => void) => {
    settle(res);
    if (res.status === 200) {
      const invalidated = res.headers['x-invalidated'];
      if (typeof invalidated === 'string') ctx.set('X-Invalidated', invalidated);
      const replayed = res.headers['idempotent-replayed'];
      if (typeof replayed === 'string') ctx.set('Idempotent-Replayed', replayed);
    }
    relay(ctx, res);
  };

  const purchase = async (ctx: AppContext) => {
    answerKoa(ctx, await purchaseAnswer(deps, ctx.params.id, ctx.req));
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
    const settle = announceHere(deps, id);
    const res = await deps.catalog.request({
      method: 'PATCH',
      path: `/books/${id}`,
      headers: { authorization: ctx.get('Authorization'), [ORIGIN_FRONT_HEADER]: deps.podName },
      json: { price },
      // Setting a price is idempotent.
      retry: 'idempotent',
      ...(deps.writeTimeoutMs !== undefined ? { timeoutMs: deps.writeTimeoutMs } : {}),
    });
    relayWrite(ctx, res, settle);
  });

  router.post('/books/:id/restock', admin, async (ctx) => {
    const id = parseBookId(ctx.params.id);
    // Like a purchase, every restock carries a key, the client's or ours: the catalog applies a key
    // once, so the front may resend a restock whose answer was lost (timeout, reset, an origin that
    // died after COMMIT) to another catalog pod and get the first result back instead of adding twice.
    const key = parseIdempotencyKey(ctx.headers['idempotency-key']) ?? `front:${randomUUID()}`;
    const body = requireObject(await readJsonBody(ctx.req), ['quantity']);
    if (!('quantity' in body)) throw new HttpError(400, 'invalid_body', 'field "quantity" is required');
    const quantity = parseQuantity(body.quantity);
    const settle = announceHere(deps, id);
    const res = await deps.catalog.request({
      method: 'POST',
      path: `/books/${id}/restock`,
      headers: {
        authorization: ctx.get('Authorization'),
        'idempotency-key': key,
        [ORIGIN_FRONT_HEADER]: deps.podName,
      },
      json: { quantity },
      retry: 'idempotent',
      ...(deps.writeTimeoutMs !== undefined ? { timeoutMs: deps.writeTimeoutMs } : {}),
    });
    relayWrite(ctx, res, settle);
  });
}
