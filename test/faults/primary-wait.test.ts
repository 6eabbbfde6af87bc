/**
 * Writes ride out a short primary outage (PRIMARY_WAIT_MS, docs/guarantees.md G5): one strict-mode stack
 * (2 fronts, catalog origin + replica, order origin + replica, PostgreSQL primary + synchronous
 * standby) whose writers wait up to WAIT_MS for a writable primary.
 *   (a) the primary stopped ~1.5 s under a stream of keyed purchases and price changes through both
 *       fronts, and one write of each kind sent while it is down: no write fails, every purchase is in the database exactly once, the writes issued
 *       during the outage are answered once the primary is back, the history checker finds nothing;
 *   (b) the primary stopped longer than the budget: a write is answered 503 primary_unavailable after
 *       about the budget (one writer's wait, not one per order pod), having written nothing.
 * Case (b) of strict-faults.test.ts is the same outage with the default PRIMARY_WAIT_MS=0 (fail fast).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { bearer, call, startTestStack, type TestStack } from '../api/harness.js';
import { checkedRun } from '../../tools/checker/src/run.js';
import { formatReport } from '../../tools/checker/src/check.js';
import { setStock } from '../../tools/checker/src/db-facts.js';
import type { Op } from '../../tools/checker/src/history.js';
import { LogSink, ms, now, percentile, scrape, sleep, FAULT_BOOKS } from './support.js';

const WAIT_MS = 5000;
const SYNC_COMMIT_TIMEOUT_MS = 400;
/** Above WAIT_MS + SYNC_COMMIT_TIMEOUT_MS + the invalidation timeout (1 s), as the chart requires. */
const UPSTREAM_WRITE_TIMEOUT_MS = 12_000;
const WAITED_HEADER = 'x-bazar-primary-waited-ms';

