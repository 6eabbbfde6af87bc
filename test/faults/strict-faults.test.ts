/**
 * Fault scenarios on one strict-mode stack (2 fronts, catalog origin + replica, order origin +
 * replica, PostgreSQL primary + synchronous standby), each under a steady stream of recorded client
 * operations through both fronts, checked by the history checker:
 *   (a) kill a catalog replica, then an order pod, then a front (docs/guarantees.md G4);
 *   (b) stop the primary (guarantees.md G5);
 *   (c) pause replay on the standby, strict mode (guarantees.md G2, guarantees.md G6 degradation);
 *   (f) lose the standby, strict mode (guarantees.md G6).
 * Scenarios run in this order on one stack; each one restores what it broke.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { bearer, call, startTestStack, type TestStack } from '../api/harness.js';
import { checkedRun } from '../../tools/checker/src/run.js';
import { formatReport } from '../../tools/checker/src/check.js';
import { setStock } from '../../tools/checker/src/db-facts.js';
import type { Op } from '../../tools/checker/src/history.js';
import type { ServiceProcess } from '../../tools/devstack/src/stack.js';
import {
  LogSink,
  metric,
  ms,
  now,
  onStandby,
  percentile,
  readyz,
  scrape,
  sleep,
  waitFor,
  FAULT_BOOKS,
  mixedWorkload,
} from './support.js';

const SYNC_COMMIT_TIMEOUT_MS = 400;

function summarize(items: string[]): string {
  const counts = new Map<string, number>();
  for (const i of items) counts.set(i, (counts.get(i) ?? 0) + 1);
  return [...counts].map(([k, n]) => `${n} × ${k}`).join(', ');
}
const BOOKS = FAULT_BOOKS;

describe('fault injection, strict mode', () => {
  let t: TestStack;
  const logs = new LogSink();
  const fronts = () => t.stack.fronts.map((f) => ({ name: f.name, url: f.url }));
  const writers = () => [...t.stack.orders, t.stack.catalogs.find((c) => c.role === 'origin')!];

  before(async () => {
    t = await startTestStack({
      consistencyMode: 'strict',
      logLevel: 'info',
      log: logs.add,
      // Case (c) and (d) are about the degradation (docs/guarantees.md G6); strict-refuse.test.ts has
      // the default, which refuses such writes.
      env: { SYNC_COMMIT_TIMEOUT_MS: String(SYNC_COMMIT_TIMEOUT_MS), STRICT_STANDBY_LOSS: 'degrade' },
    });
    // Idle clients of the test's own pool lose their server when the primary stops.
    t.db.on('error', () => undefined);
    await setStock(t.db, new Map([...BOOKS, 4].map((b) => [b, 100_000])));
  });
  after(async () => t?.stop());

  const failed = (ops: Op[]) => ops.filter((o) => o.status !== 200);
  const show = (ops: Op[]) =>
    JSON.stringify(
      ops.slice(0, 5).map((o) => ({ kind: o.kind, status: o.status, error: o.error, front: o.front })),
    );

  it('(a) kill a catalog replica, an order pod, then a front: no failed read, no lost or doubled purchase', async () => {
    const victims: [string, ServiceProcess][] = [
      ['catalog', t.stack.catalogs.find((c) => c.role === 'replica')!],
      ['order', t.stack.orders.find((o) => o.role === 'origin')!],
      ['front', t.stack.fronts[1]!],
    ];
    const windows = new Map<string, { killed: number; respawned: number; ready: number }>();
    const run = await checkedRun(
      {
        db: t.db,
        mode: 'strict',
        workload: {
          fronts: fronts(),
          clients: 6,
          books: BOOKS,
          mix: { read: 7, purchase: 3 },
          noCacheRatio: 0.6,
        },
      },
      async () => {
        for (const [label, victim] of victims) {
          await sleep(500);
          const killed = now();
          await victim.kill('SIGKILL');
          await sleep(700);
          const respawned = now();
          await victim.start();
          windows.set(label, { killed, respawned, ready: now() });
        }
        await sleep(1200);
      },
    );
    const ops = run.recorded;
    const reads = ops.filter((o) => o.kind === 'read');
    const purchases = ops.filter((o) => o.kind === 'purchase');
    assert.equal(failed(reads).length, 0, `failed reads: ${show(failed(reads))}`);
    assert.equal(failed(purchases).length, 0, `failed purchases: ${show(failed(purchases))}`);
    assert.ok(run.report.ok, formatReport(run.report, run.t0));

    // Clients of the dead front failed over; the surviving front never refused anyone.
    const connFailures = ops.flatMap((o) => o.connFailures ?? []);
    const dead = connFailures.filter((f) => f.front === 'front-1');
    const survivor = connFailures.filter((f) => f.front !== 'front-1');
    assert.ok(dead.length > 0, 'the killed front was in use: its clients saw it fail and failed over');
    assert.equal(
      survivor.length,
      0,
      `connection failures on the surviving front: ${JSON.stringify(survivor)}`,
    );

    // Nothing was served by a victim while it was dead; each one took traffic again after its restart.
    const servedDuring = (name: string, w: { killed: number; respawned: number }) =>
      ops.filter((o) => o.servedBy === name && o.invoke > w.killed + 20 && o.complete < w.respawned).length;
    const servedAfter = (name: string, w: { ready: number }, field: 'servedBy' | 'front' = 'servedBy') =>
      ops.filter((o) => o[field] === name && o.invoke > w.ready).length;
    const figures: string[] = [];
    for (const [label, victim] of victims) {
      const w = windows.get(label)!;
      const field = label === 'front' ? 'front' : 'servedBy';
      const during =
        label === 'front'
          ? ops.filter((o) => o.front === victim.name && o.invoke > w.killed + 20 && o.complete < w.respawned)
              .length
          : servedDuring(victim.name, w);
      assert.equal(during, 0, `${victim.name} served ${during} operations while dead`);
      const back = servedAfter(victim.name, w, field);
      assert.ok(back > 0, `traffic rebalanced back onto ${victim.name} after its restart`);
      figures.push(`${victim.name} down ${ms(w.ready - w.killed)} (served 0 while dead, ${back} after)`);
    }
    console.log(
      `fault(a) kill replica/order/front: ${ops.length} ops through 2 fronts; reads ${reads.length} (failed ${failed(reads).length}), ` +
        `keyed purchases ${purchases.length} (failed ${failed(purchases).length}, order rows ${run.facts.orders.length}, ` +
        `lost ${run.report.counts['lost-order'] ?? 0}, doubled ${run.report.counts['duplicate-order'] ?? 0}); ` +
        `${figures.join('; ')}; connection failures on the killed front ${dead.length} ` +
        `(${[...new Set(dead.map((d) => d.code))].join('/')}), on the survivor ${survivor.length}; checker OK`,
    );
  });

  it('(b) primary stopped: reads keep being served, writes fail fast with 503 primary_unavailable, then resume', async () => {
    const pg = t.stack.pg!;
    const pidsBefore = t.stack.all.map((p) => `${p.name}:${p.pid()}`);
    const admin = bearer(t.stack.adminToken);
    const marks = { stop: 0, stopped: 0, start: 0, started: 0 };
    const adminWrites: { status: number; code: string; ms: number }[] = [];
    const run = await checkedRun(
      {
        db: t.db,
        mode: 'strict',
        workload: {
          fronts: fronts(),
          clients: 4,
          books: BOOKS,
          mix: { read: 6, purchase: 4 },
          noCacheRatio: 0.6,
          thinkMs: 5,
        },
      },
      async () => {
        await sleep(500);
        marks.stop = now();
        await pg.stopPrimary();
        marks.stopped = now();
        await sleep(300);
        for (const [i, method, path, body] of [
          [0, 'PATCH', '/books/2', { price: 77 }],
          [1, 'POST', '/books/2/restock', { quantity: 5 }],
        ] as const) {
          const start = now();
          const res = await call<{ error: { code: string } }>(t.front(i), method, path, {
            headers: admin,
            body,
          });
          adminWrites.push({ status: res.status, code: res.body.error?.code, ms: now() - start });
        }
        await sleep(1000);
        marks.start = now();
        await pg.startPrimary();
        marks.started = now();
        await sleep(1200);
      },
    );
    const ops = run.recorded;
    const reads = ops.filter((o) => o.kind === 'read');
    const purchases = ops.filter((o) => o.kind === 'purchase');
    assert.equal(failed(reads).length, 0, `failed reads: ${show(failed(reads))}`);
    // While the primary was down (or going down), every write failed within a second, with the code.
    const outage = purchases.filter((o) => o.invoke >= marks.stop && o.complete <= marks.start);
    const down = outage.filter((o) => o.invoke >= marks.stopped);
    assert.ok(down.length >= 3, `writes were attempted during the outage (${down.length})`);
    for (const o of down) {
      assert.equal(o.status, 503, `write during the outage: ${o.status} ${o.error}`);
      assert.equal(o.error, 'primary_unavailable');
    }
    for (const o of outage) {
      assert.ok([200, 503].includes(o.status), `write while the primary stopped: ${o.status} ${o.error}`);
      assert.ok(o.complete - o.invoke < 1000, `a write took ${ms(o.complete - o.invoke)} to fail`);
    }
    for (const w of adminWrites) {
      assert.equal(w.status, 503);
      assert.equal(w.code, 'primary_unavailable');
      assert.ok(w.ms < 1000, `admin write took ${ms(w.ms)}`);
    }
    // Reads during the outage: the standby (catalog replica) served them; the origin's failed over.
    const outageReads = reads.filter((o) => o.invoke >= marks.stopped && o.complete <= marks.start);
    const uncached = outageReads.filter((o) => o.cache === 'miss');
    assert.ok(uncached.length > 0, 'uncached reads reached the catalog during the outage');
    assert.ok(
      uncached.every((o) => o.servedBy === 'catalog-replica-0'),
      'only the replica served uncached reads',
    );
    // After the primary returned: writes succeed again, with no service restarted. A writer notices
    // on its next probe of the primary (every 200 ms while it fails fast, database.ts): the standby
    // may stream again before that, so a write in the first two probe intervals after startPrimary
    // returned may still be refused, fast and with the code; none after.
    const resumeBoundMs = 2 * 200;
    const afterStart = purchases.filter((o) => o.invoke > marks.started + resumeBoundMs);
    assert.ok(afterStart.length > 0);
    assert.equal(
      failed(afterStart).length,
      0,
      `writes ${resumeBoundMs} ms after the primary returned: ${show(failed(afterStart))}`,
    );
    for (const o of purchases.filter(
      (p) => p.invoke > marks.started && p.invoke <= marks.started + resumeBoundMs,
    )) {
      assert.ok(
        o.status === 200 || (o.error === 'primary_unavailable' && o.complete - o.invoke < 1000),
        `a write right after the primary returned: ${o.status} ${o.error} in ${ms(o.complete - o.invoke)}`,
      );
    }
    const firstOk = purchases.find((o) => o.invoke > marks.start && o.status === 200);
    assert.deepEqual(
      t.stack.all.map((p) => `${p.name}:${p.pid()}`),
      pidsBefore,
      'no service was restarted',
    );
    assert.ok(run.report.ok, formatReport(run.report, run.t0));
    const latencies = outage.map((o) => o.complete - o.invoke);
    console.log(
      `fault(b) primary stopped ${ms(marks.start - marks.stopped)}: reads ${reads.length} (failed ${failed(reads).length}; ` +
        `${outageReads.length} during the outage, ${uncached.length} uncached all from catalog-replica-0); ` +
        `writes during the outage ${outage.length}: ${down.length} × 503 primary_unavailable, p50 ${ms(percentile(latencies, 50))}, ` +
        `max ${ms(Math.max(...latencies))} (admin writes ${adminWrites.map((w) => `${w.status} in ${ms(w.ms)}`).join(', ')}); ` +
        `pg_ctl stop took ${ms(marks.stopped - marks.stop)}, start+streaming ${ms(marks.started - marks.start)}; ` +
        `first write ok ${firstOk ? ms(firstOk.complete - marks.start) : '-'} after startPrimary was called, ` +
        `${afterStart.length} later writes all ok; same pids; unknown outcomes settled by key ${run.settled} ` +
        `(${run.settledReplayed} had committed); checker OK`,
    );
  });

  it('(b2) primary stopped while commits are in flight: no service dies, every outcome is settled truthfully by its key', async () => {
    const pg = t.stack.pg!;
    const pidsBefore = t.stack.all.map((p) => `${p.name}:${p.pid()}`);
    // With replay paused, strict commits wait for the standby: the primary stops under them.
    await onStandby(t.stack, 'SELECT pg_wal_replay_pause()');
    const keys = Array.from({ length: 8 }, (_, i) => `inflight-${Date.now()}-${i}`);
    const inflight = keys.map((key, i) =>
      call<{ orderId?: string; error?: { code: string } }>(t.front(i % 2), 'POST', '/purchase/1', {
        headers: { 'idempotency-key': key },
      }),
    );
    await sleep(150);
    const stopAt = now();
    await pg.stopPrimary();
    const results = await Promise.all(inflight);
    const answeredIn = now() - stopAt;
    // (A standby whose replay is paused does not reconnect to a restarted primary: resume first.)
    await onStandby(t.stack, 'SELECT pg_wal_replay_resume()');
    await pg.startPrimary();
    assert.deepEqual(
      t.stack.all.map((p) => `${p.name}:${p.pid()}`),
      pidsBefore,
      'no service died when the primary went away under its transactions',
    );
    const codes = results.map((r) => (r.status === 200 ? '200' : `${r.status} ${r.body.error?.code}`));
    for (const c of codes) {
      assert.ok(
        ['200', '503 commit_outcome_unknown', '503 primary_unavailable'].includes(c),
        `in-flight purchase: ${c}`,
      );
    }
    // Settle: a retry under each key returns the committed order, or buys it now; one row per key.
    let replayed = 0;
    for (const [i, key] of keys.entries()) {
      const again = await call<{ orderId: string }>(t.front(0), 'POST', '/purchase/1', {
        headers: { 'idempotency-key': key },
      });
      assert.equal(again.status, 200, `settling ${key}: ${again.status}`);
      if (again.headers.get('idempotent-replayed') === 'true') {
        replayed++;
        // It had committed: its first answer must not have said that nothing was done (guarantees.md G6).
        assert.notEqual(
          codes[i],
          '503 primary_unavailable',
          `${key} committed but was reported primary_unavailable`,
        );
      }
      if (results[i]!.status === 200) assert.equal(again.body.orderId, results[i]!.body.orderId);
    }
    const rows = await t.db.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM orders WHERE idempotency_key = ANY($1) GROUP BY idempotency_key',
      [keys],
    );
    assert.equal(rows.rowCount, keys.length);
    assert.ok(rows.rows.every((r) => r.n === 1));
    await waitFor(
      'strict commits restored',
      async () => (await degradation()).every((d) => d.metric === 0),
      15_000,
      100,
    );
    console.log(
      `fault(b2) primary stopped under ${keys.length} in-flight strict commits: answers ${summarize(codes)} within ${ms(answeredIn)} ` +
        `of the stop; same pids (no service died); settled by key: ${replayed} had committed, ${keys.length - replayed} bought on retry; one row per key`,
    );
  });

  /** Degraded flag of each writer: metric and /readyz detail. */
  async function degradation(): Promise<{ name: string; metric: number; detail: string | undefined }[]> {
    return Promise.all(
      writers().map(async (p) => {
        const text = await scrape(p.url);
        const body = (await readyz(p.url)).body as { consistency?: { degraded?: string } };
        return {
          name: p.name,
          metric: metric(text, 'bazar_consistency_degraded'),
          detail: body.consistency?.degraded,
        };
      }),
    );
  }
  async function syncTimeouts(): Promise<number> {
    let n = 0;
    for (const p of writers()) n += metric(await scrape(p.url), 'bazar_sync_commit_timeouts_total');
    return n;
  }

  it('(c) standby replay paused, strict: no read older than an acknowledged write; writes committed, degraded, then restored', async () => {
    const timeoutsBefore = await syncTimeouts();
    const mark = now();
    let pausedAt = 0;
    let resumedAt = 0;
    let standbyBehind: { id: number; standby: number; primary: number }[] = [];
    let during: Awaited<ReturnType<typeof degradation>> = [];
    const run = await checkedRun(
      {
        db: t.db,
        // Replay paused: strict writes degrade (docs/guarantees.md G2, 'while writes are degraded').
        mode: 'session',
        workload: mixedWorkload(t.stack, fronts()),
      },
      async () => {
        await sleep(400);
        await onStandby(t.stack, 'SELECT pg_wal_replay_pause()');
        pausedAt = now();
        await sleep(1500);
        // The fault is real: the standby is behind the primary.
        const standby = await onStandby<{ id: number; version: string }>(
          t.stack,
          'SELECT id, version::text FROM books WHERE id = ANY($1::int[])',
          [BOOKS],
        );
        const primary = await t.db.query<{ id: number; version: string }>(
          'SELECT id, version::text FROM books WHERE id = ANY($1::int[])',
          [BOOKS],
        );
        standbyBehind = standby
          .map((s) => ({
            id: s.id,
            standby: Number(s.version),
            primary: Number(primary.rows.find((p) => p.id === s.id)!.version),
          }))
          .filter((x) => x.standby < x.primary);
        during = await degradation();
        await onStandby(t.stack, 'SELECT pg_wal_replay_resume()');
        resumedAt = now();
        await sleep(500);
      },
    );
    assert.ok(standbyBehind.length > 0, 'the standby fell behind while replay was paused');
    const writes = run.recorded.filter((o) => o.kind !== 'read' && o.invoke < resumedAt);
    assert.equal(
      failed(writes).length,
      0,
      `a write during the pause was not reported committed: ${show(failed(writes))}`,
    );
    const reads = run.recorded.filter((o) => o.kind === 'read');
    assert.equal(failed(reads).length, 0, `failed reads: ${show(failed(reads))}`);
    assert.ok(run.report.ok, formatReport(run.report, run.t0));
    const timeouts = (await syncTimeouts()) - timeoutsBefore;
    assert.ok(timeouts > 0, 'remote_apply commits timed out and were cancelled');
    const degraded = during.filter((d) => d.metric === 1);
    assert.ok(
      degraded.length > 0,
      `degradation shows in bazar_consistency_degraded: ${JSON.stringify(during)}`,
    );
    for (const d of during) {
      assert.equal(d.metric === 1, d.detail !== undefined, `/readyz and the metric agree on ${d.name}`);
    }
    // The gauge is read over HTTP, the log line comes through a pipe: give the pipe a moment.
    const loggedBy = () =>
      logs
        .records(mark)
        .filter((r) => /consistency degraded/.test(String(r.rec.msg)))
        .map((r) => r.proc);
    await waitFor(
      'each degradation logged',
      async () => degraded.every((d) => loggedBy().includes(d.name)),
      2000,
    ).catch(() => undefined);
    const logged = loggedBy();
    for (const d of degraded) assert.ok(logged.includes(d.name), `${d.name} logged its degradation`);
    // Restored after resume.
    const recovery = await waitFor(
      'strict commits restored on every writer',
      async () => (await degradation()).every((d) => d.metric === 0 && d.detail === undefined),
      15_000,
      100,
    );
    // The log line is written just before the gauge drops; give the pipe a moment.
    await waitFor(
      'each restoration logged',
      async () =>
        logs.records(mark).filter((r) => /consistency restored/.test(String(r.rec.msg))).length >=
        degraded.length,
      2000,
    );
    const pauseWrites = writes.filter((o) => o.invoke >= pausedAt);
    const lat = pauseWrites.map((o) => o.complete - o.invoke);
    console.log(
      `fault(c) replay paused ${ms(resumedAt - pausedAt)}, strict: ${run.history.length} ops, ${reads.length} reads ` +
        `(stale 0: ${run.report.stats.compared.staleRead} real-time and ${run.report.stats.compared.readYourWrites} ` +
        `read-your-writes comparisons), standby behind on books ${standbyBehind.map((b) => `${b.id} (v${b.standby} < v${b.primary})`).join(', ')}; ` +
        `${pauseWrites.length} writes during the pause all reported committed (p50 ${ms(percentile(lat, 50))}, max ${ms(Math.max(0, ...lat))}), ` +
        `${timeouts} sync-commit timeouts (SYNC_COMMIT_TIMEOUT_MS=${SYNC_COMMIT_TIMEOUT_MS}); degraded: ${degraded.map((d) => d.name).join(', ')}; ` +
        `restored on all writers ${ms(now() - resumedAt - 0)} after resume (polled ${ms(recovery)} after the stream stopped)`,
    );
  });

  it('(f) standby lost, strict: writes do not hang, every outcome is truthful, degradation is visible and recovers', async () => {
    const pg = t.stack.pg!;
    const mark = now();
    const timeoutsBefore = await syncTimeouts();
    await pg.stopStandby();
    const stoppedAt = now();
    const keys = Array.from({ length: 8 }, (_, i) => `standby-loss-${Date.now()}-${i}`);
    const timed = async (i: number, key: string) => {
      const start = now();
      const res = await call<{ orderId: string }>(t.front(i % 2), 'POST', '/purchase/4', {
        headers: { 'idempotency-key': key },
      });
      return { key, res, ms: now() - start };
    };
    // One at a time first (the first commit on each pod waits for the timeout), then a concurrent burst.
    const results = [await timed(0, keys[0]!), await timed(1, keys[1]!)];
    results.push(...(await Promise.all(keys.slice(2).map((k, i) => timed(i, k)))));
    for (const r of results) {
      assert.equal(
        r.res.status,
        200,
        `purchase without a standby: ${r.res.status} ${JSON.stringify(r.res.body)}`,
      );
      assert.ok(r.ms < 2 * SYNC_COMMIT_TIMEOUT_MS + 500, `a write took ${ms(r.ms)} without a standby`);
    }
    // Truthful: a retry under each key returns the same committed order; the database has exactly one.
    for (const r of results) {
      const again = await call<{ orderId: string }>(t.front(1), 'POST', '/purchase/4', {
        headers: { 'idempotency-key': r.key },
      });
      assert.equal(again.status, 200);
      assert.equal(again.body.orderId, r.res.body.orderId);
      assert.equal(again.headers.get('idempotent-replayed'), 'true');
    }
    const rows = await t.db.query<{ key: string; n: number }>(
      'SELECT idempotency_key AS key, count(*)::int AS n FROM orders WHERE idempotency_key = ANY($1) GROUP BY 1',
      [keys],
    );
    assert.equal(rows.rowCount, keys.length);
    assert.ok(rows.rows.every((r) => r.n === 1));
    // Reads still work (the replica's standby is gone: it reads from the origin).
    for (let i = 0; i < 6; i++) {
      const res = await call(t.front(i % 2), 'GET', '/info/4', { headers: { 'cache-control': 'no-cache' } });
      assert.equal(res.status, 200);
    }
    const during = await degradation();
    const degraded = during.filter((d) => d.metric === 1);
    assert.ok(
      t.stack.orders.every((o) => degraded.some((d) => d.name === o.name)),
      `both order pods report the degradation: ${JSON.stringify(during)}`,
    );
    for (const d of degraded) assert.match(d.detail ?? '', /standby did not confirm/);
    const degradedLogs = () =>
      logs.records(mark).filter((r) => /consistency degraded/.test(String(r.rec.msg)));
    await waitFor(
      'each degradation logged',
      async () => degradedLogs().length >= degraded.length,
      2000,
    ).catch(() => undefined);
    const logged = degradedLogs();
    assert.ok(
      logged.length >= degraded.length,
      `degradation logged by every degraded writer: ${degraded.map((d) => d.name).join(', ')}; logged by ${logged.map((r) => r.proc).join(', ') || 'none'}`,
    );
    const timeouts = (await syncTimeouts()) - timeoutsBefore;
    const startAt = now();
    await pg.startStandby();
    const recovery = await waitFor(
      'strict commits restored',
      async () => (await degradation()).every((d) => d.metric === 0),
      15_000,
      100,
    );
    // Strict again: a write is on the standby when acknowledged.
    const res = await call<{ version: number }>(t.front(0), 'POST', '/purchase/4');
    assert.equal(res.status, 200);
    const onStandbyNow = await onStandby<{ version: string }>(
      t.stack,
      'SELECT version::text FROM books WHERE id = 4',
    );
    assert.ok(
      Number(onStandbyNow[0]!.version) >= res.body.version,
      'the standby applied the write before its ack',
    );
    const lat = results.map((r) => r.ms);
    console.log(
      `fault(f) standby lost (stop took ${ms(stoppedAt - mark)}), strict: ${results.length} purchases all 200 ` +
        `(first ${ms(lat[0]!)}, p50 ${ms(percentile(lat, 50))}, max ${ms(Math.max(...lat))}; bound SYNC_COMMIT_TIMEOUT_MS=${SYNC_COMMIT_TIMEOUT_MS}), ` +
        `${keys.length}/${keys.length} returned again under their key with one order row each; ${timeouts} sync-commit timeouts; ` +
        `degraded: ${degraded.map((d) => d.name).join(', ')}; restored ${ms(now() - startAt - 0)} after the standby was started ` +
        `(${ms(recovery)} after it streamed)`,
    );
  });
});
