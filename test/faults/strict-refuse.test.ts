/**
 * Strict writes the standby does not confirm, with the default STRICT_STANDBY_LOSS=refuse
 * (docs/guarantees.md G6), through the whole store: 2 fronts, catalog origin + replica, order origin +
 * replica, PostgreSQL primary + synchronous standby, SYNC_COMMIT_TIMEOUT_MS=500.
 *
 * The standby's replay is paused: it still streams and counts as the synchronous standby, but confirms
 * nothing. A price change and a keyed purchase are answered 503 commit_outcome_unknown after the
 * timeout, not acknowledged, and invisible everywhere (the primary shows a commit only once the standby
 * has applied it); a retry under the key waits behind the first attempt and is refused the same way;
 * no writer degrades. Then replay resumes: the waiting commits take effect, and from the moment the
 * primary shows the new price, no read through either front (cached or not) returns the old one: the
 * writer kept every front from caching the book while the commit waited, and settled it with the
 * commit's version. The purchase retried under its key then returns the first attempt's order.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { bearer, call, startTestStack, type TestStack } from '../api/harness.js';
import { metric, ms, now, onStandby, readyz, scrape, sleep } from './support.js';

const SYNC_COMMIT_TIMEOUT_MS = 500;
const PRICED = 1;
const BOUGHT = 2;

describe('strict writes no standby confirms are refused, not acknowledged (STRICT_STANDBY_LOSS=refuse)', () => {
  let t: TestStack;
  const writers = () => [...t.stack.orders, t.stack.catalogs.find((c) => c.role === 'origin')!];

  before(async () => {
    t = await startTestStack({
      consistencyMode: 'strict',
      env: { SYNC_COMMIT_TIMEOUT_MS: String(SYNC_COMMIT_TIMEOUT_MS) },
    });
  });
  after(async () => {
    await onStandby(t.stack, 'SELECT pg_wal_replay_resume()').catch(() => undefined);
    await t?.stop();
  });

  async function counterSum(name: string): Promise<number> {
    let n = 0;
    for (const w of writers()) n += metric(await scrape(w.url), name) ?? 0;
    return n;
  }

  const priceOn = async (front: number, noCache: boolean) => {
    const res = await call<{ price: string; version: number }>(t.front(front), 'GET', `/info/${PRICED}`, {
      headers: noCache ? { 'cache-control': 'no-cache' } : {},
    });
    assert.equal(res.status, 200);
    return Number(res.body.price);
  };

  it('refused while the standby confirms nothing; applied, and never read stale, once it does', async () => {
    const admin = bearer(t.stack.adminToken);
    const before = Number(
      (await t.db.query<{ price: string }>('SELECT price FROM books WHERE id = $1', [PRICED])).rows[0]!.price,
    );
    const price = Math.floor(before) + 7;
    for (const f of [0, 1]) for (let i = 0; i < 2; i++) await priceOn(f, false); // cached at both fronts
    const timeoutsBefore = await counterSum('bazar_sync_commit_timeouts_total');
    const key = `strict-refuse-${Date.now()}`;

    await onStandby(t.stack, 'SELECT pg_wal_replay_pause()');
    let resumed = false;
    try {
      const t0 = now();
      const priced = await call(t.front(0), 'PATCH', `/books/${PRICED}`, { headers: admin, body: { price } });
      const pricedMs = now() - t0;
      assert.equal(priced.status, 503, JSON.stringify(priced.body));
      assert.equal((priced.body as { error: { code: string } }).error.code, 'commit_outcome_unknown');
      // One attempt: the front does not try the other catalog pod, whose commit would queue behind it.
      assert.ok(
        pricedMs >= SYNC_COMMIT_TIMEOUT_MS - 20 && pricedMs < 2 * SYNC_COMMIT_TIMEOUT_MS,
        ms(pricedMs),
      );
      assert.equal(priced.headers.get('x-bazar-commit-unconfirmed-ms'), String(SYNC_COMMIT_TIMEOUT_MS));

      const bought = await call(t.front(1), 'POST', `/purchase/${BOUGHT}`, {
        headers: { 'idempotency-key': key },
      });
      assert.equal(bought.status, 503, JSON.stringify(bought.body));
      assert.equal((bought.body as { error: { code: string } }).error.code, 'commit_outcome_unknown');
      const again = await call(t.front(0), 'POST', `/purchase/${BOUGHT}`, {
        headers: { 'idempotency-key': key },
      });
      assert.equal(
        again.status,
        503,
        `the retry waits behind the first attempt: ${JSON.stringify(again.body)}`,
      );

      // Not acknowledged, and visible nowhere: every read, cached or not, through either front.
      for (const f of [0, 1]) {
        assert.equal(await priceOn(f, false), before, `front ${f}, cached path`);
        assert.equal(await priceOn(f, true), before, `front ${f}, no-cache`);
      }
      const orders = await t.db.query('SELECT 1 FROM orders WHERE idempotency_key = $1', [key]);
      assert.equal(orders.rowCount, 0, 'the purchase is not visible on the primary');
      for (const w of writers()) {
        const body = (await readyz(w.url)).body as { consistency?: { degraded?: string } };
        assert.equal(body.consistency?.degraded, undefined, `${w.name} does not degrade`);
        assert.equal(metric(await scrape(w.url), 'bazar_consistency_degraded'), 0);
      }

      // Replay resumes: the commits take effect. Reads through both fronts run meanwhile.
      const reads: { start: number; price: number }[] = [];
      let reading = true;
      const loop = (async () => {
        for (let i = 0; reading; i++) {
          const start = now();
          reads.push({ start, price: await priceOn(i % 2, i % 4 === 3) });
        }
      })();
      await sleep(300);
      await onStandby(t.stack, 'SELECT pg_wal_replay_resume()');
      resumed = true;
      let visibleAt = 0;
      for (const deadline = now() + 10_000; now() < deadline; await sleep(5)) {
        const row = await t.db.query<{ price: string }>('SELECT price FROM books WHERE id = $1', [PRICED]);
        if (Number(row.rows[0]!.price) === price) {
          visibleAt = now();
          break;
        }
      }
      assert.ok(visibleAt > 0, 'the refused price change took effect once the standby applied it');
      await sleep(1500);
      reading = false;
      await loop;
      const after = reads.filter((r) => r.start > visibleAt);
      assert.ok(after.length >= 20, `reads after it was visible (${after.length})`);
      const stale = after.filter((r) => r.price !== price);
      assert.equal(
        stale.length,
        0,
        `reads begun after the primary showed ${price} that returned the old price`,
      );

      const retried = await call<{ orderId: string }>(t.front(1), 'POST', `/purchase/${BOUGHT}`, {
        headers: { 'idempotency-key': key },
      });
      assert.equal(retried.status, 200);
      assert.equal(retried.headers.get('idempotent-replayed'), 'true', 'the first attempt had committed');
      const rows = await t.db.query('SELECT 1 FROM orders WHERE idempotency_key = $1', [key]);
      assert.equal(rows.rowCount, 1, 'one order under the key');
      const timeouts = (await counterSum('bazar_sync_commit_timeouts_total')) - timeoutsBefore;
      assert.ok(timeouts >= 3, `bazar_sync_commit_timeouts_total rose by ${timeouts}`);
      console.log(
        `strict-refuse: price change 503 commit_outcome_unknown in ${ms(pricedMs)}, the keyed purchase and its retry ` +
          `503 too, nothing visible, no writer degraded; replay resumed: ${after.length} reads through both fronts ` +
          `after the primary showed the price, 0 stale; the retry under the key replayed the first attempt's order`,
      );
    } finally {
      if (!resumed) await onStandby(t.stack, 'SELECT pg_wal_replay_resume()');
    }
  });
});