describe('writes wait for a writable primary (PRIMARY_WAIT_MS), strict mode', () => {
  let t: TestStack;
  const logs = new LogSink();
  const fronts = () => t.stack.fronts.map((f) => ({ name: f.name, url: f.url }));
  const writers = () => [...t.stack.orders, t.stack.catalogs.find((c) => c.role === 'origin')!];

  before(async () => {
    t = await startTestStack({
      consistencyMode: 'strict',
      logLevel: 'info',
      log: logs.add,
      env: {
        SYNC_COMMIT_TIMEOUT_MS: String(SYNC_COMMIT_TIMEOUT_MS),
        PRIMARY_WAIT_MS: String(WAIT_MS),
        UPSTREAM_WRITE_TIMEOUT_MS: String(UPSTREAM_WRITE_TIMEOUT_MS),
      },
    });
    t.db.on('error', () => undefined);
    await setStock(t.db, new Map([...FAULT_BOOKS, 4].map((b) => [b, 100_000])));
  });
  after(async () => t?.stop());

  /** bazar_write_primary_waits_total{result} summed over the writers. */
  async function waits(result: string): Promise<number> {
    let n = 0;
    for (const p of writers()) {
      const text = await scrape(p.url);
      const m = new RegExp(`^bazar_write_primary_waits_total\\{[^}]*result="${result}"[^}]*\\} (\\d+)`, 'm');
      for (const line of text.split('\n')) n += Number(m.exec(line)?.[1] ?? 0);
    }
    return n;
  }

  it('(a) primary stopped ~1.5 s under keyed purchases and price changes: no write fails, each purchase once, outage writes answered once it is back', async () => {
    const pg = t.stack.pg!;
    const pidsBefore = t.stack.all.map((p) => `${p.name}:${p.pid()}`);
    const servedBefore = await waits('served');
    const marks = { stop: 0, stopped: 0, start: 0, started: 0 };
    const admin = bearer(t.stack.adminToken);
    const probeKey = `primary-wait-a-${Date.now()}`;
    const timeoutMs = UPSTREAM_WRITE_TIMEOUT_MS + 3000;
    let probes: Promise<{ kind: string; status: number; invoke: number; complete: number }>[] = [];
    const timedWrite = async (kind: string, req: ReturnType<typeof call>) => {
      const invoke = now();
      const res = await req;
      return { kind, status: res.status, invoke, complete: now() };
    };
    const logMark = now();
    const run = await checkedRun(
      {
        db: t.db,
        mode: 'strict',
        workload: {
          fronts: fronts(),
          clients: 8,
          books: FAULT_BOOKS,
          mix: { read: 4, purchase: 4, setPrice: 2 },
          adminToken: t.stack.adminToken,
          noCacheRatio: 0.5,
          thinkMs: 5,
          // One attempt may now last the outage: the client must not give up first.
          timeoutMs: UPSTREAM_WRITE_TIMEOUT_MS + 3000,
        },
      },
      async () => {
        await sleep(700);
        marks.stop = now();
        await pg.stopPrimary();
        marks.stopped = now();
        // One write of each kind sent while the primary is surely down, so that both meet the outage
        // whatever the workload's writes happened to be doing (book 4: outside the workload's books).
        probes = [
          timedWrite(
            'set-price',
            call(t.front(0), 'PATCH', '/books/4', { headers: admin, body: { price: 43 }, timeoutMs }),
          ),
          timedWrite(
            'purchase',
            call(t.front(1), 'POST', '/purchase/4', { headers: { 'idempotency-key': probeKey }, timeoutMs }),
          ),
        ];
        await sleep(1500);
        marks.start = now();
        await pg.startPrimary();
        marks.started = now();
        await sleep(1500);
      },
    );
    const probed = await Promise.all(probes);
    const ops = run.recorded;
    const writes = ops.filter((o) => o.kind === 'purchase' || o.kind === 'set-price');
    const failedWrites = writes.filter((o) => o.status !== 200);
    assert.equal(
      failedWrites.length,
      0,
      `failed writes: ${JSON.stringify(failedWrites.slice(0, 5).map((o) => [o.kind, o.status, o.error]))}`,
    );
    const failedReads = ops.filter((o) => o.kind === 'read' && o.status !== 200);
    assert.equal(failedReads.length, 0, `failed reads: ${failedReads.length}`);
    // Writes that met the outage (a client's next operation waits for its write, so most of them were
    // sent as the primary went down) were held, and answered once it took writes again.
    const outage = writes.filter((o) => o.invoke < marks.start && o.complete > marks.stopped + 50);
    assert.ok(outage.length >= 4, `writes met the outage (${outage.length})`);
    for (const p of probed) assert.equal(p.status, 200, `the ${p.kind} sent while the primary was down`);
    for (const o of [...outage, ...probed]) {
      assert.ok(
        o.complete >= marks.start,
        `a ${o.kind} held by the outage was answered ${ms(marks.start - o.complete)} before the primary was started`,
      );
      assert.ok(
        o.complete <= marks.started + 2000,
        `a ${o.kind} was answered ${ms(o.complete - marks.started)} after the primary was back`,
      );
    }
    // Every acknowledged purchase is in the database exactly once, under its key; nothing else is.
    const purchases = writes.filter((o): o is Op & { key: string } => o.kind === 'purchase' && !!o.key);
    const rows = await t.db.query<{ key: string; n: number; id: string }>(
      `SELECT idempotency_key AS key, count(*)::int AS n, min(id::text) AS id FROM orders
       WHERE idempotency_key = ANY($1) GROUP BY idempotency_key`,
      [purchases.map((o) => o.key)],
    );
    const byKey = new Map(rows.rows.map((r) => [r.key, r]));
    assert.equal(rows.rowCount, purchases.length, 'one order row per acknowledged purchase');
    for (const o of purchases) {
      const row = byKey.get(o.key);
      assert.equal(row?.n, 1, `${o.key}: ${row?.n ?? 0} rows`);
      assert.equal(row?.id, o.orderId, `${o.key}: the acknowledged order id`);
    }
    const probeRows = await t.db.query('SELECT 1 FROM orders WHERE idempotency_key = $1', [probeKey]);
    assert.equal(probeRows.rowCount, 1, 'the purchase sent during the outage: one order row');
    assert.ok(run.report.ok, formatReport(run.report, run.t0));
    // Visible: the metric and one log line per wait, with how long it waited.
    const served = (await waits('served')) - servedBefore;
    assert.ok(served > 0, 'bazar_write_primary_waits_total{result="served"} rose');
    const lines = logs
      .records(logMark)
      .filter((r) => r.rec.msg === 'a write waited for a writable primary and was served');
    assert.ok(lines.length > 0, 'a log line per wait');
    assert.ok(lines.every((l) => typeof l.rec.waitedMs === 'number' && l.rec.result === 'served'));
    assert.deepEqual(
      t.stack.all.map((p) => `${p.name}:${p.pid()}`),
      pidsBefore,
      'no service was restarted',
    );
    const latencies = outage.map((o) => o.complete - o.invoke);
    const waited = lines.map((l) => l.rec.waitedMs as number);
    console.log(
      `primary-wait(a) primary stopped ${ms(marks.start - marks.stopped)} (pg_ctl stop ${ms(marks.stopped - marks.stop)}, ` +
        `start+streaming ${ms(marks.started - marks.start)}): ${writes.length} writes, 0 failed; ${outage.length} met ` +
        `the outage (${outage.filter((o) => o.kind === 'purchase').length} purchases, ${outage.filter((o) => o.kind === 'set-price').length} price changes; ` +
        `and the two sent during it, answered ${probed.map((p) => ms(p.complete - marks.start)).join(' and ')} after the start), ` +
        `latency p50 ${ms(percentile(latencies, 50))}, max ${ms(Math.max(...latencies))}; served waits ${served} ` +
        `(logged waits p50 ${ms(percentile(waited, 50))}, max ${ms(Math.max(...waited))}); ${purchases.length} purchases, ` +
        `one row each; reads ${ops.length - writes.length}, 0 failed; checker OK`,
    );
  });

  it('(b) primary stopped longer than the budget: 503 primary_unavailable after about the budget, nothing written', async () => {
    const pg = t.stack.pg!;
    const expiredBefore = await waits('expired');
    const admin = bearer(t.stack.adminToken);
    const keys = [0, 1].map((i) => `primary-wait-b-${Date.now()}-${i}`);
    const priceBefore = (await t.db.query<{ price: number }>('SELECT price FROM books WHERE id = 4')).rows[0]!
      .price;
    await pg.stopPrimary();
    const stoppedAt = now();
    let answers: { what: string; status: number; code?: string; waited: string | null; ms: number }[];
    try {
      await sleep(200);
      const timed = async (what: string, req: Promise<Awaited<ReturnType<typeof call>>>) => {
        const start = now();
        const res = await req;
        const body = res.body as { error?: { code: string } } | undefined;
        return {
          what,
          status: res.status,
          ...(body?.error ? { code: body.error.code } : {}),
          waited: res.headers.get(WAITED_HEADER),
          ms: now() - start,
        };
      };
      answers = await Promise.all([
        ...keys.map((key, i) =>
          timed(
            `purchase via front ${i}`,
            call(t.front(i), 'POST', '/purchase/4', {
              headers: { 'idempotency-key': key },
              timeoutMs: 20_000,
            }),
          ),
        ),
        timed(
          'price change',
          call(t.front(0), 'PATCH', '/books/4', { headers: admin, body: { price: 41 }, timeoutMs: 20_000 }),
        ),
      ]);
      // Still down: the budget, not the outage, ended them.
      assert.ok(now() - stoppedAt < WAIT_MS + 4000);
    } finally {
      await pg.startPrimary();
    }
    for (const a of answers) {
      assert.equal(a.status, 503, `${a.what}: ${a.status} ${a.code}`);
      assert.equal(a.code, 'primary_unavailable', a.what);
      assert.ok(
        a.ms >= WAIT_MS - 300 && a.ms < WAIT_MS + 2500,
        `${a.what}: answered after ${ms(a.ms)}, about the budget (${WAIT_MS} ms) and not one per writer`,
      );
      assert.ok(Number(a.waited) >= WAIT_MS - 100, `${a.what}: X-Bazar-Primary-Waited-Ms ${a.waited}`);
    }
    // One wait per write: the fronts did not try the other order pod (or catalog pod) after it.
    assert.equal((await waits('expired')) - expiredBefore, answers.length);
    // Nothing was written: a retry under each key buys now (not a replay), the price is unchanged.
    const price = (await t.db.query<{ price: number }>('SELECT price FROM books WHERE id = 4')).rows[0]!
      .price;
    assert.equal(price, priceBefore);
    for (const key of keys) {
      const again = await call(t.front(0), 'POST', '/purchase/4', { headers: { 'idempotency-key': key } });
      assert.equal(again.status, 200, `retry of ${key}: ${again.status}`);
      assert.equal(again.headers.get('idempotent-replayed'), null, `${key} had written nothing`);
    }
    console.log(
      `primary-wait(b) primary stopped beyond the ${WAIT_MS} ms budget: ${answers
        .map((a) => `${a.what} ${a.status} ${a.code} in ${ms(a.ms)} (waited ${a.waited} ms)`)
        .join(
          ', ',
        )}; one expired wait each; nothing written (the keyed retries bought anew, price unchanged)`,
    );
  });
});
