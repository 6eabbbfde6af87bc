/**
 * Fault scenarios on one session-mode stack with TCP proxies spliced into chosen paths:
 *   (c) pause replay on the standby, session mode (guarantees.md G2);
 *   (d) a front that the writers cannot reach for an invalidation: frozen (SIGSTOP), then reachable by
 *       clients but not by writers (blackholed / reset invalidation path) (guarantees.md G2 TTL bound);
 *   (e) connection resets and slow upstreams between a front and the catalog/order pods: timeouts
 *       (UPSTREAM_TIMEOUT_MS) and retries (UPSTREAM_MAX_ATTEMPTS) behave as configured.
 *
 * Ports are fixed up front so proxies can be placed before the stack starts:
 *   front-0, front-1: ordinary fronts (the stream's two fronts); writers reach front-1 through `inv`;
 *   front-2 (2 attempts) and front-3 (1 attempt), UPSTREAM_TIMEOUT_MS=UPSTREAM_WRITE_TIMEOUT_MS=300: their catalog endpoints are
 *   [proxy → catalog-replica-0, catalog-origin-0] and their order endpoints [proxy → order-origin-0,
 *   order-replica-0], so round robin sends every other request through the proxy first.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { bearer, call, startTestStack, type TestStack } from '../api/harness.js';
import { checkedRun } from '../../tools/checker/src/run.js';
import { formatReport } from '../../tools/checker/src/check.js';
import { setStock } from '../../tools/checker/src/db-facts.js';
import {
  LogSink,
  TcpProxy,
  freePortBlock,
  metric,
  ms,
  now,
  onStandby,
  percentile,
  scrape,
  sleep,
  waitFor,
  FAULT_BOOKS,
  mixedWorkload,
} from './support.js';

const CACHE_TTL_MS = 1500;
const INVALIDATION_TIMEOUT_MS = 300;
const UPSTREAM_TIMEOUT_MS = 300;
const BOOKS = FAULT_BOOKS;

interface Book {
  id: number;
  version: number;
  stock: number;
  price: number;
}

describe('fault injection, session mode, with proxies', () => {
  let t: TestStack;
  const logs = new LogSink();
  let inv: TcpProxy;
  let cat: TcpProxy;
  let ord: TcpProxy;
  let base = 0;
  let frontPort = 0;
  const fronts = () => t.stack.fronts.slice(0, 2).map((f) => ({ name: f.name, url: f.url }));
  const writers = () => [...t.stack.orders, t.stack.catalogs.find((c) => c.role === 'origin')!];
  const noCache = { headers: { 'cache-control': 'no-cache' } };

  async function start(): Promise<void> {
    base = await freePortBlock(8);
    frontPort = base + 4;
    const local = (port: number) => ({ host: '127.0.0.1', port });
    inv = new TcpProxy(local(frontPort + 1), 'inv→front-1');
    cat = new TcpProxy(local(base + 1), 'proxy→catalog-replica-0');
    ord = new TcpProxy(local(base + 2), 'proxy→order-origin-0');
    await Promise.all([inv.listen(), cat.listen(), ord.listen()]);
    const url = (port: number) => `http://127.0.0.1:${port}`;
    t = await startTestStack({
      consistencyMode: 'session',
      fronts: 4,
      servicePortBase: base,
      frontPort,
      cacheTtlMs: CACHE_TTL_MS,
      logLevel: 'info',
      log: logs.add,
      env: {
        INVALIDATION_TIMEOUT_MS: String(INVALIDATION_TIMEOUT_MS),
        // No reconciliation round during a scenario: (d) measures the TTL bound of a front writers cannot
        // reach, which a round landing right after the lost push would cut short (it did, now and then).
        CACHE_RECONCILE_INTERVAL_MS: '600000',
      },
      envFor: ({ service, name }): Record<string, string> => {
        if (service !== 'front') {
          const frontUrls = [0, 1, 2, 3].map((i) => `front-${i}=${i === 1 ? inv.url : url(frontPort + i)}`);
          return { FRONT_URLS: frontUrls.join(',') };
        }
        if (name === 'front-2' || name === 'front-3') {
          return {
            CATALOG_URLS: `catalog-via-proxy=${cat.url},catalog-origin-0=${url(base)}`,
            ORDER_URLS: `order-via-proxy=${ord.url},order-replica-0=${url(base + 3)}`,
            UPSTREAM_TIMEOUT_MS: String(UPSTREAM_TIMEOUT_MS),
            // Purchases have a timeout of their own (a strict write may wait for the standby); here the
            // same, so that a slow purchase answer is cut as (e) expects.
            UPSTREAM_WRITE_TIMEOUT_MS: String(UPSTREAM_TIMEOUT_MS),
            UPSTREAM_MAX_ATTEMPTS: name === 'front-2' ? '2' : '1',
          };
        }
        return {};
      },
    });
  }

  before(async () => {
    // The ports are chosen before the stack starts (the proxies need them): another process may take
    // one in between, which startStack reports; choose again.
    for (let attempt = 1; ; attempt++) {
      try {
        await start();
        break;
      } catch (err) {
        await Promise.all([inv?.close(), cat?.close(), ord?.close()]);
        if (attempt >= 3 || !/already in use/.test((err as Error).message)) throw err;
      }
    }
    t.db.on('error', () => undefined);
    assert.equal(t.stack.fronts[1]!.url, `http://127.0.0.1:${frontPort + 1}`);
    await setStock(t.db, new Map([...BOOKS, 4, 5, 6, 7].map((b) => [b, 100_000])));
  });
  after(async () => {
    await t?.stop();
    await Promise.all([inv?.close(), cat?.close(), ord?.close()]);
  });

  it('(c) standby replay paused, session: no client reads a version older than one it was acknowledged', async () => {
    let pausedAt = 0;
    let resumedAt = 0;
    let behind = 0;
    const run = await checkedRun(
      {
        db: t.db,
        mode: 'session',
        workload: mixedWorkload(t.stack, fronts()),
      },
      async () => {
        await sleep(300);
        await onStandby(t.stack, 'SELECT pg_wal_replay_pause()');
        pausedAt = now();
        await sleep(1500);
        const standby = await onStandby<{ v: string }>(t.stack, 'SELECT sum(version)::text AS v FROM books');
        const primary = await t.db.query<{ v: string }>('SELECT sum(version)::text AS v FROM books');
        behind = Number(primary.rows[0]!.v) - Number(standby[0]!.v);
        await onStandby(t.stack, 'SELECT pg_wal_replay_resume()');
        resumedAt = now();
        await sleep(300);
      },
    );
    assert.ok(behind > 0, 'the standby fell behind while replay was paused');
    const failed = run.recorded.filter((o) => o.status !== 200);
    assert.equal(failed.length, 0, `failed operations: ${JSON.stringify(failed.slice(0, 3))}`);
    assert.ok(run.report.ok, formatReport(run.report, run.t0));
    const paused = run.recorded.filter(
      (o) => o.kind === 'read' && o.invoke > pausedAt && o.complete < resumedAt,
    );
    const uncached = paused.filter((o) => o.cache === 'miss');
    const byOrigin = uncached.filter((o) => o.servedBy === 'catalog-origin-0').length;
    const lat = uncached.map((o) => o.complete - o.invoke);
    console.log(
      `fault(c) replay paused ${ms(resumedAt - pausedAt)}, session: ${run.recorded.length} ops, standby ${behind} versions behind; ` +
        `stale reads 0 (${run.report.stats.compared.staleRead} real-time, ${run.report.stats.compared.readYourWrites} read-your-writes, ` +
        `${run.report.stats.compared.monotonicReads} monotonic comparisons); ${uncached.length} uncached reads during the pause ` +
        `(${byOrigin} answered by the origin after the replica's wait, p50 ${ms(percentile(lat, 50))}, max ${ms(Math.max(0, ...lat))}); checker OK`,
    );
  });

  it('(c2) a front started while replay is paused serves no version older than one acknowledged before it started', async () => {
    const victim = t.stack.fronts[1]!;
    await onStandby(t.stack, 'SELECT pg_wal_replay_pause()');
    const reads: { book: number; version: number; servedBy: string }[] = [];
    const acked = new Map<number, number>();
    let restartMs: number;
    try {
      for (const book of BOOKS) {
        const res = await call<Book>(t.front(0), 'POST', `/purchase/${book}`);
        assert.equal(res.status, 200);
        acked.set(book, res.body.version);
      }
      // A new front pod (a restart, a scale-up) knows no fences: it has heard of none of those writes.
      const start = now();
      await victim.kill('SIGTERM');
      await victim.start();
      restartMs = now() - start;
      for (let round = 0; round < 4; round++) {
        for (const book of BOOKS) {
          const res = await call<Book>(t.front(1), 'GET', `/info/${book}`, round % 2 ? {} : noCache);
          assert.equal(res.status, 200);
          reads.push({ book, version: res.body.version, servedBy: res.headers.get('x-served-by') ?? '' });
        }
      }
    } finally {
      await onStandby(t.stack, 'SELECT pg_wal_replay_resume()');
    }
    const stale = reads.filter((r) => r.version < acked.get(r.book)!);
    assert.equal(stale.length, 0, `the new front served superseded versions: ${JSON.stringify(stale)}`);
    console.log(
      `fault(c2) front-1 restarted (${ms(restartMs)}) while replay was paused: ${reads.length} reads of ${BOOKS.length} books ` +
        `written before it started, 0 older than acknowledged (served by ${[...new Set(reads.map((r) => r.servedBy))].join(', ')})`,
    );
  });

  /** Sum of bazar_invalidations_sent_total{result} over the writers. */
  async function invalidations(result: string): Promise<number> {
    let n = 0;
    for (const p of writers()) n += metric(await scrape(p.url), 'bazar_invalidations_sent_total', { result });
    return n;
  }
  const info = (i: number, id: number) => call<Book>(t.front(i), 'GET', `/info/${id}`);

  it('(d) a frozen front (SIGSTOP): the ack waits at most INVALIDATION_TIMEOUT_MS, the miss is counted and logged, staleness ≤ TTL', async () => {
    const victim = t.stack.fronts[1]!;
    const mark = now();
    await info(1, 5);
    const filled = now();
    assert.equal((await info(1, 5)).headers.get('x-cache'), 'hit');
    const timeoutsBefore = await invalidations('timeout');
    await victim.kill('SIGSTOP');
    let resumed = 0;
    try {
      const start = now();
      const bought = await call<Book & { remainingStock: number }>(t.front(0), 'POST', '/purchase/5');
      const purchaseMs = now() - start;
      assert.equal(bought.status, 200);
      assert.equal(bought.headers.get('x-invalidated'), '3/4', 'three of four fronts acknowledged');
      const start2 = now();
      const repriced = await call<Book>(t.front(0), 'PATCH', '/books/5', {
        headers: bearer(t.stack.adminToken),
        body: { price: 131 },
      });
      const patchMs = now() - start2;
      assert.equal(repriced.status, 200);
      for (const [what, took] of [
        ['purchase', purchaseMs],
        ['price change', patchMs],
      ] as const) {
        assert.ok(took >= INVALIDATION_TIMEOUT_MS * 0.9, `${what} waited for the frozen front (${ms(took)})`);
        assert.ok(took < INVALIDATION_TIMEOUT_MS + 700, `${what} ack held ${ms(took)}`);
      }
      const acked = repriced.body.version;
      // The other fronts are fresh at once.
      for (const i of [0, 2, 3]) assert.ok((await info(i, 5)).body.version >= acked);
      const timeouts = (await invalidations('timeout')) - timeoutsBefore;
      assert.ok(
        timeouts >= 2,
        `bazar_invalidations_sent_total{result="timeout"} counted the misses (${timeouts})`,
      );
      const missed = () =>
        logs
          .records(mark)
          .filter((r) => r.rec.msg === 'invalidation not acknowledged' && r.rec.front === 'front-1');
      // Log lines come through the children's pipes: allow them a moment.
      await waitFor(
        'a log line naming front-1 from each writer',
        async () => missed().length >= 2,
        3000,
      ).catch(() => undefined);
      const logged = missed();
      assert.ok(logged.length >= 2, 'a log line names the front that missed the invalidation');
      assert.ok(
        new Set(logged.map((l) => l.proc)).size >= 2,
        'both writers (order and catalog origin) logged it',
      );
      await sleep(300);
      await victim.kill('SIGCONT');
      resumed = now();
      // After it wakes up, its staleness is bounded by the TTL of what it had cached.
      let stale = 0;
      let lastStale = 0;
      for (;;) {
        const res = await info(1, 5);
        assert.equal(res.status, 200);
        if (res.body.version >= acked) break;
        stale++;
        lastStale = now();
        assert.ok(
          now() - filled < CACHE_TTL_MS + 300,
          `front-1 still stale ${ms(now() - filled)} after its fill`,
        );
        await sleep(20);
      }
      const fresh = now() - resumed;
      console.log(
        `fault(d1) front-1 frozen by SIGSTOP: purchase ack ${ms(purchaseMs)}, price-change ack ${ms(patchMs)} ` +
          `(INVALIDATION_TIMEOUT_MS=${INVALIDATION_TIMEOUT_MS}, X-Invalidated 3/4), ${timeouts} × result="timeout", ` +
          `${logged.length} log lines naming front-1 (from ${[...new Set(logged.map((l) => l.proc))].join(', ')}); ` +
          `after SIGCONT: ${stale} stale answers${stale ? `, the last ${ms(lastStale - filled)} after the fill` : ''}, fresh ${ms(fresh)} after resume (TTL ${CACHE_TTL_MS} ms)`,
      );
    } finally {
      if (!resumed) await victim.kill('SIGCONT');
    }
  });

  it('(d) a front that clients reach but writers cannot: stale for at most the TTL; resets count as errors', async () => {
    const errorsBefore = await invalidations('error');
    const timeoutsBefore = await invalidations('timeout');
    await info(1, 6);
    const filled = now();
    const cachedVersion = (await info(1, 6)).body.version;
    inv.mode = 'blackhole';
    let acked: number;
    let ackMs: number;
    try {
      const start = now();
      const bought = await call<Book>(t.front(0), 'POST', '/purchase/6');
      ackMs = now() - start;
      assert.equal(bought.status, 200);
      assert.equal(bought.headers.get('x-invalidated'), '3/4');
      acked = bought.body.version;
    } finally {
      inv.mode = 'pass';
    }
    assert.ok(ackMs < INVALIDATION_TIMEOUT_MS + 700, `ack held ${ms(ackMs)}`);
    let stale = 0;
    let lastStale = 0;
    for (;;) {
      const res = await info(1, 6);
      if (res.body.version >= acked) break;
      assert.equal(res.body.version, cachedVersion, 'the stale answer is the cached one');
      stale++;
      lastStale = now() - filled;
      assert.ok(
        now() - filled < CACHE_TTL_MS + 300,
        `front-1 still stale ${ms(now() - filled)} after its fill`,
      );
      await sleep(25);
    }
    const freshAfter = now() - filled;
    assert.ok(stale > 0, 'the lost invalidation left front-1 stale (the fault took effect)');
    assert.ok(freshAfter >= CACHE_TTL_MS * 0.8, 'it stayed stale until its entry expired');
    // A reset invalidation path is counted as an error and does not hold the ack.
    inv.mode = 'reset';
    let resetMs: number;
    try {
      const start = now();
      const res = await call(t.front(0), 'POST', '/purchase/6');
      resetMs = now() - start;
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('x-invalidated'), '3/4');
    } finally {
      inv.mode = 'pass';
    }
    assert.ok(resetMs < INVALIDATION_TIMEOUT_MS, `a reset does not wait for the timeout (${ms(resetMs)})`);
    const errors = (await invalidations('error')) - errorsBefore;
    const timeouts = (await invalidations('timeout')) - timeoutsBefore;
    assert.ok(errors >= 1, 'result="error" counted the reset');
    assert.ok(timeouts >= 1, 'result="timeout" counted the blackholed push');
    console.log(
      `fault(d2) invalidations to front-1 blackholed: ack ${ms(ackMs)}, front-1 served the old version ${stale} times ` +
        `for up to ${ms(lastStale)} after its fill, fresh ${ms(freshAfter)} after the fill (TTL ${CACHE_TTL_MS} ms); ` +
        `reset path: ack ${ms(resetMs)}, ${errors} × result="error", ${timeouts} × result="timeout"`,
    );
  });

  async function upstreamErrors(front: number, service: string, reason: string): Promise<number> {
    return metric(await scrape(t.front(front)), 'bazar_upstream_errors_total', { target: service, reason });
  }
  const timedCall = async <T>(
    i: number,
    method: string,
    path: string,
    opts: Parameters<typeof call>[3] = {},
  ) => {
    const start = now();
    const res = await call<T>(t.front(i), method, path, opts);
    return { res, ms: now() - start };
  };

  it('(e) slow and resetting catalog: reads time out after UPSTREAM_TIMEOUT_MS and are retried when attempts allow', async () => {
    const N = 8;
    const figures: string[] = [];
    for (const [mode, reason] of [
      ['delay', 'ETIMEDOUT'],
      ['reset', 'ECONNRESET'],
    ] as const) {
      cat.mode = mode;
      cat.delayMs = UPSTREAM_TIMEOUT_MS + 500;
      try {
        // front-2: two attempts: every read succeeds; the ones that met the proxy first paid one timeout.
        const before2 = await upstreamErrors(2, 'catalog', reason);
        const retried = [];
        for (let i = 0; i < N; i++) retried.push(await timedCall<Book>(2, 'GET', '/info/1', noCache));
        const errors2 = (await upstreamErrors(2, 'catalog', reason)) - before2;
        assert.ok(
          retried.every((r) => r.res.status === 200),
          `${mode}: reads failed: ${retried.map((r) => r.res.status)}`,
        );
        assert.ok(
          retried.every((r) => r.res.headers.get('x-served-by') === 'catalog-origin-0'),
          'every answer came from the healthy endpoint',
        );
        assert.equal(errors2, N / 2, `${mode}: half the reads met the proxy first and were retried`);
        const slow = retried.filter((r) => r.ms >= UPSTREAM_TIMEOUT_MS * 0.9);
        if (mode === 'delay') {
          assert.equal(slow.length, N / 2, `timed-out attempts: ${retried.map((r) => ms(r.ms))}`);
          for (const r of slow)
            assert.ok(r.ms < UPSTREAM_TIMEOUT_MS + 400, `a retried read took ${ms(r.ms)}`);
        } else {
          assert.equal(slow.length, 0, `a reset is retried at once: ${retried.map((r) => ms(r.ms))}`);
        }
        // front-3: one attempt: exactly the reads that met the proxy fail, with the documented code.
        const single = [];
        for (let i = 0; i < N; i++)
          single.push(await timedCall<{ error: { code: string } }>(3, 'GET', '/info/1', noCache));
        const failedSingle = single.filter((r) => r.res.status !== 200);
        assert.equal(failedSingle.length, N / 2, `${mode}: one attempt: ${single.map((r) => r.res.status)}`);
        const expected = mode === 'delay' ? [504, 'upstream_timeout'] : [503, 'service_unavailable'];
        for (const r of failedSingle) {
          assert.deepEqual([r.res.status, r.res.body.error.code], expected);
          if (mode === 'delay')
            assert.ok(r.ms >= UPSTREAM_TIMEOUT_MS * 0.9 && r.ms < UPSTREAM_TIMEOUT_MS + 400);
          else assert.ok(r.ms < UPSTREAM_TIMEOUT_MS);
        }
        const lat = (rs: { ms: number }[]) => rs.map((r) => r.ms);
        figures.push(
          `${mode}: 2 attempts → ${N}/${N} ok, ${errors2} retried (${reason}), max ${ms(Math.max(...lat(retried)))}; ` +
            `1 attempt → ${failedSingle.length}/${N} × ${expected.join(' ')} in ${ms(percentile(lat(failedSingle), 50))}`,
        );
      } finally {
        cat.mode = 'pass';
      }
    }
    console.log(`fault(e1) catalog path (UPSTREAM_TIMEOUT_MS=${UPSTREAM_TIMEOUT_MS}): ${figures.join('; ')}`);
  });

  it('(e) lost or slow purchase answers: retried only under the key, each purchase bought once', async () => {
    const N = 8;
    const figures: string[] = [];
    for (const mode of ['drop-response', 'delay'] as const) {
      ord.mode = mode;
      ord.delayMs = UPSTREAM_TIMEOUT_MS + 500;
      const keys = Array.from({ length: N }, (_, i) => `e-${mode}-${Date.now()}-${i}`);
      const stockBefore = (await t.db.query('SELECT stock FROM books WHERE id = 7')).rows[0].stock as number;
      try {
        // front-2 (two attempts): the purchase that met the proxy committed, its answer was lost; the
        // retry under the same key on the other order pod returns that same order.
        const two = [];
        for (const key of keys.slice(0, N / 2)) {
          two.push(
            await timedCall<{ orderId: string }>(2, 'POST', '/purchase/7', {
              headers: { 'idempotency-key': key },
            }),
          );
        }
        // front-3 (one attempt): the answer is lost and not retried: 5xx, outcome unknown to the client.
        const one = [];
        for (const key of keys.slice(N / 2)) {
          const r = await timedCall<{ orderId: string; error: { code: string } }>(3, 'POST', '/purchase/7', {
            headers: { 'idempotency-key': key },
          });
          one.push({ ...r, key });
        }
        ord.mode = 'pass';
        assert.ok(
          two.every((r) => r.res.status === 200),
          `two attempts: ${two.map((r) => r.res.status)}`,
        );
        const replayed = two.filter((r) => r.res.headers.get('idempotent-replayed') === 'true').length;
        assert.equal(replayed, N / 4, 'the purchases whose first answer was lost were answered by replay');
        const unknown = one.filter((r) => r.res.status !== 200);
        assert.equal(unknown.length, N / 4, `one attempt: ${one.map((r) => r.res.status)}`);
        for (const r of unknown) {
          assert.deepEqual(
            [r.res.status, r.res.body.error.code],
            mode === 'delay' ? [504, 'upstream_timeout'] : [503, 'commit_outcome_unknown'],
          );
        }
        // The client settles each unknown outcome under its key: the store returns the committed order.
        let settledReplays = 0;
        for (const { key } of unknown) {
          const again = await call<{ orderId: string }>(t.front(0), 'POST', '/purchase/7', {
            headers: { 'idempotency-key': key },
          });
          assert.equal(again.status, 200);
          if (again.headers.get('idempotent-replayed') === 'true') settledReplays++;
        }
        assert.equal(
          settledReplays,
          N / 4,
          'every unknown outcome had committed and was returned, not bought again',
        );
        const rows = await t.db.query<{ n: number }>(
          'SELECT count(*)::int AS n FROM orders WHERE idempotency_key = ANY($1)',
          [keys],
        );
        assert.equal(rows.rows[0]!.n, N, 'exactly one order row per key');
        const stockAfter = (await t.db.query('SELECT stock FROM books WHERE id = 7')).rows[0].stock as number;
        assert.equal(stockBefore - stockAfter, N, 'stock fell by exactly one per key');
        const slowest = Math.max(...two.map((r) => r.ms));
        if (mode === 'delay')
          assert.ok(slowest < UPSTREAM_TIMEOUT_MS + 400, `a retried purchase took ${ms(slowest)}`);
        figures.push(
          `${mode}: 2 attempts → ${N / 2}/${N / 2} ok (${replayed} answered by replay after the lost answer, max ${ms(slowest)}); ` +
            `1 attempt → ${unknown.length} × ${unknown[0]?.res.status} (committed: ${settledReplays} returned on retry by key); ` +
            `${rows.rows[0]!.n} rows for ${N} keys`,
        );
      } finally {
        ord.mode = 'pass';
      }
    }
    console.log(`fault(e2) order path: ${figures.join('; ')}`);
  });

  it('(e) a restock is resent under its key after its answer was lost, and applied once; refused connections fail over', async () => {
    const admin = bearer(t.stack.adminToken);
    const stock = async () =>
      (await t.db.query('SELECT stock FROM books WHERE id = 4')).rows[0].stock as number;
    // Answer lost after the restock reached the catalog: the front resends it, under the key it gave
    // it, to the next catalog pod, which returns the first result instead of adding again.
    cat.mode = 'drop-response';
    const results = [];
    const before = await stock();
    try {
      for (let i = 0; i < 4; i++) {
        results.push(
          await call(t.front(2), 'POST', '/books/4/restock', { headers: admin, body: { quantity: 1 } }),
        );
      }
    } finally {
      cat.mode = 'pass';
    }
    assert.deepEqual(
      results.map((r) => r.status),
      [200, 200, 200, 200],
    );
    const lost = results.filter((r) => r.headers.get('idempotent-replayed') === 'true').length;
    assert.equal(lost, 2, 'the two restocks whose answer was lost were answered by replay');
    assert.equal((await stock()) - before, 4, 'each restock applied exactly once (none doubled, none lost)');
    // Connection refused: it provably never left, so the front tries the next endpoint.
    await cat.close();
    const before2 = await stock();
    const refused = [];
    try {
      for (let i = 0; i < 4; i++) {
        refused.push(
          await call(t.front(2), 'POST', '/books/4/restock', { headers: admin, body: { quantity: 1 } }),
        );
      }
    } finally {
      await cat.listen(cat.port);
    }
    assert.ok(
      refused.every((r) => r.status === 200),
      `statuses ${refused.map((r) => r.status)}`,
    );
    assert.equal((await stock()) - before2, 4);
    console.log(
      `fault(e3) restock (keyed by the front, retry: idempotent): answer lost → 4/4 ok, ${lost} answered by replay, ` +
        `stock +4 (applied once each); connection refused → 4/4 ok via the next endpoint, stock +4`,
    );
  });
});
