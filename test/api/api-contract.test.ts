import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { bearer, call, snapshot, startTestStack, type TestStack } from './harness.js';

interface Book {
  id: number;
  title: string;
  topic: string;
  price: number;
  stock: number;
  version: number;
}

function assertErrorBody(body: unknown, code: string): void {
  const error = (body as { error?: { code?: unknown; message?: unknown } }).error;
  assert.ok(error, `expected an error body, got ${JSON.stringify(body)}`);
  assert.equal(error.code, code);
  assert.equal(typeof error.message, 'string');
  assert.doesNotMatch(String(error.message), /\n\s+at \S+ \(/, 'no stack trace in the message');
  assert.deepEqual(Object.keys(body as object), ['error']);
}

/**
 * Writes whose body is not sent as application/json, through the front and to the pods' own routes:
 * each must be refused with 415 `unsupported_media_type` and change nothing. The same bodies as
 * `application/json; charset=utf-8` are carried out (the control below).
 */
const MEDIA_TYPE_CASES: Array<{
  name: string;
  method: string;
  path: string;
  headers?: 'admin' | 'internal';
  raw: string;
  contentType: string | null;
  to?: string;
}> = [
  // The reported defect: a JSON restock sent as text/plain was carried out.
  {
    name: 'restock',
    method: 'POST',
    path: '/books/2/restock',
    headers: 'admin',
    raw: '{"quantity":10}',
    contentType: 'text/plain',
  },
  {
    name: 'restock',
    method: 'POST',
    path: '/books/2/restock',
    headers: 'admin',
    raw: '{"quantity":10}',
    contentType: null,
  },
  {
    name: 'restock',
    method: 'POST',
    path: '/books/2/restock',
    headers: 'admin',
    raw: 'quantity=10',
    contentType: 'application/x-www-form-urlencoded',
  },
  {
    name: 'restock',
    method: 'POST',
    path: '/books/2/restock',
    headers: 'admin',
    raw: '{"quantity":10}',
    contentType: 'application/jsonx',
  },
  {
    name: 'price update',
    method: 'PATCH',
    path: '/books/2',
    headers: 'admin',
    raw: '{"price":1}',
    contentType: 'TEXT/PLAIN; charset=utf-8',
  },
  {
    name: 'price update',
    method: 'PATCH',
    path: '/books/2',
    headers: 'admin',
    raw: '{"price":1}',
    contentType: null,
  },
  {
    name: 'price update',
    method: 'PATCH',
    path: '/books/2',
    headers: 'admin',
    raw: 'price=1',
    contentType: 'application/x-www-form-urlencoded',
  },
  { name: 'purchase with a body', method: 'POST', path: '/purchase/2', raw: '{}', contentType: 'text/plain' },
  { name: 'PUT purchase with a body', method: 'PUT', path: '/purchase/2', raw: '{}', contentType: null },
  {
    name: 'purchase with a form body',
    method: 'POST',
    path: '/purchase/2',
    raw: 'x=1',
    contentType: 'application/x-www-form-urlencoded',
  },
  {
    name: 'invalidation',
    method: 'POST',
    path: '/internal/invalidate',
    headers: 'internal',
    raw: '{"items":[{"bookId":2,"version":99}]}',
    contentType: 'text/plain',
  },
  {
    name: 'test hook',
    method: 'POST',
    path: '/internal/test-hooks',
    headers: 'internal',
    raw: '{"fencing":false}',
    contentType: null,
  },
  {
    name: 'order pod: purchase with a body',
    method: 'POST',
    path: '/purchase/2',
    raw: '{}',
    contentType: 'text/plain',
    to: 'order-origin-0',
  },
  {
    name: 'catalog origin: restock',
    method: 'POST',
    path: '/books/2/restock',
    headers: 'admin',
    raw: '{"quantity":10}',
    contentType: 'text/plain',
    to: 'catalog-origin-0',
  },
  {
    name: 'catalog replica: price update',
    method: 'PATCH',
    path: '/books/2',
    headers: 'admin',
    raw: '{"price":1}',
    contentType: null,
    to: 'catalog-replica-0',
  },
  {
    name: 'catalog replica: versions',
    method: 'POST',
    path: '/internal/versions',
    headers: 'internal',
    raw: '{"ids":[2]}',
    contentType: 'application/x-www-form-urlencoded',
    to: 'catalog-replica-0',
  },
];

describe('public API contract (README "API", docs/openapi.json) through the front', () => {
  let t: TestStack;
  let front: string;
  let admin: Record<string, string>;

  before(async () => {
    t = await startTestStack();
    front = t.front(0);
    admin = bearer(t.stack.adminToken);
  });
  after(async () => t?.stop());

  const cacheStats = async () =>
    (
      await call<{ invalidations: number }>(front, 'GET', '/internal/cache', {
        headers: bearer(t.stack.internalToken),
      })
    ).body;

  it('GET /search/:topic lists the seeded books of a topic, case- and separator-insensitively', async () => {
    const res = await call<{ topic: string; books: Array<{ id: number; title: string }> }>(
      front,
      'GET',
      '/search/distributed%20systems',
    );
    assert.equal(res.status, 200);
    assert.equal(res.body.topic, 'distributed systems');
    assert.deepEqual(
      res.body.books.map((b) => b.id),
      [1, 2, 5],
    );
    assert.equal(res.body.books[1]!.title, 'RPCs for Noobs');
    const dashed = await call<{ books: unknown[] }>(front, 'GET', '/search/Distributed-Systems');
    assert.deepEqual(dashed.body.books, res.body.books);
    const school = await call<{ books: Array<{ id: number }> }>(
      front,
      'GET',
      '/search/undergraduate%20school',
    );
    assert.deepEqual(
      school.body.books.map((b) => b.id),
      [3, 4, 6, 7],
    );
  });

  it('GET /search of an unknown topic is 200 with no books', async () => {
    const res = await call(front, 'GET', '/search/cooking');
    assert.equal(res.status, 200);
    assert.deepEqual(res.body, { topic: 'cooking', books: [], next: null });
  });

  it('GET /info/:id returns the book, a miss then a hit, with X-Served-By, each counted once', async () => {
    const counted = async () => {
      const s = (
        await call<{ hits: number; misses: number }>(front, 'GET', '/internal/cache', {
          headers: bearer(t.stack.internalToken),
        })
      ).body;
      return { hits: s.hits, misses: s.misses };
    };
    const before0 = await counted();
    const first = await call<Book>(front, 'GET', '/info/5');
    const afterMiss = await counted();
    // The fast path's miss and the BookReader's read are one miss (counted twice, the hit ratio the
    // alert and the dashboard show read low).
    assert.deepEqual(afterMiss, { hits: before0.hits, misses: before0.misses + 1 });
    assert.equal(first.status, 200);
    assert.deepEqual(
      { id: first.body.id, title: first.body.title, topic: first.body.topic, price: first.body.price },
      { id: 5, title: 'How to finish Project 3 on time', topic: 'distributed systems', price: 130 },
    );
    assert.equal(typeof first.body.stock, 'number');
    assert.equal(typeof first.body.version, 'number');
    assert.equal(first.headers.get('x-cache'), 'miss');
    assert.match(first.headers.get('x-served-by') ?? '', /^catalog-/);
    const second = await call<Book>(front, 'GET', '/info/5');
    assert.equal(second.headers.get('x-cache'), 'hit');
    assert.equal(second.headers.get('x-served-by'), 'front-0');
    assert.deepEqual(second.body, first.body);
    assert.deepEqual(await counted(), { hits: afterMiss.hits + 1, misses: afterMiss.misses });
  });

  it('reads are balanced round-robin over every catalog pod (Cache-Control: no-cache skips the cache)', async () => {
    const servers = new Set<string>();
    for (let i = 0; i < 6; i++) {
      const res = await call(front, 'GET', '/info/1', { headers: { 'cache-control': 'no-cache' } });
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('x-cache'), 'miss');
      servers.add(res.headers.get('x-served-by') ?? '');
    }
    assert.deepEqual([...servers].sort(), ['catalog-origin-0', 'catalog-replica-0']);
  });

  it('X-Database names the PostgreSQL server each read came from (a catalog origin the primary, a replica its standby); a hit has none', async () => {
    const address = (url: string) => `${new URL(url).hostname}:${new URL(url).port}`;
    const primary = `primary ${address(t.stack.primaryUrl)}`;
    const standby = `standby ${address(t.stack.standbyUrl)}`;
    const pairs = new Set<string>();
    for (let i = 0; i < 4; i++) {
      const res = await call(front, 'GET', '/info/3', { headers: { 'cache-control': 'no-cache' } });
      pairs.add(`${res.headers.get('x-served-by')} ${res.headers.get('x-database')}`);
    }
    assert.deepEqual([...pairs].sort(), [`catalog-origin-0 ${primary}`, `catalog-replica-0 ${standby}`]);
    await call(front, 'GET', '/info/3');
    const hit = await call(front, 'GET', '/info/3');
    assert.equal(hit.headers.get('x-cache'), 'hit');
    assert.equal(hit.headers.get('x-database'), null, 'a hit asked no database');
    const search = await call(front, 'GET', '/search/distributed%20systems', {
      headers: { 'cache-control': 'no-cache' },
    });
    assert.ok(
      [primary, standby].includes(search.headers.get('x-database') ?? ''),
      'a search says where it read',
    );
    const bought = await call<{ orderId: string }>(front, 'POST', '/purchase/3');
    const order = await call(front, 'GET', `/orders/${bought.body.orderId}`);
    assert.equal(order.status, 200);
    assert.equal(order.headers.get('x-database'), standby, 'an order lookup reads the standby first');
  });

  it('POST and PUT /purchase/:id buy one copy; GET /orders/:id returns the order', async () => {
    const before = await call<Book>(front, 'GET', '/info/2', { headers: { 'cache-control': 'no-cache' } });
    const bought = await call<Record<string, unknown>>(front, 'POST', '/purchase/2');
    assert.equal(bought.status, 200);
    assert.equal(bought.body.bookId, 2);
    assert.equal(bought.body.title, 'RPCs for Noobs');
    assert.equal(bought.body.price, 50);
    assert.equal(bought.body.remainingStock, before.body.stock - 1);
    assert.match(String(bought.body.orderId), /^[0-9a-f-]{36}$/);
    const put = await call<Record<string, unknown>>(front, 'PUT', '/purchase/2');
    assert.equal(put.status, 200);
    assert.equal(put.body.remainingStock, before.body.stock - 2);
    const order = await call<Record<string, unknown>>(front, 'GET', `/orders/${String(bought.body.orderId)}`);
    assert.equal(order.status, 200);
    assert.equal(order.body.orderId, bought.body.orderId);
    assert.equal(order.body.bookId, 2);
    assert.equal(order.body.price, 50);
    assert.ok(!Number.isNaN(Date.parse(String(order.body.createdAt))));
    const rows = await t.db.query('SELECT book_id, price::float AS price FROM orders WHERE id = $1', [
      bought.body.orderId,
    ]);
    assert.deepEqual(rows.rows, [{ book_id: 2, price: 50 }]);
  });

  it('PATCH /books/:id and POST /books/:id/restock change the book, bump its version, and need the admin token', async () => {
    const before = await call<Book>(front, 'GET', '/info/3');
    const patched = await call<Book>(front, 'PATCH', '/books/3', { headers: admin, body: { price: 55.5 } });
    assert.equal(patched.status, 200);
    assert.equal(patched.body.price, 55.5);
    assert.equal(patched.body.version, before.body.version + 1);
    const restocked = await call<Book>(front, 'POST', '/books/3/restock', {
      headers: admin,
      body: { quantity: 10 },
    });
    assert.equal(restocked.status, 200);
    assert.equal(restocked.body.stock, before.body.stock + 10);
    assert.equal(restocked.body.version, before.body.version + 2);
    const after = await call<Book>(front, 'GET', '/info/3');
    assert.equal(after.body.version, restocked.body.version);
    assert.equal(after.body.price, 55.5);
  });

  it('an Idempotency-Key makes a retried purchase return the first result and buy nothing more', async () => {
    const key = `contract-${Date.now()}`;
    const first = await call<Record<string, unknown>>(front, 'POST', '/purchase/6', {
      headers: { 'idempotency-key': key },
    });
    assert.equal(first.status, 200);
    const stockAfterFirst = (await t.db.query('SELECT stock FROM books WHERE id = 6')).rows[0].stock;
    for (const base of [t.front(0), t.front(1)]) {
      const retry = await call<Record<string, unknown>>(base, 'POST', '/purchase/6', {
        headers: { 'idempotency-key': key },
      });
      assert.equal(retry.status, 200);
      assert.deepEqual(retry.body, first.body);
      assert.equal(retry.headers.get('idempotent-replayed'), 'true');
    }
    assert.equal((await t.db.query('SELECT stock FROM books WHERE id = 6')).rows[0].stock, stockAfterFirst);
    const orders = await t.db.query('SELECT count(*)::int AS n FROM orders WHERE idempotency_key = $1', [
      key,
    ]);
    assert.equal(orders.rows[0].n, 1);
    const reused = await call(front, 'POST', '/purchase/7', { headers: { 'idempotency-key': key } });
    assert.equal(reused.status, 422);
    assertErrorBody(reused.body, 'idempotency_key_reused');
  });

  it('an Idempotency-Key makes a retried restock return the first result and add nothing more', async () => {
    const key = `restock-${Date.now()}`;
    const stock = async (id: number) =>
      (await t.db.query<{ stock: number }>('SELECT stock FROM books WHERE id = $1', [id])).rows[0]!.stock;
    const before = await stock(4);
    const first = await call<Book>(front, 'POST', '/books/4/restock', {
      headers: { ...admin, 'idempotency-key': key },
      body: { quantity: 3 },
    });
    assert.equal(first.status, 200);
    assert.equal(first.body.stock, before + 3);
    assert.equal(first.headers.get('idempotent-replayed'), null);
    // A price change in between: the retry still returns the restock's own result, not today's book.
    await call(front, 'PATCH', '/books/4', { headers: admin, body: { price: 51 } });
    for (const base of [t.front(0), t.front(1)]) {
      const retry = await call<Book>(base, 'POST', '/books/4/restock', {
        headers: { ...admin, 'idempotency-key': key },
        body: { quantity: 3 },
      });
      assert.equal(retry.status, 200);
      assert.deepEqual(retry.body, first.body);
      assert.equal(retry.headers.get('idempotent-replayed'), 'true');
    }
    assert.equal(await stock(4), before + 3, 'applied once');
    const rows = await t.db.query('SELECT book_id, quantity FROM restocks WHERE idempotency_key = $1', [key]);
    assert.deepEqual(rows.rows, [{ book_id: 4, quantity: 3 }]);
    // The same key for another quantity or another book is refused and changes nothing.
    const snap = await snapshot(t.db);
    for (const [path, quantity] of [
      ['/books/4/restock', 4],
      ['/books/5/restock', 3],
    ] as const) {
      const reused = await call(front, 'POST', path, {
        headers: { ...admin, 'idempotency-key': key },
        body: { quantity },
      });
      assert.equal(reused.status, 422, `${path} ${quantity}`);
      assertErrorBody(reused.body, 'idempotency_key_reused');
    }
    assert.deepEqual(await snapshot(t.db), snap);
  });

  it('concurrent restocks under one key, through both fronts and every catalog pod, apply once', async () => {
    const key = `restock-race-${Date.now()}`;
    const before = (await t.db.query<{ stock: number }>('SELECT stock FROM books WHERE id = 4')).rows[0]!
      .stock;
    const targets = [t.front(0), t.front(1), ...t.stack.catalogs.map((c) => c.url)];
    const answers = await Promise.all(
      Array.from({ length: 12 }, (_, i) =>
        call<Book>(targets[i % targets.length]!, 'POST', '/books/4/restock', {
          headers: { ...admin, 'idempotency-key': key },
          body: { quantity: 7 },
        }),
      ),
    );
    assert.deepEqual(
      answers.map((a) => a.status),
      answers.map(() => 200),
    );
    for (const a of answers) assert.deepEqual(a.body, answers[0]!.body);
    const fresh = answers.filter((a) => a.headers.get('idempotent-replayed') !== 'true');
    assert.equal(fresh.length, 1, 'exactly one answer applied the restock, the others replayed it');
    const after = (await t.db.query<{ stock: number }>('SELECT stock FROM books WHERE id = 4')).rows[0]!
      .stock;
    assert.equal(after, before + 7);
    assert.equal(answers[0]!.body.stock, before + 7);
  });

  it('a restock without a key gets one from the front (so the front may resend it)', async () => {
    const before = await t.db.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM restocks WHERE idempotency_key LIKE 'front:%'",
    );
    const res = await call<Book>(front, 'POST', '/books/6/restock', {
      headers: admin,
      body: { quantity: 2 },
    });
    assert.equal(res.status, 200);
    const after = await t.db.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM restocks WHERE idempotency_key LIKE 'front:%'",
    );
    assert.equal(after.rows[0]!.n, before.rows[0]!.n + 1);
  });

  it('the reported defect: POST /purchase/1?qty=-5 is refused and buys nothing', async () => {
    const before = await snapshot(t.db);
    for (const base of [front, t.stack.orders[0]!.url]) {
      const res = await call(base, 'POST', '/purchase/1?qty=-5');
      assert.equal(res.status, 400);
      assertErrorBody(res.body, 'unknown_parameter');
      assert.match((res.body as { error: { message: string } }).error.message, /"qty"/);
    }
    assert.deepEqual(await snapshot(t.db), before);
  });

  it('every answer of a front names it in X-Front: reads, writes, errors, probes', async () => {
    const name = t.stack.fronts[0]!.name;
    const answers = [
      await call(front, 'GET', '/info/6'),
      await call(front, 'GET', '/info/6'),
      await call(front, 'GET', '/search/distributed%20systems'),
      await call(front, 'POST', '/purchase/6'),
      await call(front, 'PUT', '/purchase/6'),
      await call(front, 'PATCH', '/books/6', { headers: admin, body: { price: 33 } }),
      await call(front, 'POST', '/books/6/restock', { headers: admin, body: { quantity: 1 } }),
      await call(front, 'PATCH', '/books/6', { body: { price: 33 } }),
      await call(front, 'GET', '/info/abc'),
      await call(front, 'GET', '/info/999'),
      await call(front, 'DELETE', '/info/6'),
      await call(front, 'GET', '/nowhere'),
      await call(front, 'GET', '/readyz'),
      await call(front, 'GET', '/metrics'),
    ];
    assert.deepEqual(
      answers.map((a) => [a.status, a.headers.get('x-front')]),
      [200, 200, 200, 200, 200, 200, 200, 401, 400, 404, 405, 404, 200, 200].map((status) => [status, name]),
    );
  });

  it('probes and metrics answer', async () => {
    for (const svc of t.stack.all) {
      const live = await call(svc.url, 'GET', '/livez');
      assert.equal(live.status, 200, `${svc.name} /livez`);
      const ready = await call<{ status: string }>(svc.url, 'GET', '/readyz');
      assert.equal(ready.status, 200, `${svc.name} /readyz ${JSON.stringify(ready.body)}`);
    }
    const metrics = await call<string>(front, 'GET', '/metrics');
    assert.equal(metrics.status, 200);
    for (const name of [
      'bazar_http_request_duration_seconds_bucket',
      'bazar_cache_hits_total',
      'bazar_cache_misses_total',
      'bazar_cache_evictions_total',
      'bazar_cache_invalidations_total',
      'bazar_upstream_errors_total',
    ]) {
      assert.ok(metrics.body.includes(name), `front /metrics has ${name}`);
    }
    const hits = /bazar_cache_hits_total\{[^}]*\} (\d+)/.exec(metrics.body);
    assert.ok(hits && Number(hits[1]) >= 1, 'the hit counted above shows in the metric');
  });

  describe('bad input gets the documented 4xx and changes nothing', () => {
    const huge = 'x'.repeat(64 * 1024);
    const cases: Array<{
      name: string;
      method: string;
      path: string;
      status: number;
      code: string;
      headers?: 'admin' | 'internal' | 'wrong-token' | Record<string, string>;
      body?: unknown;
      raw?: string;
      /** The Content-Type of `raw`: null sends it with none (fetch would call a string text/plain). */
      contentType?: string | null;
      idempotencyKey?: string;
      /** Sent to this process instead of the first front (a catalog or order pod's own routes). */
      to?: string;
    }> = [
      { name: 'non-numeric id', method: 'GET', path: '/info/abc', status: 400, code: 'invalid_id' },
      { name: 'negative id', method: 'GET', path: '/info/-1', status: 400, code: 'invalid_id' },
      { name: 'zero id', method: 'GET', path: '/info/0', status: 400, code: 'invalid_id' },
      { name: 'fractional id', method: 'GET', path: '/info/1.5', status: 400, code: 'invalid_id' },
      { name: 'id with spaces', method: 'GET', path: '/info/%201', status: 400, code: 'invalid_id' },
      {
        name: 'huge id',
        method: 'GET',
        path: '/info/99999999999999999999999',
        status: 404,
        code: 'book_not_found',
      },
      { name: 'id past int4', method: 'GET', path: '/info/2147483648', status: 404, code: 'book_not_found' },
      { name: 'unknown book', method: 'GET', path: '/info/999', status: 404, code: 'book_not_found' },
      {
        name: 'control char topic',
        method: 'GET',
        path: '/search/a%00b',
        status: 400,
        code: 'invalid_topic',
      },
      { name: 'blank topic', method: 'GET', path: '/search/%20%20', status: 400, code: 'invalid_topic' },
      {
        name: 'overlong topic',
        method: 'GET',
        path: `/search/${'a'.repeat(101)}`,
        status: 400,
        code: 'invalid_topic',
      },
      {
        name: 'purchase non-numeric id',
        method: 'POST',
        path: '/purchase/abc',
        status: 400,
        code: 'invalid_id',
      },
      { name: 'purchase negative id', method: 'POST', path: '/purchase/-3', status: 400, code: 'invalid_id' },
      {
        name: 'purchase huge id',
        method: 'POST',
        path: '/purchase/99999999999',
        status: 404,
        code: 'book_not_found',
      },
      {
        name: 'purchase unknown book',
        method: 'POST',
        path: '/purchase/999',
        status: 404,
        code: 'book_not_found',
      },
      {
        name: 'purchase malformed JSON',
        method: 'POST',
        path: '/purchase/1',
        status: 400,
        code: 'invalid_json',
        raw: '{"a":',
        contentType: 'application/json',
      },
      {
        name: 'purchase oversized body',
        method: 'POST',
        path: '/purchase/1',
        status: 413,
        code: 'payload_too_large',
        raw: huge,
      },
      {
        name: 'purchase overlong idempotency key',
        method: 'POST',
        path: '/purchase/1',
        status: 400,
        code: 'invalid_idempotency_key',
        headers: { 'idempotency-key': 'k'.repeat(300) },
      },
      {
        name: 'GET on purchase',
        method: 'GET',
        path: '/purchase/1',
        status: 405,
        code: 'method_not_allowed',
      },
      {
        name: 'DELETE on purchase',
        method: 'DELETE',
        path: '/purchase/1',
        status: 405,
        code: 'method_not_allowed',
      },
      { name: 'POST on info', method: 'POST', path: '/info/1', status: 405, code: 'method_not_allowed' },
      { name: 'unknown route', method: 'GET', path: '/books', status: 404, code: 'not_found' },
      {
        name: 'order id not a uuid',
        method: 'GET',
        path: '/orders/42',
        status: 404,
        code: 'order_not_found',
      },
      {
        name: 'unknown order',
        method: 'GET',
        path: '/orders/00000000-0000-4000-8000-000000000000',
        status: 404,
        code: 'order_not_found',
      },
      {
        name: 'price update without token',
        method: 'PATCH',
        path: '/books/1',
        status: 401,
        code: 'unauthorized',
        body: { price: 1 },
      },
      {
        name: 'price update with a wrong token',
        method: 'PATCH',
        path: '/books/1',
        status: 401,
        code: 'unauthorized',
        headers: 'wrong-token',
        body: { price: 1 },
      },
      {
        name: 'negative price',
        method: 'PATCH',
        path: '/books/1',
        status: 400,
        code: 'invalid_price',
        headers: 'admin',
        body: { price: -5 },
      },
      {
        name: 'string price',
        method: 'PATCH',
        path: '/books/1',
        status: 400,
        code: 'invalid_price',
        headers: 'admin',
        body: { price: '10' },
      },
      {
        name: 'three-decimal price',
        method: 'PATCH',
        path: '/books/1',
        status: 400,
        code: 'invalid_price',
        headers: 'admin',
        body: { price: 1.234 },
      },
      {
        name: 'price with unknown field',
        method: 'PATCH',
        path: '/books/1',
        status: 400,
        code: 'invalid_body',
        headers: 'admin',
        body: { price: 10, stock: 1 },
      },
      {
        name: 'price body is an array',
        method: 'PATCH',
        path: '/books/1',
        status: 400,
        code: 'invalid_body',
        headers: 'admin',
        body: [10],
      },
      {
        name: 'price body missing',
        method: 'PATCH',
        path: '/books/1',
        status: 400,
        code: 'invalid_body',
        headers: 'admin',
      },
      {
        name: 'price malformed JSON',
        method: 'PATCH',
        path: '/books/1',
        status: 400,
        code: 'invalid_json',
        headers: 'admin',
        raw: '{price: 1}',
        contentType: 'application/json',
      },
      {
        name: 'price oversized body',
        method: 'PATCH',
        path: '/books/1',
        status: 413,
        code: 'payload_too_large',
        headers: 'admin',
        raw: huge,
      },
      {
        name: 'price on unknown book',
        method: 'PATCH',
        path: '/books/999',
        status: 404,
        code: 'book_not_found',
        headers: 'admin',
        body: { price: 1 },
      },
      {
        name: 'restock without token',
        method: 'POST',
        path: '/books/1/restock',
        status: 401,
        code: 'unauthorized',
        body: { quantity: 1 },
      },
      {
        name: 'restock zero',
        method: 'POST',
        path: '/books/1/restock',
        status: 400,
        code: 'invalid_quantity',
        headers: 'admin',
        body: { quantity: 0 },
      },
      {
        name: 'restock fractional',
        method: 'POST',
        path: '/books/1/restock',
        status: 400,
        code: 'invalid_quantity',
        headers: 'admin',
        body: { quantity: 1.5 },
      },
      {
        name: 'restock string',
        method: 'POST',
        path: '/books/1/restock',
        status: 400,
        code: 'invalid_quantity',
        headers: 'admin',
        body: { quantity: '5' },
      },
      {
        name: 'restock too many',
        method: 'POST',
        path: '/books/1/restock',
        status: 400,
        code: 'invalid_quantity',
        headers: 'admin',
        body: { quantity: 2e9 },
      },
      {
        name: 'restock unknown book',
        method: 'POST',
        path: '/books/999/restock',
        status: 404,
        code: 'book_not_found',
        headers: 'admin',
        body: { quantity: 1 },
      },
      // Strict parameters: no route defines a query parameter; any is refused and changes nothing.
      {
        name: 'purchase with a query',
        method: 'POST',
        path: '/purchase/1?qty=-5',
        status: 400,
        code: 'unknown_parameter',
      },
      {
        name: 'PUT purchase with a query',
        method: 'PUT',
        path: '/purchase/1?x',
        status: 400,
        code: 'unknown_parameter',
      },
      {
        name: 'purchase with an empty parameter name',
        method: 'POST',
        path: '/purchase/1?=1',
        status: 400,
        code: 'unknown_parameter',
      },
      {
        name: 'purchase with a bare &',
        method: 'POST',
        path: '/purchase/1?&',
        status: 400,
        code: 'unknown_parameter',
      },
      {
        name: 'price update with a query',
        method: 'PATCH',
        path: '/books/1?price=999',
        status: 400,
        code: 'unknown_parameter',
        headers: 'admin',
        body: { price: 1 },
      },
      {
        name: 'restock with a query',
        method: 'POST',
        path: '/books/1/restock?quantity=1000',
        status: 400,
        code: 'unknown_parameter',
        headers: 'admin',
        body: { quantity: 1 },
      },
      {
        name: 'invalidation with a query',
        method: 'POST',
        path: '/internal/invalidate?all=1',
        status: 400,
        code: 'unknown_parameter',
        headers: 'internal',
        body: { items: [{ bookId: 1, version: 99 }] },
      },
      {
        name: 'read with a query',
        method: 'GET',
        path: '/info/1?fields=price',
        status: 400,
        code: 'unknown_parameter',
      },
      {
        name: 'search with a parameter it does not declare',
        method: 'GET',
        path: '/search/x?page=2',
        status: 400,
        code: 'unknown_parameter',
      },
      {
        name: 'order lookup with a query',
        method: 'GET',
        path: '/orders/00000000-0000-4000-8000-000000000000?x=1',
        status: 400,
        code: 'unknown_parameter',
      },
      {
        name: 'purchase with a body field',
        method: 'POST',
        path: '/purchase/1',
        status: 400,
        code: 'invalid_body',
        body: { qty: 5 },
      },
      {
        name: 'purchase with a non-object body',
        method: 'POST',
        path: '/purchase/1',
        status: 400,
        code: 'invalid_body',
        body: [1],
      },
      {
        name: 'restock with an unknown field',
        method: 'POST',
        path: '/books/1/restock',
        status: 400,
        code: 'invalid_body',
        headers: 'admin',
        body: { quantity: 1, price: 0 },
      },
      {
        name: 'restock with an invalid idempotency key',
        method: 'POST',
        path: '/books/1/restock',
        status: 400,
        code: 'invalid_idempotency_key',
        headers: 'admin',
        idempotencyKey: 'has space',
        body: { quantity: 1 },
      },
      {
        name: 'invalidation item with an unknown field',
        method: 'POST',
        path: '/internal/invalidate',
        status: 400,
        code: 'invalid_body',
        headers: 'internal',
        body: { items: [{ bookId: 1, version: 99, all: true }] },
      },
      {
        name: 'test hook with a malformed fill delay',
        method: 'POST',
        path: '/internal/test-hooks',
        status: 400,
        code: 'invalid_body',
        headers: 'internal',
        body: { fillDelay: 5, fencing: false },
      },
      {
        name: 'order pod: purchase with a query',
        method: 'POST',
        path: '/purchase/1?qty=2',
        status: 400,
        code: 'unknown_parameter',
        to: 'order-origin-0',
      },
      {
        name: 'order pod: purchase with a body field',
        method: 'PUT',
        path: '/purchase/1',
        status: 400,
        code: 'invalid_body',
        body: { qty: 2 },
        to: 'order-replica-0',
      },
      {
        name: 'catalog origin: restock with a query',
        method: 'POST',
        path: '/books/1/restock?x=1',
        status: 400,
        code: 'unknown_parameter',
        headers: 'admin',
        body: { quantity: 1 },
        to: 'catalog-origin-0',
      },
      {
        name: 'catalog replica: book read with a query (a fast path must not skip the check)',
        method: 'GET',
        path: '/books/1?x=1',
        status: 400,
        code: 'unknown_parameter',
        to: 'catalog-replica-0',
      },
      {
        name: 'order pod: order lookup with a query',
        method: 'GET',
        path: '/orders/00000000-0000-4000-8000-000000000000?x=1',
        status: 400,
        code: 'unknown_parameter',
        to: 'order-replica-0',
      },
      {
        name: 'catalog replica: price update with a query',
        method: 'PATCH',
        path: '/books/1?x=1',
        status: 400,
        code: 'unknown_parameter',
        headers: 'admin',
        body: { price: 1 },
        to: 'catalog-replica-0',
      },
      // Bodies are JSON or refused: the type is checked before the body is read (415, nothing done).
      ...MEDIA_TYPE_CASES.map((c) => ({
        ...c,
        name: `${c.name} (${c.contentType === null ? 'no Content-Type' : c.contentType})`,
        status: 415,
        code: 'unsupported_media_type',
      })),
      {
        name: 'invalidate without token',
        method: 'POST',
        path: '/internal/invalidate',
        status: 401,
        code: 'unauthorized',
        body: { items: [{ bookId: 1, version: 99 }] },
      },
      {
        name: 'invalidate with the admin token',
        method: 'POST',
        path: '/internal/invalidate',
        status: 401,
        code: 'unauthorized',
        headers: 'admin',
        body: { items: [{ bookId: 1, version: 99 }] },
      },
    ];

    for (const c of cases) {
      it(`${c.name}: ${c.method} ${c.path.slice(0, 40)} → ${c.status} ${c.code}`, async () => {
        let headers =
          c.headers === 'admin'
            ? admin
            : c.headers === 'internal'
              ? bearer(t.stack.internalToken)
              : c.headers === 'wrong-token'
                ? bearer('not-the-admin-token-at-all')
                : (c.headers ?? {});
        const before = await snapshot(t.db);
        if (c.idempotencyKey !== undefined) headers = { ...headers, 'idempotency-key': c.idempotencyKey };
        const base = c.to ? t.stack.all.find((p) => p.name === c.to)!.url : front;
        const cacheBefore = await cacheStats();
        let raw: string | Buffer | undefined = c.raw;
        if (c.contentType === null) raw = raw === undefined ? undefined : Buffer.from(raw);
        else if (c.contentType !== undefined) headers = { ...headers, 'content-type': c.contentType };
        const res = await call(base, c.method, c.path, { headers, body: c.body, raw });
        assert.equal(res.status, c.status, JSON.stringify(res.body));
        assertErrorBody(res.body, c.code);
        assert.deepEqual(await snapshot(t.db), before, 'a rejected request changed nothing');
        assert.equal((await cacheStats()).invalidations, cacheBefore.invalidations, 'nor the cache');
      });
    }

    it('an unauthenticated invalidation leaves the cache serving', async () => {
      await call(front, 'GET', '/info/7');
      const res = await call(front, 'POST', '/internal/invalidate', {
        body: { items: [{ bookId: 7, version: 1e9 }] },
      });
      assert.equal(res.status, 401);
      const again = await call(front, 'GET', '/info/7');
      assert.equal(again.headers.get('x-cache'), 'hit');
    });

    it('control: the same bodies as application/json; charset=utf-8 (any case) are carried out', async () => {
      const book = async () =>
        (
          await t.db.query<{ stock: number; price: string }>(
            'SELECT stock, price::text FROM books WHERE id = 2',
          )
        ).rows[0]!;
      const before = await book();
      const internal = bearer(t.stack.internalToken);
      const sent: Array<[string, string, string, Record<string, string>, string, string?]> = [
        ['POST', '/books/2/restock', '{"quantity":10}', admin, 'application/json; charset=utf-8'],
        ['PATCH', '/books/2', `{"price":${Number(before.price)}}`, admin, 'Application/JSON;charset=UTF-8'],
        ['POST', '/purchase/2', '{}', {}, 'application/json; charset=utf-8'],
        ['PUT', '/purchase/2', '{}', {}, 'application/json ; charset="utf-8"'],
        ['POST', '/purchase/2', '{}', {}, 'application/json; charset=utf-8', 'order-origin-0'],
        [
          'POST',
          '/books/2/restock',
          '{"quantity":10}',
          admin,
          'application/json; charset=utf-8',
          'catalog-origin-0',
        ],
        [
          'PATCH',
          '/books/2',
          `{"price":${Number(before.price)}}`,
          admin,
          'application/json; charset=utf-8',
          'catalog-replica-0',
        ],
        [
          'POST',
          '/internal/versions',
          '{"ids":[2]}',
          internal,
          'application/json; charset=utf-8',
          'catalog-replica-0',
        ],
        ['POST', '/internal/test-hooks', '{"fencing":true}', internal, 'application/json; charset=utf-8'],
      ];
      for (const [method, path, raw, headers, contentType, to] of sent) {
        const base = to ? t.stack.all.find((p) => p.name === to)!.url : front;
        const res = await call(base, method, path, {
          headers: { ...headers, 'content-type': contentType },
          raw,
        });
        assert.equal(
          res.status,
          200,
          `${to ?? 'front'} ${method} ${path} ${contentType}: ${JSON.stringify(res.body)}`,
        );
      }
      const after = await book();
      assert.equal(after.stock, before.stock + 10 + 10 - 3, 'two restocks of 10 and three purchases applied');
      assert.equal(after.price, before.price);
    });
  });
});
