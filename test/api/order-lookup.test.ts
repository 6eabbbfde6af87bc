/**
 * GET /orders/:id while the primary is down: served from the standby (docs/guarantees.md G5 for reads),
 * and never a 404 for an order that was acknowledged. In `strict` mode the standby has applied every
 * acknowledged order; in `session` mode it may lag, and then the lookup asks the primary, and says
 * 503 primary_unavailable (not 404) when the primary is down too.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { call, startTestStack, sleep, type TestStack } from './harness.js';
import { onStandby, waitFor } from '../faults/support.js';

interface Order {
  orderId: string;
  bookId: number;
  title: string;
  price: number;
  createdAt: string;
}

const UNKNOWN = '00000000-0000-4000-8000-000000000001';

async function buy(base: string, book: number, n: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    const res = await call<{ orderId: string }>(base, 'POST', `/purchase/${book}`);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    ids.push(res.body.orderId);
  }
  return ids;
}

function assertError(res: { status: number; body: unknown }, status: number, code: string): void {
  assert.equal(res.status, status, JSON.stringify(res.body));
  assert.equal((res.body as { error: { code: string } }).error.code, code);
}

describe('order lookup while the primary is down, strict mode', () => {
  let t: TestStack;

  before(async () => {
    t = await startTestStack({ consistencyMode: 'strict', fronts: 1 });
    t.db.on('error', () => undefined);
  });
  after(async () => t?.stop());

  it('every acknowledged order is answered 200 from the standby; an unknown one is 503, not 404', async () => {
    const ids = await buy(t.front(), 5, 6);
    const expected = new Map<string, Order>();
    for (const id of ids) {
      const res = await call<Order>(t.front(), 'GET', `/orders/${id}`);
      assert.equal(res.status, 200);
      expected.set(id, res.body);
    }
    assertError(await call(t.front(), 'GET', `/orders/${UNKNOWN}`), 404, 'order_not_found');

    await t.stack.pg!.stopPrimary();
    try {
      // Every order pod, through the front's round-robin and directly: no acknowledged order is missing.
      for (const base of [t.front(), ...t.stack.orders.map((o) => o.url)]) {
        for (const id of ids) {
          const res = await call<Order>(base, 'GET', `/orders/${id}`);
          assert.equal(res.status, 200, `${base} ${id}: ${JSON.stringify(res.body)}`);
          assert.deepEqual(res.body, expected.get(id));
        }
      }
      // An order the standby does not have cannot be ruled out without the primary: 503, the truth.
      const unknown = await call(t.front(), 'GET', `/orders/${UNKNOWN}`);
      assertError(unknown, 503, 'primary_unavailable');
      // Purchases fail fast meanwhile (guarantees.md G5), and the order pods stay ready to serve lookups.
      assertError(await call(t.front(), 'POST', '/purchase/5'), 503, 'primary_unavailable');
      for (const o of t.stack.orders) {
        assert.equal((await call(o.url, 'GET', '/readyz')).status, 200, `${o.name} ready on the standby`);
      }
    } finally {
      await t.stack.pg!.startPrimary();
    }
    await waitFor(
      'purchases after the primary returned',
      async () => (await call(t.front(), 'POST', '/purchase/5')).status === 200,
      15_000,
      200,
    );
    assertError(await call(t.front(), 'GET', `/orders/${UNKNOWN}`), 404, 'order_not_found');
  });
});

describe('order lookup with a lagging standby, session mode', () => {
  let t: TestStack;

  before(async () => {
    t = await startTestStack({ consistencyMode: 'session', fronts: 1 });
    t.db.on('error', () => undefined);
  });
  after(async () => {
    await onStandby(t.stack, 'SELECT pg_wal_replay_resume()').catch(() => undefined);
    await t?.stop();
  });

  it('an order the standby has not replayed is found on the primary, and is 503 (not 404) without it', async () => {
    const [replayed] = await buy(t.front(), 6, 1);
    await waitFor('the standby to replay the first order', async () => {
      const rows = await onStandby(t.stack, 'SELECT 1 FROM orders WHERE id = $1', [replayed]);
      return rows.length === 1;
    });
    await onStandby(t.stack, 'SELECT pg_wal_replay_pause()');
    const [lagging] = await buy(t.front(), 6, 1);
    await sleep(100);
    const onStandbyNow = await onStandby(t.stack, 'SELECT 1 FROM orders WHERE id = $1', [lagging]);
    assert.equal(onStandbyNow.length, 0, 'the fault is real: the standby lacks the new order');
    // Primary up: a miss on the standby falls back to the primary.
    assert.equal((await call(t.front(), 'GET', `/orders/${lagging}`)).status, 200);

    await t.stack.pg!.stopPrimary();
    try {
      assert.equal(
        (await call(t.front(), 'GET', `/orders/${replayed}`)).status,
        200,
        'served by the standby',
      );
      assertError(await call(t.front(), 'GET', `/orders/${lagging}`), 503, 'primary_unavailable');
      // Once the standby replays what it received, the acknowledged order is there, primary or not.
      await onStandby(t.stack, 'SELECT pg_wal_replay_resume()');
      await waitFor(
        'the lagging order on the standby',
        async () => (await call(t.front(), 'GET', `/orders/${lagging}`)).status === 200,
      );
    } finally {
      await t.stack.pg!.startPrimary();
    }
  });
});
